"""Metrics from a CSV of `timestamp,metric,labels,value` (labels as k=v;k=v or a JSON object)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from core.timeparse import parse_iso
from integrations import roles
from integrations.errors import SourceError
from integrations.metrics.base import Series
from integrations.plugin import SourceKind, SourceOptions, resolve_path


def _labels(text: str) -> dict[str, str]:
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = json.loads(text)
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except ValueError:
            text = text.strip("{}")
    pairs = (p.split("=", 1) for p in text.replace(",", ";").split(";") if "=" in p)
    return {k.strip(): v.strip().strip('"') for k, v in pairs}


COLUMNS = frozenset({"timestamp", "metric", "value"})


class MetricsCsv:
    def __init__(self, path: Path, *, name: str = "metrics_csv") -> None:
        self.path = path
        self.name = name

    def series(self, start: datetime, end: datetime) -> list[Series]:
        found: dict[tuple[str, str], Series] = {}
        try:
            with self.path.open(newline="", encoding="utf-8", errors="replace") as fh:
                reader = csv.DictReader(fh)
                missing = COLUMNS.difference(reader.fieldnames or ())
                if missing:
                    raise SourceError(
                        f"metrics file {self.path} lacks the columns {', '.join(sorted(missing))} (timestamp,metric,labels,value)"
                    )
                for row in reader:
                    try:
                        at = parse_iso(row["timestamp"])
                        value = float(row["value"])
                    except (KeyError, TypeError, ValueError):
                        continue
                    if not start <= at <= end:
                        continue
                    metric, labels_text = row.get("metric") or "", row.get("labels") or ""
                    key = (metric, labels_text)
                    series = found.get(key)
                    if series is None:
                        series = found[key] = Series(metric=metric, labels=_labels(labels_text))
                    series.points.append((at, value))
        except OSError as exc:
            raise SourceError(f"metrics file {self.path} cannot be read ({exc.strerror})") from exc
        for series in found.values():
            series.points.sort()
        return list(found.values())


class MetricsCsvOptions(SourceOptions):
    path: str = Field(description="CSV with the columns timestamp,metric,labels,value (labels as k=v;k=v or JSON)")


def _build(options: MetricsCsvOptions, base_dir: Path) -> MetricsCsv:
    return MetricsCsv(resolve_path(options.path, base_dir), name=options.name or "metrics_csv")


def _check(source: MetricsCsv) -> str:
    everything = source.series(datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
    return f"{len(everything)} series, {sum(len(s.points) for s in everything):,} points"


KIND = SourceKind(
    name="metrics_csv",
    role=roles.METRICS,
    options=MetricsCsvOptions,
    build=_build,
    check=_check,
    summary="metric samples from a CSV file",
)
