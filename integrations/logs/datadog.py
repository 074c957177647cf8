"""The `datadog` log kind: a Datadog log search read with datadog-api-client v2 (`POST /api/v2/logs/events/search`).

The window goes in as absolute ISO times (`filter.from`/`filter.to`), sorted by
timestamp ascending, up to 1,000 logs a page, the next page asked with the cursor
`meta.page.after`. Each log's message is its line, its `status` the level when the
message does not say it, and its `host`, `service`, tags and attributes its labels.
The client and its errors are shared with the metrics kind (`integrations.datadog_api`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field

from integrations import datadog_api, roles
from integrations.errors import SourceError
from integrations.logs.store import LogStore, Record, Session, StoreOptions
from integrations.logs.store_fields import first_page, flat_labels, iso_utc, stated_line, tag_labels
from integrations.plugin import EnvVarName, SourceKind

MAX_PAGE = 1000
# Datadog keeps milliseconds: the bounds are widened to whole ones, the base drops what lies outside the window.
_MS = timedelta(milliseconds=1)
_TIMED_OUT = "Datadog ended a search page early (status timeout): some logs may be missing"


class DatadogLogsOptions(StoreOptions):
    query: str = Field("*", min_length=1, description="Datadog log search query, e.g. service:checkout env:prod")
    indexes: list[str] = Field(["*"], min_length=1, description="log indexes to search (default: every index)")
    site: str = Field("datadoghq.com", description="your Datadog site: datadoghq.com, datadoghq.eu, us3.datadoghq.com, ...")
    api_url: str | None = Field(None, description="API root to call instead of https://api.{site} (a proxy, a test server)")
    api_key_env: EnvVarName = Field("DD_API_KEY", description="environment variable holding the Datadog API key")
    app_key_env: EnvVarName = Field(
        "DD_APP_KEY", description="environment variable holding the application key (needs the logs_read_data permission)"
    )
    page_size: int = Field(MAX_PAGE, ge=1, le=MAX_PAGE, description="logs per request (Datadog allows at most 1000)")


class DatadogLogSource(LogStore):
    kind = "datadog"

    def __init__(self, options: DatadogLogsOptions) -> None:
        self.options: DatadogLogsOptions = options
        self.url = (options.api_url or f"https://api.{options.site}").rstrip("/")
        self._keys = datadog_api.DatadogKeys.from_env(
            options.api_key_env, options.app_key_env, permission="logs_read_data", purpose="datadog logs"
        )
        super().__init__(options)

    def describe(self) -> str:
        return f"Datadog logs {self.options.query!r} in {','.join(self.options.indexes)} at {self.url}"

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        from datadog_api_client.v2.api.logs_api import LogsApi
        from datadog_api_client.v2.model.logs_list_request import LogsListRequest
        from datadog_api_client.v2.model.logs_list_request_page import LogsListRequestPage
        from datadog_api_client.v2.model.logs_query_filter import LogsQueryFilter
        from datadog_api_client.v2.model.logs_sort import LogsSort

        query = LogsQueryFilter(
            # Whole milliseconds, cut down (`iso_utc`); the end one millisecond on, so that an entry stamped at the
            # end stays whether Datadog's bound includes it or not.
            _from=iso_utc(start),
            to=iso_utc(end + _MS),
            query=self.options.query,
            indexes=list(self.options.indexes),
        )
        cursor: str | None = None
        with datadog_api.client(self.url, self._keys, self.options.timeout_s, raw=True) as client:
            api = LogsApi(client)
            while True:
                page = LogsListRequestPage(limit=self.options.page_size, **({"cursor": cursor} if cursor else {}))
                body = LogsListRequest(filter=query, page=page, sort=LogsSort.TIMESTAMP_ASCENDING)

                def once(body: LogsListRequest = body) -> dict[str, Any]:
                    client.configuration.request_timeout = session.timeout()
                    return datadog_api.guarded(lambda: _json(api.list_logs(body=body)), "the log search", self._keys)

                answer = session.call(once, what=f"Datadog logs search at {self.url}")
                meta = answer.get("meta") or {}
                if meta.get("status") == "timeout" and _TIMED_OUT not in session.account.partial:
                    session.account.partial.append(_TIMED_OUT)
                yield [record_of(item) for item in answer.get("data") or []]
                cursor = ((meta.get("page") or {}).get("after")) or None
                if cursor is None:
                    return
                session.follow(cursor)


def record_of(item: dict[str, Any]) -> Record:
    """One log of a search answer: `{"id", "type": "log", "attributes": {timestamp, message, status, host, service, tags, attributes}}`."""
    attributes = item.get("attributes") or {}
    labels = tag_labels(attributes.get("tags") or [])
    flat_labels(attributes.get("attributes") or {}, into=labels)
    # `host` alone would be read as a peer the event talks to; Datadog's host is the machine that wrote the log.
    for key, label in (("host", "hostname"), ("service", "service")):
        if attributes.get(key):
            labels[label] = str(attributes[key])
    return Record(_time(attributes.get("timestamp")), stated_line(str(attributes.get("message") or ""), attributes.get("status")), labels)


def _json(response: Any) -> dict[str, Any]:
    """The body of a search answer (an urllib3 response, the client's models left unbuilt)."""
    try:
        answer = json.loads(response.data)
    except ValueError:
        raise SourceError("answered the log search with a body that is not JSON") from None
    if not isinstance(answer, dict):
        raise SourceError("answered the log search in an unexpected shape")
    return answer


def _time(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        return raw.astimezone(UTC) if raw.tzinfo else raw.replace(tzinfo=UTC)
    if isinstance(raw, str) and raw:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _check(source: DatadogLogSource) -> str:
    first = first_page(DatadogLogSource(source.options.model_copy(update={"page_size": 10})), timedelta(minutes=15))
    return f"{source.describe()}: keys accepted, {first} logs in the last 15 minutes (first page)"


def _build(options: DatadogLogsOptions, _base_dir: Path) -> DatadogLogSource:
    return DatadogLogSource(options)


KIND = SourceKind(
    name="datadog",
    role=roles.LOGS,
    options=DatadogLogsOptions,
    build=_build,
    check=_check,
    summary="Datadog log search (/api/v2/logs/events/search) with datadog-api-client",
)
