"""The `prometheus` kind against a real Prometheus backfilled from a public bundle, and against a scripted stand-in."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from prometheus_server import PrometheusServer, binaries_missing
from standin_prometheus_like import PrometheusLikeStandin, StoredSeries, ramp

from agents.evidence.metric_shifts import metric_shifts
from agents.evidence.model import MetricShiftEvidence
from agents.pipeline import gather
from contracts import SECRET_DIR, Broken, MakeMetricSource, MetricRecord, MetricSourceContract, Options
from core.alert import Alert
from core.catalog import SourceSpec
from integrations.errors import SourceError
from integrations.metrics import prometheus
from integrations.metrics.base import Series
from integrations.metrics.csv_file import MetricsCsv
from integrations.metrics.prometheus import PrometheusOptions, PrometheusSource, measured_expression
from integrations.metrics.queries import SeriesResult, step_seconds
from integrations.registry import build_specs
from integrations.roles import METRICS

BUNDLES = Path(__file__).resolve().parents[4] / "shared" / "scenarios" / "public"
BUNDLE_CSVS = sorted(BUNDLES.glob("pub-0*/metrics.csv"))


def _window(csv_path: Path) -> tuple[datetime, datetime]:
    every = MetricsCsv(csv_path).series(datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    moments = [at for series in every for at, _ in series.points]
    return min(moments), max(moments)


def _started(csv_path: Path, workdir: Path) -> PrometheusServer:
    reason = binaries_missing()
    if reason:
        pytest.skip(reason)
    return PrometheusServer(csv_path, workdir).start()


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, Path]]:
    if not BUNDLE_CSVS:
        pytest.skip(f"no public bundle metrics.csv under {BUNDLES}")
    csv_path = BUNDLE_CSVS[0]
    server = _started(csv_path, tmp_path_factory.mktemp("prometheus"))
    yield server, csv_path
    server.stop()


def _source(url: str, metrics: list[str] | dict[str, str], **extra: Any) -> PrometheusSource:
    """One query per metric: named as the CSV names it, asking for it as Prometheus spells it."""
    named = metrics if isinstance(metrics, dict) else {metric: metric for metric in metrics}
    queries = [{"name": name, "query": query} for name, query in named.items()]
    return PrometheusSource(PrometheusOptions.model_validate({"url": url, "queries": queries, **extra}))


@pytest.mark.slow
@pytest.mark.parametrize("csv_path", BUNDLE_CSVS, ids=[path.parent.name for path in BUNDLE_CSVS])
def test_real_prometheus_gives_the_same_metric_shifts_as_the_csv(csv_path: Path, tmp_path: Path) -> None:
    server = _started(csv_path, tmp_path)
    try:
        start, end = _window(csv_path)
        _assert_same_shifts(server, csv_path, start, end)
        # An investigation reads a window around the alert, not the whole bundle: a window cut mid-data agrees too.
        _assert_same_shifts(server, csv_path, start + (end - start) / 3, end)
    finally:
        server.stop()


def _assert_same_shifts(server: PrometheusServer, csv_path: Path, start: datetime, end: datetime) -> None:
    from_csv = MetricsCsv(csv_path).series(start, end)
    from_prometheus = _source(server.url, server.metrics, max_series=50).series(start, end)

    assert isinstance(from_prometheus, SeriesResult) and from_prometheus.failures == []
    assert sorted(s.key for s in from_prometheus) == sorted(s.key for s in from_csv)
    expected = _by_series(metric_shifts(from_csv))
    assert expected, "the bundle's CSV should show at least one shift"
    found = _by_series(metric_shifts(from_prometheus))
    # The same series shift at the same minute in the same direction. Levels may differ a little where the CSV
    # misses a sample: Prometheus evaluates that instant from its 5-minute lookback (the previous sample), as it
    # does for a missed scrape, so the series holds one more point than the CSV rows.
    assert {key: (s.change_at, s.direction) for key, s in found.items()} == {key: (s.change_at, s.direction) for key, s in expected.items()}
    for key, shift in expected.items():
        assert found[key].before == pytest.approx(shift.before, rel=0.02), key
        assert found[key].after == pytest.approx(shift.after, rel=0.02), key


def _by_series(shifts: list[MetricShiftEvidence]) -> dict[str, MetricShiftEvidence]:
    """Shifts by series: equal-strength shifts come in the order of their series, which differs between stores."""
    return {Series(metric=s.metric, labels=s.labels).key: s for s in shifts}


def test_real_prometheus_through_the_catalog_with_units_links_and_a_bad_query(real_server: tuple[PrometheusServer, Path]) -> None:
    server, csv_path = real_server
    start, end = _window(csv_path)
    spec = SourceSpec.model_validate(
        {
            "kind": "prometheus",
            "url": server.url,
            "ui_url": "https://prometheus.example.com",
            "queries": [
                {"name": "error ratio", "query": "http_5xx_ratio", "labels": [], "unit": "ratio"},
                {"name": "broken", "query": "sum(rate(http_5xx_ratio[5m]"},
            ],
        },
    )
    built = build_specs({"metrics": [spec]}, Path("."))
    assert built.errors == []
    source = built.entries(METRICS)[0]
    assert source.label == "metrics:prometheus"
    result = source.source.series(start, end)
    assert [s.metric for s in result] == ["error ratio"]
    assert result[0].labels == {} and result[0].unit == "ratio"
    assert result[0].url and result[0].url.startswith("https://prometheus.example.com/graph?g0.expr=http_5xx_ratio")
    assert [f.query for f in result.failures] == ["broken"]
    assert "parse error" in result.failures[0].reason


def test_an_investigation_reads_what_the_alerts_own_rule_measures_from_a_real_prometheus(
    real_server: tuple[PrometheusServer, Path],
) -> None:
    server, csv_path = real_server
    start, end = _window(csv_path)
    [ratio] = [s for s in MetricsCsv(csv_path).series(start, end) if s.metric == "http_5xx_ratio"]
    selector = "http_5xx_ratio{" + ",".join(f'{k}="{v}"' for k, v in sorted(ratio.labels.items())) + "}"
    # As Alertmanager's PagerDuty integration sends it: the rule's generatorURL inside the `firing` custom detail.
    graph = f"http://prometheus.internal:9090/graph?{urlencode({'g0.expr': selector + ' > 0.05', 'g0.tab': '1'})}"
    alert = Alert(
        title="HighErrorRate",
        service="svc",
        created_at=end,
        details={"firing": f"Labels:\n - alertname = HighErrorRate\nSource: {graph}\n"},
    )
    spec = SourceSpec.model_validate(
        {
            "kind": "prometheus",
            "url": server.url,
            "ui_url": "https://prometheus.example.com",
            "queries": [{"name": "rps", "query": "http_requests_per_second"}],
        }
    )
    sources = build_specs({"metrics": [spec]}, Path("."))

    inputs = gather(alert=alert, service="svc", window_start=start, window_end=end, sources=sources)

    assert inputs.degraded == []
    derived = [s for s in inputs.gathered["metrics"] if s.metric == selector]
    assert [s.labels for s in derived] == [ratio.labels]
    assert derived[0].url and "g0.expr=http_5xx_ratio" in derived[0].url
    [expected] = [shift for shift in metric_shifts([ratio])]
    [found] = metric_shifts(derived)
    assert (found.change_at, found.direction) == (expected.change_at, expected.direction)
    # The catalog's own query still counts, and the built source is left as the catalog lists it.
    assert any(s.metric == "rps" for s in inputs.gathered["metrics"])
    assert [q.name for q in sources.entries(METRICS)[0].source.options.queries] == ["rps"]


def test_real_prometheus_every_query_failing_is_a_source_error(real_server: tuple[PrometheusServer, Path]) -> None:
    server, csv_path = real_server
    start, end = _window(csv_path)
    source = PrometheusSource(PrometheusOptions(url=server.url, queries=[{"name": "broken", "query": "rate("}]))  # type: ignore[list-item]
    with pytest.raises(SourceError, match="every query failed"):
        source.series(start, end)


def test_unreachable_server_is_a_source_error() -> None:
    source = _source("http://127.0.0.1:9", ["up"], retries=0, deadline_s=2)
    with pytest.raises(SourceError, match="cannot be reached"):
        source.series(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC))


# --- behaviour the real server cannot script: limits, retries, credentials --------------------------------------

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def standin() -> Iterator[PrometheusLikeStandin]:
    server = PrometheusLikeStandin().start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("rule", "measured"),
    [
        (
            'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05',
            'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))',
        ),
        ("up == 0", "up"),
        ("0.5 < rate(jobs_failed_total[5m])", "rate(jobs_failed_total[5m])"),
        ("rate(x[5m]) > bool 1", "rate(x[5m])"),
        ('x{path=">"} > 1 and on(job) y > 2', 'x{path=">"}'),
        ("order_total unless absent(up)", "order_total"),
        ("histogram_quantile(0.99, sum by (le) (rate(b[5m]))) >= 1e3", "histogram_quantile(0.99, sum by (le) (rate(b[5m])))"),
        ('absent(up{job="checkout"})', 'absent(up{job="checkout"})'),
        ("   ", None),
    ],
)
def test_the_measured_part_of_an_alerting_rule_drops_its_threshold(rule: str, measured: str | None) -> None:
    assert measured_expression(rule) == measured


def test_alert_expressions_are_read_besides_the_listed_queries_once_each(standin: PrometheusLikeStandin) -> None:
    standin.add("latency", ramp({"pod": "a"}, T0, 60, before=10, after=10))
    standin.add("rate(errors_total[5m])", ramp({"pod": "a"}, T0, 60, before=0.1, after=5))
    source = _source(standin.url, ["latency"])

    followed = source.with_alert_expressions(["rate(errors_total[5m]) > 1", "rate(errors_total[5m])  >  2", "latency > 100"])
    result = followed.series(T0, T0 + timedelta(hours=1))

    assert [s.metric for s in result] == ["latency", "rate(errors_total[5m])"]
    assert [r.form["query"] for r in standin.requests] == ["latency", "rate(errors_total[5m])"]
    assert source.with_alert_expressions(["latency > 5"]) is source
    assert _source(standin.url, ["latency"], alert_queries=False).with_alert_expressions(["up == 0"]).options.queries[-1].query == "latency"


def test_a_source_without_queries_reads_only_what_the_alert_carries_and_says_when_it_carries_nothing(
    standin: PrometheusLikeStandin,
) -> None:
    standin.add("up", ramp({"job": "checkout"}, T0, 60, before=1, after=0))
    source = PrometheusSource(PrometheusOptions.model_validate({"url": standin.url}))

    assert [s.labels for s in source.with_alert_expressions(["up == 0"]).series(T0, T0 + timedelta(hours=1))] == [{"job": "checkout"}]
    with pytest.raises(SourceError, match="no queries listed and the alert carries no PromQL"):
        source.with_alert_expressions([]).series(T0, T0 + timedelta(hours=1))
    spec = SourceSpec.model_validate({"kind": "prometheus", "url": "http://x", "alert_queries": False})
    assert "needs queries, or alert_queries left on" in build_specs({"metrics": [spec]}, Path(".")).errors[0].reason


def test_a_failing_alert_expression_is_its_own_degraded_part(standin: PrometheusLikeStandin) -> None:
    standin.add("latency", ramp({"pod": "a"}, T0, 60, before=10, after=10))
    result = (
        _source(standin.url, ["latency"])
        .with_alert_expressions(["avg(last_5m):avg:system.cpu{*} > 90"])
        .series(T0, T0 + timedelta(hours=1))
    )
    assert [s.metric for s in result] == ["latency"]
    assert [f.query for f in result.failures] == ["avg(last_5m):avg:system.cpu{*}"]


def test_step_keeps_every_window_within_the_server_limit() -> None:
    for hours in (1, 24, 24 * 7, 24 * 90):
        step = step_seconds(T0, T0 + timedelta(hours=hours), wanted_s=15, max_points=11_000)
        assert hours * 3600 / step + 1 <= 11_000
    assert step_seconds(T0, T0 + timedelta(hours=1), wanted_s=60, max_points=1000) == 60


def test_requests_are_form_posts_with_step_and_server_timeout(standin: PrometheusLikeStandin) -> None:
    standin.add("latency", ramp({"pod": "a"}, T0, 120, before=10, after=40))
    source = _source(standin.url, ["latency"], max_points=50, timeout_s=5)
    result = source.series(T0, T0 + timedelta(hours=2))
    request = standin.requests[-1]
    assert request.content_type.startswith("application/x-www-form-urlencoded")
    assert request.path == "/api/v1/query_range"
    assert int(request.form["step"]) == 147  # 7200s over 49 steps, rounded up
    assert 0 < float(request.form["timeout"]) <= 5
    assert len(result[0].points) <= 50


def test_top_k_series_by_change(standin: PrometheusLikeStandin) -> None:
    for pod in range(30):
        standin.add("cpu", ramp({"pod": f"flat-{pod}"}, T0, 60, before=1, after=1))
    standin.add("cpu", ramp({"pod": "jumped"}, T0, 60, before=1, after=9))
    source = _source(standin.url, ["cpu"], max_series=5)
    result = source.series(T0, T0 + timedelta(hours=1))
    assert len(result) == 5
    assert {"pod": "jumped"} in [s.labels for s in result]


def test_429_and_5xx_are_retried_within_the_deadline(standin: PrometheusLikeStandin) -> None:
    standin.add("up", ramp({}, T0, 30, before=1, after=1))
    standin.fail(429, times=1, headers={"Retry-After": "0"})
    standin.fail(503, times=1)
    result = _source(standin.url, ["up"]).series(T0, T0 + timedelta(minutes=30))
    assert len(result) == 1 and len(standin.requests) == 3


def test_retries_stop_at_the_deadline(standin: PrometheusLikeStandin) -> None:
    standin.fail(503, times=100)
    with pytest.raises(SourceError, match="503"):
        _source(standin.url, ["up"], retries=10, deadline_s=1.0).series(T0, T0 + timedelta(minutes=30))
    assert len(standin.requests) < 10


def test_bearer_token_is_read_from_the_environment_and_never_shown(standin: PrometheusLikeStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROM_TOKEN", "s3cr3t-token-value")
    standin.require_token("s3cr3t-token-value")
    standin.add("up", ramp({}, T0, 30, before=1, after=1))
    assert len(_source(standin.url, ["up"], token_env="PROM_TOKEN").series(T0, T0 + timedelta(minutes=30))) == 1
    monkeypatch.setenv("PROM_TOKEN", "wrong-token-value")
    with pytest.raises(SourceError) as caught:
        _source(standin.url, ["up"], token_env="PROM_TOKEN").series(T0, T0 + timedelta(minutes=30))
    assert "credentials" in str(caught.value) and "token-value" not in str(caught.value)


def test_missing_token_variable_is_a_build_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROM_TOKEN", raising=False)
    spec = SourceSpec.model_validate(
        {"kind": "prometheus", "url": "http://x", "token_env": "PROM_TOKEN", "queries": [{"name": "a", "query": "up"}]}
    )
    built = build_specs({"metrics": [spec]}, Path("."))
    assert [d.component for d in built.errors] == ["metrics:prometheus"]
    assert "PROM_TOKEN" in built.errors[0].reason


def test_options_reject_literal_secrets_and_unknown_keys() -> None:
    spec = SourceSpec.model_validate({"kind": "prometheus", "url": "http://x", "token": "abc", "queries": [{"name": "a", "query": "up"}]})
    built = build_specs({"metrics": [spec]}, Path("."))
    assert "unknown option 'token'" in built.errors[0].reason


# --- the role contract, over the Prometheus-like stand-in -----------------------------------------------------------


class TestPrometheusContract(MetricSourceContract):
    kind = prometheus.KIND

    @pytest.fixture
    def make_source(self) -> Iterator[MakeMetricSource]:
        servers: list[PrometheusLikeStandin] = []

        def make(records: Sequence[MetricRecord]) -> Options:
            server = PrometheusLikeStandin().start()
            # The contract's samples are irregular: the stand-in answers with them as stored, not on a step grid.
            server.evaluate = False
            servers.append(server)
            by_series: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}
            for record in records:
                by_series.setdefault((record.metric, record.labels), []).append((record.at.timestamp(), record.value))
            for (metric, labels), points in by_series.items():
                server.add(metric, StoredSeries(dict(labels), points))
            metrics = sorted({record.metric for record in records})
            return {"url": server.url, "queries": [{"name": metric, "query": metric} for metric in metrics]}

        yield make
        for server in servers:
            server.stop()

    @pytest.fixture(params=["unreachable", "answers 503"])
    def broken_source(self, request: pytest.FixtureRequest) -> Iterator[Broken]:
        if request.param == "unreachable":
            url = f"http://127.0.0.1:9/{SECRET_DIR}"
            yield Broken({"url": url, "queries": [{"name": "up", "query": "up"}], "retries": 0, "deadline_s": 3}, target=url)
            return
        server = PrometheusLikeStandin().start()
        server.fail(503, times=1000)
        url = f"{server.url}/{SECRET_DIR}"
        yield Broken({"url": url, "queries": [{"name": "up", "query": "up"}], "retries": 1, "deadline_s": 3}, target=url)
        server.stop()
