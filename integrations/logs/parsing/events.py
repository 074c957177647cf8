"""What every parser shares: the size caps, the parser signature and the event constructor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from integrations.logs.base import LogEvent
from integrations.logs.parsing.fields import read_fields

MAX_LINE: Final = 256 * 1024
MAX_RAW: Final = 16 * 1024
MAX_MESSAGE: Final = 2 * 1024
MAX_FOLDED_LINES: Final = 200
MAX_FRAMES: Final = 100
# Bounds the events held open while waiting for their continuation lines (one per pod).
MAX_OPEN_EVENTS: Final = 64
MAX_ERROR_TEXT: Final = 300

# A parser reads one physical line (and the source's name) into an event, or says None: not my format.
Parser = Callable[[str, str], LogEvent | None]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def new_event(ts: datetime | None, level: str, message: str, line: str, source: str, attributes: dict[str, Any]) -> LogEvent:
    """An event with its message and raw text capped and its typed fields read from `attributes`."""
    event = bare_event(ts, level, message, line, source, attributes)
    if attributes:
        read_fields(event, attributes)
    return event


def bare_event(ts: datetime | None, level: str, message: str, line: str, source: str, attributes: dict[str, Any]) -> LogEvent:
    """An event with its message and raw text capped, for a parser that sets its typed fields itself."""
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE]
    return LogEvent(ts, level, message, line if len(line) <= MAX_RAW else line[:MAX_RAW], source, attributes)


# Returned by a parser for a line that carries its own prefix but continues the open event.
FOLD: Final = LogEvent(None, "info", "", "", "")
