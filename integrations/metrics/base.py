"""The metrics role: time series around the incident."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from core.alert import Alert


@dataclass(slots=True)
class Series:
    metric: str
    labels: dict[str, str] = field(default_factory=dict)
    points: list[tuple[datetime, float]] = field(default_factory=list)
    # Filled by the query-based kinds (Prometheus, Grafana, Datadog, New Relic); None from a CSV.
    unit: str | None = None
    # A link to the same query in the team's own UI (Prometheus graph, Grafana Explore, Datadog, New Relic), when configured.
    url: str | None = None

    @property
    def key(self) -> str:
        if not self.labels:
            return self.metric
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.metric}{{{inner}}}"


class MetricSource(Protocol):
    name: str

    def series(self, start: datetime, end: datetime) -> list[Series]:
        """Every series the source holds for the service in [start, end]."""
        ...


@runtime_checkable
class FollowsAlertExpressions(Protocol):
    """A metric source that can also read what the alert's own rule measures (its PromQL, threshold removed)."""

    def with_alert_expressions(self, expressions: Sequence[str]) -> MetricSource:
        """This source, reading its listed queries plus those derived from `expressions` (itself when none apply)."""
        ...


def for_alert(source: MetricSource, alert: Alert) -> MetricSource:
    """The source an investigation of `alert` reads: with the alert's expressions where the source can follow them."""
    expressions = alert.expressions
    if expressions and isinstance(source, FollowsAlertExpressions):
        return source.with_alert_expressions(expressions)
    return source
