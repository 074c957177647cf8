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
