"""Answers to follow-up questions in an investigation thread.

With an LLM configured the crew answers; without one (or when it fails) the
answer comes from the stored report and evidence: which commit, when it started,
the errors, what changed in a file, what to do, which runbook. Whatever needs
reasoning beyond that is said plainly instead of guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import structlog

from core.catalog import CatalogError
from core.models import FollowUp, Investigation, Status
from core.redaction import redact_text
from core.settings import get_settings
from integrations.catalog import get_catalog
from integrations.errors import SourceError
from integrations.registry import build_sources
from integrations.roles import CODE

log = structlog.get_logger(__name__)

DIFF_MAX_CHARS = 2500
_FILE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.[A-Za-z0-9]{1,8})\b")
NEEDS_LLM = (
    "That needs reasoning beyond the stored evidence, which requires an LLM (set OPENAI_API_KEY). "
    "Without one I can answer: which commit?, when did it start?, show the errors, what changed in <file>?, "
    "what should I do?, which runbook?, what metrics moved?, why?"
)

Report = dict[str, Any]


def _short(sha: str) -> str:
    return sha[:8]


def _when(value: str | None) -> str:
    return (value or "?").replace("T", " ").replace("Z", " UTC")[:23]


def _suspects(report: Report, _question: str) -> str:
    suspects = report.get("suspect_commits") or []
    if not suspects:
        return "No change in the window stands out as a suspect: no commit or deploy lines up with the onset."
    lines = ["Suspect changes, most likely first:"]
    for s in suspects[:3]:
        who = f" by {s['author']}" if s.get("author") else ""
        deployed = f", deployed {_when(s['deployed_at'])}" if s.get("deployed_at") else ""
        lines.append(f"• `{_short(s.get('sha', ''))}` {_title(s)}{who} (score {s.get('score', 0):.2f}{deployed}): {s.get('reason', '')}")
        if s.get("url"):
            lines.append(f"  {s['url']}")
    return "\n".join(lines)


def _onset(report: Report, _question: str) -> str:
    window = report.get("window") or {}
    parts = []
    if window.get("onset"):
        parts.append(f"It started around *{_when(window['onset'])}*.")
    signatures = report.get("signatures") or []
    firsts = sorted((s for s in signatures if s.get("first_seen")), key=lambda s: s["first_seen"])
    if firsts:
        first = firsts[0]
        parts.append(f"The earliest error signature was first seen {_when(first['first_seen'])}: `{first.get('template', '')[:200]}`")
    timeline = report.get("timeline") or []
    if timeline:
        parts.append("Timeline:\n" + "\n".join(f"• {_when(t.get('at'))} {t.get('event', '')[:200]}" for t in timeline[:6]))
    if not parts:
        return f"The evidence shows no clear onset inside the window {_when(window.get('start'))} to {_when(window.get('end'))}."
    return "\n".join(parts)


def _errors(report: Report, _question: str) -> str:
    signatures = report.get("signatures") or []
    if not signatures:
        return "No error signatures were found in the logs of the window."
    lines = ["Top log signatures:"]
    for sig in signatures[:5]:
        lines.append(f"• *{sig.get('count', 0)}x* ({sig.get('count_before', 0)} before, {sig.get('count_after', 0)} after onset)")
        lines.append(f"```{(sig.get('sample') or sig.get('template') or '')[:500]}```")
    return "\n".join(lines)


def _actions(report: Report, _question: str) -> str:
    actions = report.get("actions") or []
    if not actions:
        return "The report has no recommended actions; start from the top suspect and the top log signature."
    lines = ["What to do:"]
    for i, a in enumerate(actions[:6], 1):
        detail = f": {a['detail']}" if a.get("detail") else ""
        runbook = f" (runbook: {a['runbook']})" if a.get("runbook") else ""
        lines.append(f"{i}. {a.get('title', '')}{detail}{runbook}")
    return "\n".join(lines)


def _runbooks(report: Report, _question: str) -> str:
    runbooks = report.get("runbooks") or []
    if not runbooks:
        return "No runbook in the catalog matches this incident."
    return "Matching runbooks:\n" + "\n".join(f"• {r.get('title', '')} (`{r.get('path', '')}`)" for r in runbooks[:5])


def _metrics(report: Report, _question: str) -> str:
    shifts = report.get("metrics") or []
    if not shifts:
        return "No metric shifted noticeably in the window (or the service has no metrics source)."
    return "Metric shifts:\n" + "\n".join(
        f"• `{m.get('metric', '')}` {m.get('before', 0):.4g} → {m.get('after', 0):.4g} at {_when(m.get('change_at'))}" for m in shifts[:8]
    )


def _root_cause(report: Report, _question: str) -> str:
    root = report.get("root_cause") or {}
    category = (root.get("category") or "unknown").replace("_", " ")
    return f"*{category.capitalize()}* ({root.get('confidence', 0):.0%} confidence): {root.get('summary', '')}"


def _touches(changed: str, asked: str) -> bool:
    return changed == asked or changed.endswith("/" + asked) or asked.endswith(changed)


def _title(commit: dict[str, Any]) -> str:
    message = (commit.get("message") or "").strip()
    return message.splitlines()[0] if message else ""


def _file_change(investigation: Investigation, report: Report, path: str) -> str:
    suspects = report.get("suspect_commits") or []
    touching = [s for s in suspects if any(_touches(f, path) for f in s.get("files") or [])]
    if not touching:
        touched = sorted({f for s in suspects for f in s.get("files") or []})[:10]
        return f"None of the suspect changes touched `{path}`." + (f" They touched: {', '.join(touched)}." if touched else "")
    commit = touching[0]
    full_path = next(f for f in commit.get("files") or [] if _touches(f, path))
    diff = _diff(investigation, commit["sha"], full_path)
    head = f"`{_short(commit['sha'])}` {_title(commit)} changed `{full_path}`"
    if diff is None:
        return head + " (the diff is not available from the code source)."
    # Straight from the repository, unlike the stored report: redact it before it is cut, stored, posted or served.
    diff = redact_text(diff)
    if len(diff) > DIFF_MAX_CHARS:
        diff = diff[:DIFF_MAX_CHARS] + "\n… (trimmed)"
    return f"{head}:\n```{diff}```"


def _diff(investigation: Investigation, sha: str, path: str) -> str | None:
    try:
        catalog = get_catalog()
    except CatalogError:
        return None
    spec = catalog.get(investigation.service)
    if spec is None:
        return None
    for source in build_sources(catalog, spec).of(CODE):
        try:
            return source.diff(sha, paths=[path], max_bytes=DIFF_MAX_CHARS * 4)
        except SourceError as exc:
            log.warning("followup_diff_failed", source=source.name, error=str(exc))
    return None


# (words that mark the question, answerer); the first match wins, so the specific come before the general.
INTENTS: list[tuple[re.Pattern[str], Callable[[Report, str], str]]] = [
    (re.compile(r"\brunbooks?\b|\bplaybook", re.I), _runbooks),
    (re.compile(r"\bcommit|\bsha\b|\bdeploy|\bsuspect|\bwhich (change|pr)\b|\bwho (changed|broke)", re.I), _suspects),
    (re.compile(r"\bwhen\b|\bstart(ed)?\b|\bonset\b|\bsince\b|\btimeline\b|\bbegin", re.I), _onset),
    (re.compile(r"\berrors?\b|\blogs?\b|\bexceptions?\b|\bstack\b|\btraces?\b|\bsignatures?\b", re.I), _errors),
    (re.compile(r"\bwhat (should|do|can) (i|we)\b|\bnext step|\bmitigat|\bfix\b|\broll ?back|\bactions?\b", re.I), _actions),
    (re.compile(r"\bmetrics?\b|\blatency\b|\bgraph", re.I), _metrics),
    (re.compile(r"\bwhy\b|\broot cause\b|\bcause\b|\bsummary\b|\bwhat happened\b", re.I), _root_cause),
]


def answer_offline(investigation: Investigation, question: str) -> str:
    """The answer the stored report and evidence give, or a plain statement that an LLM is needed."""
    report = investigation.report
    if report is None:
        status = Status(investigation.status)
        if status is Status.failed:
            reason = investigation.error or "no reason recorded"
            return f"The investigation failed ({reason}), so there is no evidence to answer from. Press Re-run."
        return f"The investigation is still running ({status.value}); ask again once the report is in this thread."
    if re.search(r"\b(changed?|diff)\b", question, re.I) and (match := _FILE.search(question)):
        return _file_change(investigation, report, match.group(1))
    for pattern, answer in INTENTS:
        if pattern.search(question):
            return answer(report, question)
    return NEEDS_LLM


def answer_question(investigation: Investigation, question: str, *, history: list[FollowUp]) -> tuple[str, str]:
    """(answer, "crew" or "offline") for a question about one investigation."""
    settings = get_settings()
    if settings.llm_enabled and investigation.report is not None:
        try:
            from agents.crew.followup import answer_with_llm

            return answer_with_llm(investigation=investigation, question=question, history=history, settings=settings), "crew"
        except Exception as exc:  # noqa: BLE001  (any LLM failure falls back to the evidence; the note says so)
            log.warning("followup_llm_failed", error=f"{type(exc).__name__}: {exc}")
            offline = answer_offline(investigation, question)
            return f"{offline}\n_(The LLM could not answer ({type(exc).__name__}); this answer comes from the stored evidence.)_", "offline"
    return answer_offline(investigation, question), "offline"
