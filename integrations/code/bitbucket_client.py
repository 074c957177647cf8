"""The `bitbucket` kinds through httpx: Bitbucket Cloud REST 2.0 commits, diffs, pull requests and deployments.

Lists are read page by page following each page's opaque `next` link (never built by
hand, and only on the configured host, so a credential is never sent elsewhere).
Every request passes the gate (`HostGate`): the read's deadline, the call budget, and
a 429 waited out when its wait ends before the deadline. A commit's files, counts and
patches all come from one call, its unified diff.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from itertools import islice
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx
import structlog
from pydantic import TypeAdapter

from integrations.cache import cache_key, cached
from integrations.code.base import Deploy
from integrations.code.bitbucket import BitbucketCodeOptions, BitbucketDeployOptions, BitbucketOptions
from integrations.code.host_common import (
    IMMUTABLE_TTL_S,
    MOVING_TTL_S,
    CommitDetail,
    Deadline,
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

PAGELEN: Final = 100
_PULL_IN_MESSAGE: Final = re.compile(r"\(pull request #(?P<id>\d+)\)")
_DEPLOYS: Final = TypeAdapter(list[Deploy])
_TEXT: Final = TypeAdapter(str)
_BRANCH: Final = TypeAdapter(str)


class BitbucketApi:
    """One httpx client for one repository, with the gate every request passes through."""

    def __init__(self, options: BitbucketOptions) -> None:
        self.options = options
        self.base_url = options.base_url.rstrip("/")
        workspace, slug = options.repository.split("/", 1)
        self.repo_path = f"repositories/{quote(workspace, safe='')}/{quote(slug, safe='')}"
        token = secret_from_env(options.token_env, purpose=f"Bitbucket credential for {options.repository}") if options.token_env else None
        headers = {"Accept": "application/json"}
        auth: httpx.BasicAuth | None = None
        if token is not None and options.username:
            auth = httpx.BasicAuth(options.username, token.get_secret_value())
        elif token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        self.http = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            auth=auth,
            timeout=min(options.timeout_s, options.deadline_s),
            follow_redirects=True,
            limits=httpx.Limits(max_connections=options.parallel + 2),
        )
        self.gate = HostGate(
            f"Bitbucket at {self.base_url}", options.repository, max_api_calls=options.max_api_calls, deadline_s=options.deadline_s
        )
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc)

    def key_fields(self) -> dict[str, str]:
        return {"base_url": self.base_url, "repository": self.options.repository}

    def get(self, path: str, params: dict[str, str | int] | None = None) -> httpx.Response | None:
        """The answer to GET `path` (below the repository, or a `next` link); None for a 404 of an item, not the repository."""
        url = path if path.startswith(("http://", "https://")) else f"{self.repo_path}/{path}" if path else self.repo_path
        attempt = 0
        while True:
            deadline = self.gate.admit()
            try:
                response = self.http.get(url, params=params, timeout=deadline.timeout(self.options.timeout_s))
            except httpx.HTTPError as exc:
                raise SourceError(f"{self.gate.host} cannot be reached ({type(exc).__name__})") from None
            if response.status_code == 429:
                self.gate.wait_out(_retry_after(response), 429, deadline)
            elif self.gate.retry_transient(response.status_code, attempt, deadline):
                attempt += 1
            else:
                return self._checked(response)

    def _checked(self, response: httpx.Response) -> httpx.Response | None:
        status = response.status_code
        if status < 400:
            return response
        host, repository = self.gate.host, self.options.repository
        message = _error_message(response)
        if status == 401:
            where = f"the credential in {self.options.token_env}" if self.options.token_env else "an anonymous request"
            raise FatalHostError(f"{host} refused {where} (401): check it and its read access to {repository}")
        if status == 403:
            raise FatalHostError(f"{host} refused access to {repository} (403 {message[:80]}): the credential needs repository read")
        if status == 404:
            if message.lower().startswith("repository"):
                raise FatalHostError(
                    f"repository {repository} not found at {host} (404): check its workspace/slug and the credential's access"
                )
            return None
        raise SourceError(f"{host} answered {status} ({message[:120]})")

    def json(self, path: str, params: dict[str, str | int] | None = None) -> dict[str, Any] | None:
        response = self.get(path, params)
        if response is None:
            return None
        try:
            data = response.json()
        except ValueError:
            raise SourceError(f"{self.gate.host} answered {path.split('?')[0][:60]} with something other than JSON") from None
        return data if isinstance(data, dict) else None

    def values(self, path: str, params: dict[str, str | int] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, page by page through the opaque `next` links; nothing when the list is unknown."""
        page = self.json(path, {"pagelen": PAGELEN, **(params or {})})
        while page is not None:
            yield from page.get("values") or []
            following = page.get("next")
            if not following:
                return
            split = urlsplit(str(following))
            if (split.scheme, split.netloc) != self._origin:
                raise SourceError(f"{self.gate.host} pointed its next page at another host ({split.netloc}): not followed")
            page = self.json(str(following))


class BitbucketChangeSource(HostChangeSource):
    """Commits of one branch of a Bitbucket Cloud repository, with diffs and merged pull requests."""

    kind = "bitbucket"
    options: BitbucketCodeOptions

    def __init__(self, options: BitbucketCodeOptions, *, name: str = "bitbucket") -> None:
        self.api = BitbucketApi(options)
        super().__init__(options, self.api.gate, name=name, key_fields=self.api.key_fields())

    def _translate(self, error: Exception, what: str) -> SourceError | None:
        return None

    def _branch(self) -> str:
        if self.options.branch:
            return self.options.branch
        return cached(self.key("main-branch"), MOVING_TTL_S, _BRANCH, self._main_branch)

    def _main_branch(self) -> str:
        data = self.api.json("") or {}
        return str((data.get("mainbranch") or {}).get("name") or "main")

    def _list(self, start: datetime, end: datetime, limit: int) -> list[CommitDetail]:
        branch = self._branch()
        found: list[CommitDetail] = []
        reached_start = False
        listing = self.api.values("commits", {"include": branch})
        # Bitbucket has no date filter: commits come newest first (topologically), so reading stops after the page
        # that reached past the window's start.
        for count, item in enumerate(listing, start=1):
            detail = _summary(item)
            if detail.committed_at < start:
                reached_start = True
            elif detail.committed_at <= end:
                found.append(detail)
            if len(found) >= limit or (reached_start and count % PAGELEN == 0):
                break
        if not found and not reached_start and self.api.json(f"refs/branches/{quote(branch, safe='')}") is None:
            raise SourceError(f"branch {branch} not found in {self.options.repository} at {self.gate.host}")
        return found

    def _fetch(self, ref: str, summary: CommitDetail | None) -> CommitDetail | None:
        if summary is None:
            data = self.api.json(f"commit/{quote(ref, safe='')}")
            if data is None or "hash" not in data:
                return None
            summary = _summary(data)
        response = self.api.get(f"diff/{summary.sha}")
        files = parse_unified_diff(response.text if response is not None else "")
        return summary.model_copy(update={"files": files})

    def _pull(self, sha: str) -> PullRequestInfo | None:
        merged = [pr for pr in islice(self.api.values(f"commit/{sha}/pullrequests"), 20) if pr.get("state") == "MERGED"]
        if not merged:
            return None
        pr = next((p for p in merged if sha.startswith(str((p.get("merge_commit") or {}).get("hash") or "-"))), merged[0])
        return PullRequestInfo(
            number=int(pr["id"]),
            title=str(pr.get("title") or ""),
            url=((pr.get("links") or {}).get("html") or {}).get("href"),
            author=str((pr.get("author") or {}).get("display_name") or ""),
            reviewers=[str((r.get("user") or {}).get("display_name")) for r in pr.get("participants") or [] if r.get("role") == "REVIEWER"],
        )

    def _pull_from_message(self, detail: CommitDetail) -> PullRequestInfo | None:
        match = _PULL_IN_MESSAGE.search(detail.title_line)
        if match is None or detail.url is None or "/commits/" not in detail.url:
            return None
        number = int(match.group("id"))
        lines = detail.message.splitlines()
        # A merge commit's title is "Merged in branch (pull request #N)"; the request's own title is the body's first line.
        title = (lines[2] if detail.title_line.startswith("Merged in ") and len(lines) > 2 else detail.title_line).strip()
        return PullRequestInfo(number=number, title=title, url=detail.url.split("/commits/", 1)[0] + f"/pull-requests/{number}")

    def _list_refs(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]], bool]:
        def listed(kind: str) -> list[tuple[str, str]]:
            return [
                (str(r["name"]), str((r.get("target") or {}).get("hash"))) for r in islice(self.api.values(f"refs/{kind}"), MAX_REFS + 1)
            ]

        tags, branches = listed("tags"), listed("branches")
        return tags[:MAX_REFS], branches[:MAX_REFS], len(tags) <= MAX_REFS and len(branches) <= MAX_REFS

    def _between(self, old: str | None, new: str, limit: int) -> list[str]:
        params: dict[str, str | int] = {"include": new}
        if old is not None:
            params["exclude"] = old
        return [str(c["hash"]) for c in islice(self.api.values("commits", params), limit)]

    def describe(self) -> str:
        def read() -> tuple[str, str]:
            data = self.api.json("") or {}
            return str(data.get("full_name") or self.options.repository), str((data.get("mainbranch") or {}).get("name") or "")

        full_name, main = self.within(self._deadline(), read, "reading the repository")
        branch = self.options.branch or main
        head = self.resolve(branch) if branch else None
        if head is None:
            raise SourceError(f"branch {branch or '(none)'} not found in {full_name} at {self.gate.host}")
        return f"{full_name} {branch} at {head[:12]}"


class BitbucketDeploySource:
    """Successful Bitbucket Pipelines deployments to one environment (and '<environment>/<service>' ones), at completion."""

    def __init__(self, options: BitbucketDeployOptions, *, name: str = "bitbucket_deployments") -> None:
        self.options = options
        self.name = name
        self.api = BitbucketApi(options)
        self.problems: list[str] = []

    @property
    def api_calls(self) -> int:
        return self.api.gate.budget.used

    def _key(self, *parts: object) -> str:
        return cache_key("bitbucket_deployments", self.api.key_fields() | {"environment": self.options.environment}, *parts)

    def deploys(self, start: datetime, end: datetime) -> list[Deploy]:
        start, end = utc(start), utc(end)
        deadline = Deadline(self.options.deadline_s)
        # Deployments move (one may complete any minute): kept only briefly, for a Re-run or a storm of alerts.
        found = cached(
            self._key(start, end), MOVING_TTL_S, _DEPLOYS, lambda: self.api.gate.within(deadline, lambda: self._read(start, end, deadline))
        )
        return sorted(found, key=lambda d: d.at)

    def _environments(self) -> dict[str, str]:
        """Service by environment uuid, for the environment and those named '<environment>/<service>'."""
        wanted = self.options.environment.lower()
        services: dict[str, str] = {}
        for env in self.api.values("environments"):
            name = str(env.get("name") or "")
            if name.lower() == wanted:
                services[str(env.get("uuid"))] = self.options.service or self.options.repository.split("/", 1)[1]
            elif name.lower().startswith(wanted + "/"):
                services[str(env.get("uuid"))] = name[len(wanted) + 1 :]
        return services

    def _read(self, start: datetime, end: datetime, deadline: Deadline) -> list[Deploy]:
        services = self._environments()
        found: list[tuple[Deploy, str]] = []
        listing = self.api.values("deployments", {"sort": "-state.completed_on"})
        for item in islice(listing, self.options.max_deployments):
            state = item.get("state") or {}
            completed = state.get("completed_on")
            if not completed:
                continue
            at = utc(datetime.fromisoformat(str(completed).replace("Z", "+00:00")))
            # Listed by completion, newest first: once one completed before the window, every later one did too.
            if at < start:
                break
            service = services.get(str((item.get("environment") or {}).get("uuid")))
            if service is None or at > end or (state.get("status") or {}).get("name") != "SUCCESSFUL":
                continue
            release = item.get("release") or {}
            deployable = item.get("deployable") or {}
            commit = (release.get("commit") or deployable.get("commit") or {}).get("hash")
            version = str(release.get("name") or deployable.get("name") or commit or "")
            deploy = Deploy(at=at, service=service, version=version, sha=str(commit) if commit else None)
            found.append((deploy, str((deployable.get("pipeline") or {}).get("uuid") or "")))
        # A deployment names its pipeline, not who ran it: one more call per pipeline, in parallel.
        pipelines = sorted({pipeline for _, pipeline in found if pipeline})
        creators, problems = in_parallel(
            pipelines,
            lambda p: self.api.gate.within(deadline, lambda: self._creator(p)),
            workers=self.options.parallel,
            deadline=deadline,
            what="pipelines",
        )
        self.problems.extend(problems)
        by_pipeline = {pipelines[i]: creators[i] for i in creators}
        return [replace(deploy, actor=by_pipeline.get(pipeline, "")) for deploy, pipeline in found]

    def _creator(self, pipeline: str) -> str:
        """Who ran the pipeline that deployed: a finished pipeline's creator never changes, so cached long."""

        def read() -> str:
            data = self.api.json(f"pipelines/{quote(pipeline, safe='')}") or {}
            return str((data.get("creator") or {}).get("display_name") or "")

        return cached(self._key("pipeline", pipeline), IMMUTABLE_TTL_S, _TEXT, read)

    def describe(self) -> str:
        def read() -> str:
            services = self._environments()
            if not services:
                return f"{self.options.repository}: no environment named {self.options.environment}"
            return f"{self.options.repository}: deployments to {self.options.environment} ({len(services)} environment(s))"

        return self.api.gate.within(Deadline(self.options.deadline_s), read)


def _summary(data: dict[str, Any]) -> CommitDetail:
    """A commit as Bitbucket describes it, without its files."""
    author = data.get("author") or {}
    raw = str(author.get("raw") or "")
    name = raw.split("<", 1)[0].strip() if raw else str((author.get("user") or {}).get("display_name") or "")
    return CommitDetail(
        sha=str(data["hash"]),
        author=name,
        committed_at=utc(datetime.fromisoformat(str(data["date"]).replace("Z", "+00:00"))),
        message=str(data.get("message") or "").strip(),
        parents=[str(p.get("hash")) for p in data.get("parents") or []],
        url=((data.get("links") or {}).get("html") or {}).get("href"),
    )


_GIT_HEADER: Final = re.compile(r"^diff --git a/(?P<old>.+?) b/(?P<new>.+)$")


def parse_unified_diff(text: str) -> list[FileDetail]:
    """The files of a `git diff`-style text with their status, counted lines and hunks (the patch after the header)."""
    files: list[FileDetail] = []
    blocks = re.split(r"^(?=diff --git )", text, flags=re.MULTILINE)
    for block in blocks:
        lines = block.split("\n")
        header = _GIT_HEADER.match(lines[0])
        if header is None:
            continue
        old, new = header.group("old"), header.group("new")
        status = "modified"
        hunk_at = None
        for index, line in enumerate(lines[1:], start=1):
            if line.startswith("@@"):
                hunk_at = index
                break
            if line.startswith("new file mode"):
                status = "added"
            elif line.startswith("deleted file mode"):
                status = "removed"
            elif line.startswith("rename from "):
                status, old = "renamed", line[len("rename from ") :]
            elif line.startswith("rename to "):
                new = line[len("rename to ") :]
        patch = "\n".join(lines[hunk_at:]).rstrip("\n") if hunk_at is not None else None
        added, deleted = count_lines(patch)
        files.append(
            FileDetail(
                path=new,
                additions=added,
                deletions=deleted,
                old_path=old if status == "renamed" else None,
                status=status,
                patch=patch,
            )
        )
    return files


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0] if response.text.strip() else response.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    return str((error or {}).get("message") or response.reason_phrase) if isinstance(error, dict) else response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
