"""The `metrics_csv` kind: the metric contract, then `MetricsCsv` on real CSV files."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import SECRET_DIR, Broken, MakeMetricSource, MetricRecord, MetricSourceContract, Options
from integrations.metrics import csv_file
from integrations.metrics.csv_file import MetricsCsv

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class TestMetricsCsvContract(MetricSourceContract):
    kind = csv_file.KIND

    @pytest.fixture
    def make_source(self, tmp_path: Path) -> MakeMetricSource:
        counter = itertools.count()

        def make(records: Sequence[MetricRecord]) -> Options:
            path = tmp_path / f"metrics-{next(counter)}.csv"
            rows = [f"{r.at.isoformat()},{r.metric},{';'.join(f'{k}={v}' for k, v in r.labels)},{r.value}\n" for r in records]
            path.write_text("timestamp,metric,labels,value\n" + "".join(rows))
            return {"path": path.name}

        return make

    @pytest.fixture(params=["missing file", "a folder", "other columns"])
    def broken_source(self, request: pytest.FixtureRequest, tmp_path: Path) -> Broken:
        path = tmp_path / SECRET_DIR / "metrics.csv"
        path.parent.mkdir()
        options = {"path": f"{SECRET_DIR}/metrics.csv"}
        if request.param == "a folder":
            path.mkdir()
        elif request.param == "other columns":
            path.write_text("time,name,val\n2026-03-10T11:30:00Z,http_5xx_ratio,0.2\n")
            return Broken(
                options,
                target=str(path),
            )
        return Broken(options, target=str(path))


def test_metrics_csv_groups_series_by_metric_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "timestamp,metric,labels,value\n"
        "2026-03-10T11:00:00Z,http_5xx_ratio,service=checkout,0.01\n"
        "2026-03-10T11:01:00Z,http_5xx_ratio,service=checkout,0.2\n"
        "2026-03-10T11:00:00Z,cpu,pod=a;container=app,0.5\n"
        "garbage,row\n"
    )
    series = {s.key: s for s in MetricsCsv(path).series(T0 - timedelta(hours=2), T0)}
    assert set(series) == {'http_5xx_ratio{service="checkout"}', 'cpu{container="app",pod="a"}'}
    assert [v for _, v in series['http_5xx_ratio{service="checkout"}'].points] == [0.01, 0.2]


def test_labels_may_be_a_json_object(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text('timestamp,metric,labels,value\n2026-03-10T11:00:00Z,cpu,"{""pod"": ""a"", ""zone"": 1}",0.5\n')

    [series] = MetricsCsv(path).series(T0 - timedelta(hours=2), T0)

    assert series.labels == {"pod": "a", "zone": "1"}


def test_rows_with_an_unreadable_time_or_value_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("timestamp,metric,labels,value\nyesterday,cpu,,0.5\n2026-03-10T11:00:00Z,cpu,,lots\n2026-03-10T11:01:00Z,cpu,,0.7\n")

    [series] = MetricsCsv(path).series(T0 - timedelta(hours=2), T0)

    assert series.points == [(T0 - timedelta(minutes=59), 0.7)]


def test_sources_check_reads_the_file_and_counts_series_and_points(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("timestamp,metric,labels,value\n")
    assert csv_file.KIND.check is not None
    assert csv_file.KIND.check(MetricsCsv(path)) == "0 series, 0 points"

    path.write_text("timestamp,metric,labels,value\n2026-03-10T11:00:00Z,cpu,pod=a,0.5\n2026-03-10T11:01:00Z,cpu,pod=a,0.7\n")
    assert csv_file.KIND.check(MetricsCsv(path)) == "1 series, 2 points"
