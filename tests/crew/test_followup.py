"""Follow-up answers with the LLM: the stored report and a bounded Q&A history, redacted, through the same gate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from crew_fixtures import CULPRIT, SECRETS, make_alert, make_evidence, offline_report
from standin_openai import Call, Reply, StandinOpenAI

from agents.crew.followup import HISTORY_TURNS, FollowUpUnavailable, answer_with_llm
from core.models import FollowUp, Investigation
from core.settings import Settings


def _investigation() -> Investigation:
    report = offline_report(make_evidence(), make_alert()).to_json_dict()
    # A stored report is redacted already; plant a secret anyway to prove the second line of defence.
    report["root_cause"]["summary"] += f" (token={SECRETS[1]})"
    now = datetime.now(UTC)
    return Investigation(id="inv_test", source="cli", service="checkout", window_start=now, window_end=now, at=now, report=report)


def _history(n: int) -> list[FollowUp]:
    return [
        FollowUp(investigation_id="inv_test", dedupe_key=str(i), question=f"question {i}?", answer=f"answer {i} {SECRETS[3]}")
        for i in range(n)
    ]


def test_the_answer_comes_from_the_llm_with_the_report_and_the_recent_history(standin: StandinOpenAI, crew_settings: Settings) -> None:
    standin.script = lambda call: Reply.text(f"Roll back {CULPRIT[:8]}; it introduced the NullPointerException.")
    answer = answer_with_llm(
        investigation=_investigation(), question="What should I roll back?", history=_history(10), settings=crew_settings
    )
    assert answer.startswith("Roll back 3f9c2a1b")
    [call] = standin.calls
    assert "What should I roll back?" in call.text and CULPRIT in call.text
    assert "question 9?" in call.text and f"question {10 - HISTORY_TURNS}?" in call.text
    assert f"question {9 - HISTORY_TURNS}?" not in call.text
    for secret in SECRETS:
        assert secret not in call.text
    assert call.body["max_tokens"] <= 500
    assert len(json.dumps(call.body)) < 16_000


def test_an_answer_carrying_a_secret_is_redacted(standin: StandinOpenAI, crew_settings: Settings) -> None:
    standin.script = lambda call: Reply.text(f"Use password={SECRETS[0]} to log in.")
    answer = answer_with_llm(investigation=_investigation(), question="How do I log in?", history=[], settings=crew_settings)
    assert SECRETS[0] not in answer


def test_a_failing_endpoint_raises_follow_up_unavailable_with_the_reason(standin: StandinOpenAI, crew_settings: Settings) -> None:
    def script(call: Call) -> Reply:
        return Reply.error(502)

    standin.script = script
    with pytest.raises(FollowUpUnavailable, match="HTTP 502"):
        answer_with_llm(
            investigation=SimpleNamespace(report={}),
            question="why?",
            history=[],
            settings=crew_settings.model_copy(update={"llm_max_retries": 1}),
        )
    assert len(standin.calls) == 2
