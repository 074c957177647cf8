"""A local GitHub REST API (v3) serving one repository from a git repository on disk, for PyGithub to read.

Commits, files and patches come from `git` run on the repository, so they are the
same commits the local git source reads; deployments and pull requests are added
by the test. Answers carry the real shapes: `Link` pagination, the primary rate
limit (403/429 with `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset`), 401 for a
bad token, 404 for a repository it does not hold, 422 for an unknown commit.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlparse

from git_history import GitHistory, parse_time
from loopback import LoopbackServer


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Deployment:
    id: int
    ref: str
    sha: str
    environment: str
    created_at: datetime
    creator: str
    payload: dict[str, Any]
    # (state, at), oldest first as added; listed newest first.
    statuses: list[tuple[str, datetime]]


@dataclass
class Pull:
    number: int
    title: str
    author: str
    labels: list[str]
    merged_at: datetime | None
    merge_commit_sha: str | None
    reviewers: list[str] = field(default_factory=list)


@dataclass
class GitHubStandin:
    repo: Path
    full_name: str = "acme/shop"
    token: str | None = "ghp-standin-token"
    prefix: str = "/api/v3"
    default_branch: str = "main"
    deployments: list[Deployment] = field(default_factory=list)
    pulls: dict[str, list[Pull]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    # Seconds every answer waits before it is sent (a slow host).
    delay_s: float = 0.0
    _limited: list[tuple[int, float, bool]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.history = GitHistory(self.repo)
        self._http = LoopbackServer(self._handler(), name="github-standin")

    def start(self) -> GitHubStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def root(self) -> str:
        return self._http.base_url

    @property
    def url(self) -> str:
        """The API root a client is given as `base_url`."""
        return self.root + self.prefix

    # --- scripting ---------------------------------------------------------------------------------

    def rate_limit(self, times: int = 1, *, reset_in_s: float = 1.0, status: int = 403, retry_after: bool = False) -> None:
        """The next `times` requests are refused as over the rate limit, the limit resetting `reset_in_s` later."""
        with self._lock:
            self._limited.extend([(status, reset_in_s, retry_after)] * times)

    def add_deployment(
        self,
        ref: str,
        *,
        at: datetime,
        environment: str = "production",
        creator: str = "deployer",
        payload: dict[str, Any] | None = None,
        sha: str | None = None,
        statuses: list[tuple[str, datetime]] | None = None,
    ) -> Deployment:
        resolved = sha or self.history.rev(ref) or ref
        deployment = Deployment(
            id=next(self._ids),
            ref=ref,
            sha=resolved,
            environment=environment,
            created_at=at,
            creator=creator,
            payload=payload or {},
            statuses=statuses if statuses is not None else [("success", at)],
        )
        self.deployments.append(deployment)
        return deployment

    def add_pull(self, sha: str, number: int, title: str, *, author: str = "ana", labels: list[str] | None = None) -> None:
        merged = self.history.show(sha)["committed_at"]
        self.pulls.setdefault(sha, []).append(Pull(number, title, author, labels or [], merged, sha))

    def api_calls(self, fragment: str = "") -> int:
        return sum(1 for r in self.requests if fragment in r)

    # --- JSON shapes -------------------------------------------------------------------------------

    def _api(self, path: str) -> str:
        return f"{self.url}/repos/{self.full_name}{path}"

    def _user(self, login: str) -> dict[str, Any]:
        return {"login": login, "id": abs(hash(login)) % 100000, "type": "User", "url": f"{self.url}/users/{login}"}

    def _commit_json(self, meta: dict[str, Any]) -> dict[str, Any]:
        sha = meta["sha"]
        an, ae, ad = meta["author"]
        cn, ce, cd = meta["committer"]
        return {
            "sha": sha,
            "node_id": f"C_{sha[:12]}",
            "url": self._api(f"/commits/{sha}"),
            "html_url": f"{self.root}/{self.full_name}/commit/{sha}",
            "comments_url": self._api(f"/commits/{sha}/comments"),
            "commit": {
                "author": {"name": an, "email": ae, "date": _iso(parse_time(ad))},
                "committer": {"name": cn, "email": ce, "date": _iso(parse_time(cd))},
                "message": meta["message"],
                "tree": {"sha": "0" * 40, "url": self._api("/git/trees/" + "0" * 40)},
                "url": self._api(f"/git/commits/{sha}"),
                "comment_count": 0,
            },
            "author": None,
            "committer": None,
            "parents": [
                {"sha": p, "url": self._api(f"/commits/{p}"), "html_url": f"{self.root}/{self.full_name}/commit/{p}"}
                for p in meta["parents"]
            ],
        }

    def _repo_json(self) -> dict[str, Any]:
        owner, name = self.full_name.split("/")
        return {
            "id": 1,
            "name": name,
            "full_name": self.full_name,
            "owner": self._user(owner),
            "private": True,
            "html_url": f"{self.root}/{self.full_name}",
            "url": self._api(""),
            "default_branch": self.default_branch,
        }

    def _deployment_json(self, d: Deployment) -> dict[str, Any]:
        return {
            "url": self._api(f"/deployments/{d.id}"),
            "id": d.id,
            "node_id": f"DE_{d.id}",
            "sha": d.sha,
            "ref": d.ref,
            "task": "deploy",
            "payload": d.payload,
            "original_environment": d.environment,
            "environment": d.environment,
            "description": None,
            "creator": self._user(d.creator),
            "created_at": _iso(d.created_at),
            "updated_at": _iso(d.created_at),
            "statuses_url": self._api(f"/deployments/{d.id}/statuses"),
            "repository_url": self._api(""),
            "transient_environment": False,
            "production_environment": True,
        }

    def _status_json(self, d: Deployment, index: int, state: str, at: datetime) -> dict[str, Any]:
        return {
            "url": self._api(f"/deployments/{d.id}/statuses/{index}"),
            "id": d.id * 100 + index,
            "node_id": f"DES_{d.id}_{index}",
            "state": state,
            "creator": self._user(d.creator),
            "description": "",
            "environment": d.environment,
            "target_url": "",
            "created_at": _iso(at),
            "updated_at": _iso(at),
            "deployment_url": self._api(f"/deployments/{d.id}"),
            "repository_url": self._api(""),
        }

    def _pull_json(self, pull: Pull) -> dict[str, Any]:
        return {
            "url": self._api(f"/pulls/{pull.number}"),
            "id": pull.number,
            "number": pull.number,
            "state": "closed",
            "title": pull.title,
            "html_url": f"{self.root}/{self.full_name}/pull/{pull.number}",
            "user": self._user(pull.author),
            "labels": [{"name": label, "color": "ededed"} for label in pull.labels],
            "merged_at": _iso(pull.merged_at) if pull.merged_at else None,
            "merge_commit_sha": pull.merge_commit_sha,
            "requested_reviewers": [self._user(r) for r in pull.reviewers],
        }

    # --- routing -----------------------------------------------------------------------------------

    def _page(self, items: list[Any], path: str, query: dict[str, list[str]], default: int = 30) -> tuple[list[Any], dict[str, str]]:
        per_page = min(int((query.get("per_page") or [str(default)])[0]), 1000)
        page = int((query.get("page") or ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        last = max(1, -(-len(items) // per_page))

        def link(number: int, rel: str) -> str:
            params = {k: v[0] for k, v in query.items()} | {"page": str(number), "per_page": str(per_page)}
            return f'<{self.root}{quote(path)}?{urlencode(params)}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        return chunk, ({"Link": ", ".join(links)} if links else {})

    def answer(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.requests.append(path + ("?" + urlencode({k: v[0] for k, v in query.items()}) if query else ""))
            limited = self._limited.pop(0) if self._limited else None
        if limited is not None:
            status, reset_in, retry_after = limited
            extra = {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time() + reset_in + 0.999)),
            }
            if retry_after:
                extra = {"Retry-After": str(int(reset_in + 0.999))}
            return status, {"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest"}, extra
        if self.token is not None:
            given = headers.get("authorization", "")
            if given not in (f"token {self.token}", f"Bearer {self.token}"):
                return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, {}
        if not path.startswith(self.prefix + "/"):
            return 404, {"message": "Not Found"}, {}
        rest = unquote(path[len(self.prefix) :])
        if rest == "/rate_limit":
            return 200, {"resources": {"core": {"limit": 5000, "remaining": 4999, "reset": int(time.time()) + 3600}}}, {}
        base = f"/repos/{self.full_name}"
        if rest != base and not rest.startswith(base + "/"):
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository"}, {}
        tail = rest[len(base) :]
        if tail == "":
            return 200, self._repo_json(), {}
        if tail == "/commits":
            return self._list_commits(path, query)
        if tail in ("/branches", "/tags"):
            chunk, extra = self._page(self._refs(tail[1:]), path, query)
            return 200, chunk, extra
        match = re.fullmatch(r"/commits/(.+?)/pulls", tail)
        if match:
            sha = self.history.rev(match.group(1))
            pulls = [self._pull_json(p) for p in self.pulls.get(sha or "", [])]
            chunk, extra = self._page(pulls, path, query)
            return 200, chunk, extra
        match = re.fullmatch(r"/commits/(.+)", tail)
        if match:
            return self._commit_detail(match.group(1), path, query)
        match = re.fullmatch(r"/compare/(.+?)\.\.\.(.+)", tail)
        if match:
            return self._compare(match.group(1), match.group(2), path, query)
        if tail == "/deployments":
            env = query["environment"][0] if "environment" in query else None
            listed = sorted(
                (d for d in self.deployments if env is None or d.environment == env), key=lambda d: (d.created_at, d.id), reverse=True
            )
            chunk, extra = self._page([self._deployment_json(d) for d in listed], path, query)
            return 200, chunk, extra
        match = re.fullmatch(r"/deployments/(\d+)(/statuses)?", tail)
        if match:
            found = next((d for d in self.deployments if d.id == int(match.group(1))), None)
            if found is None:
                return 404, {"message": "Not Found"}, {}
            if not match.group(2):
                return 200, self._deployment_json(found), {}
            statuses = [self._status_json(found, i, s, at) for i, (s, at) in enumerate(found.statuses)][::-1]
            chunk, extra = self._page(statuses, path, query)
            return 200, chunk, extra
        return 404, {"message": "Not Found"}, {}

    def _refs(self, kind: str) -> list[dict[str, Any]]:
        found = []
        for name, sha in self.history.refs("refs/heads" if kind == "branches" else "refs/tags"):
            commit = {"sha": sha, "url": self._api(f"/commits/{sha}")}
            found.append(
                {"name": name, "commit": commit, "protected": False}
                if kind == "branches"
                else {"name": name, "commit": commit, "node_id": f"REF_{name}"}
            )
        return found

    def _list_commits(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        ref = (query.get("sha") or [self.default_branch])[0]
        head = self.history.rev(ref)
        if head is None:
            return 404, {"message": f"No commit found for SHA: {ref}"}, {}
        since = parse_time(query["since"][0]) if "since" in query else None
        until = parse_time(query["until"][0]) if "until" in query else None
        commits = [
            c
            for c in self.history.commits(head)
            if (since is None or c["committed_at"] >= since) and (until is None or c["committed_at"] <= until)
        ]
        chunk, extra = self._page(commits, path, query)
        return 200, [self._commit_json(c) for c in chunk], extra

    def _commit_detail(self, ref: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        sha = self.history.rev(ref)
        if sha is None:
            return 422, {"message": f"No commit found for SHA: {ref}", "documentation_url": "https://docs.github.com/rest"}, {}
        body = self._commit_json(self.history.show(sha))
        files = self.history.files(sha)
        chunk, extra = self._page(files, path, query, default=300)
        body["files"] = chunk
        added = sum(f["additions"] for f in files)
        deleted = sum(f["deletions"] for f in files)
        body["stats"] = {"total": added + deleted, "additions": added, "deletions": deleted}
        return 200, body, extra

    def _compare(self, base: str, head: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        old, new = self.history.rev(base), self.history.rev(head)
        if old is None or new is None:
            return 404, {"message": "Not Found"}, {}
        # The commits `head` has that `base` has not, oldest first, as GitHub lists them.
        shas = self.history.between(old, new)
        behind = len(self.history.git("rev-list", f"{new}..{old}", "--").split())
        metas = {c["sha"]: c for c in self.history.commits(f"{old}..{new}")} if shas else {}
        chunk, extra = self._page([metas[s] for s in shas], path, query, default=250)
        body = {
            "url": self._api(f"/compare/{base}...{head}"),
            "html_url": f"{self.root}/{self.full_name}/compare/{base}...{head}",
            "status": "ahead" if behind == 0 else ("behind" if not shas else "diverged"),
            "ahead_by": len(shas),
            "behind_by": behind,
            "total_commits": len(shas),
            "commits": [self._commit_json(c) for c in chunk],
            "files": [],
        }
        return 200, body, extra

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                if standin.delay_s:
                    time.sleep(standin.delay_s)
                status, body, extra = standin.answer(
                    "GET", parsed.path, parse_qs(parsed.query), {k.lower(): v for k, v in self.headers.items()}
                )
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

        return Handler


class SilentHost:
    """A port that accepts connections and never answers: a host that hangs."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._socket.close()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
