"""The `loki` log kind: a LogQL log query read over Loki's HTTP API `query_range`, oldest first, page by page.

Loki answers at most `limit` entries per request, so the window is walked forward
(`direction=forward`): each next request starts at the nanosecond of the last entry
seen, because more entries may share that nanosecond than the page held, and the
entries of that nanosecond already read are dropped as duplicates. Loki's `end` is
exclusive, so the window's last nanosecond is asked for as `end + 1`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator

from integrations import roles
from integrations.errors import SourceError
from integrations.logs.store import LogStore, Record, Session, StoreOptions
from integrations.plugin import EnvVarName, SourceKind, secret_from_env
from integrations.remote_calls import RetryableError

# Loki's default `max_entries_limit_per_query`: a larger page is refused with a 400.
DEFAULT_PAGE = 5000
QUERY_RANGE = "/loki/api/v1/query_range"
# Loki's own `discover_service_name` order: the label it would call service_name when a stream has none.
_SERVICE_LABELS = ("service", "app", "application", "name", "app_kubernetes_io_name", "container", "container_name", "k8s_container_name")
_MAX_ERROR = 300


class LokiOptions(StoreOptions):
    url: str = Field(description="Loki (or its gateway) root, e.g. http://loki-gateway.monitoring:3100")
    query: str = Field(min_length=1, description='LogQL log query for the service, e.g. {namespace="shop", app="checkout"} |= "error"')
    org_id: str | None = Field(None, description="tenant sent as X-Scope-OrgID (multi-tenant Loki, Grafana Cloud's user id)")
    username_env: EnvVarName | None = Field(None, description="environment variable holding the basic-auth user name")
    password_env: EnvVarName | None = Field(
        None, description="environment variable holding the basic-auth password or Grafana Cloud API key"
    )
    token_env: EnvVarName | None = Field(None, description="environment variable holding a bearer token (an authenticating proxy)")
    page_size: int = Field(
        DEFAULT_PAGE, ge=1, le=100_000, description="entries per request; at most the server's max_entries_limit_per_query"
    )

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> LokiOptions:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env go together")
        if self.token_env is not None and self.username_env is not None:
            raise ValueError("give either token_env or username_env/password_env, not both")
        return self


class LokiStore(LogStore):
    """A Loki log query as a log source."""

    kind = "loki"

    def __init__(self, options: LokiOptions) -> None:
        self.url = options.url.rstrip("/")
        self.query = options.query
        self.where = f"Loki at {self.url}"
        self.page_size = options.page_size
        self.loki_options = options
        super().__init__(options, options.name or "loki")

    def describe(self) -> str:
        return f"{self.query} at {self.url}"

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        cursor, stop = _ns(start), _ns(end) + 1
        # Entries of the cursor's nanosecond already yielded: the next page starts there again.
        seen_at_cursor: set[tuple[str, str]] = set()
        with self._client() as client:
            while cursor < stop:
                params = {"query": self.query, "start": str(cursor), "end": str(stop), "limit": str(self.page_size), "direction": "forward"}
                entries = session.call(lambda params=params: self._page(client, params, session.timeout()), what=f"{self.where}")  # type: ignore[misc]
                if entries and entries[-1][0] < cursor:
                    raise SourceError(f"{self.where} answered entries from before the start it was asked for (a page loop?); stopped")
                fresh = [e for e in entries if e[0] > cursor or (e[0] == cursor and (e[1], e[3]) not in seen_at_cursor)]
                if fresh:
                    yield [Record(_time(ns), line, labels) for ns, line, labels, _ in fresh]
                if len(entries) < self.page_size:
                    return
                last = entries[-1][0]
                if last == cursor and not fresh:
                    # A whole page of one nanosecond, all seen: the rest of that nanosecond cannot be reached by time.
                    session.account.partial.append(
                        f"more than {self.page_size} entries at {_time(last).isoformat()}: the rest of them skipped"
                    )
                    cursor, seen_at_cursor = last + 1, set()
                    continue
                if last != cursor:
                    seen_at_cursor = set()
                cursor = last
                seen_at_cursor.update((line, key) for ns, line, _, key in entries if ns == last)

    def _client(self) -> Any:
        """An httpx client with the tenant and credentials; the variables are read now, so an unset one fails this read by name."""
        import httpx

        return httpx.Client(base_url=self.url, headers=_headers(self.loki_options), auth=_basic_auth(self.loki_options))

    def _page(self, client: Any, params: dict[str, str], timeout: float) -> list[tuple[int, str, dict[str, str], str]]:
        import httpx

        try:
            response = client.get(QUERY_RANGE, params=params, timeout=timeout)
        except httpx.TimeoutException:
            raise RetryableError(f"{self.where} did not answer within {timeout:.1f}s") from None
        except httpx.HTTPError as exc:
            # The exception text may carry the URL with credentials in it; the class name says enough.
            raise SourceError(f"{self.where} cannot be reached ({type(exc).__name__})") from None
        return _entries(_body(response, self.where, self.query))

    def check(self) -> str:
        """One small query over the last hour: the URL, the credentials, the tenant and the LogQL all answer."""
        now = datetime.now(UTC)
        params = {"query": self.query, "start": str(_ns(now) - 3600 * 10**9), "end": str(_ns(now)), "limit": "1", "direction": "backward"}
        with self._client() as client:
            found = self._page(client, params, self.options.timeout_s)
        return f"{self.where} accepts the query; {'entries' if found else 'no entries'} in the last hour"


def _headers(options: LokiOptions) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if options.org_id:
        headers["X-Scope-OrgID"] = options.org_id
    if options.token_env:
        headers["Authorization"] = f"Bearer {secret_from_env(options.token_env, purpose='loki token').get_secret_value()}"
    return headers


def _basic_auth(options: LokiOptions) -> tuple[str, str] | None:
    if options.username_env is None or options.password_env is None:
        return None
    user = secret_from_env(options.username_env, purpose="loki user name")
    password: SecretStr = secret_from_env(options.password_env, purpose="loki password")
    return user.get_secret_value(), password.get_secret_value()


def _ns(moment: datetime) -> int:
    moment = moment.astimezone(UTC)
    # Integer arithmetic: a float of epoch nanoseconds loses the last digits.
    return (int(moment.replace(microsecond=0).timestamp()) * 1_000_000 + moment.microsecond) * 1000


def _time(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns // 1000) % 1_000_000)


def _body(response: Any, where: str, query: str) -> dict[str, Any]:
    """The JSON of an answer, or the error a responder can act on (429/5xx retryable, Loki's own text quoted)."""
    status = response.status_code
    text = " ".join(response.text.split())[:_MAX_ERROR]
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After", "")
        wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
        raise RetryableError(f"{where} answered {status}{': ' + text if text else ''}", wait_s=wait)
    if status in (401, 403):
        raise SourceError(
            f"{where} refused the credentials ({status}{': ' + text if text else ''}); check the credential variables and org_id"
        )
    if status == 400:
        raise SourceError(f"{where} rejected the query {query}: {text}")
    if status >= 400:
        raise SourceError(f"{where} answered {status}{': ' + text if text else ''}; is the url Loki's root?")
    try:
        body = response.json()
    except ValueError:
        raise SourceError(f"{where} answered {status} without JSON; is the url Loki's root?") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        raise SourceError(f"{where} answered {status} without a success status")
    return body


def _entries(body: dict[str, Any]) -> list[tuple[int, str, dict[str, str], str]]:
    """Every entry of a `streams` answer as (ns, line, labels, stream key), ascending in time across streams."""
    data = body.get("data")
    if not isinstance(data, dict):
        raise SourceError("Loki answered without data")
    if data.get("resultType") != "streams":
        raise SourceError(f"the query returned {data.get('resultType')!r}, not log lines: give a log query, not a metric query")
    entries: list[tuple[int, str, dict[str, str], str]] = []
    for stream in data.get("result") or []:
        labels = {str(k): str(v) for k, v in (stream.get("stream") or {}).items()}
        if "service_name" not in labels:
            found = next((labels[k] for k in _SERVICE_LABELS if labels.get(k)), None)
            if found is not None:
                labels["service_name"] = found
        key = repr(sorted(labels.items()))
        for value in stream.get("values") or []:
            own = labels
            # Loki 3 adds the entry's structured metadata as a third element.
            if len(value) > 2 and isinstance(value[2], dict):
                own = {**labels, **{str(k): str(v) for k, v in value[2].items()}}
            entries.append((int(value[0]), str(value[1]), own, key))
    entries.sort(key=lambda e: e[0])
    return entries


def _check(source: LokiStore) -> str:
    return source.check()


def _build(options: LokiOptions, _base_dir: Path) -> LokiStore:
    return LokiStore(options)


KIND = SourceKind(
    name="loki",
    role=roles.LOGS,
    options=LokiOptions,
    build=_build,
    check=_check,
    summary="a LogQL log query over Loki's HTTP API (query_range, forward, paged by time)",
)
