"""Dashboard sessions: a signed cookie naming the API key that logged in (never the key itself).

The key is re-checked on every request (through the verifier's cache), so
revoking it ends its sessions too. Forms carry a token derived from the cookie,
which a cross-site page cannot read, against cross-site posts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import structlog
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.responses import Response

log = structlog.get_logger(__name__)

COOKIE = "ir_session"
MAX_AGE_S = 12 * 3600


class Sessions:
    def __init__(self, secret: str | None, *, secure: bool) -> None:
        if not secret:
            log.warning("session_secret_unset", hint="set SESSION_SECRET so sessions survive restarts and work across web processes")
            secret = secrets.token_urlsafe(32)
        self._secret = secret.encode()
        self._serializer = URLSafeTimedSerializer(secret, salt="ir-dashboard-session")
        self.secure = secure

    def start(self, response: Response, key_id: int) -> None:
        value = self._serializer.dumps({"k": key_id, "n": secrets.token_hex(8)})
        response.set_cookie(COOKIE, value, max_age=MAX_AGE_S, httponly=True, samesite="lax", secure=self.secure, path="/")

    def end(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/")

    def key_id(self, conn: HTTPConnection) -> int | None:
        raw = conn.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=MAX_AGE_S)
        except BadSignature:
            return None
        key_id = data.get("k") if isinstance(data, dict) else None
        return key_id if isinstance(key_id, int) else None

    def csrf_token(self, conn: HTTPConnection) -> str:
        raw = conn.cookies.get(COOKIE, "")
        return hmac.new(self._secret, raw.encode(), hashlib.sha256).hexdigest()[:32]

    def csrf_ok(self, conn: HTTPConnection, token: str) -> bool:
        return bool(conn.cookies.get(COOKIE)) and hmac.compare_digest(self.csrf_token(conn), token)
