"""The incident history over real HTTP: GET /api/v1/search, PATCH a resolution, and the dashboard's search page.

The test process indexes into the DATA_DIR the server reads: qdrant-client's local mode
shared between two processes through its file lock, as the web and the worker share it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from web_harness import Keys, Server, make_investigation

from agents import history
from core.models import Investigation, Status
from core.settings import reset_settings
from core.store import Store


@pytest.fixture
def shared_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data = tmp_path / "var"
    monkeypatch.setenv("DATA_DIR", str(data))
    monkeypatch.setenv("EMBEDDINGS", "lexical")
    reset_settings()
    yield data
    reset_settings()


@pytest.fixture
def history_server(spawn: Callable[..., Server], shared_index: Path) -> Server:
    return spawn(DATA_DIR=str(shared_index), EMBEDDINGS="lexical")


def _indexed(store: Store, *, service: str, title: str, days_ago: int, **root_cause: str) -> Investigation:
    row = make_investigation(store, service=service, title=title, created_at=datetime.now(UTC) - timedelta(days=days_ago))
    report = dict(row.report or {})
    report["root_cause"] = {**report["root_cause"], **root_cause}
    row = store.save_report(row.id, report, Status.done)
    assert history.index_investigation(row)
    return row


def _history(store: Store) -> dict[str, Investigation]:
    suffix = datetime.now(UTC).strftime("%H%M%S%f")
    return {
        "pool": _indexed(
            store,
            service=f"orders-{suffix}",
            title="orders: connection pool exhausted",
            days_ago=3,
            category="resource_exhaustion",
            summary="The database connection pool of orders was exhausted by slow queries",
        ),
        "token": _indexed(
            store,
            service=f"payments-{suffix}",
            title="payments: upstream token expired",
            days_ago=40,
            category="expired_credential",
            summary="The access token for the card processor expired; every call got 401",
        ),
        "deploy": _indexed(
            store,
            service=f"orders-{suffix}",
            title="orders: NullPointerException after deploy",
            days_ago=1,
            category="bad_deploy",
            summary="Release 2.4 dereferences a missing discount and throws NullPointerException",
        ),
    }


def test_search_finds_by_meaning_with_filters_and_pages(history_server: Server, keys: Keys, web_store: Store) -> None:
    rows = _history(web_store)
    with history_server.client(keys.read) as client:
        found = client.get("/api/v1/search", params={"q": "connection pool exhausted slow queries", "limit": 1})
        assert found.status_code == 200, found.text
        body = found.json()
        assert [item["id"] for item in body["items"]] == [rows["pool"].id]
        assert body["next_offset"] == 1
        assert body["items"][0]["url"] == f"{history_server.url}/investigations/{rows['pool'].id}"
        second = client.get("/api/v1/search", params={"q": "connection pool exhausted slow queries", "limit": 1, "offset": 1}).json()
        assert second["items"] and second["items"][0]["id"] != rows["pool"].id

        only_payments = client.get("/api/v1/search", params={"q": "pool", "service": rows["token"].service}).json()
        assert [item["id"] for item in only_payments["items"]] == [rows["token"].id]
        by_category = client.get("/api/v1/search", params={"q": "orders", "category": "bad_deploy"}).json()
        assert [item["id"] for item in by_category["items"]] == [rows["deploy"].id]
        recent = client.get("/api/v1/search", params={"q": "token expired", "since": (datetime.now(UTC) - timedelta(days=7)).isoformat()})
        assert rows["token"].id not in {item["id"] for item in recent.json()["items"]}

        for bad in ({"q": ""}, {"q": "x", "limit": 0}, {"q": "x", "category": "nonsense"}, {"q": "a\x00b"}):
            refused = client.get("/api/v1/search", params=bad)
            assert refused.status_code == 422 and refused.json()["error"]["code"] == "VALIDATION_ERROR", (bad, refused.text)
    assert history_server.client().get("/api/v1/search", params={"q": "x"}).json()["error"]["code"] == "UNAUTHENTICATED"


def test_patch_records_the_resolution_and_the_search_shows_it(history_server: Server, keys: Keys, web_store: Store) -> None:
    rows = _history(web_store)
    with history_server.client(keys.write) as client:
        patched = client.patch(f"/api/v1/investigations/{rows['token'].id}", json={"resolution": "rotated the processor token"})
        assert patched.status_code == 200, patched.text
        assert patched.json()["resolution"] == "rotated the processor token"
        assert patched.json()["resolved_by"] == "api:test-write"
        # The queue in these tests has no worker: the re-index job waits there; run it as a worker would.
        assert history.index_investigation(web_store.require(rows["token"].id))
        found = client.get("/api/v1/search", params={"q": "access token for the card processor expired"}).json()
        assert found["items"][0]["resolution"] == "rotated the processor token"
        assert (
            client.patch("/api/v1/investigations/inv_nope", json={"resolution": "x"}).json()["error"]["code"] == "INVESTIGATION_NOT_FOUND"
        )
        assert client.patch(f"/api/v1/investigations/{rows['token'].id}", json={"resolution": ""}).status_code == 422
    with history_server.client(keys.read) as reader:
        assert (
            reader.patch(f"/api/v1/investigations/{rows['token'].id}", json={"resolution": "x"}).json()["error"]["code"]
            == "INSUFFICIENT_SCOPE"
        )


def test_an_unreadable_index_is_503_index_unavailable(spawn: Callable[..., Server], keys: Keys, tmp_path: Path) -> None:
    from tests.standins.loopback import free_port

    broken = spawn(QDRANT_URL=f"http://127.0.0.1:{free_port()}", EMBEDDINGS="lexical")
    answer = broken.client(keys.read).get("/api/v1/search", params={"q": "anything"})
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "INDEX_UNAVAILABLE"


def test_the_dashboard_searches_and_records_resolutions(history_server: Server, keys: Keys, web_store: Store) -> None:
    rows = _history(web_store)
    with history_server.client() as browser:
        assert browser.post("/login", data={"key": keys.write, "next": "/history"}).status_code == 303
        page = browser.get("/history", params={"q": "NullPointerException after a release"})
        assert page.status_code == 200
        assert f'href="/investigations/{rows["deploy"].id}"' in page.text and "Past incidents" in page.text
        detail = browser.get(f"/investigations/{rows['pool'].id}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', detail.text)
        assert csrf is not None and 'action="/investigations/' + rows["pool"].id + '/resolve"' in detail.text
        done = browser.post(
            f"/investigations/{rows['pool'].id}/resolve", data={"csrf": csrf[1], "resolution": "killed the slow report query"}
        )
        assert done.status_code == 303
    assert web_store.require(rows["pool"].id).resolution == "killed the slow report query"
