"""The Report: what one investigation concludes, in the shape of contracts/report.schema.json."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal[
    "bad_deploy",
    "config_change",
    "dependency_failure",
    "resource_exhaustion",
    "traffic_surge",
    "expired_credential",
    "infrastructure",
    "data_migration",
    "unknown",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]


class _Open(BaseModel):
    # The contract allows extra keys; keep whatever a producer added.
    model_config = ConfigDict(extra="allow")


class Window(_Open):
    start: str
    end: str
    onset: str | None = None


class RootCause(_Open):
    category: Category
    summary: str
    component: str | None = None
    confidence: float = Field(ge=0, le=1)


class SuspectCommit(_Open):
    sha: str
    score: float = Field(ge=0, le=1)
    reason: str
    author: str = ""
    message: str = ""
    files: list[str] = Field(default_factory=list)
    committed_at: str = ""
    deployed_at: str | None = None
    url: str | None = None
    pr_url: str | None = None
    pr_title: str | None = None


class Signature(_Open):
    template: str
    count: int
    count_before: int = 0
    count_after: int = 0
    first_seen: str = ""
    last_seen: str = ""
    level: str = ""
    sample: str = ""
    source: str = ""
    frames: list[str] = Field(default_factory=list)


class Fact(_Open):
    """What the platform states about the service (an OOM kill, a crash loop, a node NotReady), with when where known."""

    kind: str
    subject: str
    detail: str
    at: str | None = None
    last_at: str | None = None
    count: int = 1
    reason: str | None = None
    exit_code: int | None = None
    source: str = ""
    failing: bool = True


class MetricShift(_Open):
    metric: str
    change_at: str
    before: float
    after: float
    unit: str | None = None
    url: str | None = None


class TimelineEntry(_Open):
    at: str
    event: str
    source: str = ""


class Action(_Open):
    title: str
    detail: str = ""
    kind: Literal["mitigate", "investigate", "prevent"] = "mitigate"
    runbook: str | None = None


class RunbookRef(_Open):
    title: str
    path: str
    score: float = 0.0


class SimilarIncident(_Open):
    id: str
    title: str
    score: float
    root_cause: str = ""
    date: str | None = None
    service: str | None = None
    category: str | None = None
    culprit: str | None = None
    resolution: str | None = None
    url: str | None = None
    # Which embedder scored it (a model, or "lexical-v1" when none is installed): scores of two embedders do not compare.
    embedder: str | None = None


class Degraded(_Open):
    component: str
    reason: str


class Usage(_Open):
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class Report(_Open):
    schema_version: Literal["1"] = "1"
    investigation_id: str | None = None
    alert: dict[str, Any] = Field(default_factory=dict)
    window: Window | None = None
    root_cause: RootCause
    suspect_commits: list[SuspectCommit] = Field(default_factory=list)
    signatures: list[Signature] = Field(default_factory=list)
    metrics: list[MetricShift] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    runbooks: list[RunbookRef] = Field(default_factory=list)
    similar_incidents: list[SimilarIncident] = Field(default_factory=list)
    degraded: list[Degraded] = Field(default_factory=list)
    # What each log store read (source, query, events, bytes, API calls, truncated): "no logs" must not read as healthy.
    log_reads: list[dict[str, Any]] = Field(default_factory=list)
    # Facts before statistics: what Kubernetes states about the service's pods, containers and nodes.
    facts: list[Fact] = Field(default_factory=list)
    analyst: Literal["offline", "crew"] = "offline"
    usage: Usage = Field(default_factory=Usage)
    timings: dict[str, float] = Field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=False)

    @property
    def top_suspect(self) -> SuspectCommit | None:
        return self.suspect_commits[0] if self.suspect_commits else None
