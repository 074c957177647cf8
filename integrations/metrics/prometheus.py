"""The `prometheus` metrics kind: the catalog's PromQL queries read over the HTTP API's `/api/v1/query_range`.

`PrometheusApi` speaks the range-query API itself (form-encoded POST, a `step`
that keeps every series within the server's 11,000-points limit and our own bound,
the remaining deadline sent as the server-side `timeout`) so that the `grafana`
kind can reuse it through Grafana's data source proxy, which forwards the same API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
from pydantic import Field, SecretStr

from integrations import roles
from integrations.errors import SourceError
from integrations.metrics.base import Series
from integrations.metrics.queries import MetricQuery, QueryBounds, SeriesResult, finite, run_queries, shown_labels, step_seconds
from integrations.plugin import EnvVarName, SourceKind, SourceOptions, secret_from_env
from integrations.remote_calls import Deadline, RetryableError, with_retries

# Prometheus refuses a range query whose series would exceed 11,000 points.
SERVER_MAX_POINTS = 11_000


class PrometheusApi:
    """Range queries against one Prometheus HTTP API root (a server, or Grafana's proxy for a data source)."""

    def __init__(
        self,
        base_url: str,
        *,
        what: str,
        token: SecretStr | None = None,
        step_s: float = 60.0,
        timeout_s: float = 10.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.what = what
        # Every error names where it asked: the responder must know which server or proxy to look at.
        self.where = f"{what} at {self.base_url}"
        self.step_s = step_s
        self.timeout_s = timeout_s
        self.retries = retries
        self._token = token
        self._transport = transport
        self._headers = dict(headers or {})

    def query_range(self, query: MetricQuery, start: datetime, end: datetime, *, deadline: Deadline, max_points: int) -> list[Series]:
        step = step_seconds(start, end, wanted_s=self.step_s, max_points=min(max_points, SERVER_MAX_POINTS))
        # Start on the step grid: the same window always evaluates at the same instants.
        first = -(-int(start.timestamp()) // step) * step
        form = {"query": query.query, "start": str(first), "end": str(end.timestamp()), "step": str(step)}

        def once() -> list[Series]:
            timeout = deadline.timeout(self.timeout_s)
            # The server stops evaluating when we stop waiting, instead of finishing work nobody reads.
            body = self._post("/api/v1/query_range", {**form, "timeout": f"{timeout:.3f}"}, timeout)
            return _matrix(body, query)

        return with_retries(once, retries=self.retries, deadline=deadline)

    def get(self, path: str, timeout: float) -> httpx.Response:
        """A plain GET (readiness, build info) with the same credentials; SourceError when unreachable."""
        try:
            with self._client(timeout) as client:
                return client.get(path)
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.where} cannot be reached ({type(exc).__name__})") from None

    def _client(self, timeout: float) -> httpx.Client:
        headers = {"Accept": "application/json", **self._headers}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=self._transport)

    def _post(self, path: str, form: dict[str, str], timeout: float) -> dict[str, object]:
        try:
            with self._client(timeout) as client:
                response = client.post(path, data=form)
        except httpx.TimeoutException:
            raise RetryableError(f"{self.where} did not answer within {timeout:.1f}s") from None
        except httpx.HTTPError as exc:
            # The exception text may carry the URL with credentials in it; the class name says enough.
            raise SourceError(f"{self.where} cannot be reached ({type(exc).__name__})") from None
        return _body(response, self.where)


def _body(response: httpx.Response, what: str) -> dict[str, object]:
    """The JSON of an answer, or the error a responder can act on (429/5xx retryable)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = ""
    if isinstance(body, dict):
        error = " ".join(str(body.get("error") or body.get("message") or "").split())[:300]
    status = response.status_code
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After", "")
        wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
        raise RetryableError(f"{what} answered {status}{': ' + error if error else ''}", wait_s=wait)
    if status in (401, 403):
        raise SourceError(f"{what} refused the credentials ({status}); check the token's environment variable and its permissions")
    if status >= 400:
        raise SourceError(f"{what} rejected the query ({status}{': ' + error if error else ''})")
    if not isinstance(body, dict):
        raise SourceError(f"{what} answered {status} without JSON")
    if body.get("status") == "error":
        raise SourceError(f"{what} rejected the query ({body.get('errorType', 'error')}: {error})")
    return body


def _matrix(body: dict[str, object], query: MetricQuery) -> list[Series]:
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise SourceError(f"query {query.name!r} did not return a range of series")
    results = data.get("result") or []
    names = {str(item.get("metric", {}).get("__name__", "")) for item in results if isinstance(item, dict)}
    several_metrics = len(names) > 1
    found: list[Series] = []
    for item in results:
        if not isinstance(item, dict):
            continue
        raw = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        labels = shown_labels(raw, query)
        if several_metrics and "__name__" in raw:
            # One query, several metrics (`{__name__=~"..."}`): the metric name must stay to tell them apart.
            labels = {"__name__": raw["__name__"], **labels}
        points: list[tuple[datetime, float]] = []
        for at, text in item.get("values") or []:
            value = float(text)
            if finite(value):
                points.append((datetime.fromtimestamp(float(at), UTC), value))
        found.append(Series(metric=query.name, labels=labels, points=points, unit=query.unit))
    return found


def graph_url(ui_url: str, expr: str, start: datetime, end: datetime) -> str:
    """The Prometheus web UI's graph page for `expr` over [start, end]."""
    minutes = max(1, round((end - start).total_seconds() / 60))
    params = {
        "g0.expr": expr,
        "g0.tab": "0",
        "g0.range_input": f"{minutes}m",
        "g0.end_input": end.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    return f"{ui_url.rstrip('/')}/graph?{urlencode(params)}"


class PrometheusOptions(SourceOptions, QueryBounds):
    url: str = Field(description="Prometheus server root, e.g. http://prometheus:9090")
    queries: list[MetricQuery] = Field(min_length=1, description="PromQL queries to read for the service")
    token_env: EnvVarName | None = Field(None, description="environment variable holding a bearer token (a proxy in front of Prometheus)")
    ui_url: str | None = Field(None, description="Prometheus web UI root for links to each query (default: none)")
    step_s: float = Field(60.0, gt=0, description="resolution to read at, in seconds; coarser when the window needs it")


class PrometheusSource:
    def __init__(self, options: PrometheusOptions, *, transport: httpx.BaseTransport | None = None) -> None:
        self.name = options.name or "prometheus"
        self.options = options
        token = secret_from_env(options.token_env, purpose="prometheus token") if options.token_env else None
        self.api = PrometheusApi(
            options.url,
            what="Prometheus",
            token=token,
            step_s=options.step_s,
            timeout_s=options.timeout_s,
            retries=options.retries,
            transport=transport,
        )

    def series(self, start: datetime, end: datetime) -> SeriesResult:
        deadline = Deadline(self.options.deadline_s)

        def read(query: MetricQuery) -> list[Series]:
            found = self.api.query_range(query, start, end, deadline=deadline, max_points=self.options.max_points)
            if self.options.ui_url:
                link = graph_url(self.options.ui_url, query.query, start, end)
                for item in found:
                    item.url = link
            return found

        return run_queries(
            self.options.queries, read, source=self.name, max_series=self.options.max_series, max_points=self.options.max_points
        )


def _check(source: PrometheusSource) -> str:
    response = source.api.get("/api/v1/status/buildinfo", source.options.timeout_s)
    if response.status_code in (401, 403):
        raise SourceError(f"{source.api.where} refused the credentials ({response.status_code})")
    if response.status_code != 200:
        raise SourceError(f"{source.api.where} answered {response.status_code}")
    try:
        version = json.loads(response.text).get("data", {}).get("version", "?")
    except ValueError:
        version = "?"
    return f"Prometheus {version}, {len(source.options.queries)} queries"


def _build(options: PrometheusOptions, _base_dir: Path) -> PrometheusSource:
    return PrometheusSource(options)


KIND = SourceKind(
    name="prometheus",
    role=roles.METRICS,
    options=PrometheusOptions,
    build=_build,
    check=_check,
    summary="PromQL range queries over the Prometheus HTTP API",
)
