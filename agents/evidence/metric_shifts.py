"""Change points in metric series: where a level shifted and stayed shifted."""

from __future__ import annotations

from datetime import datetime
from statistics import median

from agents.evidence.model import MetricShiftEvidence
from integrations.metrics.base import Series

MIN_POINTS_EACH_SIDE = 4
MIN_RELATIVE_CHANGE = 0.5
# The shift must hold: this share of the points after it sit beyond the midpoint between the levels.
MIN_PERSISTENCE = 0.7


def _shift(points: list[tuple[datetime, float]]) -> tuple[int, float, float, float] | None:
    """(index, before, after, strength) of the split with the largest persistent relative change of the median."""
    values = [v for _, v in points]
    best: tuple[int, float, float, float] | None = None
    for i in range(MIN_POINTS_EACH_SIDE, len(values) - MIN_POINTS_EACH_SIDE + 1):
        before = median(values[max(0, i - 60) : i])
        after = median(values[i : i + 30])
        scale = max(abs(before), abs(after), 1e-9)
        relative = abs(after - before) / max(abs(before), 1e-9 * scale)
        if relative < MIN_RELATIVE_CHANGE:
            continue
        midpoint = (before + after) / 2
        tail = values[i : i + 30]
        beyond = sum(1 for v in tail if (v > midpoint) == (after > before)) / len(tail)
        if beyond < MIN_PERSISTENCE:
            continue
        strength = min(relative, 50.0) * beyond
        if best is None or strength > best[3] * 1.05:
            best = (i, before, after, strength)
    return best


def metric_shifts(series: list[Series], *, not_after: datetime | None = None) -> list[MetricShiftEvidence]:
    """One shift per series (the strongest), strongest first."""
    found: list[tuple[float, MetricShiftEvidence]] = []
    for item in series:
        points = sorted(item.points)
        if not_after is not None:
            points = [p for p in points if p[0] <= not_after]
        if len(points) < 2 * MIN_POINTS_EACH_SIDE:
            continue
        shift = _shift(points)
        if shift is None:
            continue
        index, before, after, strength = shift
        found.append(
            (
                strength,
                MetricShiftEvidence(
                    metric=item.metric,
                    labels=item.labels,
                    change_at=points[index][0],
                    before=round(before, 6),
                    after=round(after, 6),
                    direction="up" if after > before else "down",
                    unit=item.unit,
                    url=item.url,
                ),
            )
        )
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [shift for _, shift in found]
