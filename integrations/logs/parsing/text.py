"""Timestamped text lines: Python logging, logback and Spring Boot, gunicorn, zap's console encoder and the like."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from integrations.logs.base import LogEvent
from integrations.logs.parsing.events import MAX_ERROR_TEXT, clip, new_event
from integrations.logs.parsing.times import iso, normalize_level, sniff_level

_TS_TEXT: Final = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z| ?[+-]\d\d(?::?\d\d)?| UTC| GMT)?"
_LEVEL_WORDS: Final = r"(?i:TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|ERR|SEVERE|FATAL|CRITICAL|CRIT|DPANIC|PANIC|EMERG|ALERT)"
_ISO_HEAD: Final = re.compile(rf"({_TS_TEXT})(?:\s*\|\s*|\s+-\s+|\s+|:\s)")
_BRACKET_ISO_HEAD: Final = re.compile(rf"\[({_TS_TEXT})\]\s*")
# Level first: `ERROR [x] logger - msg`, `[ERROR] msg`, `ERROR 1 --- [app] [thread] logger : msg`.
_LEVEL_FIRST: Final = re.compile(
    rf"(?!(?:Normal|Warning)\s\s)\[?({_LEVEL_WORDS})\]?(?::\s+|\s+|$)(?:\d+ --- )?"
    r"(?:\[\s*([^\]]{0,200})\]\s+)?(?:\[\s*([^\]]{0,200})\]\s+)?"
)
# logback's `LEVEL [thread] logger - msg`, the commonest shape, in one match; `_split_level` reads the rest.
_LOGBACK: Final = re.compile(rf"({_TS_TEXT}) +({_LEVEL_WORDS}) +\[([^\]]{{0,200}})\] ([^\s=]{{1,300}}) - ")
# Thread first: `[main] ERROR logger - msg` (logback), `[7] [ERROR] msg` (gunicorn).
_THREAD_FIRST: Final = re.compile(rf"\[([^\]]{{0,200}})\]\s+\[?({_LEVEL_WORDS})\]?:?\s+")
# Python's `%(name)s - %(levelname)s - %(message)s`.
_NAME_DASH_LEVEL: Final = re.compile(rf"([\w.$-]{{1,200}}) - ({_LEVEL_WORDS}) - ")
_CALLER: Final = re.compile(r"\.\w+:\d+$")
_LOGGER: Final = re.compile(r"([^\s=]{1,300}?)(\s+[-:]\s+|:\s+)")


def parse_iso_text(line: str, source: str) -> LogEvent | None:
    """Python logging, logback/Spring Boot and the like: a leading ISO time, then a level."""
    logback = _LOGBACK.match(line)
    if logback is not None:
        stamp, level, thread, logger = logback.groups()
        fields = {"thread": thread.strip(), "logger": logger}
        return new_event(iso(stamp), normalize_level(level), line[logback.end() :], line, source, fields)
    head = _ISO_HEAD.match(line)
    if head is None:
        return None
    return _text_event(head.group(1), line[head.end() :], line, source, need_level=True)


def parse_bracket_iso_text(line: str, source: str) -> LogEvent | None:
    head = _BRACKET_ISO_HEAD.match(line)
    if head is None:
        return None
    return _text_event(head.group(1), line[head.end() :], line, source, need_level=False)


def parse_timestamped_text(line: str, source: str) -> LogEvent | None:
    """Last resort for a line that starts with a time but names no level where expected."""
    head = _ISO_HEAD.match(line)
    if head is None:
        return None
    return _text_event(head.group(1), line[head.end() :], line, source, need_level=False)


def _text_event(stamp: str, rest: str, line: str, source: str, *, need_level: bool) -> LogEvent | None:
    split = _split_level(rest)
    if split is None:
        if need_level:
            return None
        return new_event(iso(stamp), sniff_level(rest), rest, line, source, {})
    level, message, fields = split
    return new_event(iso(stamp), level, message, line, source, fields)


def _split_level(rest: str) -> tuple[str, str, dict[str, Any]] | None:
    """Level, message and logger/thread fields from what follows a timestamp."""
    fields: dict[str, Any] = {}
    if (match := _LEVEL_FIRST.match(rest)) is not None:
        level, first, second = match.groups()
        if second is not None:
            fields["app"], fields["thread"] = first.strip(), second.strip()
        elif first is not None:
            fields["thread"] = first.strip()
    elif (match := _THREAD_FIRST.match(rest)) is not None:
        thread, level = match.group(1).strip(), match.group(2)
        fields["pid" if thread.isdecimal() else "thread"] = thread
    elif (match := _NAME_DASH_LEVEL.match(rest)) is not None:
        fields["logger"], level = match.group(1), match.group(2)
        return normalize_level(level), rest[match.end() :], fields
    else:
        return None
    body = rest[match.end() :]
    if match.group(0).endswith("\t") and "\t" in body:
        return normalize_level(level), *_split_tabs(body, fields)
    logger = _LOGGER.match(body)
    # A bare `word: text` is prose more often than a logger; dotted names and ` - ` are loggers.
    if logger is not None and (logger.group(2) != ": " or "." in logger.group(1)):
        fields["logger"] = logger.group(1)
        body = body[logger.end() :]
    elif match.re is _LEVEL_FIRST and "thread" in fields and "app" not in fields:
        # Python's `LEVEL [logger] msg` puts the logger where logback puts the thread.
        fields["logger"] = fields.pop("thread")
    return normalize_level(level), body, fields


def _split_tabs(body: str, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """zap's console encoder: `[logger\\t]caller\\tmessage[\\t{json fields}]` after the level."""
    head, _, last = body.rpartition("\t")
    extra: Any = None
    if last.startswith("{"):
        try:
            extra = json.loads(last)
        except ValueError:
            extra = None
    if isinstance(extra, dict):
        body = head
    *names, message = body.split("\t", 2)
    for name in names:
        fields["caller" if _CALLER.search(name) else "logger"] = name
    if isinstance(extra, dict):
        fields.update(extra)
        error = extra.get("error")
        if isinstance(error, str) and error:
            message = f"{message}: {clip(error, MAX_ERROR_TEXT)}"
    return message, fields
