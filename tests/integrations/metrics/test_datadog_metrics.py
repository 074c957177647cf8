"""The `datadog_metrics` kind through datadog-api-client against a Datadog stand-in: shapes, units, rate limits, keys."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standin_datadog import DatadogSeries, DatadogStandin

from agents.evidence.metric_shifts import metric_shifts
from contracts import SECRET_DIR, Broken, MakeMetricSource, MetricRecord, MetricSourceContract, Options
from core.catalog import SourceSpec
from integrations.errors import SourceError
from integrations.metrics import datadog
from integrations.metrics.datadog import DatadogMetricsSource, DatadogOptions
from integrations.registry import build_specs

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
QUERY = "avg:trace.http.request.duration{service:checkout} by {pod}"


def _minutes(before: float, after: float, *, count: int = 60, gap_at: int | None = None) -> list[tuple[float, float | None]]:
    return [((T0 + timedelta(minutes=i)).timestamp(), None if i == gap_at else (before if i < count // 2 else after)) for i in range(count)]


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[DatadogStandin]:
    server = DatadogStandin().start()
    monkeypatch.setenv("DD_API_KEY", server.api_key)
    monkeypatch.setenv("DD_APP_KEY", server.app_key)
    yield server
    server.stop()


def _source(url: str, **extra: Any) -> DatadogMetricsSource:
    options = {"site_url": url, "queries": [{"name": "checkout p99", "query": QUERY}], **extra}
    return DatadogMetricsSource(DatadogOptions.model_validate(options))


def test_series_come_with_tags_as_labels_units_and_links(standin: DatadogStandin) -> None:
    standin.add(
        QUERY,
        DatadogSeries("trace.http.request.duration", ["pod:a", "service:checkout"], _minutes(80, 400, gap_at=3), ("millisecond", None)),
    )
    source = _source(standin.url, link_template="https://app.datadoghq.com/notebook?q={query}&from_ts={from_ms}&to_ts={to_ms}")

    result = source.series(T0, T1)

    assert result.failures == []
    [series] = result
    assert (series.metric, series.labels, series.unit) == ("checkout p99", {"pod": "a", "service": "checkout"}, "ms")
    assert len(series.points) == 59  # the null point is left out
    assert series.url == (
        f"https://app.datadoghq.com/notebook?q=avg%3Atrace.http.request.duration%7Bservice%3Acheckout%7D%20by%20%7Bpod%7D"
        f"&from_ts={int(T0.timestamp()) * 1000}&to_ts={int(T1.timestamp()) * 1000}"
    )
    request = standin.requests[-1]
    assert request.path == "/api/v1/query"
    assert request.params == {"from": str(int(T0.timestamp())), "to": str(int(T1.timestamp())), "query": QUERY}
    [shift] = metric_shifts(list(result))
    assert shift.direction == "up"


def test_a_rate_unit_and_a_catalog_unit(standin: DatadogStandin) -> None:
    standin.add(QUERY, DatadogSeries("trace.http.request.hits", [], _minutes(5, 5), ("request", "second")))
    assert _source(standin.url).series(T0, T1)[0].unit == "req/s"
    assert _source(standin.url, queries=[{"name": "hits", "query": QUERY, "unit": "rps"}]).series(T0, T1)[0].unit == "rps"


def test_429_waits_for_the_rate_limit_reset_then_reads(standin: DatadogStandin) -> None:
    standin.add(QUERY, DatadogSeries("trace.http.request.duration", ["pod:a"], _minutes(1, 2)))
    standin.rate_limit(times=1, reset_s=1)
    started = time.monotonic()
    result = _source(standin.url).series(T0, T1)
    assert len(result) == 1 and len(standin.requests) == 2
    assert time.monotonic() - started >= 0.9


def test_a_reset_past_the_deadline_gives_up_at_once_with_the_reason(standin: DatadogStandin) -> None:
    standin.rate_limit(times=5, reset_s=60)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"rate-limited .* \(429; resets in 60s\)"):
        _source(standin.url, deadline_s=5).series(T0, T1)
    assert time.monotonic() - started < 3 and len(standin.requests) == 1


def test_5xx_is_retried(standin: DatadogStandin) -> None:
    standin.add(QUERY, DatadogSeries("trace.http.request.duration", ["pod:a"], _minutes(1, 2)))
    standin.fail(503, times=2)
    assert len(_source(standin.url).series(T0, T1)) == 1


def test_403_is_a_clear_error_without_the_keys(standin: DatadogStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_APP_KEY", "dd-app-key-wrong-0123456789")
    with pytest.raises(SourceError) as caught:
        _source(standin.url).series(T0, T1)
    message = str(caught.value)
    assert "refused the keys (403: Forbidden)" in message and "DD_APP_KEY" in message and "timeseries_query" in message
    assert "dd-app-key" not in message and "dd-api-key" not in message


def test_a_bad_query_fails_alone_with_datadogs_error(standin: DatadogStandin) -> None:
    standin.add(QUERY, DatadogSeries("trace.http.request.duration", ["pod:a"], _minutes(1, 2)))
    source = _source(standin.url, queries=[{"name": "ok", "query": QUERY}, {"name": "typo", "query": "avg:trace.http.request.duration"}])
    result = source.series(T0, T1)
    assert [s.metric for s in result] == ["ok"]
    [failure] = result.failures
    assert failure.query == "typo" and "Error parsing query" in failure.reason and "\n" not in failure.reason


def test_missing_key_variables_are_build_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DD_API_KEY", raising=False)
    spec = SourceSpec.model_validate({"kind": "datadog_metrics", "queries": [{"name": "a", "query": QUERY}]})
    built = build_specs({"metrics": [spec]}, Path("."))
    assert [d.component for d in built.errors] == ["metrics:datadog_metrics"]
    assert "DD_API_KEY is not set" in built.errors[0].reason


def test_check_proves_both_keys(standin: DatadogStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    assert datadog.KIND.check is not None
    assert "keys accepted" in datadog.KIND.check(_source(standin.url))
    monkeypatch.setenv("DD_APP_KEY", "dd-app-key-wrong-0123456789")
    with pytest.raises(SourceError, match="refused the keys"):
        datadog.KIND.check(_source(standin.url))


# --- the role contract, over the Datadog stand-in ---------------------------------------------------------------------


class TestDatadogMetricsContract(MetricSourceContract):
    kind = datadog.KIND

    @pytest.fixture
    def make_source(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeMetricSource]:
        servers: list[DatadogStandin] = []

        def make(records: Sequence[MetricRecord]) -> Options:
            server = DatadogStandin().start()
            servers.append(server)
            monkeypatch.setenv("DD_API_KEY", server.api_key)
            monkeypatch.setenv("DD_APP_KEY", server.app_key)
            by_series: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float | None]]] = {}
            for record in records:
                by_series.setdefault((record.metric, record.labels), []).append((record.at.timestamp(), record.value))
            for (metric, labels), points in by_series.items():
                server.add(f"avg:{metric}{{*}}", DatadogSeries(metric, [f"{k}:{v}" for k, v in labels], points))
            queries = [{"name": metric, "query": f"avg:{metric}{{*}}"} for metric in sorted({record.metric for record in records})]
            return {"site_url": server.url, "queries": queries}

        yield make
        for server in servers:
            server.stop()

    @pytest.fixture(params=["unreachable", "keys refused"])
    def broken_source(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broken]:
        monkeypatch.setenv("DD_API_KEY", "dd-api-key-wrong-0123456789")
        monkeypatch.setenv("DD_APP_KEY", "dd-app-key-wrong-0123456789")
        options: dict[str, Any] = {"queries": [{"name": "up", "query": "avg:up{*}"}], "retries": 0, "deadline_s": 3}
        if request.param == "unreachable":
            url = f"http://127.0.0.1:9/{SECRET_DIR}"
            yield Broken({**options, "site_url": url}, target=url)
            return
        server = DatadogStandin().start()
        url = f"{server.url}/{SECRET_DIR}"
        yield Broken({**options, "site_url": url}, target=url)
        server.stop()
