"""The /api/v1/investigations resource over real HTTP: start, list, read, report, ask, Jira, re-run."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq import Queue
from rq.job import Job
from web_harness import REDIS_URL, Keys, Server, make_investigation

from core.models import Status
from core.store import Store


def test_start_returns_202_with_id_and_links_and_queues_the_job(server: Server, keys: Keys, web_store: Store) -> None:
    trace_id = uuid.uuid4().hex
    response = server.client(keys.write).post(
        "/api/v1/investigations",
        json={"service": "checkout", "alert_text": "p99 above 2 s", "since": "2h", "alert": {"id": "PD1", "html_url": "https://pd/1"}},
        headers={"traceparent": f"00-{trace_id}-{'1' * 16}-01"},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["links"]["api"] == f"{server.url}/api/v1/investigations/{body['id']}"
    row = web_store.require(body["id"])
    assert row.source == "api" and row.title == "p99 above 2 s" and row.alert["url"] == "https://pd/1"
    assert (row.window_end.replace(tzinfo=UTC) - row.window_start.replace(tzinfo=UTC)) >= timedelta(hours=2)
    job = Job.fetch(body["id"], connection=Redis.from_url(REDIS_URL))
    assert job.func_name == "agents.jobs.investigate"
    # The caller's trace continues into the queued job.
    assert trace_id in job.meta["otel"]["traceparent"]


def test_start_rejects_unknown_fields_bad_durations_and_future_times(server: Server, keys: Keys) -> None:
    with server.client(keys.write) as client:
        for body in (
            {"service": "checkout", "alert_text": "x", "colour": "red"},
            {"service": "checkout", "alert_text": "x", "since": "two hours"},
            {"service": "checkout", "alert_text": "x", "at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
            {"service": "checkout", "alert_text": "x", "since": "30d"},
        ):
            response = client.post("/api/v1/investigations", json=body)
            assert response.status_code == 422, body
            assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_cursor_pagination_walks_every_row_once_newest_first(server: Server, keys: Keys, web_store: Store) -> None:
    service = f"pager-{uuid.uuid4().hex[:6]}"
    base = datetime.now(UTC) - timedelta(days=1)
    made = [make_investigation(web_store, service=service, created_at=base + timedelta(minutes=i)).id for i in range(7)]
    seen: list[str] = []
    cursor = None
    with server.client(keys.read) as client:
        for _ in range(10):
            params = {"service": service, "limit": 3, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/v1/investigations", params=params).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == list(reversed(made))


def test_list_filters_by_status_category_text_and_time(server: Server, keys: Keys, web_store: Store) -> None:
    service = f"filter-{uuid.uuid4().hex[:6]}"
    done = make_investigation(web_store, service=service, title="disk full on db-1")
    running = make_investigation(web_store, service=service, status=Status.gathering, title="queue backlog")
    with server.client(keys.read) as client:

        def ids(**params: str) -> list[str]:
            return [i["id"] for i in client.get("/api/v1/investigations", params={"service": service, **params}).json()["items"]]

        assert ids(status="gathering") == [running.id]
        assert ids(category="bad_deploy") == [done.id]
        assert ids(q="DISK") == [done.id]
        assert ids(since=(datetime.now(UTC) + timedelta(minutes=5)).isoformat()) == []
        assert client.get("/api/v1/investigations", params={"status": "sleeping"}).status_code == 422


def test_a_cursor_not_from_us_is_400_invalid_cursor(server: Server, keys: Keys) -> None:
    response = server.client(keys.read).get("/api/v1/investigations", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_CURSOR"


def test_get_one_has_status_progress_and_a_contract_report(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store)
    web_store.add_progress(row.id, "gathering", "Reading logs", milestone=True)
    body = server.client(keys.read).get(f"/api/v1/investigations/{row.id}").json()
    assert body["status"] == "done"
    assert [e["message"] for e in body["progress"]] == ["Reading logs"]
    assert body["report"]["root_cause"]["category"] == "bad_deploy"
    assert body["report"]["schema_version"] == "1"


def test_unknown_investigation_is_404_investigation_not_found(server: Server, keys: Keys) -> None:
    response = server.client(keys.read).get("/api/v1/investigations/inv_doesnotexist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "INVESTIGATION_NOT_FOUND"


def test_report_is_served_as_json_markdown_or_html_by_format_or_accept(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store)
    path = f"/api/v1/investigations/{row.id}/report"
    with server.client(keys.read) as client:
        assert client.get(path).json()["root_cause"]["category"] == "bad_deploy"
        markdown = client.get(path, params={"format": "markdown"})
        assert markdown.headers["content-type"].startswith("text/markdown")
        assert "## Suspect changes" in markdown.text
        html = client.get(path, headers={"Accept": "text/html"})
        assert html.headers["content-type"].startswith("text/html")
        assert html.text.lstrip().lower().startswith("<!doctype html>") and "Suspect changes" in html.text
        assert client.get(path, headers={"Accept": "text/markdown"}).headers["content-type"].startswith("text/markdown")


def test_report_of_a_running_investigation_is_409_report_not_ready(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store, status=Status.analysing)
    response = server.client(keys.read).get(f"/api/v1/investigations/{row.id}/report")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "REPORT_NOT_READY"


def test_second_jira_request_returns_the_existing_ticket_instead_of_a_new_one(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store)
    path = f"/api/v1/investigations/{row.id}/jira"
    with server.client(keys.write) as client:
        first = client.post(path)
        assert first.status_code == 202 and first.json()["created"] is True
        second = client.post(path)
        assert second.status_code == 202 and second.json()["created"] is False
        web_store.set_jira(row.id, status="created", key="OPS-42", url="https://jira.example/browse/OPS-42")
        third = client.post(path).json()
    assert third == {
        "status": "created",
        "key": "OPS-42",
        "url": "https://jira.example/browse/OPS-42",
        "investigation_id": row.id,
        "created": False,
    }
    queue = Queue(server.queue_name, connection=Redis.from_url(REDIS_URL))
    jobs = [j for j in queue.jobs if j.func_name == "agents.jira_ticket.create_ticket" and j.args == (row.id,)]
    assert len(jobs) == 1


def test_jira_before_the_report_is_409(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store, status=Status.gathering)
    assert server.client(keys.write).post(f"/api/v1/investigations/{row.id}/jira").json()["error"]["code"] == "REPORT_NOT_READY"


def test_asking_twice_with_one_idempotency_key_records_one_question(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store)
    path = f"/api/v1/investigations/{row.id}/questions"
    with server.client(keys.write) as client:
        first = client.post(path, json={"question": "Which deploy?"}, headers={"Idempotency-Key": "q-1"})
        again = client.post(path, json={"question": "Which deploy?"}, headers={"Idempotency-Key": "q-1"})
        other = client.post(path, json={"question": "Why now?"})
    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert [f.question for f in web_store.follow_ups(row.id)] == ["Which deploy?", "Why now?"]


def test_rerun_starts_a_child_investigation_once_the_first_has_finished(server: Server, keys: Keys, web_store: Store) -> None:
    running = make_investigation(web_store, status=Status.gathering)
    finished = make_investigation(web_store)
    with server.client(keys.write) as client:
        refused = client.post(f"/api/v1/investigations/{running.id}/rerun")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "INVESTIGATION_RUNNING"
        accepted = client.post(f"/api/v1/investigations/{finished.id}/rerun")
    assert accepted.status_code == 202
    child = web_store.require(accepted.json()["id"])
    assert child.parent_id == finished.id and child.status == "queued"


def test_servicenow_incident_is_requested_once_and_listed_with_the_investigation(
    spawn: Callable[..., Server], keys: Keys, web_store: Store
) -> None:
    # The instance is never called here: the request claims the incident and queues the job that files it.
    server = spawn(SERVICENOW_URL="https://acme.service-now.example", SERVICENOW_TOKEN="sn-token")
    row = make_investigation(web_store)
    path = f"/api/v1/investigations/{row.id}/tickets/servicenow"
    with server.client(keys.write) as client:
        first = client.post(path)
        second = client.post(path)
        unknown = client.post(f"/api/v1/investigations/{row.id}/tickets/pagerduty")
        detail = client.get(f"/api/v1/investigations/{row.id}").json()
    assert first.status_code == 202 and first.json()["created"] is True
    assert second.status_code == 202 and second.json()["created"] is False
    assert (second.json()["tool"], second.json()["action"], second.json()["status"]) == ("servicenow", "create", "pending")
    # PagerDuty takes notes but files no incidents on request.
    assert unknown.status_code == 404
    assert [(t["tool"], t["action"], t["status"]) for t in detail["tickets"]] == [("servicenow", "create", "pending")]
    queue = Queue(server.queue_name, connection=Redis.from_url(REDIS_URL))
    jobs = [j for j in queue.jobs if j.func_name == "agents.ticketing.create_incident" and j.args == (row.id, "servicenow")]
    assert len(jobs) == 1

    # The dashboard offers the same button while nobody asked, and lists the request once someone did.
    other = make_investigation(web_store)
    with server.client() as browser:
        assert browser.post("/login", data={"key": keys.write, "next": "/"}).status_code == 303
        page = browser.get(f"/investigations/{other.id}").text
        action = f'action="/investigations/{other.id}/tickets/servicenow"'
        assert action in page and "Create ServiceNow incident" in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        assert browser.post(f"/investigations/{other.id}/tickets/servicenow", data={"csrf": csrf[1]}).status_code == 303
        after = browser.get(f"/investigations/{other.id}").text
    assert action not in after and "Incident tools" in after and "servicenow create" in after
    assert web_store.get_ticket_action(other.id, "servicenow", "create") is not None
