"""What the platform states is shown before the log statistics, in Slack, Markdown, the dashboard and Jira."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from agents.render import render
from agents.report import Report
from bot.blocks import report_message
from core.models import Investigation

NOW = datetime(2026, 11, 3, 14, 20, tzinfo=UTC)
FACTS = [
    {
        "kind": "container_error",
        "subject": "orders-api-6b8d9c7f5-q2w7x/orders-api",
        "detail": "last terminated: Error (exit code 134); restarted 5 times",
        "at": "2026-11-03T14:15:40Z",
        "count": 5,
        "reason": "Error",
        "exit_code": 134,
        "failing": True,
    },
    {"kind": "resource_limits", "subject": "orders-api-6b8d9c7f5-q2w7x/orders-api", "detail": "limits cpu 1, memory 1Gi", "failing": False},
]


def report() -> dict[str, Any]:
    return {
        "alert": {"title": "orders-api: KubePodCrashLooping", "service": "orders-api"},
        "root_cause": {
            "category": "resource_exhaustion",
            "summary": "orders-api runs out of heap",
            "confidence": 0.9,
            "component": "orders-api",
        },
        "window": {"start": "2026-11-03T08:20:00Z", "end": "2026-11-03T14:35:00Z", "onset": None},
        "signatures": [
            {
                "template": "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
                "count": 1,
                "count_before": 0,
                "count_after": 1,
                "trend": "untimed",
            }
        ],
        "facts": FACTS,
        "degraded": [],
        "analyst": "offline",
    }


def test_slack_shows_the_failing_facts_before_the_log_signatures() -> None:
    investigation = Investigation(
        id="inv_0123456789ab", source="api", service="orders-api", title="crash loop", window_start=NOW, window_end=NOW, at=NOW
    )

    _text, blocks = report_message(investigation, report(), jira=None, public_url="http://ir.test")

    texts = [json.dumps(b) for b in blocks]
    facts_at = next(i for i, t in enumerate(texts) if "*Facts*" in t)
    signatures_at = next(i for i, t in enumerate(texts) if "Log signatures" in t)
    assert facts_at < signatures_at
    assert "exit code 134" in texts[facts_at] and "(5x)" in texts[facts_at]
    assert "limits cpu 1" not in " ".join(texts)
    assert "(no timestamps)" in texts[signatures_at + 1]


def test_markdown_html_and_jira_list_the_facts_and_say_when_a_signature_has_no_times() -> None:
    for fmt, heading in (
        ("markdown", "## Facts (what the platform and the errors state)"),
        ("html", "<h2>Facts (what the platform and the errors state)</h2>"),
        ("jira", "h2. Evidence: facts (what the platform and the errors state)"),
    ):
        text = render(Report.model_validate(report()), fmt, report_url="http://ir.test/r/1", thread_url=None)

        assert heading in text, fmt
        assert "orders-api-6b8d9c7f5-q2w7x/orders-api" in text and "exit code 134" in text
        assert "limits cpu 1" not in text
        assert "no timestamps" in text and "0 before" not in text


def test_the_slack_fallback_text_names_the_first_fact() -> None:
    text = render(Report.model_validate(report()), "slack", report_url="http://ir.test/r/1", thread_url=None)

    assert "Fact: Error on orders-api-6b8d9c7f5-q2w7x/orders-api" in text
