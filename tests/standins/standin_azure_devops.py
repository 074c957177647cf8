"""A local Azure DevOps organization serving one Git repository from a git repository on disk, for the `azure-devops` client.

It answers the client's route discovery (`OPTIONS _apis`: the Git area's resource
locations) and then the Git REST API: commits with `searchCriteria` (dates, item and
compare versions) paged by `$top`/`$skip`, a commit's changes (`top`/`skip`), blobs,
refs, the repository, and the pull-request query. Errors come as Azure DevOps'
WrappedException JSON (TF200016 missing project, TF401019 missing repository,
TF401175 unknown commit), 401 for a bad personal access token, 429 with `Retry-After`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlparse

from git_history import GitHistory, parse_time
from loopback import LoopbackServer

_GIT = "git"
# The Git area's resource locations the client asks for: (id, resource, route template).
LOCATIONS = [
    ("c2570c3b-5b3f-41b8-98bf-5407bfde8d58", "commits", "{project}/_apis/{area}/repositories/{repositoryId}/{resource}/{commitId}"),
    ("5bf884f5-3e07-42e9-afb8-1b872267bf16", "changes", "{project}/_apis/{area}/repositories/{repositoryId}/commits/{commitId}/{resource}"),
    ("7b28e929-2c99-405d-9c5c-6167a06e6816", "blobs", "{project}/_apis/{area}/repositories/{repositoryId}/{resource}/{sha1}"),
    ("b3a6eebe-9cf0-49ea-b6cb-1a4c5f5007b0", "pullRequestQuery", "{project}/_apis/{area}/repositories/{repositoryId}/{resource}"),
    ("2d874a60-a811-4f62-9c9f-963a6ea0a55b", "refs", "{project}/_apis/{area}/repositories/{repositoryId}/{resource}/{*filter}"),
    ("225f7195-f9c7-4d14-ab28-a83f7ff77e1f", "repositories", "{project}/_apis/{area}/{resource}/{repositoryId}"),
]
_CHANGE = {"added": "add", "removed": "delete", "modified": "edit", "renamed": "rename", "copied": "add", "changed": "edit"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(message: str, type_key: str) -> dict[str, Any]:
    return {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"Microsoft.TeamFoundation.Git.Server.{type_key}, Microsoft.TeamFoundation.Git.Server",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000,
    }


@dataclass
class AzPullRequest:
    id: int
    title: str
    author: str
    merge_commit: str
    status: str = "completed"


@dataclass
class AzureDevOpsStandin:
    repo: Path
    project: str = "Shop"
    repository: str = "shop"
    token: str | None = "azdo-standin-pat"
    prefix: str = "/acme"
    default_branch: str = "main"
    pulls: dict[str, list[AzPullRequest]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    _limited: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.history = GitHistory(self.repo)
        self._http = LoopbackServer(self._handler(), name="azure-devops-standin")

    def start(self) -> AzureDevOpsStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        """The organization's URL, as a client is given it (`base_url`)."""
        return self._http.base_url + self.prefix

    @property
    def web(self) -> str:
        return f"{self.url}/{self.project}/_git/{self.repository}"

    def rate_limit(self, times: int = 1, *, retry_after_s: float = 1.0) -> None:
        with self._lock:
            self._limited.extend([retry_after_s] * times)

    def add_pull(self, sha: str, number: int, title: str, *, author: str = "Ana") -> None:
        self.pulls.setdefault(sha, []).append(AzPullRequest(number, title, author, sha))

    def api_calls(self, fragment: str = "") -> int:
        return sum(1 for r in self.requests if fragment in r)

    # --- JSON shapes -------------------------------------------------------------------------------

    def _commit_json(self, meta: dict[str, Any], *, listed: bool) -> dict[str, Any]:
        sha = meta["sha"]
        an, ae, ad = meta["author"]
        cn, ce, cd = meta["committer"]
        comment = meta["message"]
        # A listing cuts each comment at 100 characters.
        truncated = listed and len(comment) > 100
        return {
            "commitId": sha,
            "author": {"name": an, "email": ae, "date": _iso(parse_time(ad))},
            "committer": {"name": cn, "email": ce, "date": _iso(parse_time(cd))},
            "comment": comment[:100] if truncated else comment,
            "commentTruncated": truncated,
            "parents": meta["parents"],
            "url": f"{self.url}/{self.project}/_apis/git/repositories/{self.repository}/commits/{sha}",
            "remoteUrl": f"{self.web}/commit/{sha}",
        }

    def _changes(self, sha: str) -> list[dict[str, Any]]:
        parents = self.history.show(sha)["parents"]
        spec = [parents[0], sha] if parents else ["--root", sha]
        raw = self.history.git("diff-tree", "-r", "-M", "--raw", "--no-commit-id", "-z", *spec)
        fields = iter(raw.split("\0"))
        changes = []
        for head in fields:
            if not head.startswith(":"):
                continue
            _old_mode, _new_mode, old_blob, new_blob, letter = head[1:].split(" ")
            if letter[0] in "RC":
                old_path, new_path = next(fields), next(fields)
            else:
                old_path = new_path = next(fields)
            status = {"A": "added", "D": "removed", "R": "renamed", "C": "copied"}.get(letter[0], "modified")
            item: dict[str, Any] = {"objectId": new_blob, "gitObjectType": "blob", "path": "/" + new_path, "commitId": sha}
            if status != "added":
                item["originalObjectId"] = old_blob
            change: dict[str, Any] = {"item": item, "changeType": _CHANGE[status] if status != "renamed" else "edit, rename"}
            if status == "renamed":
                change["sourceServerItem"] = "/" + old_path
            changes.append(change)
        return changes

    def _pull_json(self, pr: AzPullRequest) -> dict[str, Any]:
        return {
            "pullRequestId": pr.id,
            "title": pr.title,
            "status": pr.status,
            "createdBy": {"displayName": pr.author, "uniqueName": f"{pr.author.lower()}@example.com"},
            "lastMergeCommit": {"commitId": pr.merge_commit},
            "reviewers": [],
            "labels": [],
            "url": f"{self.url}/{self.project}/_apis/git/repositories/{self.repository}/pullRequests/{pr.id}",
        }

    # --- routing -----------------------------------------------------------------------------------

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.requests.append(f"{method} {path}" + ("?" + urlencode({k: v[0] for k, v in query.items()}) if query else ""))
            limited = self._limited.pop(0) if self._limited else None
        if limited is not None:
            return (
                429,
                _error("Request was blocked due to exceeding usage of resource.", "RateLimitException"),
                {"Retry-After": str(int(limited + 0.999))},
            )
        if self.token is not None:
            expected = "Basic " + base64.b64encode(f":{self.token}".encode()).decode()
            if headers.get("authorization") != expected:
                return 401, "", {"WWW-Authenticate": 'Basic realm="https://dev.azure.com/"'}
        if not path.startswith(self.prefix + "/"):
            return 404, _error("The resource cannot be found.", "NotFoundException"), {}
        rest = unquote(path[len(self.prefix) :])
        if method == "OPTIONS" and rest == "/_apis":
            locations = [
                {
                    "id": lid,
                    "area": _GIT,
                    "resourceName": resource,
                    "routeTemplate": template,
                    "resourceVersion": 1,
                    "minVersion": 1.0,
                    "maxVersion": 7.1,
                    "releasedVersion": "7.0",
                }
                for lid, resource, template in LOCATIONS
            ]
            return 200, {"count": len(locations), "value": locations}, {}
        match = re.fullmatch(r"/([^/]+)/_apis/git/repositories/([^/]+)(/.*)?", rest)
        if match is None:
            return 404, _error("The resource cannot be found.", "NotFoundException"), {}
        project, repository, tail = match.group(1), match.group(2), match.group(3) or ""
        if project != self.project:
            return 404, _error(f"TF200016: The following project does not exist: {project}.", "ProjectDoesNotExistWithNameException"), {}
        if repository != self.repository:
            message = f"TF401019: The Git repository with name or identifier {repository} does not exist or you do not have permissions."
            return 404, _error(message, "GitRepositoryNotFoundException"), {}
        return self._git_route(method, tail, query, body)

    def _unknown_commit(self, ref: str) -> tuple[int, Any, dict[str, str]]:
        return (
            404,
            _error(
                f"TF401175: The version descriptor <Commit: {ref}> could not be resolved to a version.", "GitUnresolvableToCommitException"
            ),
            {},
        )

    def _git_route(self, method: str, tail: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        def one(name: str) -> str | None:
            return query[name][0] if name in query else None

        if tail == "":
            return (
                200,
                {
                    "id": "5e8a8081-0000-0000-0000-000000000001",
                    "name": self.repository,
                    "defaultBranch": f"refs/heads/{self.default_branch}",
                    "project": {"name": self.project},
                    "remoteUrl": self.web,
                    "webUrl": self.web,
                },
                {},
            )
        if tail == "/commits" and method == "GET":
            item = one("searchCriteria.itemVersion.version") or self.default_branch
            head = self.history.rev(item)
            if head is None:
                return self._unknown_commit(item)
            revs = [head]
            compare = one("searchCriteria.compareVersion.version")
            if compare is not None:
                base = self.history.rev(compare)
                if base is None:
                    return self._unknown_commit(compare)
                revs.append(f"^{base}")
            since = parse_time(one("searchCriteria.fromDate") or "1970-01-01T00:00:00Z")
            until = parse_time(one("searchCriteria.toDate") or "9999-01-01T00:00:00Z")
            metas = [m for m in self.history.commits(*revs) if since <= m["committed_at"] <= until]
            skip, top = int(one("$skip") or 0), min(int(one("$top") or 100), 100)
            page = [self._commit_json(m, listed=True) for m in metas[skip : skip + top]]
            return 200, {"count": len(page), "value": page}, {}
        found = re.fullmatch(r"/commits/([^/]+)(/changes)?", tail)
        if found:
            sha = self.history.rev(found.group(1))
            if sha is None:
                return self._unknown_commit(found.group(1))
            if found.group(2) is None:
                return 200, self._commit_json(self.history.show(sha), listed=False), {}
            changes = self._changes(sha)
            skip, top = int(one("skip") or 0), min(int(one("top") or 100), 100)
            counts: dict[str, int] = {}
            for change in changes:
                counts[change["changeType"]] = counts.get(change["changeType"], 0) + 1
            return 200, {"changeCounts": counts, "changes": changes[skip : skip + top]}, {}
        found = re.fullmatch(r"/blobs/([0-9a-f]{40})", tail)
        if found:
            content = self.history.git("cat-file", "blob", found.group(1))
            return 200, content.encode(), {}
        if tail.startswith("/refs"):
            namespace = (one("filter") or "heads/").rstrip("/")
            refs = [
                {"name": f"refs/{namespace}/{name}", "objectId": sha, "peeledObjectId": sha if namespace == "tags" else None}
                for name, sha in self.history.refs(f"refs/{namespace}")
            ]
            top = int(one("$top") or 1000)
            return 200, {"count": len(refs[:top]), "value": refs[:top]}, {}
        if tail == "/pullRequestQuery" and method == "POST":
            queries = json.loads(body or b"{}").get("queries") or []
            results = [{sha: [self._pull_json(p) for p in self.pulls.get(sha, [])] for sha in q.get("items") or []} for q in queries]
            return 200, {"queries": queries, "results": results}, {}
        return 404, _error("The resource cannot be found.", "NotFoundException"), {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self, method: str) -> None:
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer, extra = standin.answer(
                    method, parsed.path, parse_qs(parsed.query), {k.lower(): v for k, v in self.headers.items()}, body
                )
                if isinstance(answer, bytes):
                    raw, kind = answer, "application/octet-stream"
                elif isinstance(answer, str):
                    raw, kind = answer.encode(), "text/plain"
                else:
                    raw, kind = json.dumps(answer).encode(), "application/json; charset=utf-8"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(raw)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_OPTIONS(self) -> None:
                self._serve("OPTIONS")

        return Handler
