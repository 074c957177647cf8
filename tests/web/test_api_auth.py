"""Who may call the API: bearer keys, hashed at rest, scoped, revocable."""

from __future__ import annotations

import time

from web_harness import Keys, Server

from core.store import Store
from web.auth import CACHE_TTL_S, TOUCH_EVERY_S, KeyVerifier, create_api_key


def test_missing_key_is_401_unauthenticated_with_bearer_challenge(server: Server) -> None:
    response = server.client().get("/api/v1/investigations")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_key_is_401_invalid_api_key(server: Server, keys: Keys) -> None:
    forged = keys.read[:-4] + ("aaaa" if not keys.read.endswith("aaaa") else "bbbb")
    for key in (forged, "not-a-key", "ir_00000000_" + "x" * 43):
        response = server.client(key).get("/api/v1/investigations")
        assert response.status_code == 401, key
        assert response.json()["error"]["code"] == "INVALID_API_KEY"


def test_non_bearer_scheme_is_refused(server: Server, keys: Keys) -> None:
    response = server.client().get("/api/v1/investigations", headers={"Authorization": f"Basic {keys.read}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_revoked_key_is_401_api_key_revoked(server: Server, web_store: Store) -> None:
    key, row = create_api_key("to-revoke", ["read"], store=web_store)
    assert row.id is not None
    web_store.revoke_api_key(row.id)
    response = server.client(key).get("/api/v1/investigations")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "API_KEY_REVOKED"


def test_revoking_a_key_in_use_takes_effect_within_the_cache_ttl(server: Server, web_store: Store) -> None:
    key, row = create_api_key("in-use", ["read"], store=web_store)
    assert row.id is not None
    with server.client(key) as client:
        assert client.get("/api/v1/investigations").status_code == 200
        web_store.revoke_api_key(row.id)
        time.sleep(CACHE_TTL_S + 0.5)
        assert client.get("/api/v1/investigations").json()["error"]["code"] == "API_KEY_REVOKED"


def test_read_key_cannot_start_an_investigation(server: Server, keys: Keys) -> None:
    response = server.client(keys.read).post("/api/v1/investigations", json={"service": "checkout", "alert_text": "slow"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "INSUFFICIENT_SCOPE"


def test_admin_scope_includes_write_and_read(server: Server, keys: Keys) -> None:
    with server.client(keys.admin) as client:
        assert client.get("/api/v1/investigations").status_code == 200
        assert client.post("/api/v1/investigations", json={"service": "checkout", "alert_text": "slow"}).status_code == 202


def test_keys_are_stored_hashed_and_last_use_is_recorded(server: Server, web_store: Store) -> None:
    key, row = create_api_key("hashed", ["read"], store=web_store)
    assert row.id is not None
    stored = web_store.get_api_key(row.id)
    assert stored is not None and key not in stored.key_hash and stored.key_hash != key
    assert stored.last_used_at is None
    assert server.client(key).get("/api/v1/investigations").status_code == 200
    used = web_store.get_api_key(row.id)
    assert used is not None and used.last_used_at is not None


def test_unknown_scope_is_refused_at_creation(web_store: Store) -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown scope"):
        create_api_key("bad", ["superuser"], store=web_store)


def test_a_cached_key_is_answered_without_the_store_until_its_last_use_is_due(web_store: Store) -> None:
    key, row = create_api_key("hot", ["read"], store=web_store)
    calls: list[str] = []

    def store() -> Store:
        calls.append("store")
        return web_store

    verifier = KeyVerifier(store)
    assert verifier.cached(key) is None, "unknown to the cache: the caller goes to the store"
    principal = verifier.verify(key)
    assert principal.key_id == row.id and calls == ["store", "store"]  # the lookup, then last_used_at
    assert verifier.cached(key) == principal and calls == ["store", "store"]
    assert verifier.cached(key + "x") is None
    verifier._touched[principal.key_id] -= TOUCH_EVERY_S
    assert verifier.cached(key) is None, "a minute on, last_used_at is due: that write needs the store, off the event loop"
