"""The `datadog_metrics` kind: the catalog's Datadog metric queries read with datadog-api-client (`GET /api/v1/query`).

Each query's series (`series[].pointlist` of `[epoch ms, value | null]`, tags in
`tag_set`/`scope`, the unit in `unit[0]`/`unit[1]`) become `Series`. The client and its
errors are shared with the log kind (`integrations.datadog_api`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import Field

from integrations import datadog_api, roles
from integrations.errors import SourceError
from integrations.metrics.base import Series
from integrations.metrics.queries import MetricQuery, QueryBounds, SeriesResult, finite, run_queries, shown_labels
from integrations.plugin import EnvVarName, SourceKind, SourceOptions
from integrations.remote_calls import Deadline, with_retries

if TYPE_CHECKING:
    from datadog_api_client import ApiClient


class DatadogOptions(SourceOptions, QueryBounds):
    site_url: str = Field("https://api.datadoghq.com", description="Datadog API root of your site (e.g. https://api.datadoghq.eu)")
    api_key_env: EnvVarName = Field("DD_API_KEY", description="environment variable holding the Datadog API key")
    app_key_env: EnvVarName = Field(
        "DD_APP_KEY", description="environment variable holding the application key (needs the timeseries_query permission)"
    )
    queries: list[MetricQuery] = Field(
        min_length=1, description="Datadog metric queries, e.g. avg:trace.http.request.errors{service:checkout}"
    )
    link_template: str | None = Field(
        None,
        description="link to a query in your Datadog UI; {query}, {from_ms} and {to_ms} are filled in (default: no link)",
    )


def _unit(raw: Any) -> str | None:
    """`unit` is [unit, per_unit], each null or {short_name, name, ...}: "ms", "req/s"."""
    if not isinstance(raw, list | tuple):
        return None
    names = [str(part.get("short_name") or part.get("name") or "") if isinstance(part, dict) else "" for part in raw[:2]]
    names += [""] * (2 - len(names))
    if not names[0]:
        return None
    return f"{names[0]}/{names[1]}" if names[1] else names[0]


def _tags(item: dict[str, Any]) -> dict[str, str]:
    """Tags of one series as labels: `tag_set` when given, else the comma-separated `scope` (`*` is no tag)."""
    tags = item.get("tag_set") or [t for t in str(item.get("scope") or "").split(",") if t and t != "*"]
    labels: dict[str, str] = {}
    for tag in tags:
        key, _, value = str(tag).partition(":")
        labels[key.strip()] = value.strip()
    return labels


def series_of(body: dict[str, Any], query: MetricQuery) -> list[Series]:
    """The `Series` of one `/api/v1/query` answer."""
    if body.get("status") == "error" or body.get("error"):
        raise SourceError(f"Datadog could not run query {query.name!r}: {' '.join(str(body.get('error') or 'error').split())[:300]}")
    items = [item for item in body.get("series") or [] if isinstance(item, dict)]
    several_metrics = len({item.get("metric") for item in items}) > 1
    found: list[Series] = []
    for item in items:
        labels = shown_labels(_tags(item), query)
        if several_metrics:
            # `a{*}, b{*}` in one query: the metric tells the series apart.
            labels = {"metric": str(item.get("metric")), **labels}
        points = [
            (datetime.fromtimestamp(float(at) / 1000, UTC), float(value))
            for at, value in item.get("pointlist") or []
            if value is not None and finite(float(value))
        ]
        found.append(Series(metric=query.name, labels=labels, points=points, unit=query.unit or _unit(item.get("unit"))))
    return found


class DatadogMetricsSource:
    def __init__(self, options: DatadogOptions) -> None:
        self.name = options.name or "datadog_metrics"
        self.options = options
        self._keys = datadog_api.DatadogKeys.from_env(
            options.api_key_env, options.app_key_env, permission="timeseries_query", purpose="datadog_metrics"
        )
        self.where = f"Datadog at {options.site_url.rstrip('/')}"

    def _call(self, what: str, timeout: float, call: Callable[[ApiClient], dict[str, Any]]) -> dict[str, Any]:
        def once() -> dict[str, Any]:
            with datadog_api.client(self.options.site_url.rstrip("/"), self._keys, timeout) as client:
                return call(client)

        return datadog_api.guarded(once, what, self._keys, where=self.where)

    def series(self, start: datetime, end: datetime) -> SeriesResult:
        deadline = Deadline(self.options.deadline_s)
        first, last = int(start.timestamp()), int(end.timestamp())

        from datadog_api_client.v1.api.metrics_api import MetricsApi

        def read(query: MetricQuery) -> list[Series]:
            def once() -> list[Series]:
                timeout = deadline.timeout(self.options.timeout_s)
                answer = self._call(
                    f"query {query.name!r}",
                    timeout,
                    # As a plain dict: the same parsing serves the client's model and a future raw call.
                    lambda client: MetricsApi(client).query_metrics(_from=first, to=last, query=query.query).to_dict(),
                )
                return series_of(answer, query)

            found = with_retries(once, retries=self.options.retries, deadline=deadline)
            if self.options.link_template:
                link = self.options.link_template.format(query=quote(query.query, safe=""), from_ms=first * 1000, to_ms=last * 1000)
                for item in found:
                    item.url = link
            # Only points inside the window: Datadog rounds the window out to its rollup interval.
            for item in found:
                item.points = [p for p in item.points if start <= p[0] <= end]
            return [item for item in found if item.points]

        return run_queries(
            self.options.queries, read, source=self.name, max_series=self.options.max_series, max_points=self.options.max_points
        )


def _check(source: DatadogMetricsSource) -> str:
    from datadog_api_client.v1.api.authentication_api import AuthenticationApi
    from datadog_api_client.v1.api.metrics_api import MetricsApi

    answer = source._call("the key check", source.options.timeout_s, lambda client: AuthenticationApi(client).validate().to_dict())
    if not answer.get("valid", False):
        raise SourceError(f"{source.where} says the API key in {source.options.api_key_env} is not valid")
    # The validate call checks the API key only: one short query proves the application key and its permission.
    end = datetime.now(UTC)
    query = source.options.queries[0]
    source._call(
        f"query {query.name!r}",
        source.options.timeout_s,
        lambda client: (
            MetricsApi(client)
            .query_metrics(_from=int((end - timedelta(minutes=10)).timestamp()), to=int(end.timestamp()), query=query.query)
            .to_dict()
        ),
    )
    return f"{source.where}: keys accepted, {len(source.options.queries)} queries"


def _build(options: DatadogOptions, _base_dir: Path) -> DatadogMetricsSource:
    return DatadogMetricsSource(options)


KIND = SourceKind(
    name="datadog_metrics",
    role=roles.METRICS,
    options=DatadogOptions,
    build=_build,
    check=_check,
    summary="Datadog metric queries (/api/v1/query) with datadog-api-client",
)
