"""logfmt lines: `key=value key="quoted value"`, as Go's slog, logrus and Heroku write them."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from integrations.logs.base import LogEvent
from integrations.logs.parsing.events import MAX_ERROR_TEXT, clip, new_event
from integrations.logs.parsing.times import iso, normalize_level

_LOGFMT_START: Final = re.compile(r"[A-Za-z_@][\w.@/-]*=")
_LOGFMT_PAIR: Final = re.compile(r'(?<![^ ])([^ ="]+)=("[^"\\]*(?:\\.[^"\\]*)*"|[^ ]*)')
_LOGFMT_TIME_KEYS: Final = ("ts", "time", "timestamp", "t", "@timestamp")
_LOGFMT_LEVEL_KEYS: Final = ("level", "lvl", "severity", "loglevel")
_LOGFMT_MESSAGE_KEYS: Final = ("msg", "message", "event")


def _logfmt_pairs(line: str) -> dict[str, Any]:
    """`key=value key="quoted value"` pairs; splitting on quotes beats a regex unless values escape quotes."""
    if "\\" in line:
        return {key: _unquote(value) if value[:1] == '"' else value for key, value in _LOGFMT_PAIR.findall(line)}
    fields: dict[str, Any] = {}
    key: str | None = None
    # Between quotes sits the value of the `key=` that precedes them; outside, space-separated pairs.
    for index, part in enumerate(line.split('"')):
        if index % 2:
            if key is not None:
                fields[key] = part
            continue
        key = None
        for token in part.split(" "):
            name, equals, value = token.partition("=")
            if equals and name:
                fields[name] = value
                key = None if value else name
    return fields


def _unquote(value: str) -> str:
    try:
        decoded = json.loads(value)
    except ValueError:
        return value[1:-1]
    return decoded if isinstance(decoded, str) else value[1:-1]


def _pop_first(fields: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in fields:
            return fields.pop(key)
    return None


def parse_logfmt(line: str, source: str) -> LogEvent | None:
    if _LOGFMT_START.match(line) is None:
        return None
    fields = _logfmt_pairs(line)
    stamp = _pop_first(fields, _LOGFMT_TIME_KEYS)
    level = _pop_first(fields, _LOGFMT_LEVEL_KEYS)
    message = _pop_first(fields, _LOGFMT_MESSAGE_KEYS)
    # Prose with an `=` in it is not logfmt: demand at least one of the keys logfmt lines carry.
    if stamp is None and level is None and message is None:
        return None
    if message is None:
        message = " ".join(f"{k}={v}" for k, v in fields.items())
    error = fields.get("error") or fields.get("err") or fields.get("exception")
    if error:
        error = clip(error, MAX_ERROR_TEXT)
        message = f"{message}: {error}" if message else error
    if "status" in fields:
        fields["status"] = _convert(fields["status"], int)
    if "duration_ms" in fields:
        fields["duration_ms"] = _convert(fields["duration_ms"], float)
    ts = iso(stamp) if stamp else None
    event = new_event(ts, normalize_level(level) if level else "info", message, line, source, fields)
    event.exception = error or None
    return event


def _convert(text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text
