"""The `github` code kind through PyGithub: commits, files, patches and pull requests.

It talks to the REST API at `base_url` (api.github.com, a GitHub Enterprise
Server's /api/v3, or a stand-in). Every request passes the gate of `github_api`. Commits are listed with one
paginated call; each commit's files and patches (and its merged pull request)
cost one or two more, so those are fetched in parallel, only for the newest
non-merge commits up to a cap, and cached by sha: a Re-run or a follow-up on the
same service fetches them no more.
"""

from __future__ import annotations

import re
from datetime import datetime
from itertools import islice
from typing import Any, Final

import structlog
from github.Commit import Commit as GhCommit
from github.GithubException import GithubException
from pydantic import TypeAdapter

from integrations.cache import cached
from integrations.code.base import Commit
from integrations.code.github import GitHubCodeOptions
from integrations.code.github_api import GitHubApi
from integrations.code.host_common import (
    DETAIL,
    IMMUTABLE_TTL_S,
    MOVING_TTL_S,
    OPTIONAL_SHA,
    SHAS,
    CommitDetail,
    Deadline,
    FileDetail,
    PullRequestInfo,
    bound_patches,
    in_parallel,
    is_full_sha,
    render_diff,
    utc,
    valid_ref,
)
from integrations.errors import SourceError

log = structlog.get_logger(__name__)

# Tags and branches listed to resolve names without a call each.
MAX_REFS: Final = 1000
_SHA_PREFIX: Final = re.compile(r"^[0-9a-f]{4,40}$")
_REFS: Final = TypeAdapter(tuple[dict[str, str], bool])
_PULL_IN_MESSAGE: Final = re.compile(r"^Merge pull request #(?P<merge>\d+) from |\(#(?P<squash>\d+)\)\s*$", re.MULTILINE)
_PULL: Final[TypeAdapter[PullRequestInfo | None]] = TypeAdapter(PullRequestInfo | None)


class GitHubChangeSource:
    """Commits of one branch of a GitHub repository, with files, patches and merged pull requests."""

    def __init__(self, options: GitHubCodeOptions, *, name: str = "github") -> None:
        self.options = options
        self.name = name
        self.gh = GitHubApi(options)
        # What a read could not fetch (commits left without files): kept for the evidence, never silently lost.
        self.problems: list[str] = []

    @property
    def api_calls(self) -> int:
        return self.gh.api_calls

    def _deadline(self) -> Deadline:
        return Deadline(self.options.deadline_s)

    def commits(self, start: datetime, end: datetime, *, limit: int = 2000) -> list[Commit]:
        deadline = self._deadline()
        listed = self.gh.within(deadline, lambda: self._list(start, end, limit), "listing commits")
        # Files are fetched only for the newest non-merge commits (a merge lists none, as in local git), up to the cap.
        wanted = [d for d in listed if not d.is_merge][: self.options.max_commits_with_files]
        # Pull requests only link a suspect, they never rank one: asked for the newest commits only.
        ask_pulls = {d.sha for d in listed[: self.options.max_pull_requests]}
        details, problems = in_parallel(
            wanted,
            lambda d: self._detail_within(deadline, d, d.sha in ask_pulls),
            workers=self.options.parallel,
            deadline=deadline,
            what="commits",
        )
        full = {details[i].sha: details[i] for i in details}
        skipped = sum(1 for d in listed if not d.is_merge) - len(wanted)
        if skipped > 0:
            problems.append(f"{skipped} older commits listed without files (max_commits_with_files={self.options.max_commits_with_files})")
        for problem in problems:
            log.warning("github_commits_incomplete", repository=self.options.repository, problem=problem)
        self.problems.extend(problems)
        return [full.get(d.sha, d).to_commit(with_files=d.sha in full) for d in listed]

    def _list(self, start: datetime, end: datetime, limit: int) -> list[CommitDetail]:
        # PyGithub formats since/until as wall time with a Z: hand it UTC or the window shifts by the local offset.
        since, until = utc(start).replace(tzinfo=None), utc(end).replace(tzinfo=None)
        kwargs: dict[str, Any] = {"since": since, "until": until}
        if self.options.branch:
            kwargs["sha"] = self.options.branch
        found: list[CommitDetail] = []
        for item in islice(self.gh.repo.get_commits(**kwargs), limit):
            # A list item carries all but the files: read its data as is, since completing it would cost a call.
            detail = _summary(item._rawData)
            # The API filters by whole seconds; the window is exact.
            if utc(start) <= detail.committed_at <= utc(end):
                found.append(detail)
        found.sort(key=lambda d: d.committed_at, reverse=True)
        return found

    def _detail_within(self, deadline: Deadline, summary: CommitDetail, ask_pull: bool) -> CommitDetail:
        def read() -> CommitDetail:
            detail = self.detail(summary.sha)
            pull = self.pull_request(summary.sha) if ask_pull else self._pull_from_message(detail)
            return detail.model_copy(update={"pull_request": pull})

        return self.gh.within(deadline, read, f"commit {summary.sha[:12]}")

    def detail(self, sha: str) -> CommitDetail:
        """A commit with its files and patches; cached by sha (immutable)."""
        key = self.gh.key("commit", sha, self.options.max_files_per_commit, self.options.max_patch_bytes)
        return cached(key, IMMUTABLE_TTL_S, DETAIL, lambda: self._fetch(sha))

    def pull_request(self, sha: str) -> PullRequestInfo | None:
        """The merged pull request a commit came in with; cached by sha: a commit on the branch has landed already."""
        # Its own entry, fetched only for listed commits: resolving a deploy's ref or reading a diff never pays for it.
        return cached(self.gh.key("pull", sha), IMMUTABLE_TTL_S, _PULL, lambda: _merged_pull(self.gh.repo.get_commit(sha), sha))

    def _pull_from_message(self, detail: CommitDetail) -> PullRequestInfo | None:
        match = _PULL_IN_MESSAGE.search(detail.message)
        if match is None or detail.url is None or "/commit/" not in detail.url:
            return None
        number = int(match.group("merge") or match.group("squash"))
        lines = detail.message.splitlines()
        # A merge commit's title is "Merge pull request #N from ..."; the pull request's own title is its body's first line.
        title = (lines[2] if match.group("merge") and len(lines) > 2 else detail.title_line).strip()
        return PullRequestInfo(number=number, title=title, url=detail.url.split("/commit/", 1)[0] + f"/pull/{number}")

    def _fetch(self, ref: str) -> CommitDetail:
        item = self.gh.repo.get_commit(ref)
        # One GET: the commit with its first page of files, which `files` then reads without asking again.
        detail = _summary(item.raw_data)
        files = [_file(f) for f in islice(item.files, self.options.max_files_per_commit)]
        kept, cut = bound_patches(files, self.options.max_patch_bytes)
        detail.files = kept
        detail.truncated = cut or len(files) >= self.options.max_files_per_commit
        return detail

    def diff(self, sha: str, *, paths: list[str] | None = None, max_bytes: int = 200_000) -> str:
        if not valid_ref(sha):
            raise SourceError(f"{sha[:60]!r} is not a commit GitHub can name")
        deadline = self._deadline()
        try:
            detail = self.gh.within(deadline, lambda: self._by_ref(sha), f"commit {sha[:12]}")
        except SourceError:
            raise
        if detail is None:
            raise SourceError(f"commit {sha[:12]} not found in {self.options.repository} at {self.gh.base_url}")
        return render_diff(detail, paths=paths, max_bytes=max_bytes)

    def _by_ref(self, ref: str) -> CommitDetail | None:
        """The commit a ref names, through the sha cache; None when the host knows no such commit."""
        sha = ref if is_full_sha(ref) else self._resolve_uncached_or_cached(ref)
        if sha is None:
            return None
        try:
            return self.detail(sha)
        except GithubException as exc:
            if exc.status in (404, 422):
                return None
            raise

    def resolve(self, ref: str) -> str | None:
        if not valid_ref(ref):
            return None
        return self.gh.within(self._deadline(), lambda: self._resolve_uncached_or_cached(ref), f"resolving {ref[:40]}")

    def _resolve_uncached_or_cached(self, ref: str) -> str | None:
        if is_full_sha(ref):
            return cached(self.gh.key("resolve", ref), IMMUTABLE_TTL_S, OPTIONAL_SHA, lambda: self._resolve(ref))
        # Branch and tag names are looked up in one listing of them: the ranking tries many candidate versions
        # (v1.4.2, v1.4.1, ...) and most do not exist, which would cost a call each.
        names, complete = self._refs()
        if ref in names:
            return names[ref]
        if complete and not _SHA_PREFIX.match(ref):
            return None
        # A sha prefix (or a name past the listing's bound); the answer is kept only briefly, as a name moves.
        return cached(self.gh.key("resolve", ref), MOVING_TTL_S, OPTIONAL_SHA, lambda: self._resolve(ref))

    def _refs(self) -> tuple[dict[str, str], bool]:
        """Tags and branches by name (tags first, as git reads a name) and whether the listing is complete."""
        return cached(self.gh.key("refs", MAX_REFS), MOVING_TTL_S, _REFS, self._list_refs)

    def _list_refs(self) -> tuple[dict[str, str], bool]:
        names: dict[str, str] = {}
        complete = True
        # Tags first: git reads a name that is both as the tag.
        tags = [(t.name, t.commit.sha) for t in islice(self.gh.repo.get_tags(), MAX_REFS + 1)]
        branches = [(b.name, b.commit.sha) for b in islice(self.gh.repo.get_branches(), MAX_REFS + 1)]
        for listing in (tags, branches):
            complete = complete and len(listing) <= MAX_REFS
            for name, sha in listing[:MAX_REFS]:
                names.setdefault(name, sha)
        return names, complete

    def _resolve(self, ref: str) -> str | None:
        try:
            detail = self._fetch(ref)
        except GithubException as exc:
            # "No commit found for SHA" (422) or "Not Found" (404): a ref the host does not know.
            if exc.status in (404, 422):
                return None
            raise
        # Keep what was fetched: resolving a deploy's ref and then reading its diff costs one call.
        cached(
            self.gh.key("commit", detail.sha, self.options.max_files_per_commit, self.options.max_patch_bytes),
            IMMUTABLE_TTL_S,
            DETAIL,
            lambda: detail,
        )
        return detail.sha

    def commits_between(self, old: str | None, new: str, *, limit: int = 500) -> list[str]:
        if not valid_ref(new) or (old is not None and not valid_ref(old)):
            return []
        stable = is_full_sha(new) and (old is None or is_full_sha(old))
        ttl = IMMUTABLE_TTL_S if stable else MOVING_TTL_S
        return self.gh.within(
            self._deadline(),
            lambda: cached(self.gh.key("between", old, new, limit), ttl, SHAS, lambda: self._between(old, new, limit)),
            f"comparing {old or ''}...{new}",
        )

    def _between(self, old: str | None, new: str, limit: int) -> list[str]:
        try:
            if old is None:
                return [c.sha for c in islice(self.gh.repo.get_commits(sha=new), limit)]
            comparison = self.gh.repo.compare(old, new)
            # The comparison lists oldest first and pages forward: read at most what can be kept, newest last.
            shas = [c.sha for c in islice(comparison.commits, max(limit, 1000))]
        except GithubException as exc:
            if exc.status in (404, 422):
                return []
            raise
        return list(reversed(shas))[:limit]

    def describe(self) -> str:
        deadline = self._deadline()
        full_name, default = self.gh.within(
            deadline, lambda: (self.gh.repo.full_name, self.gh.repo.default_branch), "reading the repository"
        )
        branch = self.options.branch or default
        head = self.resolve(branch)
        if head is None:
            raise SourceError(f"branch {branch} not found in {full_name} at {self.gh.base_url}")
        return f"{full_name} {branch} at {head[:12]}"


def _summary(data: dict[str, Any]) -> CommitDetail:
    """A commit as the REST API describes it, without its files."""
    inner = data.get("commit") or {}
    author = (inner.get("author") or {}).get("name") or ((data.get("author") or {}).get("login")) or ""
    committed = (inner.get("committer") or {}).get("date") or (inner.get("author") or {}).get("date")
    return CommitDetail(
        sha=data["sha"],
        author=str(author),
        committed_at=utc(datetime.fromisoformat(str(committed).replace("Z", "+00:00"))),
        message=str(inner.get("message") or "").strip(),
        parents=[str(p.get("sha")) for p in data.get("parents") or []],
        url=data.get("html_url"),
    )


def _file(item: Any) -> FileDetail:
    status = str(item.status or "modified")
    return FileDetail(
        path=item.filename,
        additions=int(item.additions or 0),
        deletions=int(item.deletions or 0),
        old_path=item.previous_filename if status == "renamed" else None,
        status=status,
        patch=item.patch,
    )


def _merged_pull(item: GhCommit, sha: str) -> PullRequestInfo | None:
    """The merged pull request a commit came in with: the one whose merge commit it is, else the first merged one."""
    merged = [pr for pr in islice(item.get_pulls(), 10) if pr.merged_at is not None]
    if not merged:
        return None
    pr = next((p for p in merged if p.merge_commit_sha == sha), merged[0])
    return PullRequestInfo(
        number=pr.number,
        title=pr.title,
        url=pr.html_url,
        author=pr.user.login if pr.user else "",
        labels=[label.name for label in pr.labels],
        reviewers=[user.login for user in pr.requested_reviewers],
    )
