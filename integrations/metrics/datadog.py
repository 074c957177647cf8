"""The `datadog_metrics` kind: the catalog's Datadog metric queries read with datadog-api-client (`GET /api/v1/query`).

Each query's series (`series[].pointlist` of `[epoch ms, value | null]`, tags in
`tag_set`/`scope`, the unit in `unit[0]`/`unit[1]`) become `Series`. The client's own
retries stay off: a 429 waits what `X-RateLimit-Reset` says only while the source's
deadline allows, which the client's retry policy cannot know.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import Field, SecretStr

from integrations import roles
from integrations.errors import SourceError
from integrations.metrics.base import Series
from integrations.metrics.queries import MetricQuery, QueryBounds, SeriesResult, finite, run_queries, shown_labels
from integrations.plugin import EnvVarName, SourceKind, SourceOptions, secret_from_env
from integrations.remote_calls import Deadline, RetryableError, with_retries

if TYPE_CHECKING:
    from datadog_api_client import ApiClient
    from datadog_api_client.exceptions import ApiException


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
        self._api_key: SecretStr = secret_from_env(options.api_key_env, purpose="datadog_metrics API key")
        self._app_key: SecretStr = secret_from_env(options.app_key_env, purpose="datadog_metrics application key")
        self.where = f"Datadog at {options.site_url.rstrip('/')}"

    def _client(self, timeout: float) -> ApiClient:
        # The client is imported when a source reads, not when the registry lists kinds: it is a large package.
        from datadog_api_client import ApiClient, Configuration

        configuration = Configuration(
            host=self.options.site_url.rstrip("/"),
            api_key={"apiKeyAuth": self._api_key.get_secret_value(), "appKeyAuth": self._app_key.get_secret_value()},
            request_timeout=timeout,
        )
        # Retries are ours (bounded by the deadline); the client's would sleep for as long as the reset says.
        configuration.enable_retry = False
        return ApiClient(configuration)

    def _call(self, what: str, timeout: float, call: Callable[[ApiClient], dict[str, Any]]) -> dict[str, Any]:
        import urllib3
        from datadog_api_client.exceptions import ApiException, OpenApiException

        try:
            with self._client(timeout) as client:
                return call(client)
        except ApiException as exc:
            raise self._error(exc, what) from None
        except urllib3.exceptions.HTTPError as exc:
            # urllib3's text names the URL and the cause; the class name is enough and carries nothing secret.
            raise RetryableError(f"{self.where} cannot be reached ({type(exc).__name__})") from None
        except OpenApiException as exc:
            raise SourceError(f"{self.where} answered in an unexpected shape for {what} ({type(exc).__name__})") from None

    def _error(self, exc: ApiException, what: str) -> SourceError:
        # Never str(exc): it prints the response headers; only the status and Datadog's own `errors` are shown.
        status = int(exc.status or 0)
        body = exc.body if isinstance(exc.body, dict) else {}
        errors = " ".join(" ".join(str(e) for e in body.get("errors") or []).split())[:300]
        detail = f": {errors}" if errors else ""
        headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
        if status == 429:
            reset = headers.get("x-ratelimit-reset", "")
            wait = float(reset) if reset.isdigit() else None
            return RetryableError(f"{self.where} rate-limited {what} (429; resets in {reset or '?'}s)", wait_s=wait)
        if status >= 500:
            return RetryableError(f"{self.where} answered {status} for {what}{detail}")
        if status in (401, 403):
            return SourceError(
                f"{self.where} refused the keys ({status}{detail}); check {self.options.api_key_env} and {self.options.app_key_env}, "
                "and that the application key has the timeseries_query permission"
            )
        return SourceError(f"{self.where} rejected {what} ({status}{detail})")

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
