"""What the `elasticsearch` and `opensearch` log kinds share: options, the point-in-time walk, documents as records.

A window is read oldest first with `search_after` inside a point in time (PIT), so
that pages stay consistent while the index takes new documents and no request ever
pages with `from` (refused past 10,000 hits). Each page is sorted on the timestamp
field, then on a tiebreaker unique per document, and the next page starts after the
last hit's sort values. The PIT is closed when the read ends, however it ends.

The two client libraries differ in their PIT calls and their errors: a kind gives
a `SearchClient` that makes the three calls and turns its library's errors into
`RetryableError` / `SourceError`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, model_validator

from core.timeparse import as_utc
from integrations.errors import SourceError
from integrations.logs.store import LogStore, Record, Session, StoreOptions
from integrations.plugin import EnvVarName

# How long the PIT lives between two pages: longer than the slowest page we wait for.
KEEP_ALIVE = "2m"
DEFAULT_PAGE = 5000


class SearchOptions(StoreOptions):
    url: str = Field(description="cluster root, e.g. https://logs.example.com:9200")
    index: str = Field(min_length=1, description="index, alias, data stream or pattern to read, e.g. logs-checkout-*")
    query: str | dict[str, Any] = Field(
        "*", description="Lucene query string (query_string syntax) or a query DSL mapping; the window is added as a range filter"
    )
    timestamp_field: str = Field("@timestamp", description="the documents' time field, used for the window and the order")
    message_field: str = Field("message", description="the field holding the log line; the other fields become the event's fields")
    username_env: EnvVarName | None = Field(None, description="environment variable holding the basic-auth user name")
    password_env: EnvVarName | None = Field(None, description="environment variable holding the basic-auth password")
    page_size: int = Field(DEFAULT_PAGE, ge=1, le=10_000, description="hits per search request (at most 10,000)")

    @model_validator(mode="after")
    def _user_and_password_together(self) -> SearchOptions:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env go together")
        return self


class SearchClient(ABC):
    """One cluster's point-in-time calls through its client library, errors already sorted into retryable and not."""

    @abstractmethod
    def open_pit(self, index: str, timeout: float) -> str: ...

    @abstractmethod
    def search(self, body: dict[str, Any], timeout: float) -> dict[str, Any]: ...

    @abstractmethod
    def close_pit(self, pit: str) -> None: ...


class SearchStore(LogStore):
    """An index of log documents as a log source, through a `SearchClient`."""

    product = "search cluster"
    # Unique per document within a point in time, so that search_after neither skips nor repeats a hit.
    tiebreaker = "_shard_doc"

    def __init__(self, options: SearchOptions) -> None:
        self.search_options = options
        self.where = f"{self.product} at {options.url.rstrip('/')}"
        self._client: SearchClient | None = None
        super().__init__(options, options.name or self.kind)

    @abstractmethod
    def client(self) -> SearchClient:
        """A new client for this cluster with the options' credentials."""

    def connection(self) -> SearchClient:
        """The source's client, made once: its connection pool serves every slice of every read."""
        if self._client is None:
            self._client = self.client()
        return self._client

    def describe(self) -> str:
        query = self.search_options.query
        shown = query if isinstance(query, str) else json.dumps(query, sort_keys=True)
        return f"{shown} in index {self.search_options.index} at {self.search_options.url.rstrip('/')}"

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        options = self.search_options
        client = self.connection()
        pit = session.call(lambda: client.open_pit(options.index, session.timeout()), what="open point in time")
        try:
            after: list[Any] | None = None
            while True:
                body = self.body(start, end, pit, after)
                answer = session.call(lambda body=body: client.search(body, session.timeout()), what="search")  # type: ignore[misc]
                # A PIT id may change from page to page: the next request names the newest.
                pit = str(answer.get("pit_id") or pit)
                hits = (answer.get("hits") or {}).get("hits") or []
                if hits:
                    yield [self.record(hit) for hit in hits]
                if len(hits) < options.page_size:
                    return
                after = hits[-1].get("sort")
                if not after:
                    raise SourceError(f"{self.where} answered hits without sort values; search_after cannot page on")
                session.follow(after)
        finally:
            # An unclosed PIT holds the cluster's resources until it expires: best effort, the read is over either way.
            with suppress(SourceError):
                client.close_pit(pit)

    def body(self, start: datetime, end: datetime, pit: str, after: list[Any] | None) -> dict[str, Any]:
        options = self.search_options
        window = {
            "range": {
                options.timestamp_field: {
                    "gte": as_utc(start).isoformat(),
                    "lte": as_utc(end).isoformat(),
                    "format": "strict_date_optional_time_nanos",
                }
            }
        }
        query = options.query
        chosen = {"query_string": {"query": query}} if isinstance(query, str) else query
        body: dict[str, Any] = {
            "size": options.page_size,
            "query": {"bool": {"must": [chosen], "filter": [window]}},
            "sort": [{options.timestamp_field: {"order": "asc"}}, {self.tiebreaker: {"order": "asc"}}],
            "pit": {"id": pit, "keep_alive": KEEP_ALIVE},
            "track_total_hits": False,
        }
        if after is not None:
            body["search_after"] = after
        return body

    def record(self, hit: Mapping[str, Any]) -> Record:
        options = self.search_options
        fields = flatten(hit.get("_source") or {})
        stamp = fields.pop(options.timestamp_field, None)
        line = fields.pop(options.message_field, None)
        if line is None:
            # A document without the message field still says something: its fields, as a JSON line would.
            line = json.dumps(hit.get("_source") or {}, default=str)
        return Record(_parse_time(stamp), str(line), {k: _text(v) for k, v in fields.items() if v is not None})

    def check(self) -> str:
        """A point in time opened and closed on the index: the cluster answers, the index exists, the credentials may read it."""
        client = self.connection()
        client.close_pit(client.open_pit(self.search_options.index, self.search_options.timeout_s))
        return f"{self.where}: index {self.search_options.index} readable"


def flatten(source: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys (`kubernetes.pod.name`); lists and scalars stay as values."""
    flat: dict[str, Any] = {}
    for key, value in source.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _parse_time(value: Any) -> datetime | None:
    """A document's time: an ISO 8601 text (nanoseconds allowed) or epoch milliseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        # Python parses at most microseconds: nanosecond fractions are cut to six digits.
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return as_utc(moment)


def error_line(body: Any) -> str:
    """The `type: reason` of an Elasticsearch / OpenSearch error body, on one line."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            cause = (error.get("root_cause") or [error])[0] if isinstance(error.get("root_cause"), list) else error
            kind, reason = cause.get("type", ""), cause.get("reason", "")
            return " ".join(f"{kind}: {reason}".split())[:300]
        if isinstance(error, str):
            return " ".join(error.split())[:300]
    return " ".join(str(body or "").split())[:300]
