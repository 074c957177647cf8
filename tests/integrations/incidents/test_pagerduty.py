"""PagerDuty REST through the real `pagerduty` client, pointed at an https stand-in on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standin_pagerduty import PagerDutyStandin
from tls import loopback_cert

from core.alert import Alert
from integrations.incidents.base import Capability, Note, TrackerError
from integrations.incidents.pagerduty import PagerDutyTool, incident_ref

FROM = "oncall@example.com"


@pytest.fixture
def pd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PagerDutyStandin]:
    cert = loopback_cert(tmp_path / "tls")
    # The client verifies https as in production; it trusts the stand-in's certificate through the usual variable.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert_file))
    standin = PagerDutyStandin(cert=cert).start()
    standin.add_incident("Q1CHECKOUT", number=4242, title="High error rate on checkout", service=("PSVC1", "Checkout API"))
    yield standin
    standin.stop()


def tool(pd: PagerDutyStandin, *, from_email: str | None = FROM, token: str | None = None) -> PagerDutyTool:
    return PagerDutyTool(token=token or pd.token, from_email=from_email, url=pd.url)


def test_read_returns_incident_alert_details_and_timeline_in_utc(pd: PagerDutyStandin) -> None:
    pd.add_alert(
        "Q1CHECKOUT",
        details={
            "query": 'rate(http_requests_total{status=~"5.."}[5m]) > 0.05',
            "labels": {"pod": "checkout-7d9f-abcde", "namespace": "shop"},
        },
        cef={"source_origin": "node-17.prod"},
    )
    pd.add_alert("Q1CHECKOUT", details="free-text body from an e-mail integration")
    pd.add_log_entry("Q1CHECKOUT", "acknowledge", "Acknowledged by Ada Lovelace", "2026-12-06T02:45:00+01:00")
    pd.add_log_entry("Q1CHECKOUT", "trigger", "Triggered through the API", "2026-12-06T02:40:00Z")
    pd.add_log_entry("Q1CHECKOUT", "escalate", "Escalated to Grace Hopper", "2026-12-06T02:50:00Z")

    facts = tool(pd).read("Q1CHECKOUT", deadline_s=10)

    assert (facts.tool, facts.key, facts.service, facts.urgency, facts.priority) == (
        "pagerduty",
        "Q1CHECKOUT",
        "Checkout API",
        "high",
        "P1",
    )
    assert facts.assignees == ("Ada Lovelace",)
    assert facts.opened_at == datetime(2026, 12, 6, 2, 40, tzinfo=UTC)
    assert facts.details["query"].startswith("rate(http_requests_total")
    assert facts.details["labels.pod"] == "checkout-7d9f-abcde"
    assert facts.details["source_origin"] == "node-17.prod"
    assert facts.details["details"] == "free-text body from an e-mail integration"
    # +01:00 is read as 01:45 UTC: the earliest entry.
    assert [(t.at.tzinfo, t.at.hour, t.at.minute) for t in facts.timeline] == [(UTC, 1, 45), (UTC, 2, 40), (UTC, 2, 50)]
    assert facts.timeline[1].event == "PagerDuty: Triggered through the API"
    assert facts.missing == ()


def test_alerts_are_read_across_classic_pages(pd: PagerDutyStandin) -> None:
    for n in range(130):
        pd.add_alert("Q1CHECKOUT", details={f"key{n}": f"value{n}"})

    facts = tool(pd).read("Q1CHECKOUT", deadline_s=10)

    pages = [(r.params["limit"], r.params["offset"]) for r in pd.calls("GET", "/alerts")]
    # 50 alerts are read at most: the first page holds them all, so no second page is asked for.
    assert pages == [("100", "0")]
    assert facts.details["key49"] == "value49" and "key50" not in facts.details

    many = PagerDutyStandin(cert=pd.cert).start()
    try:
        many.add_incident("Q2", number=1, title="t", service=("PSVC1", "Checkout API"))
        for n in range(150):
            many.add_log_entry("Q2", "notify", f"Notified {n}", f"2026-12-06T02:{n % 60:02d}:00Z")
        facts = PagerDutyTool(token=many.token, from_email=FROM, url=many.url).read("Q2", deadline_s=10)
        assert [(r.params["limit"], r.params["offset"]) for r in many.calls("GET", "/log_entries")] == [("100", "0"), ("100", "100")]
        assert len(facts.timeline) == 100
    finally:
        many.stop()


def test_rate_limit_waits_what_pagerduty_asked_then_reads(pd: PagerDutyStandin) -> None:
    pd.rate_limit(2, retry_after=0.2, reset_s=30)
    started = time.monotonic()
    facts = tool(pd).read("Q1CHECKOUT", deadline_s=10)
    elapsed = time.monotonic() - started
    assert facts.service == "Checkout API"
    assert len(pd.calls("GET", "/incidents/Q1CHECKOUT")) >= 3
    # Retry-After (0.2 s) rules over ratelimit-reset; the client's own 429 loop would have slept 3 s or more.
    assert 0.4 <= elapsed < 2.5


def test_endless_rate_limit_ends_at_the_deadline_not_in_the_clients_loop(pd: PagerDutyStandin) -> None:
    pd.rate_limit(1000, retry_after=None, reset_s=0.3)
    started = time.monotonic()
    with pytest.raises(TrackerError) as caught:
        tool(pd).read("Q1CHECKOUT", deadline_s=1.0)
    assert not caught.value.permanent
    assert "429" in str(caught.value)
    assert time.monotonic() - started < 2.0
    assert 2 <= len(pd.requests) <= 6


def test_parts_past_the_deadline_are_listed_as_missing(pd: PagerDutyStandin) -> None:
    pd.add_alert("Q1CHECKOUT", details={"host": "node-1"})
    # The incident answers; its alerts and log entries are rate limited beyond the deadline.
    pd.rate_limit(50, retry_after=None, reset_s=60, path_suffix="/alerts")
    pd.rate_limit(50, retry_after=None, reset_s=60, path_suffix="/log_entries")

    facts = tool(pd).read("Q1CHECKOUT", deadline_s=2)

    assert facts.service == "Checkout API"
    assert [m.split(":")[0] for m in facts.missing] == ["alerts", "log entries"]
    assert facts.details == {} and facts.timeline == ()


def test_a_bad_token_is_a_permanent_error(pd: PagerDutyStandin) -> None:
    with pytest.raises(TrackerError) as caught:
        tool(pd, token="wrong").read("Q1CHECKOUT", deadline_s=5)
    assert caught.value.permanent and "401" in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_unknown_incident_is_permanent(pd: PagerDutyStandin) -> None:
    with pytest.raises(TrackerError) as caught:
        tool(pd).read("QNOPE", deadline_s=5)
    assert caught.value.permanent and "404" in str(caught.value)


def test_number_reads_the_incident_and_its_service(pd: PagerDutyStandin) -> None:
    facts = tool(pd).read("4242", deadline_s=5)
    assert (facts.key, facts.service, facts.service_id) == ("Q1CHECKOUT", "Checkout API", "PSVC1")


def test_note_is_added_once_with_the_from_header(pd: PagerDutyStandin) -> None:
    note = Note(
        summary="bad deploy a1b2c3d (80% confidence)", report_url="http://ir/investigations/inv_1", marker="incident-responder:inv_1"
    )
    writer = tool(pd)
    assert writer.add_note("Q1CHECKOUT", note) is True
    assert writer.add_note("Q1CHECKOUT", note) is False
    notes = pd.added_notes("Q1CHECKOUT")
    assert len(notes) == 1
    assert "http://ir/investigations/inv_1" in notes[0]["content"] and "bad deploy" in notes[0]["content"]
    assert pd.calls("POST", "/notes")[0].headers["from"] == FROM


def test_note_without_from_is_refused_before_and_by_pagerduty(pd: PagerDutyStandin) -> None:
    note = Note(summary="s", report_url="http://ir/x", marker="incident-responder:inv_2")
    with pytest.raises(TrackerError, match="PAGERDUTY_FROM_EMAIL") as ours:
        tool(pd, from_email=None).add_note("Q1CHECKOUT", note)
    assert ours.value.permanent
    with pytest.raises(TrackerError, match="Requester User Not Found") as theirs:
        tool(pd, from_email="stranger@example.com").add_note("Q1CHECKOUT", note)
    assert theirs.value.permanent and "400" in str(theirs.value)
    assert pd.added_notes("Q1CHECKOUT") == []


def test_capabilities_and_what_an_alert_names(pd: PagerDutyStandin) -> None:
    pd_tool = tool(pd)
    assert pd_tool.capabilities == {Capability.read, Capability.note}
    assert pd_tool.incident_key({"source": "pagerduty_webhook", "incident_id": "Q1CHECKOUT"}) == "Q1CHECKOUT"
    assert pd_tool.incident_key({"source": "slack_command", "details": {"incident_tools": {"pagerduty": {"key": "Q9"}}}}) == "Q9"
    assert pd_tool.ref_in("#4242") == "4242"
    assert pd_tool.incident_key({"source": "alert_post", "incident_id": "am-123"}) is None


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("https://acme.pagerduty.com/incidents/Q1CHECKOUT", "Q1CHECKOUT"),
        ("<https://acme.pagerduty.com/incidents/Q1CHECKOUT/timeline>", "Q1CHECKOUT"),
        ("#4242", "4242"),
        ("PD#4242", "4242"),
        ("checkout", None),
        ("4242", None),
    ],
)
def test_incident_ref_reads_links_and_numbers(word: str, expected: str | None) -> None:
    assert incident_ref(word) == expected


def test_http_base_url_is_refused_with_the_setting_named() -> None:
    with pytest.raises(TrackerError, match="PAGERDUTY_API_URL"):
        PagerDutyTool(token="t", from_email=None, url="http://127.0.0.1:1")


def test_a_nested_rule_query_reaches_the_alerts_expressions(pd: PagerDutyStandin) -> None:
    expr = 'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05'
    pd.add_alert("Q1CHECKOUT", details={"annotations": {"summary": "5xx above 5%", "expr": expr}})

    facts = tool(pd).read("Q1CHECKOUT", deadline_s=10)

    assert facts.details["annotations.expr"] == facts.details["expr"] == expr
    assert Alert(title="t", service="checkout", details=facts.details).expressions == [expr]
