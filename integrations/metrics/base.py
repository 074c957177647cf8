"""The metrics role: time series around the incident."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


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
