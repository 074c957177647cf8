"""The `grafana` kind through a Grafana stand-in's data source proxy: shapes, links, errors, rate limits, secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from standin_grafana import GrafanaStandin
from standin_prometheus_like import StoredSeries, ramp

from agents.evidence.metric_shifts import metric_shifts
from contracts import SECRET_DIR, Broken, MakeMetricSource, MetricRecord, MetricSourceContract, Options
from core.catalog import SourceSpec
from integrations.errors import SourceError
from integrations.metrics import grafana as grafana_kind
from integrations.metrics.grafana import GrafanaOptions, GrafanaSource, _check
from integrations.registry import build_specs

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
TOKEN = "glsa_standin0123456789abcdef"


@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch) -> Iterator[GrafanaStandin]:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    server = GrafanaStandin(token=TOKEN).start()
    yield server
    server.stop()


def _source(url: str, **extra: Any) -> GrafanaSource:
    options: dict[str, Any] = {
        "url": url,
        "token_env": "GRAFANA_TOKEN",
        "datasource_uid": "prom-main",
        "queries": [{"name": "p99 latency", "query": "latency_p99", "unit": "ms", "labels": ["pod"]}],
        **extra,
    }
    return GrafanaSource(GrafanaOptions.model_validate(options))


def test_queries_go_through_the_data_source_proxy_with_units_labels_and_explore_links(grafana: GrafanaStandin) -> None:
    grafana.datasource("prom-main").add("latency_p99", ramp({"pod": "a", "instance": "10.0.0.1:9090"}, T0, 60, before=120, after=900))
    result = _source(grafana.url).series(T0, T1)

    assert result.failures == []
    [series] = result
    assert (series.metric, series.labels, series.unit) == ("p99 latency", {"pod": "a"}, "ms")
    request = grafana.requests[-1]
    assert request.path == "/api/datasources/proxy/uid/prom-main/api/v1/query_range"
    assert request.method == "POST" and request.content_type.startswith("application/x-www-form-urlencoded")
    assert request.form["query"] == "latency_p99" and "timeout" in request.form
    link = urlparse(series.url or "")
    assert link.path == "/explore"
    left = json.loads(parse_qs(link.query)["left"][0])
    assert left["datasource"] == "prom-main" and left["queries"][0]["expr"] == "latency_p99"
    assert left["range"] == {"from": str(int(T0.timestamp() * 1000)), "to": str(int(T1.timestamp() * 1000))}
    [shift] = metric_shifts(list(result))
    assert shift.direction == "up" and abs(shift.change_at - (T0 + timedelta(minutes=30))) <= timedelta(minutes=1)


def test_a_query_may_name_its_own_data_source_and_one_failing_does_not_hide_the_others(grafana: GrafanaStandin) -> None:
    grafana.datasource("prom-main").add("latency_p99", ramp({"pod": "a"}, T0, 60, before=1, after=1))
    grafana.datasource("prom-edge").add("edge_errors", ramp({}, T0, 60, before=0, after=5))
    source = _source(
        grafana.url,
        queries=[
            {"name": "p99 latency", "query": "latency_p99"},
            {"name": "edge errors", "query": "edge_errors", "datasource_uid": "prom-edge"},
            {"name": "gone", "query": "x", "datasource_uid": "deleted"},
        ],
    )
    result = source.series(T0, T1)
    assert sorted(s.metric for s in result) == ["edge errors", "p99 latency"]
    assert [(f.query, "Data source not found" in f.reason) for f in result.failures] == [("gone", True)]


def test_rate_limit_and_bad_gateway_are_retried(grafana: GrafanaStandin) -> None:
    datasource = grafana.datasource("prom-main")
    datasource.add("latency_p99", ramp({"pod": "a"}, T0, 60, before=1, after=2))
    datasource.fail(429, headers={"Retry-After": "0"})
    datasource.fail(502)
    assert len(_source(grafana.url).series(T0, T1)) == 1
    assert len(datasource.requests) == 3


def test_a_refused_token_is_a_clear_error_without_the_token(grafana: GrafanaStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    grafana.datasource("prom-main")
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_wrong0123456789abcdef")
    with pytest.raises(SourceError) as caught:
        _source(grafana.url).series(T0, T1)
    assert "refused the credentials (401)" in str(caught.value)
    assert "glsa_" not in str(caught.value)


def test_check_names_each_data_source(grafana: GrafanaStandin) -> None:
    grafana.datasource("prom-main")
    grafana.datasource("loki-main", "loki")
    assert "prom-main (prometheus)" in _check(_source(grafana.url))
    loki = _source(grafana.url, queries=[{"name": "e", "query": LOKI_ERRORS, "datasource_uid": "loki-main", "datasource_type": "loki"}])
    assert "loki-main (loki)" in _check(loki)
    with pytest.raises(SourceError, match="no data source with uid"):
        _check(_source(grafana.url, datasource_uid="nope"))


def test_catalog_requires_a_data_source_for_every_query(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    spec = SourceSpec.model_validate(
        {"kind": "grafana", "url": "http://grafana", "token_env": "GRAFANA_TOKEN", "queries": [{"name": "a", "query": "up"}]}
    )
    built = build_specs({"metrics": [spec]}, Path("."))
    assert [d.component for d in built.errors] == ["metrics:grafana"]
    assert "no datasource_uid" in built.errors[0].reason


LOKI_ERRORS = 'sum by (pod) (rate({app="checkout"} |= "error" [1m]))'


def test_loki_metric_queries_go_through_the_proxy_as_a_get_with_nanosecond_times(grafana: GrafanaStandin) -> None:
    loki = grafana.datasource("loki-main", "loki")
    loki.add(LOKI_ERRORS, ramp({"pod": "checkout-7d9f"}, T0, 60, before=0.1, after=4.0))
    source = _source(
        grafana.url,
        datasource_uid="prom-main",
        queries=[
            {"name": "error lines/s", "query": LOKI_ERRORS, "datasource_uid": "loki-main", "datasource_type": "loki", "unit": "lines/s"}
        ],
    )

    result = source.series(T0, T1)

    assert result.failures == []
    [series] = result
    assert (series.metric, series.labels, series.unit) == ("error lines/s", {"pod": "checkout-7d9f"}, "lines/s")
    request = loki.requests[-1]
    assert (request.method, request.path) == ("GET", "/loki/api/v1/query_range")
    assert request.form["query"] == LOKI_ERRORS
    assert int(request.form["start"]) == int(T0.timestamp()) * 10**9 and int(request.form["end"]) == int(T1.timestamp()) * 10**9
    assert int(request.form["step"]) == 60 and "timeout" not in request.form
    left = json.loads(parse_qs(urlparse(series.url or "").query)["left"][0])
    assert left["queries"][0]["datasource"] == {"type": "loki", "uid": "loki-main"}
    [shift] = metric_shifts(list(result))
    assert shift.direction == "up" and abs(shift.change_at - (T0 + timedelta(minutes=30))) <= timedelta(minutes=1)


def test_a_loki_source_default_serves_every_query(grafana: GrafanaStandin) -> None:
    grafana.datasource("loki-main", "loki").add(LOKI_ERRORS, ramp({}, T0, 60, before=1, after=1))
    source = _source(grafana.url, datasource_uid="loki-main", datasource_type="loki", queries=[{"name": "errors", "query": LOKI_ERRORS}])
    assert [s.metric for s in source.series(T0, T1)] == ["errors"]


def test_a_loki_log_query_or_parse_error_fails_alone_with_lokis_reason(grafana: GrafanaStandin) -> None:
    loki = grafana.datasource("loki-main", "loki")
    loki.add(LOKI_ERRORS, ramp({}, T0, 60, before=1, after=2))
    loki.log_queries.add('{app="checkout"} |= "error"')
    source = _source(
        grafana.url,
        datasource_uid="loki-main",
        datasource_type="loki",
        queries=[
            {"name": "errors", "query": LOKI_ERRORS},
            {"name": "lines", "query": '{app="checkout"} |= "error"'},
            {"name": "typo", "query": 'sum(rate({app="checkout"} |= "error" [1m])'},
        ],
    )
    result = source.series(T0, T1)
    assert [s.metric for s in result] == ["errors"]
    reasons = {f.query: f.reason for f in result.failures}
    assert "LogQL log query" in reasons["lines"] and "metric query" in reasons["lines"]
    assert "rejected the query (400: parse error at line 1" in reasons["typo"]


def test_loki_rate_limits_and_server_errors_are_retried(grafana: GrafanaStandin) -> None:
    loki = grafana.datasource("loki-main", "loki")
    loki.add(LOKI_ERRORS, ramp({}, T0, 60, before=1, after=2))
    loki.fail(429, headers={"Retry-After": "0"})
    loki.fail(500)
    source = _source(grafana.url, datasource_uid="loki-main", datasource_type="loki", queries=[{"name": "errors", "query": LOKI_ERRORS}])
    assert len(source.series(T0, T1)) == 1
    assert len(loki.requests) == 3


def test_a_long_loki_window_stays_within_11000_points(grafana: GrafanaStandin) -> None:
    loki = grafana.datasource("loki-main", "loki")
    loki.add(LOKI_ERRORS, ramp({}, T0, 60, before=1, after=2))
    source = _source(
        grafana.url,
        datasource_uid="loki-main",
        datasource_type="loki",
        step_s=1,
        max_points=11_000,
        queries=[{"name": "e", "query": LOKI_ERRORS}],
    )
    source.series(T0 - timedelta(days=2), T1)
    request = loki.requests[-1]
    span_s = (int(request.form["end"]) - int(request.form["start"])) / 1e9
    assert span_s / int(request.form["step"]) + 1 <= 11_000


def test_the_alerts_promql_is_read_from_the_default_prometheus_data_source(grafana: GrafanaStandin) -> None:
    grafana.datasource("prom-main").add("latency_p99", ramp({"pod": "a"}, T0, 60, before=1, after=1))
    grafana.datasource("prom-main").add("sum(rate(errors_total[5m]))", ramp({}, T0, 60, before=0.1, after=3))
    source = _source(grafana.url)

    followed = source.with_alert_expressions(["sum(rate(errors_total[5m])) > 1"])
    result = followed.series(T0, T1)

    assert sorted(s.metric for s in result) == ["p99 latency", "sum(rate(errors_total[5m]))"]
    assert [q.query for q in source.options.queries] == ["latency_p99"]
    loki_default = _source(grafana.url, datasource_uid="loki-main", datasource_type="loki", queries=[{"name": "e", "query": LOKI_ERRORS}])
    assert loki_default.with_alert_expressions(["up == 0"]) is loki_default


# --- the role contract, over the Grafana stand-in ---------------------------------------------------------------------


class TestGrafanaContract(MetricSourceContract):
    kind = grafana_kind.KIND

    @pytest.fixture
    def make_source(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeMetricSource]:
        monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
        servers: list[GrafanaStandin] = []

        def make(records: Sequence[MetricRecord]) -> Options:
            server = GrafanaStandin(token=TOKEN).start()
            servers.append(server)
            datasource = server.datasource("prom-main")
            # The contract's samples are irregular: the data source answers with them as stored, not on a step grid.
            datasource.evaluate = False
            by_series: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}
            for record in records:
                by_series.setdefault((record.metric, record.labels), []).append((record.at.timestamp(), record.value))
            for (metric, labels), points in by_series.items():
                datasource.add(metric, StoredSeries(dict(labels), points))
            queries = [{"name": metric, "query": metric} for metric in sorted({record.metric for record in records})]
            return {"url": server.url, "token_env": "GRAFANA_TOKEN", "datasource_uid": "prom-main", "queries": queries}

        yield make
        for server in servers:
            server.stop()

    @pytest.fixture(params=["unreachable", "token refused"])
    def broken_source(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broken]:
        monkeypatch.setenv("GRAFANA_TOKEN", "glsa_not_the_right_one_0123456789")
        options: dict[str, Any] = {"token_env": "GRAFANA_TOKEN", "datasource_uid": "prom-main", "queries": [{"name": "up", "query": "up"}]}
        if request.param == "unreachable":
            url = f"http://127.0.0.1:9/{SECRET_DIR}"
            yield Broken({**options, "url": url, "retries": 0, "deadline_s": 3}, target=url)
            return
        server = GrafanaStandin(token=TOKEN).start()
        server.datasource("prom-main")
        url = f"{server.url}/{SECRET_DIR}"
        yield Broken({**options, "url": url}, target=url)
        server.stop()
