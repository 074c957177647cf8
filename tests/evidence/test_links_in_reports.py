"""Links a responder can follow from a report: a metric shift to its query (with its unit), a suspect to its pull request."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.evidence.metric_shifts import metric_shifts
from agents.render import render
from bot.blocks import report_message
from core.models import Investigation
from integrations.metrics.base import Series
from web.sample_report import SAMPLE_REPORT

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
URL = "https://prometheus.example/graph?g0.expr=rate%28http_5xx%5B5m%5D%29"


def _stepped(unit: str | None, url: str | None) -> Series:
    points = [(T0 + timedelta(minutes=i), 0.01 if i < 20 else 0.4) for i in range(40)]
    return Series(metric="http_5xx_ratio", labels={"service": "checkout"}, points=points, unit=unit, url=url)


def _report_with(shift: dict[str, Any]) -> dict[str, Any]:
    return {**SAMPLE_REPORT.to_json_dict(), "metrics": [shift]}


def test_the_shift_carries_the_series_unit_and_link() -> None:
    [shift] = metric_shifts([_stepped("ratio", URL)])

    assert (shift.unit, shift.url, shift.direction) == ("ratio", URL, "up")


def test_markdown_and_slack_show_the_unit_and_link_to_the_query() -> None:
    [shift] = metric_shifts([_stepped("req/s", URL)])
    report = _report_with({**json.loads(shift.model_dump_json()), "change_at": "2026-03-10T12:20:00Z"})

    markdown = render(report, "markdown")
    row = Investigation(
        id="inv_0123456789ab", source="api", service="checkout", title="5xx", window_start=T0, window_end=T0, at=T0, status="done"
    )
    _text, blocks = report_message(row, report, jira=None, public_url="http://127.0.0.1:8000")
    slack = json.dumps(blocks)

    assert "req/s at" in markdown and f"([open the query]({URL}))" in markdown
    assert f"<{URL}|open the query>" in slack and "req/s" in slack


def test_a_csv_series_without_unit_or_link_renders_as_before() -> None:
    [shift] = metric_shifts([_stepped(None, None)])
    report = _report_with({**json.loads(shift.model_dump_json()), "change_at": "2026-03-10T12:20:00Z"})

    markdown = render(report, "markdown")

    assert "open the query" not in markdown
    assert "0.01 → 0.4 at" in markdown


def test_a_suspect_links_to_its_pull_request_in_markdown_and_slack() -> None:
    report = SAMPLE_REPORT.to_json_dict()
    pull = "https://github.example/acme/checkout/pull/412"
    report["suspect_commits"][0] |= {"pr_url": pull, "pr_title": "Let promo codes discount shipping"}
    row = Investigation(
        id="inv_0123456789ab", source="api", service="checkout", title="5xx", window_start=T0, window_end=T0, at=T0, status="done"
    )

    markdown = render(report, "markdown")
    _text, blocks = report_message(row, report, jira=None, public_url="http://127.0.0.1:8000")

    assert f"([PR]({pull}))" in markdown
    assert f"<{pull}|pull request>" in json.dumps(blocks)


def test_the_dashboards_html_shows_the_unit_the_small_chart_and_the_link_to_the_query() -> None:
    [shift] = metric_shifts([_stepped("req/s", URL + "&g0.tab=0")])
    report = _report_with({**json.loads(shift.model_dump_json()), "change_at": "2026-03-10T12:20:00Z"})

    html = render(report, "html", standalone=False)

    # The dashboard embeds this same fragment (web.dashboard.pages); the link is escaped as an attribute value.
    assert f'<a href="{URL}&amp;g0.tab=0" rel="noopener">open</a>' in html
    assert "req/s at" in html and "<svg" in html
