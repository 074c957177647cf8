"""ServiceNow's Table API through httpx, pointed at a stand-in on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from standin_servicenow import ServiceNowStandin

from core.settings import Settings
from integrations.incidents import servicenow
from integrations.incidents.base import Capability, NewTicket, Note, TrackerError
from integrations.incidents.servicenow import ServiceNowTool


@pytest.fixture
def sn() -> Iterator[ServiceNowStandin]:
    standin = ServiceNowStandin().start()
    standin.add_incident(
        "INC0012345", short_description="Checkout 502s", ci="checkout-api", group="Payments SRE", opened_at="2026-12-06 02:41:07"
    )
    yield standin
    standin.stop()


def basic(sn: ServiceNowStandin, **extra: str) -> ServiceNowTool:
    return ServiceNowTool(url=sn.url, user=sn.user, password=sn.password, **extra)


def test_read_by_number_gives_ci_group_and_utc_open_time(sn: ServiceNowStandin) -> None:
    facts = basic(sn).read("INC0012345", deadline_s=5)
    assert (facts.key, facts.title, facts.service) == ("INC0012345", "Checkout 502s", "checkout-api")
    assert facts.opened_at == datetime(2026, 12, 6, 2, 41, 7, tzinfo=UTC)
    assert facts.details["assignment_group"] == "Payments SRE"
    assert facts.assignees == ("Payments SRE",)
    query = sn.calls("GET", "/table/incident")[0].params
    assert query["sysparm_query"] == "number=INC0012345" and query["sysparm_display_value"] == "false"


def test_bearer_token_works_and_bad_credentials_are_permanent(sn: ServiceNowStandin) -> None:
    assert ServiceNowTool(url=sn.url, token=sn.token).read("INC0012345", deadline_s=5).service == "checkout-api"
    with pytest.raises(TrackerError) as caught:
        ServiceNowTool(url=sn.url, user=sn.user, password="wrong").read("INC0012345", deadline_s=5)
    assert caught.value.permanent and "401" in str(caught.value) and "wrong" not in str(caught.value)


def test_unknown_number_is_permanent(sn: ServiceNowStandin) -> None:
    with pytest.raises(TrackerError, match="no incident INC0099999") as caught:
        basic(sn).read("INC0099999", deadline_s=5)
    assert caught.value.permanent


def test_rate_limit_waits_retry_after(sn: ServiceNowStandin) -> None:
    sn.rate_limit(2, retry_after=0.2)
    started = time.monotonic()
    assert basic(sn).read("INC0012345", deadline_s=5).service == "checkout-api"
    assert 0.4 <= time.monotonic() - started < 2.5
    assert len(sn.calls("GET")) == 3


def test_rate_limit_beyond_the_deadline_is_transient(sn: ServiceNowStandin) -> None:
    sn.rate_limit(10, retry_after=30)
    started = time.monotonic()
    with pytest.raises(TrackerError) as caught:
        basic(sn).read("INC0012345", deadline_s=2)
    assert not caught.value.permanent and "429" in str(caught.value)
    assert time.monotonic() - started < 1.0


def test_work_note_is_added_once_and_found_across_link_pages(sn: ServiceNowStandin) -> None:
    incident = sn.tables["incident"][0]
    # Other people's notes before ours: the marker search pages along the Link header.
    for n in range(250):
        sn.add(
            "sys_journal_field",
            element_id=incident["sys_id"],
            element="work_notes",
            name="incident",
            value=f"see incident-responder:inv_x {n}",
        )
    note = Note(summary="bad deploy", report_url="http://ir/investigations/inv_1", marker="incident-responder:inv_1")
    tool = basic(sn)
    assert tool.add_note("INC0012345", note) is True
    assert tool.add_note("INC0012345", note) is False
    ours = [n for n in sn.work_notes(incident["sys_id"]) if "incident-responder:inv_1" in n]
    assert len(ours) == 1 and "http://ir/investigations/inv_1" in ours[0]
    assert len(sn.calls("PATCH")) == 1
    journal = sn.calls("GET", "sys_journal_field")
    assert journal[0].params["sysparm_query"].endswith("valueLIKEincident-responder:inv_1")


def test_listing_follows_link_next(sn: ServiceNowStandin) -> None:
    for n in range(230):
        sn.add("incident", number=f"INC1{n:06d}", correlation_id="shared-marker")
    rows = list(basic(sn)._list("incident", "correlation_id=shared-marker", "sys_id,number", servicenow.Deadline(5)))
    assert len(rows) == 230
    offsets = [r.params.get("sysparm_offset", "0") for r in sn.calls("GET", "/table/incident")]
    assert offsets == ["0", "100", "200"]


def test_create_files_once_by_correlation_id(sn: ServiceNowStandin) -> None:
    tool = basic(sn, assignment_group="Payments SRE")
    ticket = NewTicket(project="", summary="[checkout] 502s", description="report", priority="1", marker="incident-responder:inv_7")
    assert tool.find(ticket.marker, project="") is None
    ref = tool.create(ticket)
    assert ref.key.startswith("INC") and "sys_id" in ref.url
    again = tool.find(ticket.marker, project="")
    assert again is not None and again.key == ref.key
    created = sn.calls("POST")[0].body
    assert created["correlation_id"] == "incident-responder:inv_7" and created["urgency"] == "1"
    assert created["assignment_group"] == "Payments SRE"


def test_numbers_in_alerts_and_settings() -> None:
    tool = ServiceNowTool(url="https://acme.service-now.com", token="t")
    assert tool.capabilities == {Capability.read, Capability.note, Capability.create}
    assert tool.incident_key({"title": "Checkout down", "details": {"ticket": "see INC0012345"}}) == "INC0012345"
    assert tool.incident_key({"title": "Checkout down", "summary": "INC123 is too short"}) is None
    assert servicenow.from_settings(Settings(servicenow_url="https://acme.service-now.com")) is None
    assert (
        servicenow.from_settings(Settings(servicenow_url="https://a.service-now.com", servicenow_user="u", servicenow_password="p"))
        is not None
    )
