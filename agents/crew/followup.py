"""Follow-up answers with the LLM: one bounded call over the stored report and the thread's recent Q&A.

The same gate as the crew (breaker, deadline, budget, retries, redaction,
usage) guards the call. Failures raise `FollowUpUnavailable` with a reason the
caller (agents/followup.py) can show while it falls back to its offline answer.
"""

from __future__ import annotations

import json
import time
from typing import Any

import structlog

from agents.crew.breaker import breaker_for
from agents.crew.budget import Budget
from agents.crew.config import load_config, prompt
from agents.crew.env import ensure_crewai_env
from agents.crew.transport import Gate, why_failed
from core.redaction import redact, redact_text
from core.settings import Settings

log = structlog.get_logger(__name__)

HISTORY_TURNS = 4
QUESTION_CHARS = 500
HISTORY_CHARS = 600
REPORT_CHARS = 6000
ANSWER_CHARS = 2000
FOLLOWUP_BUDGET = 4000


class FollowUpUnavailable(RuntimeError):
    """The LLM could not answer (breaker open, budget, deadline, endpoint errors); the message says why."""


def _field(item: Any, name: str) -> str:
    value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
    return str(value or "")


def report_digest(report: dict[str, Any]) -> str:
    """The parts of a stored report a question is about, redacted and bounded."""
    keep = {
        "alert": {k: report.get("alert", {}).get(k) for k in ("title", "service", "summary", "created_at")},
        "window": report.get("window"),
        "root_cause": report.get("root_cause"),
        "suspect_commits": [
            {k: s.get(k) for k in ("sha", "score", "reason", "message", "files", "deployed_at")}
            for s in (report.get("suspect_commits") or [])[:5]
        ],
        "signatures": [
            {k: s.get(k) for k in ("template", "count", "count_before", "count_after", "first_seen", "sample")}
            for s in (report.get("signatures") or [])[:5]
        ],
        "metrics": (report.get("metrics") or [])[:6],
        "timeline": (report.get("timeline") or [])[:10],
        "actions": (report.get("actions") or [])[:5],
        "runbooks": [r.get("title") for r in (report.get("runbooks") or [])[:3]],
        "degraded": report.get("degraded") or [],
        "analyst": report.get("analyst"),
    }
    text = json.dumps(redact(keep), ensure_ascii=False, default=str)
    return text if len(text) <= REPORT_CHARS else text[: REPORT_CHARS - 40] + ' … (report cut)"'


def history_text(history: list[Any]) -> str:
    turns = [(_field(h, "question"), _field(h, "answer")) for h in history if _field(h, "answer")][-HISTORY_TURNS:]
    if not turns:
        return "(none)"
    return "\n".join(f"Q: {json.dumps(redact_text(q)[:QUESTION_CHARS])}\nA: {json.dumps(redact_text(a)[:HISTORY_CHARS])}" for q, a in turns)


def answer_with_llm(*, investigation: Any, question: str, history: list[Any], settings: Settings) -> str:
    """An answer to `question` about `investigation` (a stored Investigation with its report)."""
    ensure_crewai_env(settings.data_dir)
    from agents.crew.llm import bounded_llm
    from agents.crew.runner import endpoint_key

    report = getattr(investigation, "report", None) or {}
    text = (
        prompt("followup")
        .replace("{report}", report_digest(report))
        .replace("{history}", history_text(history))
        .replace("{question}", json.dumps(redact_text(question.strip())[:QUESTION_CHARS]))
    )
    breaker = breaker_for(settings.redis_url, endpoint_key(settings))
    gate = Gate(
        budget=Budget(total=min(settings.llm_token_budget, FOLLOWUP_BUDGET)),
        breaker=breaker,
        deadline=time.monotonic() + min(settings.llm_deadline_s, settings.llm_timeout_s * (settings.llm_max_retries + 1) + 5),
        max_retries=settings.llm_max_retries,
    )
    llm = bounded_llm(settings=settings, gate=gate, agent="followup", max_tokens=load_config().limits.followup_max_tokens)
    messages = [{"role": "system", "content": prompt("trust")}, {"role": "user", "content": text}]
    try:
        answer = llm.call(messages)
    except Exception as exc:
        # The SDK and crewai wrap our refusals; the reason is found in the chain.
        reason = why_failed(exc, settings.llm_timeout_s)
        log.warning("followup_llm_failed", reason=reason)
        raise FollowUpUnavailable(reason) from exc
    clean = redact_text(str(answer or "")).strip()
    if not clean:
        raise FollowUpUnavailable("the LLM returned an empty answer")
    return clean[:ANSWER_CHARS]
