"""A local GitLab REST API (v4) serving one project from a git repository on disk, for python-gitlab to read.

Commits, diffs, branches, tags and comparisons come from the repository (`GitHistory`),
so they are the commits the local git source reads; merge requests and deployments are
added by the test. Answers carry GitLab's shapes: offset pagination with `X-Page`,
`X-Next-Page`, `X-Total-Pages` and `Link` headers (20 a page unless asked), 429 with
`Retry-After` and `RateLimit-*`, 401 for a bad `PRIVATE-TOKEN`, "404 Project Not Found",
"404 Commit Not Found", and the deployment filters' rules (finished_after/before only
with order_by=finished_at and status=success).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlparse

from git_history import GitHistory, parse_time
from loopback import LoopbackServer

API = "/api/v4"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class GlDeployment:
    id: int
    ref: str
    sha: str
    environment: str
    created_at: datetime
    finished_at: datetime
    status: str
    user: str


@dataclass
class MergeRequest:
    iid: int
    title: str
    author: str
    labels: list[str]
    merge_commit_sha: str
    state: str = "merged"
    reviewers: list[str] = field(default_factory=list)


@dataclass
class GitLabStandin:
    repo: Path
    path: str = "acme/shop"
    project_id: int = 42
    token: str | None = "glpat-standin-token"
    # Where the API is served below the root (a GitLab under a path prefix).
    prefix: str = ""
    default_branch: str = "main"
    deployments: list[GlDeployment] = field(default_factory=list)
    merge_requests: dict[str, list[MergeRequest]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    _limited: list[float] = field(default_factory=list)
    _failing: list[int] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(501))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.history = GitHistory(self.repo)
        self._http = LoopbackServer(self._handler(), name="gitlab-standin")

    def start(self) -> GitLabStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        """The instance's root, as a client is given it (`base_url`)."""
        return self._http.base_url + self.prefix

    # --- scripting ---------------------------------------------------------------------------------

    def rate_limit(self, times: int = 1, *, retry_after_s: float = 1.0) -> None:
        """The next `times` requests are answered 429, asking to wait `retry_after_s`."""
        with self._lock:
            self._limited.extend([retry_after_s] * times)

    def fail(self, times: int = 1, *, status: int = 503) -> None:
        """The next `times` requests fail with `status`, as a GitLab behind a restarting proxy answers."""
        with self._lock:
            self._failing.extend([status] * times)

    def add_deployment(
        self,
        ref: str,
        *,
        at: datetime,
        environment: str = "production",
        user: str = "deployer",
        status: str = "success",
        sha: str | None = None,
        started: datetime | None = None,
    ) -> GlDeployment:
        deployment = GlDeployment(
            id=next(self._ids),
            ref=ref,
            sha=sha or self.history.rev(ref) or "0" * 40,
            environment=environment,
            created_at=started or at,
            finished_at=at,
            status=status,
            user=user,
        )
        self.deployments.append(deployment)
        return deployment

    def add_merge_request(self, sha: str, iid: int, title: str, *, author: str = "ana", labels: list[str] | None = None) -> None:
        self.merge_requests.setdefault(sha, []).append(MergeRequest(iid, title, author, labels or [], sha))

    def api_calls(self, fragment: str = "") -> int:
        return sum(1 for r in self.requests if fragment in r)

    # --- JSON shapes -------------------------------------------------------------------------------

    @property
    def web(self) -> str:
        return f"{self.url}/{self.path}"

    def _commit_json(self, meta: dict[str, Any]) -> dict[str, Any]:
        sha = meta["sha"]
        an, ae, ad = meta["author"]
        cn, ce, cd = meta["committer"]
        message = meta["message"]
        return {
            "id": sha,
            "short_id": sha[:8],
            "created_at": _iso(parse_time(cd)),
            "parent_ids": meta["parents"],
            "title": message.splitlines()[0] if message else "",
            "message": message + "\n",
            "author_name": an,
            "author_email": ae,
            "authored_date": _iso(parse_time(ad)),
            "committer_name": cn,
            "committer_email": ce,
            "committed_date": _iso(parse_time(cd)),
            "trailers": {},
            "extended_trailers": {},
            "web_url": f"{self.web}/-/commit/{sha}",
        }

    def _project_json(self) -> dict[str, Any]:
        namespace, _, name = self.path.rpartition("/")
        return {
            "id": self.project_id,
            "name": name,
            "path": name,
            "path_with_namespace": self.path,
            "name_with_namespace": self.path.replace("/", " / "),
            "namespace": {"full_path": namespace},
            "default_branch": self.default_branch,
            "web_url": self.web,
            "visibility": "private",
        }

    def _diff_json(self, entry: dict[str, Any]) -> dict[str, Any]:
        status = entry["status"]
        return {
            "old_path": entry.get("previous_filename") or entry["filename"],
            "new_path": entry["filename"],
            "a_mode": "0" if status == "added" else "100644",
            "b_mode": "0" if status == "removed" else "100644",
            "new_file": status == "added",
            "renamed_file": status == "renamed",
            "deleted_file": status == "removed",
            "generated_file": False,
            "diff": entry.get("patch", "") + ("\n" if entry.get("patch") else ""),
        }

    def _merge_request_json(self, mr: MergeRequest) -> dict[str, Any]:
        return {
            "id": 9000 + mr.iid,
            "iid": mr.iid,
            "project_id": self.project_id,
            "title": mr.title,
            "state": mr.state,
            "merged_at": _iso(self.history.show(mr.merge_commit_sha)["committed_at"]),
            "merge_commit_sha": mr.merge_commit_sha,
            "squash_commit_sha": None,
            "author": {"id": 1, "username": mr.author, "name": mr.author.title()},
            "labels": mr.labels,
            "reviewers": [{"id": 2, "username": r} for r in mr.reviewers],
            "web_url": f"{self.web}/-/merge_requests/{mr.iid}",
        }

    def _deployment_json(self, d: GlDeployment) -> dict[str, Any]:
        return {
            "id": d.id,
            "iid": d.id - 500,
            "ref": d.ref,
            "sha": d.sha,
            "created_at": _iso(d.created_at),
            "updated_at": _iso(d.finished_at),
            "status": d.status,
            "user": {"id": 7, "username": d.user, "name": d.user.title(), "state": "active"},
            "environment": {"id": abs(hash(d.environment)) % 1000, "name": d.environment, "external_url": None},
            "deployable": {
                "id": d.id * 10,
                "status": d.status,
                "stage": "deploy",
                "name": f"deploy:{d.environment}",
                "ref": d.ref,
                "created_at": _iso(d.created_at),
                "started_at": _iso(d.created_at),
                "finished_at": _iso(d.finished_at) if d.status in ("success", "failed", "canceled") else None,
            },
        }

    # --- routing -----------------------------------------------------------------------------------

    def _page(self, items: list[Any], path: str, query: dict[str, list[str]]) -> tuple[list[Any], dict[str, str]]:
        per_page = max(1, min(int((query.get("per_page") or ["20"])[0]), 100))
        page = max(1, int((query.get("page") or ["1"])[0]))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(number: int) -> str:
            params = {k: v[0] for k, v in query.items()} | {"page": str(number), "per_page": str(per_page)}
            return f"{self._http.base_url}{path}?{urlencode(params)}"

        links = [f'<{link(1)}>; rel="first"', f'<{link(last)}>; rel="last"']
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(last),
            "X-Next-Page": str(page + 1) if page < last else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        if page < last:
            links.insert(0, f'<{link(page + 1)}>; rel="next"')
        if page > 1:
            links.insert(0, f'<{link(page - 1)}>; rel="prev"')
        headers["Link"] = ", ".join(links)
        return chunk, headers

    def answer(self, raw_path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.requests.append(unquote(raw_path) + ("?" + urlencode({k: v[0] for k, v in query.items()}) if query else ""))
            limited = self._limited.pop(0) if self._limited else None
            failing = self._failing.pop(0) if self._failing and limited is None else None
        if failing is not None:
            return failing, {"message": "503 Service Unavailable"}, {}
        if limited is not None:
            reset = int(time.time() + limited + 0.999)
            return (
                429,
                "Retry later",
                {
                    "Retry-After": str(int(limited + 0.999)),
                    "RateLimit-Limit": "2000",
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(reset),
                },
            )
        if self.token is not None and headers.get("private-token") != self.token:
            return 401, {"message": "401 Unauthorized"}, {}
        root = self.prefix + API + "/projects/"
        if not raw_path.startswith(root):
            return 404, {"error": "404 Not Found"}, {}
        # The project id is one path segment: a path arrives url-encoded (acme%2Fshop).
        encoded, _, tail = raw_path[len(root) :].partition("/")
        if unquote(encoded) not in (self.path, str(self.project_id)):
            return 404, {"message": "404 Project Not Found"}, {}
        tail = "/" + tail if tail else ""
        path = raw_path
        if tail == "":
            return 200, self._project_json(), {}
        if tail == "/repository/commits":
            return self._list_commits(path, query)
        match = re.fullmatch(r"/repository/commits/([^/]+)(/diff|/merge_requests)?", tail)
        if match:
            sha = self.history.rev(unquote(match.group(1)))
            if sha is None:
                return 404, {"message": "404 Commit Not Found"}, {}
            if match.group(2) == "/diff":
                return self._listed([self._diff_json(f) for f in self.history.files(sha)], path, query)
            if match.group(2) == "/merge_requests":
                return self._listed([self._merge_request_json(m) for m in self.merge_requests.get(sha, [])], path, query)
            body = self._commit_json(self.history.show(sha))
            body["stats"] = {"additions": 0, "deletions": 0, "total": 0}
            return 200, body, {}
        if tail in ("/repository/branches", "/repository/tags"):
            namespace = "refs/heads" if tail.endswith("branches") else "refs/tags"
            refs = [{"name": name, "commit": self._commit_json(self.history.show(sha))} for name, sha in self.history.refs(namespace)]
            return self._listed(refs, path, query)
        if tail == "/repository/compare":
            return self._compare(query)
        if tail == "/deployments":
            return self._list_deployments(path, query)
        return 404, {"error": "404 Not Found"}, {}

    def _listed(self, items: list[Any], path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        chunk, extra = self._page(items, path, query)
        return 200, chunk, extra

    def _list_commits(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        ref = (query.get("ref_name") or [self.default_branch])[0]
        head = self.history.rev(ref)
        if head is None:
            return 404, {"message": "404 Reference Not Found"}, {}
        since = parse_time(query["since"][0]) if "since" in query else None
        until = parse_time(query["until"][0]) if "until" in query else None
        commits = [
            self._commit_json(c)
            for c in self.history.commits(head)
            if (since is None or c["committed_at"] >= since) and (until is None or c["committed_at"] <= until)
        ]
        return self._listed(commits, path, query)

    def _compare(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        old = self.history.rev((query.get("from") or [""])[0])
        new = self.history.rev((query.get("to") or [""])[0])
        if old is None or new is None:
            return 404, {"message": "404 Ref Not Found"}, {}
        shas = self.history.between(old, new)
        return (
            200,
            {
                "commit": self._commit_json(self.history.show(new)),
                "commits": [self._commit_json(self.history.show(s)) for s in shas],
                "diffs": [],
                "compare_timeout": False,
                "compare_same_ref": old == new,
                "web_url": f"{self.web}/-/compare/{old}...{new}",
            },
            {},
        )

    def _list_deployments(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        def one(name: str) -> str | None:
            return query[name][0] if name in query else None

        after, before = one("finished_after"), one("finished_before")
        if (after or before) and (one("order_by") != "finished_at" or one("status") != "success"):
            return 400, {"message": "400 Bad request - finished_after/finished_before need order_by=finished_at and status=success"}, {}
        listed = [
            d
            for d in self.deployments
            if (one("environment") is None or d.environment == one("environment"))
            and (one("status") is None or d.status == one("status"))
            and (after is None or d.finished_at > parse_time(after))
            and (before is None or d.finished_at < parse_time(before))
        ]
        order = one("order_by") or "id"
        keys = {"id": lambda d: (d.id,), "created_at": lambda d: (d.created_at, d.id), "finished_at": lambda d: (d.finished_at, d.id)}
        listed.sort(key=keys.get(order, keys["id"]), reverse=one("sort") == "desc")
        return self._listed([self._deployment_json(d) for d in listed], path, query)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                status, body, extra = standin.answer(parsed.path, parse_qs(parsed.query), {k.lower(): v for k, v in self.headers.items()})
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

        return Handler
