"""`Idempotency-Key` on the API's writes: a retried request gets the first one's answer and makes nothing new; the key
sent again with a different request is refused with 409 IDEMPOTENCY_KEY_REUSED, so a client bug cannot pass silently.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from redis import Redis
from rq import Queue
from web_harness import REDIS_URL, Keys, Server, make_investigation

from core.store import InvestigationFilter, Store

START = "/api/v1/investigations"


def rows_of(store: Store, service: str) -> list[str]:
    rows, _ = store.list_investigations(InvestigationFilter(service=service))
    return [r.id for r in rows]


def assert_key_reused(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert error["request_id"] == response.headers["X-Request-ID"]


def test_a_retried_start_with_its_key_gets_the_same_investigation_and_queues_one_job(server: Server, keys: Keys, web_store: Store) -> None:
    service = f"idem-{uuid.uuid4().hex[:6]}"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body: dict[str, Any] = {"service": service, "alert_text": "5xx on /pay", "since": "1h"}
    with server.client(keys.write) as client:
        first = client.post(START, json=body, headers=key)
        # The same request as another client library would serialise it: other key order and spacing.
        reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
        again = client.post(START, content=reordered, headers={**key, "Content-Type": "application/json"})

    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["queued"] is again.json()["queued"] is True
    assert rows_of(web_store, service) == [first.json()["id"]]
    queue = Queue(server.queue_name, connection=Redis.from_url(REDIS_URL))
    assert [j.id for j in queue.jobs if j.func_name == "agents.jobs.investigate" and j.id == first.json()["id"]] == [first.json()["id"]]


def test_concurrent_retries_with_one_key_record_one_investigation(server: Server, keys: Keys, web_store: Store) -> None:
    service = f"idem-race-{uuid.uuid4().hex[:6]}"
    key = {"Idempotency-Key": uuid.uuid4().hex}

    def post(_: int) -> httpx.Response:
        with server.client(keys.write) as client:
            return client.post(START, json={"service": service, "alert_text": "timeouts"}, headers=key)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(post, range(8)))

    assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(rows_of(web_store, service)) == 1


def test_a_key_sent_again_with_another_body_is_409_and_records_nothing(server: Server, keys: Keys, web_store: Store) -> None:
    service = f"idem-reuse-{uuid.uuid4().hex[:6]}"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with server.client(keys.write) as client:
        first = client.post(START, json={"service": service, "alert_text": "5xx on /pay"}, headers=key)
        reused = client.post(START, json={"service": service, "alert_text": "latency on /cart"}, headers=key)
    assert first.status_code == 202
    assert_key_reused(reused)
    assert rows_of(web_store, service) == [first.json()["id"]]


def test_keys_belong_to_their_client(server: Server, keys: Keys, web_store: Store) -> None:
    service = f"idem-owner-{uuid.uuid4().hex[:6]}"
    key = {"Idempotency-Key": "deploy-pipeline-run-1"}
    body = {"service": service, "alert_text": "error rate"}
    ours = server.client(keys.write).post(START, json=body, headers=key)
    theirs = server.client(keys.admin).post(START, json=body, headers=key)
    assert ours.status_code == theirs.status_code == 202
    assert ours.json()["id"] != theirs.json()["id"]
    assert len(rows_of(web_store, service)) == 2


def test_a_retried_rerun_makes_one_child_and_its_key_cannot_rerun_another(server: Server, keys: Keys, web_store: Store) -> None:
    first, second = make_investigation(web_store), make_investigation(web_store)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with server.client(keys.write) as client:
        once = client.post(f"{START}/{first.id}/rerun", headers=key)
        twice = client.post(f"{START}/{first.id}/rerun", headers=key)
        elsewhere = client.post(f"{START}/{second.id}/rerun", headers=key)
    assert once.status_code == twice.status_code == 202
    assert once.json()["id"] == twice.json()["id"] and once.json()["parent_id"] == first.id
    assert [c.id for c in web_store.children(first.id)] == [once.json()["id"]]
    assert_key_reused(elsewhere)
    assert web_store.children(second.id) == []


def test_a_question_key_sent_with_another_question_is_409(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store)
    path = f"{START}/{row.id}/questions"
    key = {"Idempotency-Key": "q-" + "x" * 62}  # the longest key the header allows still fits the question's key column
    with server.client(keys.write) as client:
        asked = client.post(path, json={"question": "Which deploy?"}, headers=key)
        again = client.post(path, json={"question": "Which deploy?"}, headers=key)
        other = client.post(path, json={"question": "Why now?"}, headers=key)
    assert asked.status_code == again.status_code == 202, asked.text
    assert asked.json()["id"] == again.json()["id"]
    assert_key_reused(other)
    assert [f.question for f in web_store.follow_ups(row.id)] == ["Which deploy?"]


def test_a_jira_key_cannot_be_reused_for_another_investigations_ticket(server: Server, keys: Keys, web_store: Store) -> None:
    first, second = make_investigation(web_store), make_investigation(web_store)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with server.client(keys.write) as client:
        requested = client.post(f"{START}/{first.id}/jira", headers=key)
        retried = client.post(f"{START}/{first.id}/jira", headers=key)
        elsewhere = client.post(f"{START}/{second.id}/jira", headers=key)
        # The same key on another route is another request too.
        started = client.post(START, json={"service": "checkout", "alert_text": "x"}, headers=key)
    assert requested.status_code == retried.status_code == 202
    assert requested.json()["investigation_id"] == retried.json()["investigation_id"] == first.id
    assert_key_reused(elsewhere)
    assert_key_reused(started)
    assert web_store.get_jira(second.id) is None
