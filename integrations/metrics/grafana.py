"""The `grafana` metrics kind: PromQL queries sent through Grafana's data source proxy to its Prometheus data sources.

A team that reaches Prometheus only through Grafana (one service account token,
no direct network path) lists the data source uid and its queries; Grafana forwards
`/api/datasources/proxy/uid/{uid}/api/v1/query_range` to the data source unchanged,
so the request and answer are the Prometheus API's, spoken by `PrometheusApi`.
Links go to Grafana Explore with the same query and window.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
from pydantic import Field

from integrations import roles
from integrations.errors import SourceError
from integrations.metrics.base import Series
from integrations.metrics.prometheus import PrometheusApi
from integrations.metrics.queries import MetricQuery, QueryBounds, SeriesResult, run_queries
from integrations.plugin import EnvVarName, SourceKind, SourceOptions, secret_from_env
from integrations.remote_calls import Deadline


class GrafanaQuery(MetricQuery):
    datasource_uid: str | None = Field(None, description="uid of the Prometheus data source to ask (default: the source's datasource_uid)")


class GrafanaOptions(SourceOptions, QueryBounds):
    url: str = Field(description="Grafana root, e.g. https://grafana.example.com")
    token_env: EnvVarName | None = Field(
        None, description="environment variable holding a Grafana service account token (Viewer is enough)"
    )
    datasource_uid: str | None = Field(
        None, description="uid of the Prometheus data source the queries go to, unless a query names its own"
    )
    queries: list[GrafanaQuery] = Field(min_length=1, description="PromQL queries to read for the service")
    org_id: int | None = Field(None, ge=1, description="Grafana organisation of the data sources (default: the token's)")
    ui_url: str | None = Field(None, description="Grafana root for Explore links, when it differs from url (default: url)")
    step_s: float = Field(60.0, gt=0, description="resolution to read at, in seconds; coarser when the window needs it")


def explore_url(ui_url: str, uid: str, expr: str, start: datetime, end: datetime, org_id: int | None) -> str:
    """Grafana Explore with `expr` on data source `uid` over [start, end]."""
    left = {
        "datasource": uid,
        "queries": [{"refId": "A", "expr": expr, "datasource": {"type": "prometheus", "uid": uid}}],
        "range": {"from": str(int(start.timestamp() * 1000)), "to": str(int(end.timestamp() * 1000))},
    }
    params = {"orgId": str(org_id or 1), "left": json.dumps(left, separators=(",", ":"))}
    return f"{ui_url.rstrip('/')}/explore?{urlencode(params, quote_via=quote)}"


class GrafanaSource:
    def __init__(self, options: GrafanaOptions, *, transport: httpx.BaseTransport | None = None) -> None:
        self.name = options.name or "grafana"
        self.options = options
        missing = [query.name for query in options.queries if not (query.datasource_uid or options.datasource_uid)]
        if missing:
            raise SourceError(f"grafana: no datasource_uid for queries {', '.join(missing)} (set it on the source or the query)")
        token = secret_from_env(options.token_env, purpose="grafana token") if options.token_env else None
        self._apis: dict[str, PrometheusApi] = {}
        for query in options.queries:
            uid = query.datasource_uid or options.datasource_uid or ""
            if uid not in self._apis:
                self._apis[uid] = PrometheusApi(
                    f"{options.url.rstrip('/')}/api/datasources/proxy/uid/{quote(uid, safe='')}",
                    what=f"Grafana data source {uid}",
                    token=token,
                    step_s=options.step_s,
                    timeout_s=options.timeout_s,
                    retries=options.retries,
                    transport=transport,
                    headers={"X-Grafana-Org-Id": str(options.org_id)} if options.org_id else None,
                )
        self._grafana = PrometheusApi(options.url, what="Grafana", token=token, timeout_s=options.timeout_s, transport=transport)

    def series(self, start: datetime, end: datetime) -> SeriesResult:
        deadline = Deadline(self.options.deadline_s)
        ui_url = self.options.ui_url or self.options.url

        def read(query: MetricQuery) -> list[Series]:
            uid = getattr(query, "datasource_uid", None) or self.options.datasource_uid or ""
            found = self._apis[uid].query_range(query, start, end, deadline=deadline, max_points=self.options.max_points)
            link = explore_url(ui_url, uid, query.query, start, end, self.options.org_id)
            for item in found:
                item.url = link
            return found

        return run_queries(
            self.options.queries, read, source=self.name, max_series=self.options.max_series, max_points=self.options.max_points
        )


def _check(source: GrafanaSource) -> str:
    answers: list[str] = []
    where = source._grafana.where
    for uid in source._apis:
        # The data source's own record says whether it exists and whether the token may see it.
        response = source._grafana.get(f"/api/datasources/uid/{quote(uid, safe='')}", source.options.timeout_s)
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
    summary="PromQL range queries through Grafana's data source proxy",
)
