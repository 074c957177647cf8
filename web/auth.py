"""API keys and who is calling: `Authorization: Bearer <key>` or a dashboard session.

A key looks like `ir_<8 hex>_<43 url-safe chars>`. The first part is stored in
clear as a lookup prefix; the whole key only as its SHA-256 (a 256-bit random
secret needs no slow hash), compared with `hmac.compare_digest`. Lookups are
cached for a few seconds because every API call needs one; a revocation takes
effect within `CACHE_TTL_S`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from core.models import ApiKey
from core.runtime import get_store
from core.store import Store
from web.errors import ApiError

SCOPES = ("read", "write", "admin")  # each scope includes the ones before it
CACHE_TTL_S = 5.0
CACHE_MAX = 10_000
TOUCH_EVERY_S = 60.0
_KEY_SHAPE = re.compile(r"^(ir_[0-9a-f]{8})_[A-Za-z0-9_-]{32,64}$")

bearer = HTTPBearer(auto_error=False, description="An API key from `python app.py api-key create NAME --scope read|write|admin`.")


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    name: str
    scopes: frozenset[str]

    def can(self, scope: str) -> bool:
        return any(SCOPES.index(held) >= SCOPES.index(scope) for held in self.scopes if held in SCOPES)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(name: str, scopes: list[str], *, store: Store | None = None) -> tuple[str, ApiKey]:
    """Make a key; returns (the plaintext key, shown once, and its stored row)."""
    name = name.strip()
    if not name:
        raise ValueError("an API key needs a name")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"unknown scope(s) {', '.join(unknown) or '(none given)'}; use {', '.join(SCOPES)}")
    prefix = "ir_" + secrets.token_hex(4)
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name[:100], prefix=prefix, key_hash=_digest(key), scopes=sorted(set(scopes), key=SCOPES.index))
    return key, (store or get_store()).add_api_key(row)


_REVOKED = "revoked"
Found = Principal | str | None  # a principal, _REVOKED, or None for "no such key"
K = TypeVar("K")


class _TtlCache(Generic[K]):
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._items: dict[K, tuple[float, Found]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> tuple[bool, Found]:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: K, value: Found) -> None:
        with self._lock:
            if len(self._items) >= CACHE_MAX:
                # Random keys sprayed at us must not grow memory without bound.
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl_s, value)


class KeyVerifier:
    """Turns a presented key (or a session's key id) into a Principal, with a short cache in front of the store."""

    def __init__(self, store: Callable[[], Store] = get_store, *, ttl_s: float = CACHE_TTL_S) -> None:
        self._store = store
        self._by_digest: _TtlCache[str] = _TtlCache(ttl_s)
        self._by_id: _TtlCache[int] = _TtlCache(ttl_s)
        self._touched: dict[int, float] = {}

    def verify(self, key: str) -> Principal:
        match = _KEY_SHAPE.match(key)
        if match is None:
            raise ApiError("INVALID_API_KEY", "the API key is not valid")
        digest = _digest(key)
        hit, found = self._by_digest.get(digest)
        if not hit:
            found = self._lookup(match.group(1), digest)
            self._by_digest.put(digest, found)
        return self._accept(found)

    def cached(self, key: str) -> Principal | None:
        """The principal for `key` when the cache knows it and nothing needs the store; None means "call verify".

        Every API read starts here, on the event loop: a hit costs no thread hand-off.
        """
        hit, found = self._by_digest.get(_digest(key))
        if not hit or not isinstance(found, Principal) or self._touch_due(found.key_id):
            return None
        return found

    def for_key_id(self, key_id: int) -> Principal:
        hit, found = self._by_id.get(key_id)
        if not hit:
            row = self._store().get_api_key(key_id)
            found = None if row is None else (_REVOKED if row.revoked_at else _principal(row))
            self._by_id.put(key_id, found)
        return self._accept(found)

    def _lookup(self, prefix: str, digest: str) -> Found:
        for row in self._store().api_keys_by_prefix(prefix):
            if hmac.compare_digest(row.key_hash, digest):
                return _REVOKED if row.revoked_at else _principal(row)
        return None

    def _accept(self, found: Found) -> Principal:
        if found is None:
            raise ApiError("INVALID_API_KEY", "the API key is not valid")
        if isinstance(found, str):
            raise ApiError("API_KEY_REVOKED", "the API key was revoked")
        self._touch(found.key_id)
        return found

    def _touch_due(self, key_id: int) -> bool:
        # last_used_at is for humans deciding what to revoke; minute precision spares a write per request.
        return time.monotonic() - self._touched.get(key_id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S

    def _touch(self, key_id: int) -> None:
        if not self._touch_due(key_id):
            return
        self._touched[key_id] = time.monotonic()
        self._store().touch_api_key(key_id, datetime.now(UTC))


def _principal(row: ApiKey) -> Principal:
    assert row.id is not None
    return Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))


async def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller: a bearer key, else (for safe methods only) the dashboard session cookie."""
    verifier: KeyVerifier = request.app.state.key_verifier
    if credentials is not None:
        if credentials.scheme.lower() != "bearer":
            raise ApiError("UNAUTHENTICATED", "use Authorization: Bearer <API key>", headers={"WWW-Authenticate": "Bearer"})
        cached = verifier.cached(credentials.credentials)
        return cached if cached is not None else await run_in_threadpool(verifier.verify, credentials.credentials)
    if request.method in ("GET", "HEAD"):
        key_id = request.app.state.sessions.key_id(request)
        if key_id is not None:
            return await run_in_threadpool(verifier.for_key_id, key_id)
    raise ApiError("UNAUTHENTICATED", "an API key is required: Authorization: Bearer <key>", headers={"WWW-Authenticate": "Bearer"})


def require(scope: str) -> Callable[..., object]:
    """A dependency: the caller must hold `scope`; its per-key rate limit is counted here."""

    async def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
        principal = await authenticate(request, credentials)
        if not principal.can(scope):
            raise ApiError("INSUFFICIENT_SCOPE", f"this needs an API key with the '{scope}' scope")
        await request.app.state.limiter.check_key(principal.key_id)
        request.state.principal = principal
        return principal

    return dependency
