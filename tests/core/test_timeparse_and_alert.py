from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.alert import AlertError, alert_from_payload
from core.timeparse import parse_at, parse_iso

NOW = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)


def test_hhmm_is_today_or_yesterday_never_the_future() -> None:
    assert parse_at("03:10", now=NOW) == datetime(2026, 3, 10, 3, 10, tzinfo=UTC)
    assert parse_at("23:50", now=NOW) == datetime(2026, 3, 9, 23, 50, tzinfo=UTC)


def test_relative_and_iso_times() -> None:
    assert parse_at("-30m", now=NOW) == datetime(2026, 3, 10, 3, 30, tzinfo=UTC)
    assert parse_at("2026-03-10T01:02:03Z", now=NOW) == datetime(2026, 3, 10, 1, 2, 3, tzinfo=UTC)
    assert parse_iso("2026-03-10T02:02:03+01:00") == datetime(2026, 3, 10, 1, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize("text", ["25:00", "yesterday", "3pm", ""])
def test_bad_time_lists_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_at(text, now=NOW)


def test_alert_from_pagerduty_like_payload() -> None:
    alert = alert_from_payload(
        {
            "id": "P1",
            "title": "High error rate",
            "service": "checkout",
            "created_at": "2026-03-10T03:00:00Z",
            "html_url": "https://x/P1",
            "details": {"metric": "m"},
        }
    )
    assert (alert.service, alert.incident_id, alert.url) == ("checkout", "P1", "https://x/P1")
    assert alert.created_at == datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
    assert "metric m" in alert.text


def test_alert_service_may_be_a_pagerduty_reference() -> None:
    alert = alert_from_payload({"title": "t", "service": {"summary": "checkout-api", "id": "PX"}})
    assert alert.service == "checkout-api"


@pytest.mark.parametrize(
    ("payload", "message"),
    [([], "JSON object"), ({"title": "x"}, "names no service"), ({"service": "a", "created_at": "soon"}, "not an ISO-8601 time")],
)
def test_unusable_alerts_say_why(payload: object, message: str) -> None:
    with pytest.raises(AlertError, match=message):
        alert_from_payload(payload)


def test_an_alert_carries_its_rules_expression_from_details_and_graph_links() -> None:
    alertmanager_via_pagerduty = alert_from_payload(
        {
            "title": "[FIRING:1] HighErrorRate",
            "service": "checkout",
            "details": {
                "firing": "Labels:\n - alertname = HighErrorRate\nSource: http://prom:9090/graph?g0.expr=rate%28errors_total%5B5m%5D%29+%3E+1&g0.tab=1\n",
                "num_firing": "1",
            },
        }
    )
    nested = alert_from_payload({"title": "t", "service": "checkout", "details": {"rule": {"expr": "up == 0", "query": "up == 0"}}})
    from_link = alert_from_payload({"title": "t", "service": "checkout", "url": "http://prom:9090/graph?g0.expr=up&g1.expr=down"})
    plain = alert_from_payload({"title": "t", "service": "checkout", "details": {"metric": "m", "note": "see http://grafana/d/x"}})

    assert alertmanager_via_pagerduty.expressions == ["rate(errors_total[5m]) > 1"]
    assert nested.expressions == ["up == 0"]
    assert from_link.expressions == ["up", "down"]
    assert plain.expressions == []


def test_an_alert_carries_at_most_three_expressions() -> None:
    alert = alert_from_payload({"title": "t", "service": "s", "details": {"alerts": [{"expr": f"x{i} > 1"} for i in range(10)]}})
    assert alert.expressions == ["x0 > 1", "x1 > 1", "x2 > 1"]


def test_pagerduty_custom_details_are_the_alerts_details() -> None:
    event = alert_from_payload({"title": "t", "service": "s", "custom_details": {"expr": "up == 0"}})
    incident_alert = alert_from_payload({"title": "t", "service": "s", "body": {"details": {"query": "rate(x[5m]) > 1"}}})

    assert (event.details, event.expressions) == ({"expr": "up == 0"}, ["up == 0"])
    assert incident_alert.expressions == ["rate(x[5m]) > 1"]
