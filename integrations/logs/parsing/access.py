"""Access lines of web servers and proxies: nginx and ingress-nginx, Envoy."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from integrations.logs.base import LogEvent
from integrations.logs.parsing.events import bare_event, clip
from integrations.logs.parsing.fields import MAX_PEER_CHARS
from integrations.logs.parsing.times import clf_ts, iso

_NGINX_ACCESS: Final = re.compile(
    r'([^ ]+) [^ ]+ [^ ]+ \[([^\]]{20,40})\] "([^"]*)" (\d{3}) (?:\d+|-)(?: "[^"]*" "([^"]*)")?'
    r"(?: \d+ (\d{1,9}(?:\.\d{1,9})?) \[([^\]]*)\] \[[^\]]*\] ([^ ]+) [^ ]+ [^ ]+ ([^ ]+)(?: ([^ ]+))?)?"
)
# Envoy's default format; the quoted tail is forwarded-for, user agent, request id, authority, upstream host.
_ENVOY: Final = re.compile(
    r'\[(\d{4}-\d\d-\d\dT[^\]]{8,30})\] "([^"]*)" (\d{1,3}) ([^ ]+) (?:\d+|-) (?:\d+|-) (\d{1,12}|-) [^ ]+'
    r'(?: "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)")?'
)
_STATUS_LEVELS: Final = {"5": "error", "4": "warning", "0": "warning"}


def _request_fields(request: str, status: int) -> tuple[str, dict[str, Any]]:
    """`METHOD /path STATUS` and the fields behind it from an access line's request text."""
    method, _, target = request.partition(" ")
    path = target.partition(" ")[0]
    if not path or not method.isupper():
        # Scanners send TLS handshakes and junk where the request line belongs.
        text = clip(request, 200) or "-"
        return f"{text} {status}", {"status": status, "request": text}
    return f"{method} {path} {status}", {"status": status, "method": method, "path": path}


def parse_nginx_access(line: str, source: str) -> LogEvent | None:
    match = _NGINX_ACCESS.match(line)
    if match is None:
        return None
    client, stamp, request, status_text, agent, seconds, upstream, address, upstream_status, request_id = match.groups()
    status = int(status_text)
    message, fields = _request_fields(request, status)
    fields["client"] = client
    if agent is not None:
        fields["user_agent"] = agent
    if seconds is not None:
        fields.update(duration_ms=round(float(seconds) * 1000), upstream=upstream, upstream_addr=address, upstream_status=upstream_status)
        if request_id:
            fields["request_id"] = request_id
    level = _STATUS_LEVELS.get(status_text[0], "info")
    event = _event(clf_ts(stamp), level, message, line, source, fields, status)
    if upstream and len(upstream) < MAX_PEER_CHARS:
        event.peers = (upstream,)
    return event


def parse_envoy(line: str, source: str) -> LogEvent | None:
    match = _ENVOY.match(line)
    if match is None:
        return None
    stamp, request, status_text, flags, duration, forwarded, agent, request_id, authority, upstream = match.groups()
    status = int(status_text)
    message, fields = _request_fields(request, status)
    if flags != "-":
        # UF, UH, URX... say why the proxy failed the request; they belong in the signature.
        fields["response_flags"] = flags
        message = f"{message} {flags}"
    if duration != "-":
        fields["duration_ms"] = int(duration)
    if upstream is not None:
        fields.update(forwarded_for=forwarded, user_agent=agent, request_id=request_id, authority=authority, upstream_host=upstream)
    level = _STATUS_LEVELS.get(status_text[0], "info") if len(status_text) == 3 or status == 0 else "info"
    return _event(iso(stamp), level, message, line, source, fields, status)


def _event(ts: datetime | None, level: str, message: str, line: str, source: str, fields: dict[str, Any], status: int) -> LogEvent:
    """The event with the typed fields an access line gives: status, method, duration."""
    event = bare_event(ts, level, message, line, source, fields)
    # The status as the line writes it, Envoy's 0 (no response was sent) included; beyond 599 is no HTTP status.
    event.status = status if status < 600 else None
    event.method = fields.get("method")
    if (duration := fields.get("duration_ms")) is not None:
        event.duration_ms = float(duration)
    return event
