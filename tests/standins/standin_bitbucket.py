"""A local Bitbucket Cloud REST API 2.0 serving one repository from a git repository on disk, for httpx to read.

Commits, diffs and refs come from the repository (`GitHistory`); pull requests,
environments, deployments and pipelines are added by the test. Answers carry Bitbucket's
shapes: pages of `values` with an opaque `next` link (the page token means nothing to a
client, so a client that builds page URLs itself fails), `pagelen` capped at 100, 429
without a hint or with `Retry-After`, 401 for a bad credential (bearer or basic), and
"Repository ... not found" apart from a commit not found.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlparse

from git_history import GitHistory, parse_time
from loopback import LoopbackServer

API = "/2.0"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass
class BbPullRequest:
    id: int
    title: str
    author: str
    merge_commit: str
    state: str = "MERGED"


@dataclass
class BbDeployment:
    uuid: str
    environment: str
    release: str
    sha: str
    completed_on: datetime | None
    status: str
    pipeline: str


@dataclass
class BitbucketStandin:
    repo: Path
    full_name: str = "acme/shop"
    token: str | None = "bb-standin-token"
    username: str = "ana"
    prefix: str = ""
    main_branch: str = "main"
    pulls: dict[str, list[BbPullRequest]] = field(default_factory=dict)
    environments: dict[str, str] = field(default_factory=dict)
    deployments: list[BbDeployment] = field(default_factory=list)
    pipelines: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    _limited: list[float | None] = field(default_factory=list)
    _failing: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.history = GitHistory(self.repo)
        self._http = LoopbackServer(self._handler(), name="bitbucket-standin")

    def start(self) -> BitbucketStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        """The API root a client is given as `base_url`."""
        return self._http.base_url + self.prefix + API

    @property
    def web(self) -> str:
        return f"{self._http.base_url}/{self.full_name}"

    # --- scripting ---------------------------------------------------------------------------------

    def rate_limit(self, times: int = 1, *, retry_after_s: float | None = None) -> None:
        with self._lock:
            self._limited.extend([retry_after_s] * times)

    def fail(self, times: int = 1, *, status: int = 502) -> None:
        """The next `times` requests fail with `status`, as Bitbucket's edge answers while it recovers."""
        with self._lock:
            self._failing.extend([status] * times)

    def add_pull(self, sha: str, number: int, title: str, *, author: str = "Ana") -> None:
        # Bitbucket names a merge commit by its short hash.
        self.pulls.setdefault(sha, []).append(BbPullRequest(number, title, author, sha[:12]))

    def add_deployment(
        self, release: str, *, at: datetime, environment: str = "Production", actor: str = "Deployer", status: str = "SUCCESSFUL"
    ) -> BbDeployment:
        env_uuid = next((u for u, n in self.environments.items() if n == environment), None)
        if env_uuid is None:
            env_uuid = "{" + str(uuid.uuid4()) + "}"
            self.environments[env_uuid] = environment
        pipeline = "{" + str(uuid.uuid4()) + "}"
        self.pipelines[pipeline] = actor
        deployment = BbDeployment(
            uuid="{" + str(uuid.uuid4()) + "}",
            environment=env_uuid,
            release=release,
            sha=self.history.rev(release) or "0" * 40,
            completed_on=at if status in ("SUCCESSFUL", "FAILED", "STOPPED") else None,
            status=status,
            pipeline=pipeline,
        )
        self.deployments.append(deployment)
        return deployment

    def api_calls(self, fragment: str = "") -> int:
        return sum(1 for r in self.requests if fragment in r)

    # --- JSON shapes -------------------------------------------------------------------------------

    def _commit_json(self, meta: dict[str, Any]) -> dict[str, Any]:
        sha = meta["sha"]
        an, ae, ad = meta["author"]
        return {
            "type": "commit",
            "hash": sha,
            # Bitbucket dates a commit by its author date.
            "date": _iso(parse_time(ad)),
            "author": {"type": "author", "raw": f"{an} <{ae}>"},
            "message": meta["message"] + "\n",
            "summary": {"raw": meta["message"], "markup": "markdown"},
            "parents": [{"hash": p, "type": "commit"} for p in meta["parents"]],
            "links": {
                "html": {"href": f"{self.web}/commits/{sha}"},
                "self": {"href": f"{self.url}/repositories/{self.full_name}/commit/{sha}"},
            },
            "repository": {"full_name": self.full_name},
        }

    def _pull_json(self, pr: BbPullRequest) -> dict[str, Any]:
        return {
            "type": "pullrequest",
            "id": pr.id,
            "title": pr.title,
            "state": pr.state,
            "author": {"display_name": pr.author},
            "merge_commit": {"hash": pr.merge_commit},
            "links": {"html": {"href": f"{self.web}/pull-requests/{pr.id}"}},
            "participants": [],
        }

    def _deployment_json(self, d: BbDeployment) -> dict[str, Any]:
        state: dict[str, Any] = {"type": "deployment_state_completed" if d.completed_on else "deployment_state_in_progress"}
        state["name"] = "COMPLETED" if d.completed_on else "IN_PROGRESS"
        if d.completed_on:
            state["status"] = {"name": d.status, "type": "deployment_state_completed_status_" + d.status.lower()}
            state["completed_on"] = _iso(d.completed_on)
        commit = {"hash": d.sha, "type": "commit"}
        return {
            "type": "deployment",
            "uuid": d.uuid,
            "state": state,
            "environment": {"uuid": d.environment, "type": "deployment_environment"},
            "release": {"name": d.release, "commit": commit, "type": "deployment_release"},
            "deployable": {"name": d.release, "commit": commit, "pipeline": {"uuid": d.pipeline, "type": "pipeline"}},
        }

    # --- routing -----------------------------------------------------------------------------------

    def _page(self, items: list[Any], path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        pagelen = max(1, min(int((query.get("pagelen") or ["10"])[0]), 100))
        token = (query.get("page") or [""])[0]
        offset = int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1]) if token else 0
        body: dict[str, Any] = {"pagelen": pagelen, "values": items[offset : offset + pagelen]}
        if offset + pagelen < len(items):
            opaque = base64.urlsafe_b64encode(f"{uuid.uuid4().hex[:6]}:{offset + pagelen}".encode()).decode()
            params = {k: v[0] for k, v in query.items()} | {"page": opaque, "pagelen": str(pagelen)}
            body["next"] = f"{self._http.base_url}{path}?{urlencode(params)}"
        return body

    def answer(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.requests.append(path + ("?" + urlencode({k: v[0] for k, v in query.items()}) if query else ""))
            limited = self._limited.pop(0) if self._limited else ...
            failing = self._failing.pop(0) if self._failing and limited is ... else None
        if failing is not None:
            return failing, "<html><body>Bad Gateway</body></html>", {}
        if limited is not ...:
            extra = {"Retry-After": str(int(limited + 0.999))} if isinstance(limited, float | int) else {}
            return 429, {"type": "error", "error": {"message": "Rate limit for this resource has been exceeded"}}, extra
        if self.token is not None:
            given = headers.get("authorization", "")
            basic = "Basic " + base64.b64encode(f"{self.username}:{self.token}".encode()).decode()
            if given not in (f"Bearer {self.token}", basic):
                return 401, {"type": "error", "error": {"message": "Unauthorized"}}, {}
        base = f"{self.prefix}{API}/repositories/{self.full_name}"
        if path != base and not path.startswith(base + "/"):
            workspace_repo = "/".join(path.split("/")[4:6]) if path.startswith(f"{self.prefix}{API}/repositories/") else "?"
            return 404, {"type": "error", "error": {"message": f"Repository {workspace_repo} not found"}}, {}
        tail = unquote(path[len(base) :])
        if tail == "":
            return (
                200,
                {
                    "type": "repository",
                    "full_name": self.full_name,
                    "mainbranch": {"name": self.main_branch, "type": "branch"},
                    "links": {"html": {"href": self.web}},
                },
                {},
            )
        if tail == "/commits":
            include = [self.history.rev(r) for r in query.get("include", [])]
            exclude = [self.history.rev(r) for r in query.get("exclude", [])]
            if not include or None in include or None in exclude:
                return 404, {"type": "error", "error": {"message": "Commit not found"}}, {}
            revs = [r for r in include if r] + [f"^{r}" for r in exclude if r]
            commits = [self._commit_json(c) for c in self.history.commits(*revs)]
            return 200, self._page(commits, path, query), {}
        match = re.fullmatch(r"/(commit|diff)/([^/]+)(/pullrequests)?", tail)
        if match:
            sha = self.history.rev(match.group(2))
            if sha is None:
                return 404, {"type": "error", "error": {"message": "Commit not found"}}, {}
            if match.group(1) == "diff":
                return 200, self.history.git("show", "--format=", "-M", "--first-parent", "--patch", "--end-of-options", sha), {}
            if match.group(3):
                return 200, self._page([self._pull_json(p) for p in self.pulls.get(sha, [])], path, query), {}
            return 200, self._commit_json(self.history.show(sha)), {}
        match = re.fullmatch(r"/refs/(tags|branches)(?:/(.+))?", tail)
        if match:
            refs = [
                {"name": name, "type": "tag" if match.group(1) == "tags" else "branch", "target": {"hash": sha, "type": "commit"}}
                for name, sha in self.history.refs("refs/tags" if match.group(1) == "tags" else "refs/heads")
            ]
            if match.group(2):
                found = next((r for r in refs if r["name"] == match.group(2)), None)
                return (200, found, {}) if found else (404, {"type": "error", "error": {"message": "Branch not found"}}, {})
            return 200, self._page(refs, path, query), {}
        if tail == "/environments":
            envs = [{"type": "deployment_environment", "uuid": u, "name": n, "slug": n.lower()} for u, n in self.environments.items()]
            return 200, self._page(envs, path, query), {}
        if tail == "/deployments":
            listed = list(self.deployments)
            if (query.get("sort") or [""])[0] == "-state.completed_on":
                far = datetime(9999, 1, 1, tzinfo=UTC)
                listed.sort(key=lambda d: d.completed_on or far, reverse=True)
            return 200, self._page([self._deployment_json(d) for d in listed], path, query), {}
        match = re.fullmatch(r"/pipelines/(.+)", tail)
        if match and match.group(1) in self.pipelines:
            return 200, {"type": "pipeline", "uuid": match.group(1), "creator": {"display_name": self.pipelines[match.group(1)]}}, {}
        return 404, {"type": "error", "error": {"message": "Resource not found"}}, {}

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
                self.send_header("Content-Type", "text/plain; charset=utf-8" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

        return Handler
