"""A local Elasticsearch (or OpenSearch) search API: point in time, `search_after`, the real shapes and errors.

Documents live in memory per index. Elasticsearch's flavour answers `GET /`,
`POST /{index}/_pit` (`{"id"}`), `POST /_search` with a `pit` and `DELETE /_pit`, and
sends `X-Elastic-Product: Elasticsearch` on every 2xx (elasticsearch-py refuses an
answer without it). OpenSearch's flavour answers `POST /{index}/_search/point_in_time`
(`{"pit_id"}`) and `DELETE /_search/point_in_time` instead, without that header.
Hits carry `_index`, `_id`, `_source` and `sort` (the timestamp in epoch
milliseconds, then the tiebreaker: `_shard_doc` or `_id`); the search understands
`bool` (`must` / `filter` / `should` / `must_not`), `range` on the timestamp,
`match_all`, `term`, `match` and a `query_string` of `field:value` terms and words.
Errors are `{"error": {"root_cause": [...], "type", "reason", ...}, "status"}`:
`index_not_found_exception` (404), `security_exception` (401),
`es_rejected_execution_exception` (429, with `Retry-After` when asked), 5xx.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from loopback import LoopbackServer


@dataclass
class Doc:
    id: str
    source: dict[str, Any]
    # Position in the index: what `_shard_doc` sorts on.
    seq: int


@dataclass
class Flood:
    """An endless run of documents, one every `step` from `first`, made only when a page reaches them."""

    index: str
    first: datetime
    step: timedelta = timedelta(milliseconds=1)
    timestamp_field: str = "@timestamp"

    def docs(self, from_ms: int, count: int) -> Iterator[Doc]:
        step_ms = self.step / timedelta(milliseconds=1)
        k0 = max(0, int(-(-(from_ms - self.first.timestamp() * 1000) // step_ms)))
        for k in range(k0, k0 + count):
            at = self.first + self.step * k
            yield Doc(
                f"flood-{k}", {self.timestamp_field: at.isoformat().replace("+00:00", "Z"), "message": f"flood document {k}"}, 10**9 + k
            )


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any


def _error(status: int, kind: str, reason: str, **extra: Any) -> dict[str, Any]:
    cause = {"type": kind, "reason": reason, **extra}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def _millis(value: Any) -> int | None:
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        return None
    text = value.replace("Z", "+00:00")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    moment = datetime.fromisoformat(text)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _lookup(source: dict[str, Any], name: str) -> Any:
    if name in source:
        return source[name]
    value: Any = source
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


@dataclass
class SearchStandin:
    flavor: str = "elasticsearch"
    api_key: str | None = None
    basic: tuple[str, str] | None = None
    timestamp_field: str = "@timestamp"
    indices: dict[str, list[Doc]] = field(default_factory=dict)
    floods: list[Flood] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    open_pits: dict[str, list[str]] = field(default_factory=dict)
    # Seconds each search waits once `slow_after` searches were answered fast.
    delay_s: float = 0.0
    slow_after: int = 0
    # OpenSearch's flavour answering Elasticsearch's PIT path too, as a proxy might: a 2xx without the product header.
    foreign_pit: bool = False
    _failures: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self._http = LoopbackServer(self._handler(), name=f"{self.flavor}-standin")

    def start(self) -> SearchStandin:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.base_url

    @property
    def searches(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/_search"]

    def index(self, name: str, sources: list[dict[str, Any]]) -> None:
        docs = self.indices.setdefault(name, [])
        for source in sources:
            seq = next(self._ids)
            docs.append(Doc(f"doc-{seq}", source, seq))

    def rate_limit(self, times: int = 1, retry_after_s: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else {}
        body = _error(
            429, "es_rejected_execution_exception", "rejected execution of coordinating operation [coordinating_and_primary_bytes=0]"
        )
        self._failures.extend([(429, headers, body)] * times)

    def fail(self, status: int, times: int = 1) -> None:
        self._failures.extend([(status, {}, _error(status, "node_not_connected_exception", "[node-1] Node not connected"))] * times)

    def answer(self, request: Request) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            searches = len(self.searches)
            failure = self._failures.pop(0) if self._failures and request.path != "/" else None
        if failure is not None:
            return failure
        refused = self._refusal(request.headers)
        if refused is not None:
            return refused
        path, method = request.path, request.method
        if path == "/" and method == "GET":
            number = "8.15.0" if self.flavor == "elasticsearch" else "2.17.0"
            version = {"number": number, "build_flavor": "default", "lucene_version": "9.11.1"}
            if self.flavor == "opensearch":
                version["distribution"] = "opensearch"
            return 200, {}, {"name": "node-1", "cluster_name": "logs", "version": version, "tagline": "You Know, for Search"}
        pit_suffix = "/_pit" if self.flavor == "elasticsearch" or self.foreign_pit else "/_search/point_in_time"
        if method == "POST" and path.endswith(pit_suffix) and path != pit_suffix:
            return self._open_pit(path[1 : -len(pit_suffix)])
        if method == "DELETE" and path == pit_suffix:
            return self._close_pit(request.body or {})
        if method == "POST" and path == "/_search":
            if self.delay_s and searches > self.slow_after:
                time.sleep(self.delay_s)
            return self._search(request.body or {})
        return 405, {}, _error(405, "illegal_argument_exception", f"Incorrect HTTP method for uri [{path}] and method [{method}]")

    def _refusal(self, headers: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        given = headers.get("authorization", "")
        wanted = None
        if self.api_key is not None:
            wanted = f"ApiKey {self.api_key}"
        elif self.basic is not None:
            wanted = "Basic " + base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
        if wanted is not None and given != wanted:
            reason = "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
            return 401, {"WWW-Authenticate": 'ApiKey, Basic realm="security"'}, _error(401, "security_exception", reason)
        return None

    def _open_pit(self, target: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        names = [n for pattern in target.split(",") for n in self.indices if fnmatch.fnmatch(n, pattern)]
        floods = [f.index for f in self.floods if any(fnmatch.fnmatch(f.index, p) for p in target.split(","))]
        if not names and not floods:
            missing = target.split(",")[0]
            return (
                404,
                {},
                _error(404, "index_not_found_exception", f"no such index [{missing}]", index=missing, **{"resource.id": missing}),
            )
        pit = base64.urlsafe_b64encode(f"pit-{next(self._ids)}".encode()).decode()
        self.open_pits[pit] = sorted(set(names + floods))
        key = "id" if self.flavor == "elasticsearch" else "pit_id"
        return 200, {}, {key: pit, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}

    def _close_pit(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        ids = [body["id"]] if "id" in body else list(body.get("pit_id") or [])
        freed = [pit for pit in ids if self.open_pits.pop(pit, None) is not None]
        if self.flavor == "elasticsearch":
            return 200, {}, {"succeeded": True, "num_freed": len(freed)}
        return 200, {}, {"pits": [{"pit_id": pit, "successful": True} for pit in freed]}

    def _search(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        pit = (body.get("pit") or {}).get("id")
        if pit not in self.open_pits:
            return 404, {}, _error(404, "search_context_missing_exception", f"No search context found for id [{pit}]")
        if int(body.get("from", 0)) + int(body.get("size", 10)) > 10_000:
            reason = "Result window is too large, from + size must be less than or equal to: [10000]"
            return 400, {}, _error(400, "illegal_argument_exception", reason)
        try:
            sort = [next(iter(s)) if isinstance(s, dict) else s for s in body["sort"]]
        except (KeyError, StopIteration):
            return 400, {}, _error(400, "illegal_argument_exception", "this stand-in needs a sort")
        if len(sort) != 2 or sort[1] not in ("_shard_doc", "_id"):
            return 400, {}, _error(400, "illegal_argument_exception", f"unsupported sort {sort}")
        if sort[1] == "_shard_doc" and self.flavor != "elasticsearch":
            return 400, {}, _error(400, "illegal_argument_exception", "No mapping found for [_shard_doc] in order to sort on")
        ts_field, size = sort[0], int(body.get("size", 10))
        after = body.get("search_after")
        try:
            matches = _Matcher(body.get("query") or {"match_all": {}}, ts_field)
        except ValueError as exc:
            return 400, {}, _error(400, "parsing_exception", str(exc), line=1, col=1)
        keyed: list[tuple[tuple[int, Any], str, Doc]] = []
        for name in self.open_pits[pit]:
            for doc in self.indices.get(name, []):
                at = _millis(_lookup(doc.source, ts_field))
                if at is not None and matches(doc.source):
                    keyed.append(((at, doc.seq if sort[1] == "_shard_doc" else doc.id), name, doc))
            for flood in self.floods:
                if flood.index == name:
                    from_ms = int(after[0]) if after else (matches.lower or 0)
                    for doc in flood.docs(from_ms, size + 1):
                        at = _millis(doc.source[ts_field])
                        if at is not None and matches(doc.source):
                            keyed.append(((at, doc.seq if sort[1] == "_shard_doc" else doc.id), name, doc))
        keyed.sort(key=lambda item: item[0])
        if after is not None:
            bound = (int(after[0]), after[1])
            keyed = [item for item in keyed if item[0] > bound]
        hits = [
            {"_index": name, "_id": doc.id, "_score": None, "_source": doc.source, "sort": list(key)} for key, name, doc in keyed[:size]
        ]
        return (
            200,
            {},
            {
                "pit_id": pit,
                "took": 1,
                "timed_out": False,
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {"max_score": None, "hits": hits},
            },
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return None

            def _serve(self) -> None:
                url = urlparse(self.path)
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(self.command, url.path, params, headers, json.loads(raw) if raw else None)
                status, extra, body = standin.answer(request)
                data = json.dumps(body).encode()
                self.send_response(status)
                vendor = "vnd.elasticsearch+json" in headers.get("accept", "")
                self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=9" if vendor else "application/json")
                if standin.flavor == "elasticsearch" and 200 <= status < 300:
                    self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                # A client that gave up (its timeout) has closed the connection: nothing to answer to.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_HEAD = _serve

        return Handler


class _Matcher:
    """The part of the query DSL the stand-in understands, as a predicate on a document's `_source`."""

    def __init__(self, query: dict[str, Any], ts_field: str) -> None:
        self.ts_field = ts_field
        self.lower: int | None = None
        self.query = query
        self._check(query)

    def __call__(self, source: dict[str, Any]) -> bool:
        return self._eval(self.query, source)

    def _check(self, query: dict[str, Any]) -> None:
        if not isinstance(query, dict) or len(query) != 1:
            raise ValueError(f"query malformed, must start with a single key: {json.dumps(query)[:80]}")
        kind, spec = next(iter(query.items()))
        if kind not in ("bool", "range", "match_all", "term", "match", "query_string"):
            raise ValueError(f"unknown query [{kind}]")
        if kind == "bool":
            for clause in ("must", "filter", "should", "must_not"):
                parts = spec.get(clause) or []
                for part in parts if isinstance(parts, list) else [parts]:
                    self._check(part)
        if kind == "range" and self.ts_field in spec:
            lower = spec[self.ts_field].get("gte")
            self.lower = _millis(lower) if lower is not None else None

    def _eval(self, query: dict[str, Any], source: dict[str, Any]) -> bool:
        kind, spec = next(iter(query.items()))
        if kind == "match_all":
            return True
        if kind == "bool":

            def listed(clause: str) -> list[dict[str, Any]]:
                parts = spec.get(clause) or []
                return parts if isinstance(parts, list) else [parts]

            return (
                all(self._eval(q, source) for q in listed("must") + listed("filter"))
                and not any(self._eval(q, source) for q in listed("must_not"))
                and (not listed("should") or any(self._eval(q, source) for q in listed("should")))
            )
        if kind == "range":
            name, bounds = next(iter(spec.items()))
            at = _millis(_lookup(source, name))
            if at is None:
                return False
            low, high = bounds.get("gte"), bounds.get("lte")
            return (low is None or at >= (_millis(low) or 0)) and (high is None or at <= (_millis(high) or 0))
        if kind in ("term", "match"):
            name, wanted = next(iter(spec.items()))
            wanted = wanted.get("query", wanted.get("value")) if isinstance(wanted, dict) else wanted
            have = _lookup(source, name)
            return have == wanted if kind == "term" else str(wanted).lower() in str(have or "").lower()
        text = str(spec.get("query", "*"))
        for term in text.split():
            if term in ("*", "AND"):
                continue
            if ":" in term:
                name, wanted = term.split(":", 1)
                if str(_lookup(source, name)) != wanted.strip('"'):
                    return False
            elif term.lower() not in json.dumps(source).lower():
                return False
        return True
