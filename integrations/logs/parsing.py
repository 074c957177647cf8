"""Physical log lines in, logical `LogEvent`s out.

The format is detected per line, so one file may mix formats and nothing needs
configuring. Multi-line events (Java stack traces, Python tracebacks, Go panics,
PostgreSQL DETAIL lines) are folded into the event they continue, per pod when
lines carry a `[pod/<name>/<container>]` prefix, because several pods' output is
often interleaved in one file. Every size is capped so that a hostile or broken
file cannot exhaust memory, and no input makes `parse_stream` raise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Final

from integrations.logs.base import Frame, LogEvent

MAX_LINE: Final = 256 * 1024
MAX_RAW: Final = 16 * 1024
MAX_MESSAGE: Final = 2 * 1024
MAX_FOLDED_LINES: Final = 200
MAX_FRAMES: Final = 100
# Bounds the events held open while waiting for their continuation lines (one per pod).
MAX_OPEN_EVENTS: Final = 64
_MAX_ERROR_TEXT: Final = 300

Parser = Callable[[str, str], LogEvent | None]

_json_loads: Callable[[str], Any]
try:
    # orjson parses a log line four times faster than json; it is optional, json does the same job.
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - depends on the environment
    _json_loads = json.loads

# ---------------------------------------------------------------- levels and times

_LEVEL_NAMES: Final[dict[str, str]] = {
    "trace": "trace", "finest": "trace", "finer": "trace",
    "debug": "debug", "dbg": "debug", "fine": "debug", "verbose": "debug",
    "info": "info", "information": "info", "informational": "info", "normal": "info",
    "notice": "notice",
    "warn": "warning", "warning": "warning", "wrn": "warning",
    "error": "error", "err": "error", "severe": "error",
    "fatal": "critical", "critical": "critical", "crit": "critical", "panic": "critical",
    "dpanic": "critical", "emerg": "critical", "emergency": "critical", "alert": "critical",
}  # fmt: skip
_SYSLOG_LEVELS: Final = ("critical", "critical", "critical", "error", "warning", "notice", "info", "debug")
_ERRORISH: Final = frozenset({"warning", "error", "critical"})
_MONTHS: Final = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


def normalize_level(value: object) -> str:
    """One of `LEVELS` for a level as logs spell it: names, abbreviations, pino and syslog numbers."""
    if type(value) is int:
        return _numeric_level(value)
    if isinstance(value, str):
        name = _LEVEL_NAMES.get(value.lower())
        if name is not None:
            return name
        if not (value.isdecimal() and len(value) <= 3):
            return "info"
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _numeric_level(value)
    return "info"


def _numeric_level(value: float) -> str:
    if 0 <= value < len(_SYSLOG_LEVELS):
        return _SYSLOG_LEVELS[int(value)]
    for floor, name in ((60, "critical"), (50, "error"), (40, "warning"), (30, "info"), (20, "debug")):
        if value >= floor:
            return name
    return "trace"


def _iso(text: str) -> datetime | None:
    """ISO-8601 as logs write it (comma fractions, Z, offsets, ` UTC`); naive means UTC."""
    if text.endswith((" UTC", " GMT")):
        text = text[:-4]
    elif " +" in text or " -" in text:
        text = text.replace(" +", "+").replace(" -", "-")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else _to_utc(value)


def _to_utc(value: datetime) -> datetime | None:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


def _epoch(value: float) -> datetime | None:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude."""
    # Also turns away NaN and integers too large to divide as floats.
    if not 1e8 <= value < 1e20:
        return None
    if value >= 1e17:
        value /= 1e9
    elif value >= 1e14:
        value /= 1e6
    elif value >= 1e11:
        value /= 1e3
    # Smaller numbers are uptimes or counters, not wall-clock times.
    if value < 1e8:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _any_ts(value: object) -> datetime | None:
    if type(value) is float or type(value) is int:
        return _epoch(value)
    if isinstance(value, str):
        if value[:1].isdecimal() and value.replace(".", "", 1).isdecimal() and len(value) <= 24:
            return _epoch(float(value))
        return _iso(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch(value)
    return None


@lru_cache(maxsize=64)
def _offset(text: str) -> timezone | None:
    """`+0000`, `-05:00` as a timezone; None when malformed."""
    digits = text[1:].replace(":", "")
    if len(digits) != 4 or not digits.isascii() or not digits.isdecimal() or text[0] not in "+-":
        return None
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if delta >= timedelta(days=1):
        return None
    return UTC if not delta else timezone(-delta if text[0] == "-" else delta)


# Access logs repeat the same second many times over; parsing it once per second pays.
@lru_cache(maxsize=256)
def _clf_ts(text: str) -> datetime | None:
    """Common log format time, `28/Oct/2025:13:52:04 +0000`."""
    month = _MONTHS.get(text[3:6])
    tz = _offset(text[21:]) if len(text) > 21 else UTC
    if month is None or tz is None:
        return None
    try:
        value = datetime(int(text[7:11]), month, int(text[0:2]), int(text[12:14]), int(text[15:17]), int(text[18:20]), tzinfo=tz)
    except ValueError:
        return None
    return value if tz is UTC else _to_utc(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _new(ts: datetime | None, level: str, message: str, line: str, source: str, fields: dict[str, Any]) -> LogEvent:
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE]
    return LogEvent(ts, level, message, line if len(line) <= MAX_RAW else line[:MAX_RAW], source, fields)


# Returned by a parser for a line that carries its own prefix but continues the open event.
_FOLD: Final = LogEvent(None, "info", "", "", "")

# ---------------------------------------------------------------- JSON lines

_JSON_MESSAGE_KEYS: Final = ("msg", "message", "event", "@message", "log")
_JSON_TIME_KEYS: Final = ("ts", "time", "timestamp", "@timestamp", "t", "datetime", "date")
_JSON_LEVEL_KEYS: Final = ("level", "severity", "lvl", "levelname", "log.level", "loglevel", "@level")
_JSON_ERROR_KEYS: Final = ("error", "err", "exception", "exc_info", "exc", "error.message")
_JSON_STACK_KEYS: Final = ("stack", "stack_trace", "stacktrace", "error.stack_trace", "exc_text")
_JSON_ERROR_HINT: Final = re.compile(r'"(?:err|exc|stack|error\.)')
_JSON_SALVAGE: Final = re.compile(r'"(ts|time|timestamp|@timestamp|level|severity|msg|message|event)"\s*:\s*("(?:[^"\\]|\\.)*"|-?[\d.]+)')


def _parse_json(line: str, source: str) -> LogEvent | None:
    try:
        obj = _json_loads(line)
    except ValueError:
        return _salvage_json(line, source)
    if not isinstance(obj, dict):
        return None
    ts = level = message = None
    for key in _JSON_TIME_KEYS:
        if key in obj:
            ts = _any_ts(obj.pop(key))
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
    event = _new(ts, level or "info", message, line, source, obj)
    if stack or error:
        _attach_stack(event, stack, error)
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
    return (_clip(error.partition("\n")[0], _MAX_ERROR_TEXT) if error else None), stack


def _attach_stack(event: LogEvent, stack: str | None, error: str | None) -> None:
    reader = _StackReader()
    if stack:
        for stack_line in stack.splitlines()[: MAX_FOLDED_LINES * 2]:
            reader.feed(_clip(stack_line, MAX_RAW))
    event.frames = reader.frames
    first = stack.lstrip().partition("\n")[0] if stack else ""
    fallback = error or (first if first and not _looks_like_frame(first) else None)
    event.exception = _clip(reader.exception_text() or fallback or "", MAX_MESSAGE) or None
    if event.exception and event.exception not in event.message:
        event.message = _clip(f"{event.message}: {event.exception}" if event.message else event.exception, MAX_MESSAGE)


def _salvage_json(line: str, source: str) -> LogEvent | None:
    """A truncated or broken JSON line still names its time, level and message often enough."""
    found: dict[str, str] = {}
    for key, value in _JSON_SALVAGE.findall(line, 0, 4096):
        found.setdefault(key, value.strip('"'))
    if not found:
        return None
    ts = next((_any_ts(found[k]) for k in ("ts", "time", "timestamp", "@timestamp") if k in found), None)
    level = normalize_level(found.get("level") or found.get("severity") or "info")
    message = found.get("msg") or found.get("message") or found.get("event") or ""
    return _new(ts, level, message, line, source, {"truncated": True})


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


# ---------------------------------------------------------------- logfmt

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


def _parse_logfmt(line: str, source: str) -> LogEvent | None:
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
        error = _clip(error, _MAX_ERROR_TEXT)
        message = f"{message}: {error}" if message else error
    if "status" in fields:
        fields["status"] = _convert(fields["status"], int)
    if "duration_ms" in fields:
        fields["duration_ms"] = _convert(fields["duration_ms"], float)
    ts = _iso(stamp) if stamp else None
    event = _new(ts, normalize_level(level) if level else "info", message, line, source, fields)
    event.exception = error or None
    return event


def _convert(text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text


# ---------------------------------------------------------------- timestamped text

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
_LEVEL_SNIFF: Final = re.compile(r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|SEVERE|FATAL|CRITICAL|CRIT|PANIC|EMERG)\b")


def _sniff_level(text: str) -> str:
    match = _LEVEL_SNIFF.search(text, 0, 256)
    return normalize_level(match.group(1)) if match else "info"


def _parse_iso_text(line: str, source: str) -> LogEvent | None:
    """Python logging, logback/Spring Boot and the like: a leading ISO time, then a level."""
    logback = _LOGBACK.match(line)
    if logback is not None:
        stamp, level, thread, logger = logback.groups()
        fields = {"thread": thread.strip(), "logger": logger}
        return _new(_iso(stamp), normalize_level(level), line[logback.end() :], line, source, fields)
    head = _ISO_HEAD.match(line)
    if head is None:
        return None
    return _text_event(head.group(1), line[head.end() :], line, source, need_level=True)


def _parse_bracket_iso_text(line: str, source: str) -> LogEvent | None:
    head = _BRACKET_ISO_HEAD.match(line)
    if head is None:
        return None
    return _text_event(head.group(1), line[head.end() :], line, source, need_level=False)


def _parse_timestamped_text(line: str, source: str) -> LogEvent | None:
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
        return _new(_iso(stamp), _sniff_level(rest), rest, line, source, {})
    level, message, fields = split
    return _new(_iso(stamp), level, message, line, source, fields)


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
            message = f"{message}: {_clip(error, _MAX_ERROR_TEXT)}"
    return message, fields


# ---------------------------------------------------------------- specific text formats

_CELERY: Final = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d+)?): (\w+)/([^\]]{1,200})\]\s?")
_K8S_EVENT: Final = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)\s+(Normal|Warning)\s+(\S+)\s+(\S+)\s+")
_POSTGRES: Final = re.compile(
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?: ([A-Z]{2,5}|[+-]\d\d(?::?\d\d)?))? \[(\d{1,12})\]:? "
    r"(?:\[\d+-\d+\] )?(?:([^@\s\[]*)@(\S*) )?"
    r"(LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG\d?|DETAIL|HINT|STATEMENT|CONTEXT|LOCATION|QUERY):\s+"
)
_POSTGRES_LEVELS: Final = {
    "LOG": "info",
    "ERROR": "error",
    "FATAL": "critical",
    "PANIC": "critical",
    "WARNING": "warning",
    "NOTICE": "notice",
    "INFO": "info",
}
_POSTGRES_DETAILS: Final = frozenset({"DETAIL", "HINT", "STATEMENT", "CONTEXT", "LOCATION", "QUERY"})
_NGINX_ERROR: Final = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d:\d\d:\d\d) \[(\w+)\] (\d{1,12})#(\d{1,12}): (?:\*(\d{1,18}) )?")
_NGINX_ERROR_CONTEXT: Final = re.compile(r'(client|server|request|upstream|host|referrer): ("[^"]*"|[^,]*)')
_REDIS: Final = re.compile(r"(\d{1,12}):([XCSM]) (\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d\d:\d\d:\d\d(?:\.\d+)?) ([.\-*#]) ")
_REDIS_LEVELS: Final = {".": "debug", "-": "info", "*": "notice", "#": "warning"}
# Upper case only: Python and uvicorn write it so, while `panic:` and `fatal error:` open Go crashes.
_LEVEL_PREFIX: Final = re.compile(r"(TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|CRITICAL|FATAL):(?:([A-Za-z_][\w.]*):)?\s*")


def _parse_celery(line: str, source: str) -> LogEvent | None:
    match = _CELERY.match(line)
    if match is None:
        return None
    stamp, level, process = match.groups()
    return _new(_iso(stamp), normalize_level(level), line[match.end() :], line, source, {"process": process})


def _parse_k8s_event(line: str, source: str) -> LogEvent | None:
    match = _K8S_EVENT.match(line)
    if match is None:
        return None
    stamp, kind, reason, obj = match.groups()
    fields: dict[str, Any] = {"reason": reason, "object": obj}
    kind_name, _, name = obj.partition("/")
    if name:
        # `pod`, `node`, `deployment`...: the same keys the other formats use for where a line came from.
        fields[kind_name.lower()] = name
    level = "warning" if kind == "Warning" else "info"
    return _new(_iso(stamp), level, f"{reason}: {line[match.end() :]}", line, source, fields)


def _parse_postgres(line: str, source: str) -> LogEvent | None:
    match = _POSTGRES.match(line)
    if match is None:
        return None
    stamp, zone, pid, user, database, severity = match.groups()
    if severity in _POSTGRES_DETAILS:
        return _FOLD
    ts = _iso(stamp)
    if ts is not None and zone and zone[0] in "+-" and (tz := _offset(zone if len(zone) > 3 else zone + "00")):
        ts = _to_utc(ts.replace(tzinfo=tz))
    fields: dict[str, Any] = {"pid": int(pid)}
    if user:
        fields["user"] = user
    if database:
        fields["database"] = database
    level = _POSTGRES_LEVELS.get(severity, "debug")
    return _new(ts, level, line[match.end() :], line, source, fields)


def _parse_nginx_error(line: str, source: str) -> LogEvent | None:
    match = _NGINX_ERROR.match(line)
    if match is None:
        return None
    year, month, day, clock, level, pid, _tid, connection = match.groups()
    text = line[match.end() :]
    fields: dict[str, Any] = {"pid": int(pid)}
    if connection:
        fields["connection"] = int(connection)
    message, _, context = text.partition(", client: ")
    if context:
        fields.update((k, v.strip('"')) for k, v in _NGINX_ERROR_CONTEXT.findall("client: " + context))
    ts = _iso(f"{year}-{month}-{day} {clock}")
    return _new(ts, normalize_level(level), message, line, source, fields)


def _parse_redis(line: str, source: str) -> LogEvent | None:
    match = _REDIS.match(line)
    if match is None:
        return None
    pid, role, day, month_name, year, clock, mark = match.groups()
    month = _MONTHS.get(month_name)
    ts = _iso(f"{year}-{month:02d}-{int(day):02d} {clock}") if month else None
    fields = {"pid": int(pid), "role": role}
    return _new(ts, _REDIS_LEVELS[mark], line[match.end() :], line, source, fields)


def _parse_level_prefix(line: str, source: str) -> LogEvent | None:
    """`ERROR:root:msg` (Python's default format) and `INFO:     ...` (uvicorn): no time at all."""
    match = _LEVEL_PREFIX.match(line)
    if match is None:
        return None
    fields = {"logger": match.group(2)} if match.group(2) else {}
    return _new(None, normalize_level(match.group(1)), line[match.end() :], line, source, fields)


# ---------------------------------------------------------------- access lines

# ingress-nginx appends request length and time, upstream name, alternative, address, length, time, status, id.
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
        text = _clip(request, 200) or "-"
        return f"{text} {status}", {"status": status, "request": text}
    return f"{method} {path} {status}", {"status": status, "method": method, "path": path}


def _parse_nginx_access(line: str, source: str) -> LogEvent | None:
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
    return _new(_clf_ts(stamp), level, message, line, source, fields)


def _parse_envoy(line: str, source: str) -> LogEvent | None:
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
    return _new(_iso(stamp), level, message, line, source, fields)


# ---------------------------------------------------------------- stack traces

_JAVA_FRAME: Final = re.compile(r"at ([^\s(]+)\(([^)]*)\)\s*$")
_CSHARP_FRAME: Final = re.compile(r"at ([^\s(]+)\([^)]*\) in (.+):line (\d{1,9})\s*$")
# Both shapes are written so that no input makes them backtrack more than linearly.
_JS_FRAME: Final = re.compile(r"at (?:async )?([^()]+?) \((.+):(\d{1,9}):\d+\)\s*$")
_JS_BARE_FRAME: Final = re.compile(r"at (?:async )?()(.+):(\d{1,9}):\d+\s*$")
_PYTHON_FRAME: Final = re.compile(r'File "([^"]+)", line (\d{1,9})(?:, in (.+))?')
_GO_FILE: Final = re.compile(r"(\S+\.go):(\d{1,9})(?: \+0x[0-9a-f]+)?\s*$")
_EXCEPTION_LINE: Final = re.compile(
    r"Exception in thread |(?:[A-Za-z_$][\w$]*\.)*[\w$]*(?:Exception|Error|Throwable|Fault)(?::|$)"
    r"|(?:[a-z_][\w]*\.)+[A-Z][\w$]*(?::|$)|panic: |fatal error: "
)
_CONTINUATION_PREFIXES: Final = (
    "Caused by:",
    "Suppressed:",
    "Traceback (",
    "During handling",
    "The above exception",
    "goroutine ",
    "created by ",
    "...",
    "[signal ",
    "Error: ",
    "panic: ",
    "fatal error: ",
)


def _looks_like_frame(text: str) -> bool:
    return text.startswith(("at ", 'File "')) or ".go:" in text[:500]


def _looks_like_continuation(line: str) -> bool:
    return line.startswith(_CONTINUATION_PREFIXES) or _EXCEPTION_LINE.match(line[:300]) is not None


def _java_frame(qualified: str, location: str) -> Frame | None:
    """`com.acme.Foo.bar` + `Foo.java:42` → com/acme/Foo.java, the path the repository holds."""
    qualified = qualified.rpartition("/")[2]
    file, _, number = location.partition(":")
    if "." not in file or " " in file or file.startswith("<"):
        return None
    package = qualified.rsplit(".", 2)[0] if qualified.count(".") >= 2 else ""
    path = f"{package.replace('.', '/')}/{file}" if package else file
    return Frame(path, qualified, int(number) if number.isascii() and number.isdecimal() and len(number) < 10 else None)


def _go_function(line: str) -> str:
    """`main.(*Server).handle(0x0, {...})` → `main.(*Server).handle`; `created by x in goroutine 1` → `x`."""
    text = line.strip()
    if text.startswith("created by "):
        text = text[11:].partition(" in goroutine ")[0]
    if text.endswith(")"):
        depth = 0
        for index in range(len(text) - 1, -1, -1):
            char = text[index]
            depth += char == ")"
            depth -= char == "("
            if depth == 0:
                return text[:index]
    return text


class _StackReader:
    """Reads the lines of a stack trace one at a time: frames, the exception line, the root cause."""

    __slots__ = ("callee", "chained", "exception", "frames", "in_traceback", "root_cause")

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.exception: str | None = None
        self.root_cause: str | None = None
        self.in_traceback = False
        # Python printed "During handling of the above exception..." and the next traceback belongs here too.
        self.chained = False
        self.callee = ""

    def feed(self, line: str) -> None:
        if not line:
            return
        if line[0] in " \t":
            self._indented(line, line.lstrip())
        elif line.startswith("Caused by: "):
            self.root_cause = line[11:].strip()
            # A long outer trace must not crowd out the root cause's frames, which matter most.
            del self.frames[MAX_FRAMES // 2 :]
        elif line.startswith("Traceback (most recent call last)"):
            self.in_traceback = True
            self.chained = False
        elif line.startswith(("During handling of the above exception", "The above exception was the direct cause")):
            self.chained = True
        elif self.in_traceback:
            # Python names the exception on the traceback's last line; a chained one wins.
            self.exception = line.strip()
            self.in_traceback = False
        elif self.exception is None and _EXCEPTION_LINE.match(line[:300]) is not None:
            self.exception = line.strip()
        elif line.startswith(("at ", 'File "')):
            self._indented(line, line)
        else:
            self.callee = line

    def _indented(self, line: str, body: str) -> None:
        if len(self.frames) >= MAX_FRAMES:
            return
        frame: Frame | None = None
        if body.startswith("at "):
            frame = self._at_frame(body)
        elif body.startswith('File "'):
            if (match := _PYTHON_FRAME.match(body)) is not None:
                frame = Frame(match.group(1), (match.group(3) or "").strip(), int(match.group(2)))
        elif body.startswith("Caused by: "):
            self.root_cause = body[11:].strip()
        elif self.callee and (match := _GO_FILE.match(body)) is not None:
            frame = Frame(match.group(1), _go_function(self.callee), int(match.group(2)))
            self.callee = ""
        if frame is not None:
            self.frames.append(frame)

    @staticmethod
    def _at_frame(body: str) -> Frame | None:
        if (match := _JAVA_FRAME.match(body)) is not None:
            return _java_frame(match.group(1), match.group(2))
        if (match := _CSHARP_FRAME.match(body)) is not None:
            return Frame(match.group(2), match.group(1), int(match.group(3)))
        if (match := _JS_FRAME.match(body) or _JS_BARE_FRAME.match(body)) is not None:
            return Frame(match.group(2), match.group(1), int(match.group(3)))
        return None

    def started(self) -> bool:
        return bool(self.frames) or self.exception is not None or self.in_traceback

    def exception_text(self) -> str | None:
        if self.root_cause and self.root_cause != self.exception:
            return f"{self.exception} | Caused by: {self.root_cause}" if self.exception else self.root_cause
        return self.exception


# ---------------------------------------------------------------- dispatch

_DIGIT_FORMATS: Final[tuple[Parser, ...]] = (
    _parse_k8s_event,
    _parse_postgres,
    _parse_iso_text,
    _parse_nginx_error,
    _parse_redis,
    _parse_nginx_access,
)
_BRACKET_FORMATS: Final[tuple[Parser, ...]] = (_parse_celery, _parse_envoy)
_WORD_FORMATS: Final[tuple[Parser, ...]] = (_parse_logfmt, _parse_level_prefix, _parse_nginx_access)
_FORMATS_BY_FIRST_CHAR: Final[dict[str, tuple[Parser, ...]]] = {
    "{": (_parse_json,),
    "[": _BRACKET_FORMATS,
    **dict.fromkeys("0123456789", _DIGIT_FORMATS),
}
# Tried after the specific formats and never remembered: they accept too much to go first.
_FALLBACKS_BY_FIRST_CHAR: Final[dict[str, tuple[Parser, ...]]] = {
    "[": (_parse_bracket_iso_text,),
    **dict.fromkeys("0123456789", (_parse_timestamped_text,)),
}
# Formats whose messages may run on over lines that carry no prefix of their own.
_FREE_TEXT_FORMATS: Final = frozenset(
    {_parse_iso_text, _parse_bracket_iso_text, _parse_timestamped_text, _parse_celery, _parse_level_prefix}
)


class _Fold:
    """The lines folded into an open event so far, and what they say about the stack."""

    __slots__ = ("dropped", "lines", "size", "stack")

    def __init__(self, head: str) -> None:
        self.lines = [head]
        self.size = len(head)
        self.dropped = 0
        self.stack = _StackReader()

    def add(self, line: str) -> None:
        self.stack.feed(line)
        if len(self.lines) >= MAX_FOLDED_LINES or self.size >= MAX_RAW:
            self.dropped += 1
            return
        line = _clip(line, MAX_RAW - self.size - 1)
        self.lines.append(line)
        self.size += len(line) + 1


_Open = tuple[LogEvent, bool, "_Fold | None"]


class _Folder:
    """Turns physical lines into events, holding each pod's latest event open for continuation lines."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.last_parser: Parser | None = None
        self.last_ts: datetime | None = None
        # Per pod key: the open event, whether free text may run on under it, and its folded lines.
        self.open: dict[str | None, _Open] = {}
        self.ready: list[LogEvent] = []

    def push(self, line: str) -> LogEvent | None:
        """Take one physical line; return the event it closes, if any."""
        line = _clean(line)
        key: str | None = None
        pod: dict[str, str] | None = None
        if line.startswith("[pod/"):
            key, pod, line = _strip_pod(line)
        if not line or line.isspace():
            return None
        if line[0] in " \t":
            return self._continue(key, line, pod)
        parser, event = self._parse(line)
        if event is _FOLD:
            return self._continue(key, line, pod)
        if event is None:
            return self._unparsed(key, line, pod)
        if pod is not None:
            event.fields.update(pod)
        if event.ts is not None:
            self.last_ts = event.ts
        return self._open(key, event, parser in _FREE_TEXT_FORMATS)

    def close(self) -> Iterator[LogEvent]:
        yield from self.ready
        self.ready.clear()
        for state in self.open.values():
            yield _finish(state)
        self.open.clear()

    def _parse(self, line: str) -> tuple[Parser | None, LogEvent | None]:
        if self.last_parser is not None and (event := self.last_parser(line, self.source)) is not None:
            return self.last_parser, event
        first = line[0]
        for parser in _FORMATS_BY_FIRST_CHAR.get(first, _WORD_FORMATS):
            if (event := parser(line, self.source)) is not None:
                self.last_parser = parser
                return parser, event
        for parser in _FALLBACKS_BY_FIRST_CHAR.get(first, ()):
            if (event := parser(line, self.source)) is not None:
                return parser, event
        return None, None

    def _unparsed(self, key: str | None, line: str, pod: dict[str, str] | None) -> LogEvent | None:
        """A line without a recognisable prefix: a continuation, or an event of its own without a time."""
        state = self.open.get(key)
        if state is not None and _continues(state, line):
            return self._continue(key, line, pod)
        head = state[0] if state is not None else None
        fields: dict[str, Any] = dict(pod) if pod else {}
        if line.startswith(("panic: ", "fatal error: ")):
            # A Go panic is printed after the last log line, so that line's time is the best estimate.
            event = _new(self._recent_ts(head), "critical", line, line, self.source, {**fields, "ts_inferred": True})
        elif line.startswith("Traceback (most recent call last)"):
            # The message becomes the exception line once the traceback ends.
            event = _new(self._recent_ts(head), "error", "", line, self.source, {**fields, "ts_inferred": True})
        elif _EXCEPTION_LINE.match(line[:300]) is not None:
            event = _new(None, "error", line, line, self.source, fields)
        else:
            return self._open(key, _new(None, _sniff_level(line), line, line, self.source, fields), False)
        # An event that is itself a stack trace's first line reads that line for the exception.
        closed = self._open(key, event, False)
        self._continue(key, line, pod, store=False)
        return closed

    def _recent_ts(self, head: LogEvent | None) -> datetime | None:
        return head.ts if head is not None and head.ts is not None else self.last_ts

    def _open(self, key: str | None, event: LogEvent, free_text: bool) -> LogEvent | None:
        previous = self.open.pop(key, None)
        self.open[key] = (event, free_text, None)
        if len(self.open) > MAX_OPEN_EVENTS:
            self.ready.append(_finish(self.open.pop(next(iter(self.open)))))
        if previous is None:
            return None
        return previous[0] if previous[2] is None else _finish(previous)

    def _continue(self, key: str | None, line: str, pod: dict[str, str] | None, *, store: bool = True) -> LogEvent | None:
        state = self.open.get(key)
        if state is None:
            fields: dict[str, Any] = dict(pod) if pod else {}
            return self._open(key, _new(None, _sniff_level(line), line.strip(), line, self.source, fields), False)
        event, free_text, fold = state
        if fold is None:
            fold = _Fold(event.raw)
            self.open[key] = (event, free_text, fold)
        if store:
            fold.add(line)
        else:
            fold.stack.feed(line)
        return None


def _continues(state: _Open, line: str) -> bool:
    head, free_text, fold = state
    if line.startswith(("panic: ", "fatal error: ")):
        return False
    if line.startswith("Traceback (most recent call last)"):
        # A traceback belongs to the error line that announced it, not to an unrelated info line.
        return head.level in _ERRORISH and (fold is None or fold.stack.exception is None or fold.stack.chained)
    return free_text or (fold is not None and fold.stack.started()) or _looks_like_continuation(line)


def _finish(state: _Open) -> LogEvent:
    event, _free_text, fold = state
    if fold is None:
        return event
    if len(fold.lines) > 1:
        event.raw = "\n".join(fold.lines)
    if fold.dropped:
        event.fields["folded_lines_dropped"] = fold.dropped
    stack = fold.stack
    if stack.frames:
        event.frames = stack.frames
    exception = stack.exception_text()
    if exception:
        event.exception = _clip(exception, MAX_MESSAGE)
        if event.exception not in event.message:
            joined = f"{event.message}: {event.exception}" if event.message else event.exception
            event.message = _clip(joined, MAX_MESSAGE)
    elif not event.message:
        event.message = fold.lines[0]
    return event


def _clean(line: str) -> str:
    line = line.rstrip("\r\n")
    if len(line) > MAX_LINE:
        line = line[:MAX_LINE]
    if "\x00" in line:
        # PostgreSQL text cannot hold NUL, and NUL carries no meaning in a log line.
        line = line.replace("\x00", "")
    if line.startswith("\ufeff"):
        line = line.lstrip("\ufeff")
    return line


def _strip_pod(line: str) -> tuple[str | None, dict[str, str] | None, str]:
    """`[pod/<name>/<container>] rest` → (key, pod fields, rest); a malformed prefix stays in the line."""
    end = line.find("]", 5, 300)
    if end < 0:
        return None, None, line
    key = line[5:end]
    name, _, container = key.partition("/")
    rest = line[end + 1 :]
    fields = {"pod": name, "container": container} if container else {"pod": name}
    return key, fields, rest[1:] if rest.startswith(" ") else rest


def parse_stream(lines: Iterable[str], source: str) -> Iterator[LogEvent]:
    """Yield the logical events in `lines` (physical lines, newlines optional), folding multi-line ones.

    Events come out when the next line of the same pod (or the end) closes them, so
    with interleaved pods the order follows the closing lines rather than the first.
    """
    folder = _Folder(source)
    for line in lines:
        event = folder.push(line)
        if event is not None:
            yield event
        if folder.ready:
            yield from folder.ready
            folder.ready.clear()
    yield from folder.close()
