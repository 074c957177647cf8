"""The change source every code host but GitHub is built on: the host gives commits, files and requests, this does the rest.

A kind subclasses `HostChangeSource` and answers a few host questions (list the
branch's commits in a window, fetch one commit with its files, the merged request
of a commit, the refs, the commits between two refs, errors as SourceError); the
base turns them into the `ChangeSource` protocol with the same bounds, parallel
fetches, sha-keyed cache and problem accounting for every host.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Final, TypeVar

import structlog
from pydantic import TypeAdapter

from integrations.cache import cache_key, cached
from integrations.code.base import Commit
from integrations.code.host_common import (
    DETAIL,
    IMMUTABLE_TTL_S,
    MOVING_TTL_S,
    OPTIONAL_SHA,
    SHAS,
    CodeHostOptions,
    CommitDetail,
    Deadline,
    FileDetail,
    HostGate,
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

T = TypeVar("T")
# Tags and branches listed to resolve names without a call each.
MAX_REFS: Final = 1000
_SHA_PREFIX: Final = re.compile(r"^[0-9a-f]{4,40}$")
_REFS: Final = TypeAdapter(tuple[dict[str, str], bool])
_PULL: Final[TypeAdapter[PullRequestInfo | None]] = TypeAdapter(PullRequestInfo | None)


class HostChangeSource(ABC):
    """Commits of one branch on a code host, with files, patches and the merged request of each."""

    kind: str

    def __init__(self, options: CodeHostOptions, gate: HostGate, *, name: str, key_fields: dict[str, str]) -> None:
        self.options = options
        self.name = name
        self.gate = gate
        self._key_fields = key_fields
        # What a read could not fetch (commits left without files): kept for the evidence, never silently lost.
        self.problems: list[str] = []

    # --- what a host answers -------------------------------------------------------------------------

    @abstractmethod
    def _list(self, start: datetime, end: datetime, limit: int) -> list[CommitDetail]:
        """Commits of the branch committed in [start, end] (the host's filter may be coarser), without files."""

    @abstractmethod
    def _fetch(self, ref: str, summary: CommitDetail | None) -> CommitDetail | None:
        """The commit `ref` names with its files (unbounded: the base bounds them); None when the host knows none.

        `summary`: the commit as listed, when it was, so a host that lists files apart need not ask for the commit again.
        """

    @abstractmethod
    def _pull(self, sha: str) -> PullRequestInfo | None:
        """The merged pull/merge request a commit came in with, asked of the host."""

    @abstractmethod
    def _list_refs(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]], bool]:
        """(tags, branches) as (name, sha), and whether both listings are complete."""

    @abstractmethod
    def _between(self, old: str | None, new: str, limit: int) -> list[str]:
        """Shas reachable from `new` but not `old`, newest first; [] when either is unknown."""

    @abstractmethod
    def _translate(self, error: Exception, what: str) -> SourceError | None:
        """The host's or transport's error as one clear SourceError (FatalHostError for the whole source); None: not ours."""

    @abstractmethod
    def describe(self) -> str: ...

    def _pull_from_message(self, detail: CommitDetail) -> PullRequestInfo | None:
        """The request a commit's message names ('See merge request g/p!12'), linked without a call."""
        return None

    def _patched(self, detail: CommitDetail) -> CommitDetail:
        """The commit with its patches, for a host that lists files without them (fetched only when a diff is read)."""
        return detail

    # --- the protocol ----------------------------------------------------------------------------------

    @property
    def api_calls(self) -> int:
        return self.gate.budget.used

    def key(self, *parts: object) -> str:
        return cache_key(self.kind, self._key_fields, *parts)

    def within(self, deadline: Deadline, call: Callable[[], T], what: str) -> T:
        try:
            return self.gate.within(deadline, call)
        except SourceError:
            raise
        except Exception as exc:
            problem = self._translate(exc, what)
            if problem is None:
                raise
            raise problem from None

    def _deadline(self) -> Deadline:
        return Deadline(self.options.deadline_s)

    def commits(self, start: datetime, end: datetime, *, limit: int = 2000) -> list[Commit]:
        deadline = self._deadline()
        start, end = utc(start), utc(end)

        def listed_in_window() -> list[CommitDetail]:
            found = [d for d in self._list(start, end, limit) if start <= d.committed_at <= end]
            return sorted(found, key=lambda d: d.committed_at, reverse=True)[:limit]

        listed = self.within(deadline, listed_in_window, "listing commits")
        # Files are fetched only for the newest non-merge commits (a merge lists none, as in local git), up to the cap.
        wanted = [d for d in listed if not d.is_merge][: self.options.max_commits_with_files]
        # Requests only link a suspect, they never rank one: asked for the newest commits only.
        ask_pulls = {d.sha for d in listed[: self.options.max_pull_requests]}
        details, problems = in_parallel(
            wanted,
            lambda d: self.within(deadline, lambda: self._with_pull(d, d.sha in ask_pulls), f"commit {d.sha[:12]}"),
            workers=self.options.parallel,
            deadline=deadline,
            what="commits",
        )
        full = {details[i].sha: details[i] for i in details}
        skipped = sum(1 for d in listed if not d.is_merge) - len(wanted)
        if skipped > 0:
            problems.append(f"{skipped} older commits listed without files (max_commits_with_files={self.options.max_commits_with_files})")
        for problem in problems:
            log.warning("code_host_commits_incomplete", kind=self.kind, source=self.name, problem=problem)
        self.problems.extend(problems)
        out = []
        for summary in listed:
            if summary.sha in full:
                out.append(full[summary.sha].to_commit())
            else:
                # Listed without files: still linked to its request when the message names one.
                out.append(summary.model_copy(update={"pull_request": self._pull_from_message(summary)}).to_commit(with_files=False))
        return out

    def _with_pull(self, summary: CommitDetail, ask_pull: bool) -> CommitDetail:
        detail = self.detail(summary.sha, summary)
        pull = (self.pull_request(summary.sha) if ask_pull else None) or self._pull_from_message(detail)
        return detail.model_copy(update={"pull_request": pull})

    def detail(self, sha: str, summary: CommitDetail | None = None) -> CommitDetail:
        """A commit with its files and patches, bounded; cached by sha (immutable)."""

        def fetch() -> CommitDetail:
            found = self._fetch(sha, summary)
            if found is None:
                raise SourceError(f"commit {sha[:12]} not found in {self.gate.subject} at {self.gate.host}")
            return self._bounded(found)

        return cached(self._detail_key(sha), IMMUTABLE_TTL_S, DETAIL, fetch)

    def _detail_key(self, sha: str) -> str:
        return self.key("commit", sha, self.options.max_files_per_commit, self.options.max_patch_bytes)

    def _bounded(self, detail: CommitDetail) -> CommitDetail:
        files: list[FileDetail] = detail.files[: self.options.max_files_per_commit]
        kept, cut = bound_patches(files, self.options.max_patch_bytes)
        return detail.model_copy(update={"files": kept, "truncated": cut or len(detail.files) > len(files) or detail.truncated})

    def pull_request(self, sha: str) -> PullRequestInfo | None:
        """The merged request a commit came in with; cached by sha: a commit on the branch has landed already."""
        return cached(self.key("pull", sha), IMMUTABLE_TTL_S, _PULL, lambda: self._pull(sha))

    def diff(self, sha: str, *, paths: list[str] | None = None, max_bytes: int = 200_000) -> str:
        if not valid_ref(sha):
            raise SourceError(f"{sha[:60]!r} is not a commit {self.gate.host} can name")
        detail = self.within(self._deadline(), lambda: self._by_ref(sha), f"commit {sha[:12]}")
        if detail is None:
            raise SourceError(f"commit {sha[:12]} not found in {self.gate.subject} at {self.gate.host}")
        return render_diff(detail, paths=paths, max_bytes=max_bytes)

    def _by_ref(self, ref: str) -> CommitDetail | None:
        # A full sha is read through the commit cache: resolving it first would cost a call when it is cold.
        sha = ref if is_full_sha(ref) else self._resolve_cached(ref)
        if sha is None:
            return None
        return self._patched(self.detail(sha))

    def resolve(self, ref: str) -> str | None:
        if not valid_ref(ref):
            return None
        return self.within(self._deadline(), lambda: self._resolve_cached(ref), f"resolving {ref[:40]}")

    def _resolve_cached(self, ref: str) -> str | None:
        if is_full_sha(ref):
            return cached(self.key("resolve", ref), IMMUTABLE_TTL_S, OPTIONAL_SHA, lambda: self._resolve(ref))
        # Branch and tag names are looked up in one listing of them: the ranking tries many candidate versions
        # (v1.4.2, v1.4.1, ...) and most do not exist, which would cost a call each.
        names, complete = cached(self.key("refs", MAX_REFS), MOVING_TTL_S, _REFS, self._refs)
        if ref in names:
            return names[ref]
        if complete and not _SHA_PREFIX.match(ref):
            return None
        # A sha prefix (or a name past the listing's bound); the answer is kept only briefly, as a name moves.
        return cached(self.key("resolve", ref), MOVING_TTL_S, OPTIONAL_SHA, lambda: self._resolve(ref))

    def _refs(self) -> tuple[dict[str, str], bool]:
        tags, branches, complete = self._list_refs()
        names: dict[str, str] = {}
        # Tags first: git reads a name that is both as the tag.
        for name, sha in [*tags, *branches]:
            names.setdefault(name, sha)
        return names, complete

    def _resolve(self, ref: str) -> str | None:
        found = self._fetch(ref, None)
        if found is None:
            return None
        detail = self._bounded(found)
        # Keep what was fetched: resolving a deploy's ref and then reading its diff costs no more calls.
        cached(self._detail_key(detail.sha), IMMUTABLE_TTL_S, DETAIL, lambda: detail)
        return detail.sha

    def commits_between(self, old: str | None, new: str, *, limit: int = 500) -> list[str]:
        if not valid_ref(new) or (old is not None and not valid_ref(old)):
            return []
        stable = is_full_sha(new) and (old is None or is_full_sha(old))
        ttl = IMMUTABLE_TTL_S if stable else MOVING_TTL_S
        return self.within(
            self._deadline(),
            lambda: cached(self.key("between", old, new, limit), ttl, SHAS, lambda: self._between(old, new, limit)[:limit]),
            f"comparing {old or ''}...{new}",
        )


def count_lines(patch: str | None) -> tuple[int, int]:
    """Added and deleted lines of a patch's hunks, for hosts that give the patch but not the counts."""
    added = deleted = 0
    in_hunk = False
    for line in (patch or "").splitlines():
        if line.startswith("@@"):
            in_hunk = True
        elif line.startswith("diff --git "):
            in_hunk = False
        elif in_hunk and line.startswith("+"):
            added += 1
        elif in_hunk and line.startswith("-"):
            deleted += 1
    return added, deleted
