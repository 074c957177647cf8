"""The `azure_devops` kind through the `azure-devops` package: commits, changes, diffs and pull requests of an Azure Repos repository.

The Git client is built on the organization's URL (where Azure DevOps serves the Git
area) and discovers its routes there (`OPTIONS _apis`), as the package does. Every
request passes the gate (`HostGate`) at the HTTP layer, under the package's error
handling: the read's deadline, the call budget, and a 429 waited out for its
`Retry-After` when that ends before the deadline; the package's own retries are off.
Lists are paged with `$top`/`$skip`. Azure Repos gives a commit's changed paths but
no patch: a diff is built from the old and new blobs, only when a diff is read.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from datetime import datetime
from itertools import islice
from typing import Any, Final

import requests
import structlog

from core.settings import get_settings
from integrations.cache import cached
from integrations.code.azure_devops import AzureDevOpsOptions
from integrations.code.host_common import (
    DETAIL,
    IMMUTABLE_TTL_S,
    CommitDetail,
    FatalHostError,
    FileDetail,
    HostGate,
    PullRequestInfo,
    in_parallel,
    utc,
)
from integrations.code.host_source import MAX_REFS, HostChangeSource, count_lines
from integrations.errors import SourceError
from integrations.plugin import secret_from_env

log = structlog.get_logger(__name__)

PAGE: Final = 100
# Errors that say the project or repository is not there (or not visible to the token): the whole source is broken.
_MISSING_TARGET: Final = ("TF200016", "TF401019")
_MERGED_PR: Final = re.compile(r"^Merged PR (?P<id>\d+): (?P<title>.*)$")
_STATUS: Final = {"add": "added", "delete": "removed", "rename": "renamed"}


def _git_client_class() -> Any:
    # The package keeps its discovered routes in files: under DATA_DIR, not the worker's home directory.
    os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", str(get_settings().data_dir / "azure-devops"))
    from azure.devops.v7_1.git.git_client import GitClient

    return GitClient


class AzureDevOpsChangeSource(HostChangeSource):
    """Commits of one branch of an Azure Repos Git repository, with changed files, diffs (from blobs) and pull requests."""

    kind = "azure_devops"
    options: AzureDevOpsOptions

    def __init__(self, options: AzureDevOpsOptions, *, name: str = "azure_devops") -> None:
        from msrest.authentication import BasicAuthentication

        self.base_url = options.base_url.rstrip("/")
        token = secret_from_env(options.token_env, purpose=f"Azure DevOps token for {options.repository}") if options.token_env else None
        creds = BasicAuthentication("", token.get_secret_value() if token is not None else "")
        self.git = _git_client_class()(base_url=self.base_url, creds=creds)
        # Retries and waits are the gate's, bounded by the read's deadline.
        self.git.config.retry_policy.retries = 0
        self.git._client.send = self._gated(self.git._client.send)
        self.subject = f"{options.project}/{options.repository}"
        gate = HostGate(
            f"Azure DevOps at {self.base_url}", self.subject, max_api_calls=options.max_api_calls, deadline_s=options.deadline_s
        )
        key = {"base_url": self.base_url, "project": options.project, "repository": options.repository}
        super().__init__(options, gate, name=name, key_fields=key)
        self._web: str | None = None

    def _gated(self, send: Callable[..., requests.Response]) -> Callable[..., requests.Response]:
        def gated(request: Any, headers: Any = None, content: Any = None, **kwargs: Any) -> requests.Response:
            attempt = 0
            while True:
                deadline = self.gate.admit()
                kwargs["timeout"] = deadline.timeout(self.options.timeout_s)
                try:
                    response = send(request, headers, content, **kwargs)
                except requests.RequestException as exc:
                    raise SourceError(f"{self.gate.host} cannot be reached ({type(exc).__name__})") from None
                if response.status_code == 429:
                    self.gate.wait_out(_number(response.headers.get("Retry-After")), 429, deadline)
                elif self.gate.retry_transient(response.status_code, attempt, deadline):
                    attempt += 1
                else:
                    return response

        return gated

    def _translate(self, error: Exception, what: str) -> SourceError | None:
        from azure.devops.exceptions import AzureDevOpsAuthenticationError
        from msrest.exceptions import ClientException

        host = self.gate.host
        if isinstance(error, AzureDevOpsAuthenticationError):
            where = f"the token in {self.options.token_env}" if self.options.token_env else "an anonymous request"
            return FatalHostError(f"{host} refused {where} (401): check the token (Code: Read) and its access to {self.subject}")
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, ClientException) and message.startswith(_MISSING_TARGET):
            return FatalHostError(f"{self.subject} not found at {host}: {message[:160]}")
        if isinstance(error, ClientException):
            return SourceError(f"{host} failed {what}: {message[:160]}")
        return None

    def _missing(self, error: Exception) -> bool:
        """A 404 for a commit or ref the repository does not hold (not for the repository itself)."""
        from azure.devops.exceptions import AzureDevOpsServiceError

        return isinstance(error, AzureDevOpsServiceError) and not str(error).startswith(_MISSING_TARGET)

    # --- what the host answers ----------------------------------------------------------------------

    def _criteria(self, **fields: Any) -> Any:
        from azure.devops.v7_1.git.models import GitQueryCommitsCriteria, GitVersionDescriptor

        if "item_version" in fields:
            fields["item_version"] = GitVersionDescriptor(version=fields["item_version"], version_type="commit")
        if "branch" in fields:
            branch = fields.pop("branch")
            if branch:
                fields["item_version"] = GitVersionDescriptor(version=branch, version_type="branch")
        if "compare_version" in fields:
            fields["compare_version"] = GitVersionDescriptor(version=fields["compare_version"], version_type="commit")
        return GitQueryCommitsCriteria(**fields)

    def _pages(self, criteria: Any, limit: int) -> list[Any]:
        """Commits the criteria select, page by page ($top/$skip) until a short page or `limit`."""
        found: list[Any] = []
        while len(found) < limit:
            page = self.git.get_commits(self.options.repository, criteria, project=self.options.project, skip=len(found), top=PAGE)
            found.extend(page or [])
            if len(page or []) < PAGE:
                break
        return found[:limit]

    def _list(self, start: datetime, end: datetime, limit: int) -> list[CommitDetail]:
        criteria = self._criteria(branch=self.options.branch, from_date=_iso(start), to_date=_iso(end))
        return [self._summary(ref) for ref in self._pages(criteria, limit)]

    def _fetch(self, ref: str, summary: CommitDetail | None) -> CommitDetail | None:
        try:
            if summary is None:
                commit = self.git.get_commit(ref, self.options.repository, project=self.options.project)
                summary = self._summary(commit)
            files = self._changes(summary.sha)
        except Exception as exc:
            if self._missing(exc):
                return None
            raise
        return summary.model_copy(update={"files": files})

    def _changes(self, sha: str) -> list[FileDetail]:
        files: list[FileDetail] = []
        # One more than kept: the base marks the commit truncated when there are more.
        wanted = self.options.max_files_per_commit + 1
        skip = 0
        while len(files) < wanted:
            page = self.git.get_changes(sha, self.options.repository, project=self.options.project, top=PAGE, skip=skip)
            changes = list(page.changes or []) if page is not None else []
            skip += len(changes)
            files.extend(f for f in (_file(change) for change in changes) if f is not None)
            if len(changes) < PAGE:
                break
        return files[:wanted]

    def _patched(self, detail: CommitDetail) -> CommitDetail:
        key = self.key("patched", detail.sha, self.options.max_files_with_patch, self.options.max_patch_bytes)
        return cached(key, IMMUTABLE_TTL_S, DETAIL, lambda: self._with_blobs(detail))

    def _with_blobs(self, detail: CommitDetail) -> CommitDetail:
        """The commit's files with patches diffed from their old and new blobs."""
        wanted = [f for f in detail.files if f.blobs][: self.options.max_files_with_patch]
        deadline = self.gate.deadline()
        patches, problems = in_parallel(
            wanted,
            lambda f: self.within(deadline, lambda: self._patch(f), f"blobs of {f.path}"),
            workers=self.options.parallel,
            deadline=deadline,
            what="files",
        )
        self.problems.extend(problems)
        by_path = {wanted[i].path: patches[i] for i in patches}
        files = []
        for change in detail.files:
            patch = by_path.get(change.path)
            added, deleted = count_lines(patch)
            files.append(change.model_copy(update={"patch": patch, "additions": added, "deletions": deleted}))
        return self._bounded(detail.model_copy(update={"files": files, "truncated": detail.truncated or len(wanted) < len(detail.files)}))

    def _patch(self, change: FileDetail) -> str | None:
        old_id, new_id = change.blobs or ("", "")
        old = self._blob(old_id) if old_id else b""
        new = self._blob(new_id) if new_id else b""
        if b"\0" in old[:8000] or b"\0" in new[:8000]:
            return None
        lines = difflib.unified_diff(
            old.decode("utf-8", "replace").splitlines(keepends=True), new.decode("utf-8", "replace").splitlines(keepends=True), n=3
        )
        # Drop difflib's ---/+++ header: a patch here is the hunks, as the other hosts give it.
        body = "".join(islice(lines, 2, None))
        return body.rstrip("\n") or None

    def _blob(self, object_id: str) -> bytes:
        chunks = self.git.get_blob_content(self.options.repository, object_id, project=self.options.project, download=False)
        return b"".join(chunks)

    def _pull(self, sha: str) -> PullRequestInfo | None:
        from azure.devops.v7_1.git.models import GitPullRequestQuery, GitPullRequestQueryInput

        query = GitPullRequestQuery(queries=[GitPullRequestQueryInput(type="lastMergeCommit", items=[sha])])
        answer = self.git.get_pull_request_query(query, self.options.repository, project=self.options.project)
        results = (answer.results or [{}])[0] if answer is not None else {}
        pulls = [p for p in results.get(sha, []) if getattr(p, "status", None) == "completed"]
        if not pulls:
            return None
        pr = pulls[0]
        return PullRequestInfo(
            number=int(pr.pull_request_id),
            title=str(pr.title or ""),
            url=f"{self._web_url()}/pullrequest/{pr.pull_request_id}",
            author=str(pr.created_by.display_name if pr.created_by else ""),
            labels=[str(label.name) for label in pr.labels or []],
            reviewers=[str(r.display_name) for r in pr.reviewers or []],
        )

    def _pull_from_message(self, detail: CommitDetail) -> PullRequestInfo | None:
        match = _MERGED_PR.match(detail.title_line)
        if match is None or detail.url is None or "/commit/" not in detail.url:
            return None
        number = int(match.group("id"))
        return PullRequestInfo(
            number=number, title=match.group("title").strip(), url=detail.url.split("/commit/", 1)[0] + f"/pullrequest/{number}"
        )

    def _web_url(self) -> str:
        if self._web is None:
            repository = self.git.get_repository(self.options.repository, project=self.options.project)
            self._web = str(repository.web_url or repository.remote_url or f"{self.base_url}/{self.subject.replace('/', '/_git/')}")
        return self._web

    def _list_refs(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]], bool]:
        def listed(namespace: str) -> list[tuple[str, str]]:
            refs = self.git.get_refs(
                self.options.repository, project=self.options.project, filter=namespace, peel_tags=True, top=MAX_REFS + 1
            )
            return [(str(r.name).removeprefix(f"refs/{namespace}"), str(r.peeled_object_id or r.object_id)) for r in refs or []]

        tags, branches = listed("tags/"), listed("heads/")
        return tags[:MAX_REFS], branches[:MAX_REFS], len(tags) <= MAX_REFS and len(branches) <= MAX_REFS

    def _between(self, old: str | None, new: str, limit: int) -> list[str]:
        fields: dict[str, Any] = {"item_version": new}
        if old is not None:
            fields["compare_version"] = old
        try:
            return [str(c.commit_id) for c in self._pages(self._criteria(**fields), limit)]
        except Exception as exc:
            if self._missing(exc):
                return []
            raise

    def describe(self) -> str:
        def read() -> tuple[str, str]:
            repository = self.git.get_repository(self.options.repository, project=self.options.project)
            return str(repository.name), str(repository.default_branch or "").removeprefix("refs/heads/")

        name, default = self.within(self._deadline(), read, "reading the repository")
        branch = self.options.branch or default
        head = self.resolve(branch) if branch else None
        if head is None:
            raise SourceError(f"branch {branch or '(none)'} not found in {self.subject} at {self.gate.host}")
        return f"{self.options.project}/{name} {branch} at {head[:12]}"

    def _summary(self, ref: Any) -> CommitDetail:
        """A commit as Azure DevOps describes it, without files; a listed one's comment is cut at 100 characters (marked '…'):
        the title is what links and ranks it, and the whole message would cost a call per commit."""
        committer = ref.committer or ref.author
        message = str(ref.comment or "").strip()
        return CommitDetail(
            sha=str(ref.commit_id),
            author=str(ref.author.name if ref.author else ""),
            committed_at=utc(committer.date),
            message=message + ("…" if ref.comment_truncated else ""),
            parents=[str(p) for p in ref.parents or []],
            url=ref.remote_url,
        )


def _file(change: dict[str, Any]) -> FileDetail | None:
    """A changed file, with its old and new blob ids for when a diff needs their content."""
    item = change.get("item") or {}
    if item.get("isFolder") or item.get("gitObjectType") not in (None, "blob"):
        return None
    kinds = [k.strip() for k in str(change.get("changeType") or "edit").split(",")]
    status = next((_STATUS[k] for k in kinds if k in _STATUS), "modified")
    path = str(item.get("path") or "").lstrip("/")
    old_path = str(change.get("originalPath") or change.get("sourceServerItem") or "").lstrip("/") or None
    old_id = "" if status == "added" else str(item.get("originalObjectId") or "")
    new_id = "" if status == "removed" else str(item.get("objectId") or "")
    return FileDetail(path=path, old_path=old_path if status == "renamed" else None, status=status, blobs=(old_id, new_id))


def _iso(moment: datetime) -> str:
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
