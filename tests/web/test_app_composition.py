"""What create_app assembles: the Slack and PagerDuty endpoints when configured, templates checked at start-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from web_harness import Server

from agents.render import TemplateProblem, render
from core.settings import Settings
from web.app import create_app
from web.sample_report import SAMPLE_REPORT


def test_slack_and_pagerduty_endpoints_are_mounted_when_their_secrets_are_set(spawn: Callable[..., Server]) -> None:
    configured = spawn(SLACK_SIGNING_SECRET="s3cret", SLACK_BOT_TOKEN="xoxb-test", PAGERDUTY_WEBHOOK_SECRETS='["pd-secret"]')
    with configured.client() as client:
        # Mounted endpoints check their own signatures: unsigned posts are refused by them, not by routing.
        assert client.post("/slack/events", content=b"token=x&command=/investigate").status_code == 401
        assert client.post("/webhooks/pagerduty", json={"event": {}}).status_code == 401


def test_slack_and_pagerduty_endpoints_are_absent_without_secrets(server: Server) -> None:
    with server.client() as client:
        assert client.post("/slack/events", content=b"x").json()["error"]["code"] == "NOT_FOUND"
        assert client.post("/webhooks/pagerduty", json={}).json()["error"]["code"] == "NOT_FOUND"


def test_a_broken_template_override_stops_start_up(app_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "report.html.j2").write_text("{{ report.root_cause.nope.deeper }}")
    with pytest.raises(TemplateProblem, match="html"):
        create_app(Settings(templates_dir=tmp_path))


def test_a_template_override_replaces_the_builtin(app_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "report.md.j2").write_text("custom: {{ report.root_cause.category }}\n")
    create_app(Settings(templates_dir=tmp_path))
    assert render(SAMPLE_REPORT, "markdown", override_dir=tmp_path) == "custom: bad_deploy\n"


def test_html_report_escapes_text_from_logs_and_commits() -> None:
    hostile = SAMPLE_REPORT.model_copy(deep=True)
    hostile.root_cause.summary = "<script>alert(1)</script>"
    hostile.signatures[0].template = "<img src=x onerror=alert(2)>"
    html = render(hostile, "html", standalone=True, report_url="http://x", thread_url=None)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html


def test_html_report_draws_each_metric_shift_as_an_inline_svg_chart() -> None:
    html = render(SAMPLE_REPORT, "html", report_url="http://x", thread_url=None)
    assert html.count("<svg") == len(SAMPLE_REPORT.metrics)
    assert "<html" not in html  # a fragment unless standalone
