"""The `newrelic` metrics kind: the catalog's NRQL `TIMESERIES` queries run through NerdGraph (`POST /graphql`).

The NRQL travels as a GraphQL variable (`$nrql: Nrql!`), never pasted into the
GraphQL document, so a quote in a query cannot change what is asked. NerdGraph
reports most failures with HTTP 200 and an `errors[]` list; those are read like
HTTP errors. Each row of a `TIMESERIES` answer is one bucket (`beginTimeSeconds`,
`endTimeSeconds`, `facet` and one key per aggregate); each aggregate and facet value
becomes one `Series`, its points at the start of each bucket.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr, field_validator

from integrations import roles
from integrations.errors import SourceError
from integrations.metrics.base import Series
from integrations.metrics.queries import MetricQuery, QueryBounds, SeriesResult, finite, run_queries, shown_labels
from integrations.plugin import EnvVarName, SourceKind, SourceOptions, secret_from_env
from integrations.remote_calls import Deadline, RetryableError, with_retries

# The document never changes; only its variables do.
NRQL_DOCUMENT = """
query IncidentResponderSeries($accountId: Int!, $nrql: Nrql!, $timeout: Seconds) {
  actor {
    account(id: $accountId) {
      nrql(query: $nrql, timeout: $timeout) {
        results
        metadata { facets }
      }
    }
  }
}
""".strip()

ACCOUNT_DOCUMENT = "query IncidentResponderCheck($accountId: Int!) { actor { account(id: $accountId) { id name } } }"

_BUCKET_KEYS = {"beginTimeSeconds", "endTimeSeconds", "facet", "timestamp"}
_RETRYABLE_CLASSES = {"TOO_MANY_REQUESTS", "SERVER_ERROR", "INTERNAL_SERVER_ERROR", "TIMEOUT"}
_REFUSED_CLASSES = {"UNAUTHORIZED", "FORBIDDEN", "UNAUTHENTICATED"}


class NrqlQuery(MetricQuery):
    @field_validator("query")
    @classmethod
    def _timeseries_without_window(cls, value: str) -> str:
        if not re.search(r"\bTIMESERIES\b", value, re.IGNORECASE):
            raise ValueError("a newrelic query must be a TIMESERIES query (e.g. ... TIMESERIES 1 minute)")
        if re.search(r"\b(SINCE|UNTIL)\b", value, re.IGNORECASE):
            raise ValueError("leave SINCE/UNTIL out of a newrelic query: the investigation's window is added")
        return value


class NewRelicOptions(SourceOptions, QueryBounds):
    account_id: int = Field(gt=0, description="New Relic account id the queries run in")
    api_key_env: EnvVarName = Field("NEW_RELIC_API_KEY", description="environment variable holding a New Relic user key (NRAK-...)")
    url: str = Field(
        "https://api.newrelic.com/graphql", description="NerdGraph endpoint (EU accounts: https://api.eu.newrelic.com/graphql)"
    )
    queries: list[NrqlQuery] = Field(min_length=1, description="NRQL TIMESERIES queries without SINCE/UNTIL")
    link_template: str | None = Field(
        None, description="link to a query in your New Relic UI; {nrql}, {from_ms} and {to_ms} are filled in (default: no link)"
    )


def _values(row: dict[str, Any], facets: list[str]) -> dict[str, float]:
    """The aggregate values of one bucket, by name; nested ones (percentiles) as `percentile.duration.95`."""
    found: dict[str, float] = {}
    for key, value in row.items():
        if key in _BUCKET_KEYS or key in facets:
            continue
        if isinstance(value, dict):
            for inner, number in value.items():
                if isinstance(number, int | float) and not isinstance(number, bool) and finite(float(number)):
                    found[f"{key}.{inner}"] = float(number)
        elif isinstance(value, int | float) and not isinstance(value, bool) and finite(float(value)):
            found[key] = float(value)
    return found


def series_of(nrql: dict[str, Any], query: MetricQuery) -> list[Series]:
    """The `Series` of one `nrql { results metadata { facets } }` answer."""
    facets = [str(f) for f in ((nrql.get("metadata") or {}).get("facets") or [])]
    rows = [row for row in nrql.get("results") or [] if isinstance(row, dict)]
    found: dict[tuple[str, tuple[tuple[str, str], ...]], Series] = {}
    aggregates = {name for row in rows for name in _values(row, facets)}
    for row in rows:
        if "beginTimeSeconds" not in row:
            raise SourceError(f"query {query.name!r} returned no time buckets; is it a TIMESERIES query?")
        at = datetime.fromtimestamp(float(row["beginTimeSeconds"]), UTC)
        facet = row.get("facet")
        values = facet if isinstance(facet, list) else [facet] if facet is not None else []
        labels = shown_labels({name: str(value) for name, value in zip(facets or ["facet"], values, strict=False)}, query)
        for aggregate, value in _values(row, facets).items():
            # One aggregate: the series is the query; several (`SELECT average(x), max(x)`): the aggregate tells them apart.
            series_labels = labels if len(aggregates) == 1 else {"aggregate": aggregate, **labels}
            key = (aggregate, tuple(sorted(series_labels.items())))
            series = found.get(key)
            if series is None:
                series = found[key] = Series(metric=query.name, labels=series_labels, unit=query.unit)
            series.points.append((at, value))
    return list(found.values())


class NewRelicSource:
    def __init__(self, options: NewRelicOptions, *, transport: httpx.BaseTransport | None = None) -> None:
        self.name = options.name or "newrelic"
        self.options = options
        self._key: SecretStr = secret_from_env(options.api_key_env, purpose="newrelic user key")
        self._transport = transport
        self.where = f"New Relic NerdGraph at {options.url}"

    def graphql(self, document: str, variables: dict[str, Any], timeout: float) -> dict[str, Any]:
        """`data` of one NerdGraph call; errors (HTTP ones and those in `errors[]` with a 200) as SourceError."""
        headers = {"API-Key": self._key.get_secret_value(), "Content-Type": "application/json", "Accept": "application/json"}
        try:
            with httpx.Client(timeout=timeout, transport=self._transport) as client:
                response = client.post(self.options.url, json={"query": document, "variables": variables}, headers=headers)
        except httpx.TimeoutException:
            raise RetryableError(f"{self.where} did not answer within {timeout:.1f}s") from None
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.where} cannot be reached ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        message = " ".join(" ".join(str(e.get("message", "")) for e in errors).split())[:300]
        classes = {str((e.get("extensions") or {}).get("errorClass", "")).upper() for e in errors}
        status = response.status_code
        if status == 429 or status >= 500 or classes & _RETRYABLE_CLASSES:
            retry_after = response.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.isdigit() else None
            raise RetryableError(f"{self.where} answered {status}{': ' + message if message else ''}", wait_s=wait)
        if status in (401, 403) or classes & _REFUSED_CLASSES:
            raise SourceError(
                f"{self.where} refused the user key in {self.options.api_key_env} ({status}{': ' + message if message else ''})"
            )
        if status >= 400:
            raise SourceError(f"{self.where} answered {status}{': ' + message if message else ''}")
        if errors:
            # HTTP 200 with errors: NRQL syntax, an unknown account, a query NerdGraph could not run.
            raise SourceError(f"{self.where} could not run it: {message or 'error without a message'}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise SourceError(f"{self.where} answered {status} without data")
        return data

    def series(self, start: datetime, end: datetime) -> SeriesResult:
        deadline = Deadline(self.options.deadline_s)
        from_ms, to_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)

        def read(query: MetricQuery) -> list[Series]:
            nrql = f"{query.query} SINCE {from_ms} UNTIL {to_ms}"

            def once() -> list[Series]:
                timeout = deadline.timeout(self.options.timeout_s)
                variables = {"accountId": self.options.account_id, "nrql": nrql, "timeout": max(1, int(timeout))}
                data = self.graphql(NRQL_DOCUMENT, variables, timeout)
                account = ((data.get("actor") or {}).get("account")) or {}
                answer = account.get("nrql")
                if not isinstance(answer, dict):
                    raise SourceError(f"{self.where} returned no NRQL result for account {self.options.account_id}")
                return series_of(answer, query)

            found = with_retries(once, retries=self.options.retries, deadline=deadline)
            if self.options.link_template:
                link = self.options.link_template.format(nrql=quote(nrql, safe=""), from_ms=from_ms, to_ms=to_ms)
                for item in found:
                    item.url = link
            for item in found:
                item.points = [p for p in item.points if start <= p[0] <= end]
            return [item for item in found if item.points]

        return run_queries(
            self.options.queries, read, source=self.name, max_series=self.options.max_series, max_points=self.options.max_points
        )


def _check(source: NewRelicSource) -> str:
    data = source.graphql(ACCOUNT_DOCUMENT, {"accountId": source.options.account_id}, source.options.timeout_s)
    account = (data.get("actor") or {}).get("account")
    if not isinstance(account, dict):
        raise SourceError(f"{source.where}: the user key in {source.options.api_key_env} cannot see account {source.options.account_id}")
    return f"New Relic account {account.get('id')} ({account.get('name', '?')}), {len(source.options.queries)} queries"


def _build(options: NewRelicOptions, _base_dir: Path) -> NewRelicSource:
    return NewRelicSource(options)


KIND = SourceKind(
    name="newrelic",
    role=roles.METRICS,
    options=NewRelicOptions,
    build=_build,
    check=_check,
    summary="NRQL TIMESERIES queries through New Relic NerdGraph",
)
