"""JSON lines: zap, pino, bunyan, structlog, logstash and their kin, and lines truncated mid-object."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

from integrations.logs.base import LogEvent
from integrations.logs.parsing.events import MAX_ERROR_TEXT, clip, new_event
from integrations.logs.parsing.stacks import attach_stack
from integrations.logs.parsing.times import any_ts, normalize_level

_json_loads: Callable[[str], Any]
try:
    # orjson parses a log line four times faster than json; it is optional, json does the same job.
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - depends on the environment
    _json_loads = json.loads

_JSON_MESSAGE_KEYS: Final = ("msg", "message", "event", "@message", "log")
_JSON_TIME_KEYS: Final = ("ts", "time", "timestamp", "@timestamp", "t", "datetime", "date")
_JSON_LEVEL_KEYS: Final = ("level", "severity", "lvl", "levelname", "log.level", "loglevel", "@level")
_JSON_ERROR_KEYS: Final = ("error", "err", "exception", "exc_info", "exc", "error.message")
_JSON_STACK_KEYS: Final = ("stack", "stack_trace", "stacktrace", "error.stack_trace", "exc_text")
_JSON_ERROR_HINT: Final = re.compile(r'"(?:err|exc|stack|error\.)')
_JSON_SALVAGE: Final = re.compile(r'"(ts|time|timestamp|@timestamp|level|severity|msg|message|event)"\s*:\s*("(?:[^"\\]|\\.)*"|-?[\d.]+)')


def parse_json(line: str, source: str) -> LogEvent | None:
    try:
        obj = _json_loads(line)
    except ValueError:
        return _salvage_json(line, source)
    if not isinstance(obj, dict):
        return None
    ts = level = message = None
    for key in _JSON_TIME_KEYS:
        if key in obj:
            ts = any_ts(obj.pop(key))
            break
    for key in _JSON_LEVEL_KEYS:
        if key in obj:
            level = normalize_level(obj.pop(key))
            break
    for key in _JSON_MESSAGE_KEYS:
        value = obj.get(key)
        if type(value) is str or (value is not None and not isinstance(value, dict | list)):
            message = str(obj.pop(key)).rstrip()
            break
    # A substring test is far cheaper than looking up every error key on every line.
    error, stack = _json_error(obj) if _JSON_ERROR_HINT.search(line) else (None, None)
    if message is None:
        message = " ".join(f"{k}={v}" for k, v in obj.items() if not isinstance(v, dict | list))
    if error:
        message = f"{message}: {error}" if message else error
    if "req" in obj or "responseTime" in obj:
        _normalize_http_fields(obj)
    event = new_event(ts, level or "info", message, line, source, obj)
    if stack or error:
        attach_stack(event, stack, error)
    return event


def _json_error(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """The short error text and the stack text a JSON line carries, in any of the usual shapes."""
    error: str | None = None
    stack: str | None = None
    for key in _JSON_ERROR_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value:
            if "\n" in value:
                stack = stack or obj.pop(key)
            else:
                error = error or value
        elif isinstance(value, dict):
            text = value.get("message") or value.get("msg")
            kind = value.get("type") or value.get("name") or value.get("kind")
            if text or kind:
                error = error or (f"{kind}: {text}" if kind and text else str(text or kind))
            inner = value.pop("stack", None) or value.pop("stack_trace", None) or value.pop("stacktrace", None)
            if isinstance(inner, str):
                stack = stack or inner
    for key in _JSON_STACK_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value:
            stack = stack or value
            del obj[key]
    if error is None and stack is not None:
        return None, stack
    return (clip(error.partition("\n")[0], MAX_ERROR_TEXT) if error else None), stack


def _salvage_json(line: str, source: str) -> LogEvent | None:
    """A truncated or broken JSON line still names its time, level and message often enough."""
    found: dict[str, str] = {}
    for key, value in _JSON_SALVAGE.findall(line, 0, 4096):
        found.setdefault(key, value.strip('"'))
    if not found:
        return None
    ts = next((any_ts(found[k]) for k in ("ts", "time", "timestamp", "@timestamp") if k in found), None)
    level = normalize_level(found.get("level") or found.get("severity") or "info")
    message = found.get("msg") or found.get("message") or found.get("event") or ""
    return new_event(ts, level, message, line, source, {"truncated": True})


def _normalize_http_fields(fields: dict[str, Any]) -> None:
    """pino/bunyan nest the request and response; give them the flat names other formats use."""
    req, res = fields.get("req"), fields.get("res")
    if isinstance(req, dict):
        fields.setdefault("method", req.get("method"))
        fields.setdefault("path", req.get("url") or req.get("path"))
    if isinstance(res, dict) and "statusCode" in res:
        fields.setdefault("status", res["statusCode"])
    if "responseTime" in fields:
        fields.setdefault("duration_ms", fields["responseTime"])
