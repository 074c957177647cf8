"""The `azure_monitor` log kind: a Log Analytics workspace queried with azure-monitor-query (`LogsQueryClient.query_workspace`).

The window is the query's `timespan`; the catalog's KQL is read in pages oldest first
(`| where <time> >= datetime(last) | order by <time> asc | take N`), so that no answer
comes near Log Analytics' result limits (500,000 rows, 64 MB) and memory stays flat.
Rows at the instant a page ended are asked again by the next page and left out there.
A partial answer (`LogsQueryPartialResult`: a limit hit, a shard that failed) is kept,
and the read account says it is partial and why.

Credentials: `DefaultAzureCredential` (environment, workload identity, managed identity,
Azure CLI), or a bearer token fetched beforehand and held in `token_env`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from integrations import roles
from integrations.errors import SourceError
from integrations.logs.store import LogStore, Record, Session, StoreOptions
from integrations.logs.store_fields import MAX_LABEL_CHARS, first_page, flat_labels, iso_utc, stated_line
from integrations.plugin import EnvVarName, SourceKind, secret_from_env
from integrations.remote_calls import RetryableError

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential
    from azure.monitor.query import LogsQueryClient

MAX_PAGE = 50_000
# The time a pre-fetched token is taken to stay valid: Entra tokens last an hour at least.
_STATIC_TOKEN_S = 3600


class AzureMonitorOptions(StoreOptions):
    workspace_id: str = Field(min_length=1, description="Log Analytics workspace id (a GUID)")
    query: str = Field(
        min_length=1,
        description='KQL selecting the rows, e.g. ContainerLogV2 | where ContainerName == "checkout" (the window is the timespan)',
    )
    endpoint: str = Field(
        "https://api.loganalytics.io",
        description="Log Analytics API root (sovereign clouds differ, e.g. https://api.loganalytics.azure.cn)",
    )
    time_column: str = Field("TimeGenerated", min_length=1, description="column holding each row's time")
    message_column: str | None = Field(
        None, description="column holding the log line, e.g. LogMessage (default: the whole row as a JSON object)"
    )
    level_column: str | None = Field(None, description="column holding the level when the line does not state it, e.g. LogLevel")
    token_env: EnvVarName | None = Field(
        None, description="environment variable holding a bearer token for the API (default: DefaultAzureCredential)"
    )
    page_size: int = Field(10_000, ge=1, le=MAX_PAGE, description="rows per query; pages follow each other in time")


class StaticToken:
    """A `TokenCredential` for a bearer token fetched beforehand (`az account get-access-token`, a test server)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + _STATIC_TOKEN_S)


class AzureMonitorSource(LogStore):
    kind = "azure_monitor"

    def __init__(self, options: AzureMonitorOptions) -> None:
        self.options: AzureMonitorOptions = options
        self.endpoint = options.endpoint.rstrip("/")
        self._credential: TokenCredential | None = None
        if options.token_env:
            self._credential = StaticToken(secret_from_env(options.token_env, purpose="azure_monitor token").get_secret_value())
        super().__init__(options)

    def describe(self) -> str:
        return f"Azure Monitor {' '.join(self.options.query.split())!r} in workspace {self.options.workspace_id} at {self.endpoint}"

    def page_query(self, since: datetime) -> str:
        time_column = self.options.time_column
        return (
            f"{self.options.query}\n| where {time_column} >= datetime({iso_utc(since, digits=6)})"
            f"\n| order by {time_column} asc\n| take {self.options.page_size}"
        )

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        client = self._client()
        where = f"Azure Monitor at {self.endpoint} for workspace {self.options.workspace_id}"
        since, seen_there = start, set[str]()
        # The end one millisecond on: the timespan's end is not included, the base drops what lies past the window.
        timespan = (start, end + timedelta(milliseconds=1))
        try:
            while True:
                rows = session.call(partial(self._query, client, since, timespan, session), what=where)
                records: list[Record] = []
                last, at_last = since, set[str]()
                for row in rows:
                    key = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
                    ts = _time(row.get(self.options.time_column))
                    if ts is not None and ts == since and key in seen_there:
                        continue
                    if ts is not None and ts != last:
                        last, at_last = ts, set()
                    at_last.add(key)
                    records.append(self._record(row, ts))
                yield records
                if len(rows) < self.options.page_size:
                    return
                if last == since:
                    # A whole page at one instant: more rows share it than a page holds; go on past it.
                    session.account.partial.append(f"more than {self.options.page_size} rows at {iso_utc(since)}: some were skipped")
                    since, seen_there = since + timedelta(microseconds=1), set()
                else:
                    since, seen_there = last, at_last
        finally:
            client.close()

    def _client(self) -> LogsQueryClient:
        from azure.identity import DefaultAzureCredential
        from azure.monitor.query import LogsQueryClient

        credential = self._credential or DefaultAzureCredential()
        # Retries are ours, bounded by the deadline: the pipeline's own would wait out Retry-After however long.
        return LogsQueryClient(credential, endpoint=self.endpoint, retry_total=0)

    def _query(
        self, client: LogsQueryClient, since: datetime, timespan: tuple[datetime, datetime], session: Session
    ) -> list[dict[str, Any]]:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError, ServiceResponseError
        from azure.monitor.query import LogsQueryPartialResult

        timeout = session.timeout()
        try:
            answer = client.query_workspace(
                self.options.workspace_id,
                self.page_query(since),
                timespan=timespan,
                server_timeout=max(1, int(timeout)),
                connection_timeout=timeout,
                read_timeout=timeout,
                # A plain-http endpoint is a local test server; the SDK refuses to send a token without TLS otherwise.
                enforce_https=not self.endpoint.startswith("http://"),
            )
        except ClientAuthenticationError as exc:
            raise SourceError(
                f"refused the credentials ({_said(exc)}); the identity needs the Log Analytics Reader role on the workspace"
            ) from None
        except HttpResponseError as exc:
            raise _error(exc) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise RetryableError(f"no answer ({type(exc).__name__})") from None
        if isinstance(answer, LogsQueryPartialResult):
            error = answer.partial_error
            reason = " ".join(str(getattr(error, "message", "") or "partial result").split())[:300]
            note = f"Azure Monitor returned a partial result: {reason}"
            if note not in session.account.partial:
                session.account.partial.append(note)
            tables = answer.partial_data
        else:
            tables = answer.tables
        if not tables:
            return []
        table = tables[0]
        return [dict(zip(table.columns, row, strict=False)) for row in table.rows]

    def _record(self, row: dict[str, Any], ts: datetime | None) -> Record:
        options = self.options
        fields = {k: v for k, v in row.items() if k != options.time_column and v not in (None, "")}
        level = str(fields.get(options.level_column) or "") if options.level_column else None
        if options.message_column:
            message = fields.pop(options.message_column, "")
            line = message if isinstance(message, str) else json.dumps(message, default=str)
            line = stated_line(line, level)
        else:
            line = json.dumps(fields, ensure_ascii=False, default=str)
        labels = flat_labels({k: _dynamic(v) for k, v in fields.items()})
        return Record(ts, line, {k: v[:MAX_LABEL_CHARS] for k, v in labels.items()})


def _dynamic(value: Any) -> Any:
    """A `dynamic` column arrives as JSON text: its object becomes nested labels."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _time(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        return raw.astimezone(UTC) if raw.tzinfo else raw.replace(tzinfo=UTC)
    if isinstance(raw, str) and raw:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _said(exc: Any) -> str:
    error = getattr(exc, "error", None)
    text = getattr(error, "message", None) or getattr(exc, "message", None) or type(exc).__name__
    return " ".join(str(text).split())[:300]


def _error(exc: Any) -> SourceError:
    status = int(getattr(exc, "status_code", 0) or 0)
    said = _said(exc)
    if status == 429 or status >= 500:
        headers = exc.response.headers if getattr(exc, "response", None) is not None else {}
        wait = str(headers.get("Retry-After", ""))
        return RetryableError(f"answered {status} ({said})", wait_s=float(wait) if wait.isdigit() else None)
    if status in (401, 403):
        return SourceError(f"refused the credentials ({status} {said}); the identity needs the Log Analytics Reader role on the workspace")
    return SourceError(f"rejected the query ({status} {said})")


def _check(source: AzureMonitorSource) -> str:
    first = first_page(AzureMonitorSource(source.options.model_copy(update={"page_size": 10})), timedelta(hours=1))
    return f"{source.describe()}: credentials accepted, {first} rows in the last hour (first page)"


def _build(options: AzureMonitorOptions, _base_dir: Path) -> AzureMonitorSource:
    return AzureMonitorSource(options)


KIND = SourceKind(
    name="azure_monitor",
    role=roles.LOGS,
    options=AzureMonitorOptions,
    build=_build,
    check=_check,
    summary="Azure Monitor Log Analytics workspace queried in KQL with azure-monitor-query",
)
