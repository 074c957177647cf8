"""The `newrelic` kind against a NerdGraph stand-in: NRQL as a variable, facets, errors inside HTTP 200, rate limits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standin_newrelic import NewRelicStandin, NrqlSeries

from agents.evidence.metric_shifts import metric_shifts
from contracts import SECRET_DIR, Broken, MakeMetricSource, MetricRecord, MetricSourceContract, Options
from core.catalog import SourceSpec
from integrations.errors import SourceError
from integrations.metrics import newrelic
from integrations.metrics.newrelic import NewRelicOptions, NewRelicSource
from integrations.registry import build_specs

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
NRQL = "SELECT average(duration) FROM Transaction WHERE appName = 'checkout' FACET host TIMESERIES 1 minute"


def _buckets(name: str, before: float, after: float, count: int = 60) -> list[tuple[float, dict[str, Any]]]:
    return [((T0 + timedelta(minutes=i)).timestamp(), {name: before if i < count // 2 else after}) for i in range(count)]


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[NewRelicStandin]:
    server = NewRelicStandin().start()
    monkeypatch.setenv("NEW_RELIC_API_KEY", server.api_key)
    yield server
    server.stop()


def _source(server: NewRelicStandin, **extra: Any) -> NewRelicSource:
    options = {"url": server.url, "account_id": server.account_id, "queries": [{"name": "checkout latency", "query": NRQL, "unit": "s"}]}
    return NewRelicSource(NewRelicOptions.model_validate({**options, **extra}))


def test_nrql_goes_as_a_variable_and_facets_become_labels(standin: NewRelicStandin) -> None:
    standin.add(NRQL, NrqlSeries(("web-1",), _buckets("average.duration", 0.1, 0.9)), facets=["host"])
    standin.add(NRQL, NrqlSeries(("web-2",), _buckets("average.duration", 0.1, 0.1)), facets=["host"])
    source = _source(standin, link_template="https://one.newrelic.com/launcher?nrql={nrql}")

    result = source.series(T0, T1)

    assert result.failures == []
    assert sorted((s.metric, tuple(s.labels.items()), s.unit, len(s.points)) for s in result) == [
        ("checkout latency", (("host", "web-1"),), "s", 60),
        ("checkout latency", (("host", "web-2"),), "s", 60),
    ]
    body = standin.requests[-1].body
    assert body["variables"]["nrql"] == f"{NRQL} SINCE {int(T0.timestamp() * 1000)} UNTIL {int(T1.timestamp() * 1000)}"
    assert "$nrql" in body["query"] and "SELECT" not in body["query"]
    assert body["variables"]["accountId"] == standin.account_id and body["variables"]["timeout"] >= 1
    assert standin.pasted == []
    assert all((s.url or "").startswith("https://one.newrelic.com/launcher?nrql=SELECT%20average") for s in result)
    [shift] = metric_shifts(list(result))
    assert shift.labels == {"host": "web-1"} and shift.direction == "up"


def test_a_quote_in_the_nrql_cannot_change_the_graphql_document(standin: NewRelicStandin) -> None:
    tricky = 'SELECT count(*) FROM Transaction WHERE name = "a\\" } } evil { x" TIMESERIES'
    standin.add(tricky, NrqlSeries((), _buckets("count", 1, 1)))
    result = _source(standin, queries=[{"name": "tricky", "query": tricky}]).series(T0, T1)
    assert len(result) == 1
    assert standin.requests[-1].body["query"] == newrelic.NRQL_DOCUMENT


def test_several_aggregates_and_percentiles_are_separate_series(standin: NewRelicStandin) -> None:
    nrql = "SELECT average(duration), percentile(duration, 95) FROM Transaction TIMESERIES"
    buckets = [((T0 + timedelta(minutes=i)).timestamp(), {"average.duration": 0.1, "percentile.duration": {"95": 0.4}}) for i in range(10)]
    standin.add(nrql, NrqlSeries((), buckets))
    result = _source(standin, queries=[{"name": "latency", "query": nrql}]).series(T0, T1)
    assert sorted(s.labels["aggregate"] for s in result) == ["average.duration", "percentile.duration.95"]


def test_errors_inside_a_200_are_read_and_one_bad_query_does_not_hide_the_others(standin: NewRelicStandin) -> None:
    standin.add(NRQL, NrqlSeries(("web-1",), _buckets("average.duration", 0.1, 0.2)), facets=["host"])
    source = _source(standin, queries=[{"name": "ok", "query": NRQL}, {"name": "typo", "query": "SELECT FORM Transaction TIMESERIES"}])
    result = source.series(T0, T1)
    assert [s.metric for s in result] == ["ok"]
    [failure] = result.failures
    assert failure.query == "typo" and "NRQL Syntax Error" in failure.reason


def test_rate_limits_in_errors_and_in_http_are_retried(standin: NewRelicStandin) -> None:
    standin.add(NRQL, NrqlSeries(("web-1",), _buckets("average.duration", 0.1, 0.2)), facets=["host"])
    standin.fail_graphql("TOO_MANY_REQUESTS", "Too many concurrent NRQL queries")
    standin.fail_http(429)
    standin.fail_http(503)
    assert len(_source(standin).series(T0, T1)) == 1
    assert len(standin.requests) == 4


def test_a_refused_key_is_a_clear_error_without_the_key(standin: NewRelicStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEW_RELIC_API_KEY", "NRAK-WRONG0123456789ABCDEFGHIJKL")
    with pytest.raises(SourceError) as caught:
        _source(standin).series(T0, T1)
    message = str(caught.value)
    assert "refused the user key in NEW_RELIC_API_KEY" in message and "Invalid API key" in message
    assert "NRAK-" not in message


def test_check_names_the_account(standin: NewRelicStandin) -> None:
    assert newrelic.KIND.check is not None
    assert "New Relic account 1234567 (Stand-in account)" in newrelic.KIND.check(_source(standin))
    with pytest.raises(SourceError, match="refused the user key"):
        newrelic.KIND.check(_source(standin, account_id=42))


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("SELECT count(*) FROM Transaction", "must be a TIMESERIES query"),
        ("SELECT count(*) FROM Transaction SINCE 1 hour ago TIMESERIES", "leave SINCE/UNTIL out"),
    ],
)
def test_the_catalog_refuses_queries_the_kind_cannot_window(query: str, problem: str) -> None:
    spec = SourceSpec.model_validate({"kind": "newrelic", "account_id": 1, "queries": [{"name": "a", "query": query}]})
    built = build_specs({"metrics": [spec]}, Path("."))
    assert problem in built.errors[0].reason


# --- the role contract, over the NerdGraph stand-in -------------------------------------------------------------------


class TestNewRelicContract(MetricSourceContract):
    kind = newrelic.KIND

    @pytest.fixture
    def make_source(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeMetricSource]:
        servers: list[NewRelicStandin] = []

        def make(records: Sequence[MetricRecord]) -> Options:
            server = NewRelicStandin().start()
            servers.append(server)
            monkeypatch.setenv("NEW_RELIC_API_KEY", server.api_key)
            by_series: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, dict[str, Any]]]] = {}
            for record in records:
                by_series.setdefault((record.metric, record.labels), []).append((record.at.timestamp(), {"latest": record.value}))
            queries = {}
            for (metric, labels), buckets in by_series.items():
                facets = [name for name, _ in labels]
                nrql = f"SELECT latest({metric}) FROM Metric{' FACET ' + ', '.join(facets) if facets else ''} TIMESERIES"
                server.add(nrql, NrqlSeries(tuple(value for _, value in labels), buckets), facets=facets)
                queries[metric] = nrql
            return {
                "url": server.url,
                "account_id": server.account_id,
                "queries": [{"name": metric, "query": nrql} for metric, nrql in sorted(queries.items())],
            }

        yield make
        for server in servers:
            server.stop()

    @pytest.fixture(params=["unreachable", "key refused"])
    def broken_source(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broken]:
        monkeypatch.setenv("NEW_RELIC_API_KEY", "NRAK-WRONG0123456789ABCDEFGHIJKL")
        options: dict[str, Any] = {"account_id": 1234567, "queries": [{"name": "up", "query": "SELECT count(*) FROM X TIMESERIES"}]}
        if request.param == "unreachable":
            url = f"http://127.0.0.1:9/{SECRET_DIR}/graphql"
            yield Broken({**options, "url": url, "retries": 0, "deadline_s": 3}, target=url)
            return
        server = NewRelicStandin().start()
        url = server.url.replace("/graphql", f"/{SECRET_DIR}/graphql")
        yield Broken({**options, "url": url}, target=url)
        server.stop()
