"""What the deterministic evidence engine produces, and what it is given.

The offline analyst, the LLM crew, follow-up answers and the renderers all read
`Evidence`; none of them reads raw logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from core.alert import Alert
from core.degraded import Degradation
from integrations import roles
from integrations.code.base import ChangeSource, Commit, Deploy
from integrations.logs.base import LogSource
from integrations.metrics.base import Series
from integrations.registry import ServiceSources
from integrations.roles import Role
from integrations.runbooks.base import Runbook

ItemT = TypeVar("ItemT")

# "untimed": the events carry no time (container output), so no before/after exists; they are ranked by what they say.
SignatureTrend = Literal["new", "spiking", "chronic", "steady", "fading", "untimed"]


@dataclass(slots=True)
class EvidenceInputs:
    """Everything gathered for one investigation, by role. Logs stay sources: they are streamed, never loaded whole."""

    alert: Alert
    service: str
    window_start: datetime
    window_end: datetime
    sources: ServiceSources = field(default_factory=ServiceSources)
    gathered: dict[str, list[Any]] = field(default_factory=lambda: {role.name: [] for role in roles.ROLES})
    degraded: list[Degradation] = field(default_factory=list)
    log_deadline_s: float = 120.0

    def items(self, role: Role[Any, ItemT]) -> list[ItemT]:
        """What was gathered up front from the sources of one role."""
        return self.gathered.setdefault(role.name, [])

    @property
    def log_sources(self) -> list[LogSource]:
        return self.sources.of(roles.LOGS)

    @property
    def change_sources(self) -> list[ChangeSource]:
        return self.sources.of(roles.CODE)

    @property
    def commits(self) -> list[Commit]:
        return self.items(roles.CODE)

    @property
    def deploys(self) -> list[Deploy]:
        return self.items(roles.DEPLOYS)

    @property
    def series(self) -> list[Series]:
        return self.items(roles.METRICS)

    @property
    def runbooks(self) -> list[Runbook]:
        return self.items(roles.RUNBOOKS)


class SignatureEvidence(BaseModel):
    group_id: int
    template: str
    count: int
    count_before: int = 0
    count_after: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    level: str = ""
    sample: str = ""
    source: str = ""
    sources: list[str] = Field(default_factory=list)
    frames: list[str] = Field(default_factory=list)
    exception: str | None = None
    trend: SignatureTrend = "steady"
    score: float = 0.0


class SuspectEvidence(BaseModel):
    sha: str
    score: float = Field(ge=0, le=1)
    reason: str
    author: str = ""
    message: str = ""
    files: list[str] = Field(default_factory=list)
    committed_at: datetime | None = None
    deployed_at: datetime | None = None
    url: str | None = None
    # The pull/merge request that brought the commit in, when the code host says.
    pr_url: str | None = None
    pr_title: str | None = None
    signals: dict[str, float] = Field(default_factory=dict)


class MetricShiftEvidence(BaseModel):
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    change_at: datetime
    before: float
    after: float
    direction: Literal["up", "down"] = "up"
    unit: str | None = None
    # The same query in the team's own UI (Prometheus, Grafana, Datadog, New Relic), when the source knows it.
    url: str | None = None


class FactEvidence(BaseModel):
    """A fact the platform states (an OOM kill, a crash loop, a node NotReady), as the analysis shows it."""

    kind: str
    subject: str
    detail: str
    at: datetime | None = None
    last_at: datetime | None = None
    count: int = 1
    reason: str | None = None
    exit_code: int | None = None
    source: str = ""
    failing: bool = True
    # False for other workloads in a pasted namespace dump: shown, not reasoned over.
    about_service: bool = True


class RunbookMatch(BaseModel):
    title: str
    path: str
    score: float


class TimelineItem(BaseModel):
    at: datetime
    event: str
    source: str = ""


class Finding(BaseModel):
    """The engine's conclusion, before any prose is written around it."""

    category: str = "unknown"
    confidence: float = 0.0
    component: str | None = None
    rationale: list[str] = Field(default_factory=list)


class Evidence(BaseModel):
    service: str
    window_start: datetime
    window_end: datetime
    alert_at: datetime
    onset: datetime | None = None
    # What the onset was read from: "logs", a fact ("facts: OOMKilled on ..."), or "" when it is unknown.
    onset_from: str = ""
    facts: list[FactEvidence] = Field(default_factory=list)
    signatures: list[SignatureEvidence] = Field(default_factory=list)
    suspects: list[SuspectEvidence] = Field(default_factory=list)
    metric_shifts: list[MetricShiftEvidence] = Field(default_factory=list)
    deploys: list[dict[str, Any]] = Field(default_factory=list)
    runbooks: list[RunbookMatch] = Field(default_factory=list)
    timeline: list[TimelineItem] = Field(default_factory=list)
    finding: Finding = Field(default_factory=Finding)
    degraded: list[Degradation] = Field(default_factory=list)
    # What each log store read: events, bytes, API calls, whether a cap cut it (see integrations.logs.store.ReadAccount).
    log_reads: list[dict[str, Any]] = Field(default_factory=list)
    # Past incidents the history index found close to this one (set after the offline report, for the crew).
    similar_incidents: list[dict[str, Any]] = Field(default_factory=list)
    stats: dict[str, float] = Field(default_factory=dict)
