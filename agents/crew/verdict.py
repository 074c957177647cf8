"""What the incident commander returns (`output_pydantic`), and how it becomes the Report.

The model is smaller than the Report on purpose: the evidence lists (signatures,
metrics, timeline, runbooks) stay the offline analyst's, and the crew decides the
root cause, the summary, the actions and the order of the suspects — only among
the evidence's own commits.

Every field is required (nullable where it may be empty) because OpenAI's strict
`json_schema` mode accepts nothing else; lengths and ranges are enforced after
parsing, not in the schema, for the same reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from agents.report import Action, Category, Report, RootCause, SuspectCommit, Usage

SUMMARY_CHARS = 900
MAX_ACTIONS = 4
# When the crew blames no change, no suspect may look like a culprit.
NO_BLAME_CAP = 0.3


class BlamedCommit(BaseModel):
    sha: str
    likelihood: float
    reason: str


class VerdictAction(BaseModel):
    title: str
    detail: str
    kind: Literal["mitigate", "investigate", "prevent"]
    runbook: str | None


class Verdict(BaseModel):
    category: Category
    component: str | None
    confidence: float
    summary: str
    blamed_commits: list[BlamedCommit]
    cited_files: list[str]
    cited_metrics: list[str]
    actions: list[VerdictAction]


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, float(value)))


def _rerank(offline: list[SuspectCommit], blamed: list[BlamedCommit]) -> list[SuspectCommit]:
    """The crew's order first (scores made non-increasing), then the rest, never above the last blamed one."""
    by_sha = {s.sha: s for s in offline}
    ranked: list[SuspectCommit] = []
    ceiling = 1.0
    for item in blamed:
        suspect = by_sha.pop(item.sha, None)
        if suspect is None:
            continue
        ceiling = min(ceiling, _clamp(item.likelihood))
        reason = item.reason.strip()
        ranked.append(
            suspect.model_copy(update={"score": round(ceiling, 3), "reason": f"{reason} ({suspect.reason})" if reason else suspect.reason})
        )
    cap = ceiling if ranked else NO_BLAME_CAP
    rest = sorted(by_sha.values(), key=lambda s: -s.score)
    ranked.extend(s.model_copy(update={"score": round(min(s.score, cap), 3)}) for s in rest)
    return ranked


def apply_verdict(offline: Report, verdict: Verdict, *, usage: Usage) -> Report:
    """The offline report with the crew's conclusions; `verdict` must already have passed the guard."""
    report = offline.model_copy(deep=True)
    report.root_cause = RootCause(
        category=verdict.category,
        summary=verdict.summary.strip()[:SUMMARY_CHARS] or offline.root_cause.summary,
        component=(verdict.component or "").strip() or offline.root_cause.component,
        confidence=round(_clamp(verdict.confidence), 3),
    )
    report.suspect_commits = _rerank(report.suspect_commits, verdict.blamed_commits)
    actions = [
        Action(title=a.title.strip()[:160], detail=a.detail.strip()[:600], kind=a.kind, runbook=a.runbook)
        for a in verdict.actions[:MAX_ACTIONS]
        if a.title.strip()
    ]
    if actions:
        report.actions = actions
    report.analyst = "crew"
    report.usage = usage
    return report
