"""Report Block Kit within Slack's limits, and offline follow-up answers from a stored report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agents.followup import NEEDS_LLM, answer_offline, answer_question
from bot.blocks import MAX_BLOCKS, MAX_HEADER, MAX_SECTION, report_message
from core.models import Investigation, JiraLink

NOW = datetime(2025, 5, 29, 21, 39, tzinfo=UTC)


def _investigation(report: dict[str, Any] | None, **extra: Any) -> Investigation:
    return Investigation(
        id="inv_0123456789ab",
        source="api",
        service="checkout",
        title="502s on /pay",
        window_start=NOW,
        window_end=NOW,
        at=NOW,
        status="done" if report else "gathering",
        report=report,
        **extra,
    )


def _report(**extra: Any) -> dict[str, Any]:
    return {
        "root_cause": {"category": "bad_deploy", "summary": "Deploy of abc12345 broke the pool <config>", "confidence": 0.82},
        "window": {"start": "2025-05-29T18:39:00Z", "end": "2025-05-29T21:54:00Z", "onset": "2025-05-29T21:35:10Z"},
        "suspect_commits": [
            {
                "sha": "abc12345deadbeef",
                "score": 0.9,
                "reason": "touches the pool",
                "message": "Shrink pool\n\nbody",
                "author": "dev",
                "files": ["config/production.yaml"],
                "url": "https://git.example/c/abc12345",
            }
        ],
        "signatures": [
            {
                "template": "Read timed out. (read timeout=<*>)",
                "count": 120,
                "count_before": 0,
                "count_after": 120,
                "first_seen": "2025-05-29T21:35:11Z",
                "sample": "Read timed out. (read timeout=0.025)",
            }
        ],
        "actions": [{"title": "Roll back abc12345", "detail": "revert the config", "runbook": "runbooks/pool.md"}],
        "runbooks": [{"title": "Connection pool", "path": "runbooks/pool.md"}],
        "metrics": [{"metric": "error_rate", "change_at": "2025-05-29T21:35:00Z", "before": 0.01, "after": 0.3}],
        "degraded": [],
        "analyst": "offline",
        **extra,
    }


def test_report_blocks_have_header_summary_suspects_and_buttons() -> None:
    text, blocks = report_message(_investigation(_report()), _report(), jira=None, public_url="http://ir.test")

    assert blocks[0]["type"] == "header" and blocks[0]["text"]["text"] == "Bad deploy · 82% confidence"
    assert "&lt;config&gt;" in blocks[1]["text"]["text"]
    assert any("<https://git.example/c/abc12345|abc12345>" in b.get("text", {}).get("text", "") for b in blocks)
    actions = blocks[-1]
    assert [e["text"]["text"] for e in actions["elements"]] == ["Create Jira", "Re-run", "Full report"]
    assert actions["elements"][0]["value"] == '{"investigation_id":"inv_0123456789ab"}'
    assert "http://ir.test/investigations/inv_0123456789ab" in text


def test_huge_report_is_trimmed_to_slack_limits_with_a_link_to_the_full_report() -> None:
    huge = _report(
        root_cause={"category": "unknown", "summary": "x" * 10_000, "confidence": 0.1, "component": "c" * 400},
        signatures=[{"template": "E" * 5000, "count": i} for i in range(60)],
        degraded=[{"component": f"logs:{i}", "reason": "r" * 500} for i in range(30)],
        actions=[{"title": "a" * 1000, "detail": "d" * 3000} for _ in range(10)],
    )

    _text, blocks = report_message(_investigation(huge), huge, jira=None, public_url="http://ir.test")

    assert len(blocks) <= MAX_BLOCKS
    assert all(len(b["text"]["text"]) <= MAX_SECTION for b in blocks if b["type"] == "section")
    assert all(len(b["text"]["text"]) <= MAX_HEADER for b in blocks if b["type"] == "header")
    assert any("Read the full report" in e.get("text", "") for b in blocks if b["type"] == "context" for e in b["elements"])


def test_report_with_a_ticket_shows_its_key_instead_of_create_jira() -> None:
    link = JiraLink(investigation_id="inv_0123456789ab", key="OPS-7", url="https://jira.example/browse/OPS-7")

    _text, blocks = report_message(_investigation(_report()), _report(), jira=link, public_url="http://ir.test")

    first = blocks[-1]["elements"][0]
    assert first["text"]["text"] == "Jira: OPS-7" and first["url"] == "https://jira.example/browse/OPS-7"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("which commit?", "abc12345"),
        ("when did it start?", "2025-05-29 21:35:10"),
        ("show the errors", "Read timed out. (read timeout=0.025)"),
        ("what should I do?", "Roll back abc12345"),
        ("is there a runbook?", "Connection pool"),
        ("did any metric move?", "error_rate"),
        ("why?", "Bad deploy"),
    ],
)
def test_offline_answers_come_from_the_stored_report(question: str, expected: str) -> None:
    assert expected in answer_offline(_investigation(_report()), question)


def test_offline_answer_says_plainly_what_needs_an_llm() -> None:
    assert answer_offline(_investigation(_report()), "would a bigger instance have prevented this?") == NEEDS_LLM


def test_question_before_the_report_says_it_is_still_running() -> None:
    assert "still running" in answer_offline(_investigation(None), "which commit?")


def test_file_not_touched_by_any_suspect_says_so() -> None:
    answer = answer_offline(_investigation(_report()), "what changed in src/app.py?")

    assert "None of the suspect changes touched `src/app.py`" in answer and "config/production.yaml" in answer


def test_llm_failure_falls_back_to_the_offline_answer_with_a_note(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from core.settings import reset_settings

    failing = types.ModuleType("agents.crew.followup")

    def answer_with_llm(**_kwargs: Any) -> str:
        raise TimeoutError("LLM timed out")

    failing.answer_with_llm = answer_with_llm  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "agents.crew.followup", failing)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    reset_settings()

    answer, by = answer_question(_investigation(_report()), "which commit?", history=[])

    assert by == "offline" and "abc12345" in answer and "The LLM could not answer (TimeoutError)" in answer
