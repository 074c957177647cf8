"""What the query-based metric kinds share: the catalog's query model, the bounds, retries and partial results.

A metric store answers queries, not "every series of the service": each kind lists
its queries in the catalog (`MetricQuery`), runs them one by one within the source's
deadline, keeps the series a responder can read (points per series, top-k series
per query by how much they changed) and returns them as a `SeriesResult`, which is
a plain `list[Series]` that also carries the queries that failed. A failing query
does not hide the others; only when every query fails does the source raise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from integrations.errors import SourceError
from integrations.metrics.base import Series

T = TypeVar("T")


class MetricQuery(BaseModel):
    """One query a team watches, as the catalog lists it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, description="what the series are called in reports (the metric name of the series)")
    query: str = Field(min_length=1, description="the query in the store's own language")
    labels: list[str] | None = Field(None, description="labels to show on each series (default: all the store returns; [] shows none)")
    unit: str | None = Field(None, description="unit of the values (e.g. ms, req/s, ratio, bytes), shown with the series")


class QueryBounds(BaseModel):
    """Bounds every query-based kind accepts, mixed into its options model."""

    max_points: int = Field(1000, ge=10, le=11_000, description="most points per series; the resolution coarsens to stay within it")
    max_series: int = Field(20, ge=1, le=1000, description="most series per query; the ones that changed most are kept")
    deadline_s: float = Field(20.0, gt=0, description="longest time for all of this source's queries, retries included")
    timeout_s: float = Field(10.0, gt=0, description="longest wait for one request")
    retries: int = Field(3, ge=0, le=10, description="retries of one request on 429 and 5xx answers, within the deadline")


@dataclass(frozen=True, slots=True)
class QueryFailure:
    """One query that gave nothing, and why (one line, no secrets)."""

    query: str
    reason: str


class SeriesResult(list[Series]):
    """The series a source read, plus the queries that failed (the pipeline may show each as a degraded entry)."""

    def __init__(self, series: Iterable[Series] = (), failures: Iterable[QueryFailure] = ()) -> None:
        super().__init__(series)
        self.failures: list[QueryFailure] = list(failures)


def shown_labels(labels: dict[str, str], query: MetricQuery) -> dict[str, str]:
    """The labels the catalog asks to show (all but `__name__` by default)."""
    if query.labels is None:
        return {k: v for k, v in labels.items() if k != "__name__"}
    return {k: labels[k] for k in query.labels if k in labels}


def step_seconds(start: datetime, end: datetime, *, wanted_s: float, max_points: int) -> int:
    """A whole-second step no finer than `wanted_s` that keeps [start, end] within `max_points` points."""
    span = max((end - start).total_seconds(), 1.0)
    # +1: a range query returns both ends, so n steps give n + 1 points.
    needed = span / max(max_points - 1, 1)
    return max(1, math.ceil(max(wanted_s, needed)))


def thin(points: list[tuple[datetime, float]], max_points: int) -> list[tuple[datetime, float]]:
    """At most `max_points` points, evenly picked, first and last kept (for stores that ignore a requested resolution)."""
    if len(points) <= max_points:
        return points
    stride = (len(points) - 1) / (max_points - 1)
    return [points[round(i * stride)] for i in range(max_points)]


def change_score(points: Sequence[tuple[datetime, float]]) -> float:
    """How much a series moved: the largest relative change between the medians of its early and late parts."""
    values = [v for _, v in points]
    if len(values) < 2:
        return 0.0
    best = 0.0
    # Comparing halves and quarters catches both a shift mid-window and one near its end, cheaply.
    for cut in (len(values) // 4, len(values) // 2, (3 * len(values)) // 4):
        if cut <= 0 or cut >= len(values):
            continue
        before, after = median(values[:cut]), median(values[cut:])
        scale = max(abs(before), abs(after), 1e-12)
        best = max(best, abs(after - before) / scale)
    return best


def top_by_change(series: list[Series], limit: int) -> list[Series]:
    """The `limit` series that changed most, in their original order (a query may return thousands)."""
    if len(series) <= limit:
        return series
    ranked = sorted(range(len(series)), key=lambda i: change_score(series[i].points), reverse=True)[:limit]
    return [series[i] for i in sorted(ranked)]


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def run_queries(
    queries: Sequence[MetricQuery],
    read: Callable[[MetricQuery], list[Series]],
    *,
    source: str,
    max_series: int,
    max_points: int,
) -> SeriesResult:
    """Each query through `read`; failures are collected, and raise only when every query failed."""
    result = SeriesResult()
    for query in queries:
        try:
            found = read(query)
        except SourceError as exc:
            # Not redacted here: the message may name the target (a URL), and whoever shows it redacts it.
            result.failures.append(QueryFailure(query.name, str(exc)))
            continue
        for item in found:
            item.points = thin(sorted(item.points), max_points)
        result.extend(top_by_change(found, max_series))
    if queries and len(result.failures) == len(queries):
        reasons = "; ".join(f"{failure.query}: {failure.reason}" for failure in result.failures)
        raise SourceError(f"{source}: every query failed ({reasons})")
    return result
