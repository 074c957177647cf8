"""Levels and times as logs write them: level names and numbers, ISO, epoch and common-log-format times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Final

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
ERRORISH: Final = frozenset({"warning", "error", "critical"})
MONTHS: Final = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


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


def iso(text: str) -> datetime | None:
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
    return value if value.tzinfo is UTC else to_utc(value)


def to_utc(value: datetime) -> datetime | None:
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


def any_ts(value: object) -> datetime | None:
    if type(value) is float or type(value) is int:
        return _epoch(value)
    if isinstance(value, str):
        if value[:1].isdecimal() and value.replace(".", "", 1).isdecimal() and len(value) <= 24:
            return _epoch(float(value))
        return iso(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch(value)
    return None


@lru_cache(maxsize=64)
def offset(text: str) -> timezone | None:
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
def clf_ts(text: str) -> datetime | None:
    """Common log format time, `28/Oct/2025:13:52:04 +0000`."""
    month = MONTHS.get(text[3:6])
    tz = offset(text[21:]) if len(text) > 21 else UTC
    if month is None or tz is None:
        return None
    try:
        value = datetime(int(text[7:11]), month, int(text[0:2]), int(text[12:14]), int(text[15:17]), int(text[18:20]), tzinfo=tz)
    except ValueError:
        return None
    return value if tz is UTC else to_utc(value)


_LEVEL_SNIFF: Final = re.compile(r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|SEVERE|FATAL|CRITICAL|CRIT|PANIC|EMERG)\b")


def sniff_level(text: str) -> str:
    """The level a line names somewhere near its start, for lines without a level where formats put one."""
    match = _LEVEL_SNIFF.search(text, 0, 256)
    return normalize_level(match.group(1)) if match else "info"
