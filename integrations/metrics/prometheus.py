"""The `prometheus` metrics kind: the catalog's PromQL queries read over the HTTP API's `/api/v1/query_range`.

`PrometheusApi` speaks the range-query API itself (form-encoded POST, a `step`
that keeps every series within the server's 11,000-points limit and our own bound,
the remaining deadline sent as the server-side `timeout`) so that the `grafana`
kind can reuse it through Grafana's data source proxy, which forwards the same API.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
from pydantic import Field, SecretStr, model_validator

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
            body = self.request("POST", "/api/v1/query_range", {**form, "timeout": f"{timeout:.3f}"}, timeout)
            return matrix_series(body, query)

        return with_retries(once, retries=self.retries, deadline=deadline)

    def get(self, path: str, timeout: float) -> httpx.Response:
        """A plain GET (readiness, build info) with the same credentials; SourceError when unreachable."""
        try:
            with self.client(timeout) as client:
                return client.get(path)
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.where} cannot be reached ({type(exc).__name__})") from None

    def client(self, timeout: float) -> httpx.Client:
        headers = {"Accept": "application/json", **self._headers}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=self._transport)

    def request(self, method: str, path: str, params: dict[str, str], timeout: float) -> dict[str, object]:
        """The JSON answer of one call (a POST sends `params` form-encoded, a GET in the URL); errors as SourceError."""
        try:
            with self.client(timeout) as client:
                response = client.post(path, data=params) if method == "POST" else client.get(path, params=params)
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
    if isinstance(body, dict):
        error = " ".join(str(body.get("error") or body.get("message") or "").split())[:300]
    elif response.headers.get("content-type", "").startswith("text/plain") and response.text.strip():
        # Loki answers its errors as plain text (a LogQL parse error): the first line is the reason.
        error = " ".join(response.text.strip().splitlines()[0].split())[:300]
    else:
        error = ""
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


def matrix_series(body: dict[str, object], query: MetricQuery) -> list[Series]:
    """The `Series` of a range query's `matrix` answer (Prometheus, and Loki's metric queries)."""
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


_NUMBER = re.compile(r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+|[Ii]nf|NaN)$")
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_SET_OPERATORS = ("and", "or", "unless")
# The name a query derived from an alert is shown under is the query itself, cut to stay readable in a report.
_NAME_CHARS = 120


def _top_level(expr: str) -> list[tuple[int, str]]:
    """Binary comparison and set operators outside any (), [], {} or string: (position, operator)."""
    found: list[tuple[int, str]] = []
    depth, quote, i = 0, "", 0
    while i < len(expr):
        char = expr[i]
        if quote:
            if char == "\\" and quote != "`":
                i += 2
                continue
            quote = "" if char == quote else quote
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0:
            if operator := next((op for op in _COMPARISONS if expr.startswith(op, i)), None):
                found.append((i, operator))
                i += len(operator)
                continue
            word = re.match(r"[A-Za-z_][A-Za-z0-9_:]*", expr[i:])
            if word:
                if word.group(0) in _SET_OPERATORS:
                    found.append((i, word.group(0)))
                i += len(word.group(0))
                continue
        i += 1
    return found


def measured_expression(expr: str) -> str | None:
    """What an alerting rule's expression measures: its first operand of and/or/unless, without the threshold.

    `sum(rate(errors[5m])) / sum(rate(requests[5m])) > 0.05` fires only while above 0.05, so read as it
    is it has no points before the incident to compare with; the left side is the series the rule watches.
    """
    text = expr.strip()
    operators = _top_level(text)
    cut = next((at for at, op in operators if op in _SET_OPERATORS), None)
    if cut is not None:
        text = text[:cut].strip()
        operators = [(at, op) for at, op in operators if at < cut]
    comparisons = [(at, op) for at, op in operators if op in _COMPARISONS]
    if comparisons:
        at, op = comparisons[0]
        left, right = text[:at].strip(), text[at + len(op) :].strip()
        # `x > bool 0.5`, `x > on(job) y`: the modifiers belong to the right side.
        threshold = re.sub(r"^bool\s+", "", right)
        text = right if _NUMBER.match(left) and not _NUMBER.match(threshold) else left
    return text or None


def alert_queries(expressions: Sequence[str], listed: Sequence[MetricQuery]) -> list[MetricQuery]:
    """A query per expression the alert carries, its threshold removed, unless the catalog already lists it."""
    seen = {" ".join(query.query.split()) for query in listed}
    found: list[MetricQuery] = []
    for expr in expressions:
        measured = measured_expression(expr)
        flat = " ".join((measured or "").split())
        if measured is None or flat in seen:
            continue
        seen.add(flat)
        name = flat if len(flat) <= _NAME_CHARS else flat[: _NAME_CHARS - 1] + "…"
        found.append(MetricQuery(name=name, query=measured))
    return found


class PrometheusOptions(SourceOptions, QueryBounds):
    url: str = Field(description="Prometheus server root, e.g. http://prometheus:9090")
    queries: list[MetricQuery] = Field(
        default_factory=list, description="PromQL queries to read for the service (none: only the PromQL each alert carries)"
    )
    token_env: EnvVarName | None = Field(None, description="environment variable holding a bearer token (a proxy in front of Prometheus)")
    ui_url: str | None = Field(None, description="Prometheus web UI root for links to each query (default: none)")
    step_s: float = Field(60.0, gt=0, description="resolution to read at, in seconds; coarser when the window needs it")
    alert_queries: bool = Field(
        True,
        description="also read the PromQL the alert carries (an expr/query detail, a generatorURL's g0.expr), threshold removed",
    )

    @model_validator(mode="after")
    def _something_to_read(self) -> PrometheusOptions:
        if not self.queries and not self.alert_queries:
            raise ValueError("a prometheus source needs queries, or alert_queries left on to read the PromQL each alert carries")
        return self


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
        if not self.options.queries:
            # Said, not an empty answer: "no metrics" must not read as "metrics were fine".
            raise SourceError(f"{self.api.where}: no queries listed and the alert carries no PromQL (expr, query or a g0.expr link)")
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

    def with_alert_expressions(self, expressions: Sequence[str]) -> PrometheusSource:
        """This source reading also what the alert's own expressions measure (`FollowsAlertExpressions`)."""
        extra = alert_queries(expressions, self.options.queries) if self.options.alert_queries else []
        if not extra:
            return self
        # A copy: the built source is shared by every investigation of the service.
        followed = copy.copy(self)
        followed.options = self.options.model_copy(update={"queries": [*self.options.queries, *extra]})
        return followed


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
