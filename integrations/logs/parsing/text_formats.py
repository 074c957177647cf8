"""Text formats of particular programs: Celery, Kubernetes events, PostgreSQL, nginx errors, Redis, Python's default."""

from __future__ import annotations

import re
from typing import Any, Final

from integrations.logs.base import LogEvent
from integrations.logs.parsing.events import FOLD, new_event
from integrations.logs.parsing.times import MONTHS, iso, normalize_level, offset, to_utc

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


def parse_celery(line: str, source: str) -> LogEvent | None:
    match = _CELERY.match(line)
    if match is None:
        return None
    stamp, level, process = match.groups()
    return new_event(iso(stamp), normalize_level(level), line[match.end() :], line, source, {"process": process})


def parse_k8s_event(line: str, source: str) -> LogEvent | None:
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
    return new_event(iso(stamp), level, f"{reason}: {line[match.end() :]}", line, source, fields)


def parse_postgres(line: str, source: str) -> LogEvent | None:
    match = _POSTGRES.match(line)
    if match is None:
        return None
    stamp, zone, pid, user, database, severity = match.groups()
    if severity in _POSTGRES_DETAILS:
        return FOLD
    ts = iso(stamp)
    if ts is not None and zone and zone[0] in "+-" and (tz := offset(zone if len(zone) > 3 else zone + "00")):
        ts = to_utc(ts.replace(tzinfo=tz))
    fields: dict[str, Any] = {"pid": int(pid)}
    if user:
        fields["user"] = user
    if database:
        fields["database"] = database
    level = _POSTGRES_LEVELS.get(severity, "debug")
    return new_event(ts, level, line[match.end() :], line, source, fields)


def parse_nginx_error(line: str, source: str) -> LogEvent | None:
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
    ts = iso(f"{year}-{month}-{day} {clock}")
    return new_event(ts, normalize_level(level), message, line, source, fields)


def parse_redis(line: str, source: str) -> LogEvent | None:
    match = _REDIS.match(line)
    if match is None:
        return None
    pid, role, day, month_name, year, clock, mark = match.groups()
    month = MONTHS.get(month_name)
    ts = iso(f"{year}-{month:02d}-{int(day):02d} {clock}") if month else None
    fields = {"pid": int(pid), "role": role}
    return new_event(ts, _REDIS_LEVELS[mark], line[match.end() :], line, source, fields)


def parse_level_prefix(line: str, source: str) -> LogEvent | None:
    """`ERROR:root:msg` (Python's default format) and `INFO:     ...` (uvicorn): no time at all."""
    match = _LEVEL_PREFIX.match(line)
    if match is None:
        return None
    fields = {"logger": match.group(2)} if match.group(2) else {}
    return new_event(None, normalize_level(match.group(1)), line[match.end() :], line, source, fields)
