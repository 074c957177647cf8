"""Live progress over Server-Sent Events: stored events, then live ones from Redis, then the final status."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
from redis import Redis
from web_harness import REDIS_URL, Keys, Server, make_investigation, report_for

from core.models import Status
from core.progress import Progress
from core.store import Store


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, object]]]:
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield kind, json.loads(line.removeprefix("data: "))


def test_stream_sends_stored_then_live_events_then_the_final_status(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store, status=Status.gathering)
    progress = Progress(web_store, row.id, Redis.from_url(REDIS_URL))
    progress("gathering", "Reading 3 log files")
    received: list[tuple[str, dict[str, object]]] = []
    with (
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys.read}"}, timeout=20) as client,
        client.stream("GET", f"/api/v1/investigations/{row.id}/events") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        for kind, data in _events(response.iter_lines()):
            received.append((kind, data))
            if data.get("message") == "Reading 3 log files":
                # The stream is live now: what the worker publishes from here on must arrive too.
                threading.Thread(target=progress, args=("analysing", "Ranking 2 suspect commits")).start()
            elif data.get("message") == "Ranking 2 suspect commits":
                web_store.save_report(row.id, report_for(row.id), Status.done)
                progress("done", "Report ready", milestone=True, status="done")
            if kind == "status":
                break
    assert [(k, d.get("message")) for k, d in received if k == "progress"] == [
        ("progress", "Reading 3 log files"),
        ("progress", "Ranking 2 suspect commits"),
        ("progress", "Report ready"),
    ]
    assert received[-1] == ("status", {"id": row.id, "status": "done", "category": "bad_deploy", "confidence": 0.82})


def test_stream_of_a_finished_investigation_replays_and_closes(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store)
    web_store.add_progress(row.id, "done", "Report ready", milestone=True)
    body = server.client(keys.read).get(f"/api/v1/investigations/{row.id}/events").text
    kinds = [kind for kind, _ in _events(iter(body.splitlines()))]
    assert kinds == ["progress", "status"]


def test_reconnecting_with_last_event_id_skips_what_was_seen(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store)
    first = web_store.add_progress(row.id, "gathering", "one")
    web_store.add_progress(row.id, "done", "two")
    body = server.client(keys.read).get(f"/api/v1/investigations/{row.id}/events", headers={"Last-Event-ID": str(first.id)}).text
    assert [d.get("message") for k, d in _events(iter(body.splitlines())) if k == "progress"] == ["two"]
