"""The `gitlab` kinds through python-gitlab: commits, diffs and merge requests (code), deployments (deploys).

Every request passes one gate (`HostGate`): the read's deadline bounds it, the source's
call budget counts it, and a 429 is waited out for its `Retry-After` when that ends
before the deadline. python-gitlab's own rate-limit sleeps and retries are off: they
would outlive the read. Lists are read page by page through python-gitlab's iterator,
which follows the `Link` header to the next page (never the first page only).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any, Final

import gitlab
import requests
import structlog
from gitlab.exceptions import GitlabAuthenticationError, GitlabError
from gitlab.v4.objects import Project
from pydantic import TypeAdapter

from integrations.cache import cache_key, cached
from integrations.code.base import Deploy
from integrations.code.gitlab import GitLabCodeOptions, GitLabDeployOptions, GitLabOptions
from integrations.code.host_common import (
    MOVING_TTL_S,
    CommitDetail,
    Deadline,
    FatalHostError,
    FileDetail,
    HostGate,
    PullRequestInfo,
    utc,
)
from integrations.code.host_source import MAX_REFS, HostChangeSource, count_lines
from integrations.errors import SourceError
from integrations.plugin import secret_from_env

log = structlog.get_logger(__name__)

PER_PAGE: Final = 100
_MERGE_REQUEST_IN_MESSAGE: Final = re.compile(r"^See merge request (?P<path>[\w./-]+)!(?P<iid>\d+)\s*$", re.MULTILINE)
_DEPLOYS: Final = TypeAdapter(list[Deploy])


class GitLabApi:
    """One python-gitlab client for one project, with the gate every request passes through."""

    def __init__(self, options: GitLabOptions) -> None:
        self.options = options
        self.base_url = options.base_url.rstrip("/")
        token = secret_from_env(options.token_env, purpose=f"GitLab token for {options.project}") if options.token_env else None
        self.client = gitlab.Gitlab(
            url=self.base_url,
            private_token=token.get_secret_value() if token is not None else None,
            timeout=min(options.timeout_s, options.deadline_s),
            per_page=PER_PAGE,
            retry_transient_errors=False,
            # Behind a proxy the `Link` header may name another host: pages are asked of the configured one.
            keep_base_url=True,
        )
        self.gate = HostGate(
            f"GitLab at {self.base_url}", options.project, max_api_calls=options.max_api_calls, deadline_s=options.deadline_s
        )
        self.project: Project = self.client.projects.get(options.project, lazy=True)
        self._local = threading.local()
        # python-gitlab's errors carry no headers: the answer's Retry-After is noted here, per thread, as it arrives.
        self.client.session.hooks["response"].append(self._note_retry_after)
        self.client.http_request = partial(self._gated, self.client.http_request)  # type: ignore[method-assign]

    def _note_retry_after(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        if response.status_code == 429:
            self._local.retry_after = _wait_from(response.headers)

    def _gated(self, request: Callable[..., requests.Response], *args: Any, **kwargs: Any) -> requests.Response:
        attempt = 0
        while True:
            deadline = self.gate.admit()
            kwargs.update(obey_rate_limit=False, retry_transient_errors=False, timeout=deadline.timeout(self.options.timeout_s))
            self._local.retry_after = None
            try:
                return request(*args, **kwargs)
            except GitlabError as exc:
                if exc.response_code == 429:
                    self.gate.wait_out(self._local.retry_after, 429, deadline)
                elif self.gate.retry_transient(exc.response_code or 0, attempt, deadline):
                    attempt += 1
                else:
                    raise

    def translate(self, error: Exception, what: str) -> SourceError | None:
        host, project = self.gate.host, self.options.project
        if isinstance(error, GitlabAuthenticationError):
            where = f"the token in {self.options.token_env}" if self.options.token_env else "an anonymous request"
            return FatalHostError(f"{host} refused {where} (401): check the token (read_api) and its access to {project}")
        if isinstance(error, GitlabError):
            message = _message(error)
            if error.response_code == 404 and "project" in message.lower():
                return FatalHostError(f"project {project} not found at {host} (404): check its path or id and the token's access")
            if error.response_code == 403:
                return FatalHostError(f"{host} refused access to {project} (403 {message[:80]}): the token needs read_api")
            return SourceError(f"{host} answered {error.response_code} to {what} ({message[:120]})")
        if isinstance(error, requests.RequestException):
            return SourceError(f"{host} cannot be reached ({type(error).__name__})")
        return None

    def within(self, deadline: Deadline, call: Callable[[], Any], what: str) -> Any:
        try:
            return self.gate.within(deadline, call)
        except SourceError:
            raise
        except Exception as exc:
            problem = self.translate(exc, what)
            if problem is None:
                raise
            raise problem from None

    def key_fields(self) -> dict[str, str]:
        return {"base_url": self.base_url, "project": self.options.project}


class GitLabChangeSource(HostChangeSource):
    """Commits of one branch of a GitLab project, with diffs and merged merge requests."""

    kind = "gitlab"
    options: GitLabCodeOptions

    def __init__(self, options: GitLabCodeOptions, *, name: str = "gitlab") -> None:
        self.api = GitLabApi(options)
        super().__init__(options, self.api.gate, name=name, key_fields=self.api.key_fields())
        self.project = self.api.project

    def _translate(self, error: Exception, what: str) -> SourceError | None:
        return self.api.translate(error, what)

    def _list(self, start: datetime, end: datetime, limit: int) -> list[CommitDetail]:
        kwargs: dict[str, Any] = {"since": _iso(start), "until": _iso(end), "iterator": True, "per_page": PER_PAGE}
        if self.options.branch:
            kwargs["ref_name"] = self.options.branch
        try:
            return [_summary(item.attributes) for item in islice(self.project.commits.list(**kwargs), limit)]
        except GitlabError as exc:
            if exc.response_code == 404 and "project" not in _message(exc).lower():
                raise SourceError(f"branch {self.options.branch} not found in {self.options.project} at {self.gate.host}") from None
            raise

    def _fetch(self, ref: str, summary: CommitDetail | None) -> CommitDetail | None:
        try:
            detail = summary or _summary(self.project.commits.get(ref).attributes)
            diffs = self.project.commits.get(detail.sha, lazy=True).diff(iterator=True, per_page=PER_PAGE)
            files = [_file(d) for d in islice(diffs, self.options.max_files_per_commit + 1)]
        except GitlabError as exc:
            if _not_found(exc):
                return None
            raise
        return detail.model_copy(update={"files": files})

    def _pull(self, sha: str) -> PullRequestInfo | None:
        requests_ = self.project.commits.get(sha, lazy=True).merge_requests(iterator=True, per_page=PER_PAGE)
        merged = [mr for mr in islice(requests_, 20) if mr.get("state") == "merged"]
        if not merged:
            return None
        mr = next((m for m in merged if sha in (m.get("merge_commit_sha"), m.get("squash_commit_sha"))), merged[0])
        return PullRequestInfo(
            number=int(mr["iid"]),
            title=str(mr.get("title") or ""),
            url=mr.get("web_url"),
            author=str((mr.get("author") or {}).get("username") or ""),
            labels=[str(label) for label in mr.get("labels") or []],
            reviewers=[str(r.get("username")) for r in mr.get("reviewers") or []],
        )

    def _pull_from_message(self, detail: CommitDetail) -> PullRequestInfo | None:
        match = _MERGE_REQUEST_IN_MESSAGE.search(detail.message)
        if match is None:
            return None
        iid = int(match.group("iid"))
        lines = detail.message.splitlines()
        # A merge commit's title is "Merge branch 'x' into 'main'"; the request's own title is the body's first line.
        title = (lines[2] if detail.title_line.startswith("Merge branch ") and len(lines) > 2 else detail.title_line).strip()
        return PullRequestInfo(number=iid, title=title, url=f"{self.api.base_url}/{match.group('path')}/-/merge_requests/{iid}")

    def _list_refs(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]], bool]:
        tags = [(t.name, t.commit["id"]) for t in islice(self.project.tags.list(iterator=True, per_page=PER_PAGE), MAX_REFS + 1)]
        branches = [(b.name, b.commit["id"]) for b in islice(self.project.branches.list(iterator=True, per_page=PER_PAGE), MAX_REFS + 1)]
        complete = len(tags) <= MAX_REFS and len(branches) <= MAX_REFS
        return tags[:MAX_REFS], branches[:MAX_REFS], complete

    def _between(self, old: str | None, new: str, limit: int) -> list[str]:
        try:
            if old is None:
                listing = self.project.commits.list(ref_name=new, iterator=True, per_page=PER_PAGE)
                return [str(item.id) for item in islice(listing, limit)]
            comparison = self.project.repository_compare(old, new)
        except GitlabError as exc:
            if _not_found(exc):
                return []
            raise
        listed = comparison.get("commits") if isinstance(comparison, dict) else None
        # The comparison lists the commits oldest first.
        return [str(c["id"]) for c in reversed(listed or [])]

    def describe(self) -> str:
        def read() -> tuple[str, str]:
            project = self.api.client.projects.get(self.options.project)
            return str(project.path_with_namespace), str(project.default_branch or "")

        path, default = self.within(self._deadline(), read, "reading the project")
        branch = self.options.branch or default
        head = self.resolve(branch) if branch else None
        if head is None:
            raise SourceError(f"branch {branch or '(none)'} not found in {path} at {self.gate.host}")
        return f"{path} {branch} at {head[:12]}"


class GitLabDeploySource:
    """Successful deployments of one GitLab environment (and those in its folder), each at the time it finished."""

    def __init__(self, options: GitLabDeployOptions, *, name: str = "gitlab_deployments") -> None:
        self.options = options
        self.name = name
        self.api = GitLabApi(options)
        self.problems: list[str] = []

    @property
    def api_calls(self) -> int:
        return self.api.gate.budget.used

    def deploys(self, start: datetime, end: datetime) -> list[Deploy]:
        start, end = utc(start), utc(end)
        key = cache_key("gitlab_deployments", self.api.key_fields() | {"environment": self.options.environment}, start, end)
        # Deployments move (one may finish any minute): kept only briefly, for a Re-run or a storm of alerts.
        found = cached(
            key,
            MOVING_TTL_S,
            _DEPLOYS,
            lambda: self.api.within(Deadline(self.options.deadline_s), partial(self._read, start, end), "listing deployments"),
        )
        return sorted(found, key=lambda d: d.at)

    def _read(self, start: datetime, end: datetime) -> list[Deploy]:
        found: list[Deploy] = []
        for item in islice(self._successful(start, end), self.options.max_deployments):
            deploy = self._deploy(item)
            if deploy is not None and start <= deploy.at <= end:
                found.append(deploy)
        return found

    def _successful(self, start: datetime, end: datetime) -> Iterator[Any]:
        # GitLab filters finished deployments by time only when ordered by it and asked for successful ones.
        return iter(
            self.api.project.deployments.list(
                status="success",
                order_by="finished_at",
                sort="desc",
                finished_after=_iso(start - timedelta(seconds=1)),
                finished_before=_iso(end + timedelta(seconds=1)),
                iterator=True,
                per_page=PER_PAGE,
            )
        )

    def _deploy(self, item: Any) -> Deploy | None:
        data: dict[str, Any] = item.attributes
        environment = str((data.get("environment") or {}).get("name") or "")
        wanted = self.options.environment
        if environment == wanted:
            service = self.options.service or self.options.project.rsplit("/", 1)[-1]
        elif environment.startswith(wanted + "/"):
            service = environment[len(wanted) + 1 :]
        else:
            return None
        finished = (data.get("deployable") or {}).get("finished_at") or data.get("finished_at") or data.get("updated_at")
        if not finished:
            return None
        return Deploy(
            at=_parse(str(finished)),
            service=service,
            version=str(data.get("ref") or data.get("sha") or ""),
            actor=str((data.get("user") or {}).get("username") or ""),
            sha=data.get("sha"),
        )

    def describe(self) -> str:
        def latest() -> str:
            listing = self.api.project.deployments.list(
                environment=self.options.environment, order_by="id", sort="desc", iterator=True, per_page=1
            )
            item = next(iter(listing), None)
            if item is None:
                return f"{self.options.project}: no deployments to {self.options.environment} yet"
            data = item.attributes
            return f"{self.options.project}: latest deployment to {self.options.environment} {data.get('ref')} ({data.get('status')})"

        result: str = self.api.within(Deadline(self.options.deadline_s), latest, "listing deployments")
        return result


def _iso(moment: datetime) -> str:
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _summary(data: dict[str, Any]) -> CommitDetail:
    """A commit as GitLab describes it, without its files."""
    committed = data.get("committed_date") or data.get("created_at") or data.get("authored_date")
    return CommitDetail(
        sha=str(data["id"]),
        author=str(data.get("author_name") or data.get("committer_name") or ""),
        committed_at=_parse(str(committed)),
        message=str(data.get("message") or data.get("title") or "").strip(),
        parents=[str(p) for p in data.get("parent_ids") or []],
        url=data.get("web_url"),
    )


def _file(diff: dict[str, Any]) -> FileDetail:
    if diff.get("new_file"):
        status = "added"
    elif diff.get("deleted_file"):
        status = "removed"
    elif diff.get("renamed_file"):
        status = "renamed"
    else:
        status = "modified"
    patch = str(diff.get("diff") or "") or None
    added, deleted = count_lines(patch)
    return FileDetail(
        path=str(diff.get("new_path") or diff.get("old_path")),
        additions=added,
        deletions=deleted,
        old_path=str(diff.get("old_path")) if status == "renamed" else None,
        status=status,
        patch=patch,
    )


def _message(error: GitlabError) -> str:
    text = error.error_message
    return (text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)).strip().splitlines()[0] if text else ""


def _not_found(error: GitlabError) -> bool:
    """A 404 for a commit or ref the project does not hold (not for the project itself), or GitLab's 400 for a bad ref."""
    return error.response_code in (400, 404) and "project" not in _message(error).lower()


def _wait_from(headers: Any) -> float | None:
    """The wait a 429 asks for: `Retry-After` seconds, else until `RateLimit-Reset` (epoch seconds)."""
    for name, since_epoch in (("Retry-After", False), ("RateLimit-Reset", True)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        return max(0.0, number - time.time()) if since_epoch else number
    return None
