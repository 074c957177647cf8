"""Times people type: `--since 2h`, `--at 03:10`, ISO-8601 from alerts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from core.catalog import parse_duration

ACCEPTED_TIME_FORMS = "an ISO time (2025-10-28T15:47:00Z), HH:MM (today, UTC) or a relative time (-30m)"
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
_RELATIVE = re.compile(r"^-\s*(\d+\s*[smhdw])$")


def parse_iso(text: str) -> datetime:
    """An aware UTC datetime from ISO-8601 text (a trailing Z is accepted; naive means UTC)."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_at(text: str, *, now: datetime | None = None) -> datetime:
    """The moment `--at` names; raises ValueError listing the accepted forms."""
    now = now or datetime.now(UTC)
    value = text.strip()
    if match := _HHMM.match(value):
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"{text!r} is not a time; use {ACCEPTED_TIME_FORMS}")
        candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        # 03:10 typed at 02:00 means yesterday's 03:10: an incident is never in the future.
        return candidate - timedelta(days=1) if candidate > now else candidate
    if match := _RELATIVE.match(value):
        return now - timedelta(seconds=parse_duration(match.group(1)))
    try:
        return parse_iso(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a time; use {ACCEPTED_TIME_FORMS}") from None


def isoformat(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
