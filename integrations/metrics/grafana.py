"""The `grafana` metrics kind: queries sent through Grafana's data source proxy to its Prometheus and Loki data sources.

A team that reaches its stores only through Grafana (one service account token,
no direct network path) lists the data source uid and its queries; Grafana forwards
`/api/datasources/proxy/uid/{uid}/...` to the data source unchanged, so a Prometheus
query speaks the Prometheus API (`PrometheusApi`), and a Loki one Loki's
`/loki/api/v1/query_range`, whose metric queries (`sum(rate({app="x"} |= "error" [1m]))`)
answer with the same `matrix`. Links go to Grafana Explore with the same query and window.
`GrafanaConnection` is what the `grafana_annotations` deploys kind shares with this one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlencode

import httpx
from pydantic import BaseModel, Field, SecretStr

from integrations import roles
from integrations.errors import SourceError
from integrations.metrics.base import Series
from integrations.metrics.prometheus import SERVER_MAX_POINTS, PrometheusApi, alert_queries, matrix_series
from integrations.metrics.queries import MetricQuery, QueryBounds, SeriesResult, run_queries, step_seconds
from integrations.plugin import EnvVarName, SourceKind, SourceOptions, secret_from_env
from integrations.remote_calls import Deadline, with_retries

DatasourceType = Literal["prometheus", "loki"]
LOKI_RANGE = "/loki/api/v1/query_range"


class GrafanaConnection(BaseModel):
    """Where Grafana is and how to sign in: shared by the kinds that read from it."""

    url: str = Field(description="Grafana root, e.g. https://grafana.example.com")
    token_env: EnvVarName | None = Field(
        None, description="environment variable holding a Grafana service account token (Viewer is enough)"
    )
    org_id: int | None = Field(None, ge=1, description="Grafana organisation to read from (default: the token's)")

    def api(
        self,
        base_path: str,
        *,
        what: str,
        timeout_s: float,
        retries: int,
        step_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> PrometheusApi:
        """A client for one Grafana path (the root, or a data source's proxy) with the token and organisation."""
        token: SecretStr | None = secret_from_env(self.token_env, purpose="grafana token") if self.token_env else None
        return PrometheusApi(
            f"{self.url.rstrip('/')}{base_path}",
            what=what,
            token=token,
            step_s=step_s,
            timeout_s=timeout_s,
            retries=retries,
            transport=transport,
            headers={"X-Grafana-Org-Id": str(self.org_id)} if self.org_id else None,
        )


class GrafanaQuery(MetricQuery):
    datasource_uid: str | None = Field(None, description="uid of the data source to ask (default: the source's datasource_uid)")
    datasource_type: DatasourceType | None = Field(
        None, description="prometheus (PromQL) or loki (a LogQL metric query); default: the source's datasource_type"
    )


class GrafanaOptions(SourceOptions, GrafanaConnection, QueryBounds):
    datasource_uid: str | None = Field(None, description="uid of the data source the queries go to, unless a query names its own")
    datasource_type: DatasourceType = Field(
        "prometheus", description="type of that data source: prometheus (PromQL) or loki (LogQL metric queries)"
    )
    queries: list[GrafanaQuery] = Field(min_length=1, description="PromQL or LogQL metric queries to read for the service")
    ui_url: str | None = Field(None, description="Grafana root for Explore links, when it differs from url (default: url)")
    step_s: float = Field(60.0, gt=0, description="resolution to read at, in seconds; coarser when the window needs it")
    alert_queries: bool = Field(
        True,
        description="also read the PromQL the alert carries (threshold removed) from datasource_uid, when that is a Prometheus one",
    )


def explore_url(
    ui_url: str, uid: str, expr: str, start: datetime, end: datetime, org_id: int | None, kind: DatasourceType = "prometheus"
) -> str:
    """Grafana Explore with `expr` on data source `uid` over [start, end]."""
    left = {
        "datasource": uid,
        "queries": [{"refId": "A", "expr": expr, "datasource": {"type": kind, "uid": uid}}],
        "range": {"from": str(int(start.timestamp() * 1000)), "to": str(int(end.timestamp() * 1000))},
    }
    params = {"orgId": str(org_id or 1), "left": json.dumps(left, separators=(",", ":"))}
    return f"{ui_url.rstrip('/')}/explore?{urlencode(params, quote_via=quote)}"


def loki_range(
    api: PrometheusApi, query: MetricQuery, start: datetime, end: datetime, *, deadline: Deadline, max_points: int
) -> list[Series]:
    """A LogQL metric query over Loki's `query_range` (GET, times in nanoseconds); a log query is refused with the reason."""
    # Loki refuses more than 11,000 points per series, as Prometheus does.
    step = step_seconds(start, end, wanted_s=api.step_s, max_points=min(max_points, SERVER_MAX_POINTS))
    first = -(-int(start.timestamp()) // step) * step
    params = {"query": query.query, "start": str(first * 10**9), "end": str(int(end.timestamp() * 10**9)), "step": str(step)}

    def once() -> list[Series]:
        body = api.request("GET", LOKI_RANGE, params, deadline.timeout(api.timeout_s))
        data = body.get("data")
        if isinstance(data, dict) and data.get("resultType") == "streams":
            raise SourceError(
                f'query {query.name!r} is a LogQL log query; a metric needs a metric query, e.g. sum(rate({{app="x"}} |= "error" [1m]))'
            )
        return matrix_series(body, query)

    return with_retries(once, retries=api.retries, deadline=deadline)


class GrafanaSource:
    def __init__(self, options: GrafanaOptions, *, transport: httpx.BaseTransport | None = None) -> None:
        self.name = options.name or "grafana"
        self.options = options
        missing = [query.name for query in options.queries if not (query.datasource_uid or options.datasource_uid)]
        if missing:
            raise SourceError(f"grafana: no datasource_uid for queries {', '.join(missing)} (set it on the source or the query)")
        self._transport = transport
        self._apis: dict[str, PrometheusApi] = {}
        for query in options.queries:
            self._api(self._uid(query))
        self._grafana = options.api("", what="Grafana", timeout_s=options.timeout_s, retries=options.retries, transport=transport)

    def _uid(self, query: MetricQuery) -> str:
        return getattr(query, "datasource_uid", None) or self.options.datasource_uid or ""

    def _type(self, query: MetricQuery) -> DatasourceType:
        return getattr(query, "datasource_type", None) or self.options.datasource_type

    def _api(self, uid: str) -> PrometheusApi:
        if uid not in self._apis:
            self._apis[uid] = self.options.api(
                f"/api/datasources/proxy/uid/{quote_uid(uid)}",
                what=f"Grafana data source {uid}",
                timeout_s=self.options.timeout_s,
                retries=self.options.retries,
                step_s=self.options.step_s,
                transport=self._transport,
            )
        return self._apis[uid]

    def series(self, start: datetime, end: datetime) -> SeriesResult:
        deadline = Deadline(self.options.deadline_s)
        ui_url = self.options.ui_url or self.options.url

        def read(query: MetricQuery) -> list[Series]:
            uid, kind = self._uid(query), self._type(query)
            api = self._api(uid)
            if kind == "loki":
                found = loki_range(api, query, start, end, deadline=deadline, max_points=self.options.max_points)
            else:
                found = api.query_range(query, start, end, deadline=deadline, max_points=self.options.max_points)
            link = explore_url(ui_url, uid, query.query, start, end, self.options.org_id, kind)
            for item in found:
                item.url = link
            return found

        return run_queries(
            self.options.queries, read, source=self.name, max_series=self.options.max_series, max_points=self.options.max_points
        )

    def with_alert_expressions(self, expressions: Sequence[str]) -> GrafanaSource:
        """This source reading also what the alert's PromQL measures, on its default data source when that is Prometheus."""
        options = self.options
        if not (options.alert_queries and options.datasource_uid and options.datasource_type == "prometheus"):
            return self
        extra = [GrafanaQuery(name=q.name, query=q.query) for q in alert_queries(expressions, options.queries)]
        if not extra:
            return self
        # A copy: the built source is shared by every investigation of the service.
        followed = copy.copy(self)
        followed.options = options.model_copy(update={"queries": [*options.queries, *extra]})
        return followed


def quote_uid(uid: str) -> str:
    return quote(uid, safe="")


def _check(source: GrafanaSource) -> str:
    answers: list[str] = []
    where = source._grafana.where
    for uid in source._apis:
        # The data source's own record says whether it exists and whether the token may see it.
        response = source._grafana.get(f"/api/datasources/uid/{quote_uid(uid)}", source.options.timeout_s)
        if response.status_code in (401, 403):
            raise SourceError(f"{where} refused the token ({response.status_code}); it needs at least Viewer on the data source")
        if response.status_code == 404:
            raise SourceError(f"{where} has no data source with uid {uid}")
        if response.status_code != 200:
            raise SourceError(f"{where} answered {response.status_code} for data source {uid}")
        kind = response.json().get("type", "?") if response.headers.get("content-type", "").startswith("application/json") else "?"
        answers.append(f"{uid} ({kind})")
    return f"Grafana data sources {', '.join(answers)}; {len(source.options.queries)} queries"


def _build(options: GrafanaOptions, _base_dir: Path) -> GrafanaSource:
    return GrafanaSource(options)


KIND = SourceKind(
    name="grafana",
    role=roles.METRICS,
    options=GrafanaOptions,
    build=_build,
    check=_check,
    summary="PromQL and LogQL metric range queries through Grafana's data source proxy (Prometheus and Loki)",
)
