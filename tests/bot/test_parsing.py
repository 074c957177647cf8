"""Parsing what people and the PagerDuty app send: command text and PagerDuty messages."""

from __future__ import annotations

from datetime import UTC, datetime

from bot_harness import fixture

from bot.alerts.registry import PAGERDUTY, parser_for
from bot.command_investigate import CommandError, InvestigateRequest, parse_investigate
from bot.pagerduty_post import parse_pagerduty_message
from core.catalog import Catalog, ServiceSpec

CATALOG = Catalog(services={"checkout": ServiceSpec(aliases=["checkout-api"]), "payments-api": ServiceSpec()})
NOW = datetime(2025, 5, 29, 22, 0, tzinfo=UTC)


def test_command_reads_service_words_since_and_at() -> None:
    parsed = parse_investigate("checkout-api 502s on /pay --since 2h --at 21:30", CATALOG, now=NOW)

    assert parsed == InvestigateRequest(service="checkout", what="502s on /pay", since_s=7200, at=datetime(2025, 5, 29, 21, 30, tzinfo=UTC))


def test_command_accepts_option_equals_form_and_iso_time() -> None:
    parsed = parse_investigate("checkout --since=30m --at=2025-05-29T21:39:42Z", CATALOG, now=NOW)

    assert isinstance(parsed, InvestigateRequest) and parsed.since_s == 1800 and parsed.at == datetime(2025, 5, 29, 21, 39, 42, tzinfo=UTC)


def test_empty_command_returns_usage_with_known_services() -> None:
    parsed = parse_investigate("   ", CATALOG)

    assert isinstance(parsed, CommandError) and "Usage: `/investigate <service>" in parsed.text and "`checkout`" in parsed.text


def test_unknown_service_lists_close_matches() -> None:
    parsed = parse_investigate("chekout slow", CATALOG)

    assert isinstance(parsed, CommandError) and "`chekout`" in parsed.text and "Did you mean `checkout`?" in parsed.text


def test_bad_time_lists_the_accepted_forms() -> None:
    parsed = parse_investigate("checkout --at yesterday", CATALOG)

    assert isinstance(parsed, CommandError) and "HH:MM" in parsed.text and "ISO" in parsed.text


def test_bad_duration_and_unknown_option_are_explained() -> None:
    bad_since = parse_investigate("checkout --since soon", CATALOG)
    unknown = parse_investigate("checkout --verbose", CATALOG)

    assert isinstance(bad_since, CommandError) and "30m, 2h, 1d" in bad_since.text
    assert isinstance(unknown, CommandError) and "Unknown option `--verbose`" in unknown.text


def test_pagerduty_message_is_recognised_by_app_id_not_subtype() -> None:
    message = fixture("pagerduty_post_triggered.json")["event"]
    without_subtype = {k: v for k, v in message.items() if k != "subtype"}

    assert parser_for(without_subtype) is PAGERDUTY
    assert parser_for({**without_subtype, "bot_id": "B0OTHER", "app_id": "A0OTHER", "bot_profile": {}}) is not PAGERDUTY
    assert parser_for({"bot_id": "B0CUSTOM"}, pagerduty_ids=["B0CUSTOM"]) is PAGERDUTY


def test_pagerduty_block_message_yields_incident_service_urgency_and_status() -> None:
    post = parse_pagerduty_message(fixture("pagerduty_post_triggered.json")["event"])

    assert post is not None
    assert (post.incident_id, post.status, post.urgency, post.number) == ("Q3KH1MAQKR6B6Z", "triggered", "high", "4812")
    assert (post.service_name, post.service_id) == ("Notifications Worker", "PNW0RK1")
    assert post.title == "[FIRING:1] notifications-worker job failure ratio high"
    assert post.url == "https://acme.pagerduty.com/incidents/Q3KH1MAQKR6B6Z"


def test_pagerduty_edits_carry_the_new_status() -> None:
    acknowledged = parse_pagerduty_message(fixture("pagerduty_post_acknowledged.json")["event"]["message"])
    resolved = parse_pagerduty_message(fixture("pagerduty_post_resolved.json")["event"]["message"])

    assert acknowledged is not None and acknowledged.status == "acknowledged"
    assert resolved is not None and resolved.status == "resolved" and resolved.incident_id == "Q3KH1MAQKR6B6Z"


def test_legacy_attachment_fields_layout_is_parsed() -> None:
    message = {
        "bot_id": "B0PD",
        "text": "",
        "attachments": [
            {
                "title": "#77: Disk full on db-1",
                "title_link": "https://acme.pagerduty.com/incidents/PABC123",
                "text": "Triggered",
                "fields": [
                    {"title": "Service", "value": "payments-api", "short": True},
                    {"title": "Urgency", "value": "Low", "short": True},
                ],
            }
        ],
    }

    post = parse_pagerduty_message(message)

    assert post is not None
    assert (post.incident_id, post.title, post.number, post.service_name, post.urgency) == (
        "PABC123",
        "Disk full on db-1",
        "77",
        "payments-api",
        "low",
    )


def test_message_without_incident_link_is_not_an_alert() -> None:
    assert parse_pagerduty_message({"text": "On-call handover: nothing open", "bot_id": "B0PD"}) is None
