"""Turning a hosted store's entry into a `Record`: the line to parse and the structured fields as flat strings.

Hosted stores (Datadog, Cloud Logging, Azure Monitor, Splunk) keep the message apart
from its level and its fields; the base parses the line as a file's line, so what the
line does not say must reach the parser another way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.logs.store import LogStore, ReadAccount, Session
from integrations.remote_calls import Deadline

# A label is evidence, not storage: a field longer than this is cut (payload dumps, request bodies).
MAX_LABEL_CHARS = 1024
# Levels that say nothing more than a plain line would: parsing the message alone gives them.
_PLAIN_LEVELS = frozenset({"", "info", "information", "informational", "default", "ok"})


def stated_line(message: str, level: str | None) -> str:
    """The message as the store wrote it, with the store's level stated when the text cannot say it.

    A JSON message carries its own level, a multi-line one (a stack trace) is parsed as
    written so that its frames are read; a single plain line whose store level is more
    than "info" becomes `{"level", "msg"}`, which the parser reads as that level and message.
    """
    wanted = (level or "").strip().lower()
    if wanted in _PLAIN_LEVELS or message.lstrip().startswith("{") or "\n" in message.rstrip("\n"):
        return message
    return json.dumps({"level": wanted, "msg": message}, ensure_ascii=False)


def flat_labels(fields: Mapping[str, Any], prefix: str = "", into: dict[str, str] | None = None) -> dict[str, str]:
    """Nested fields as `a.b.c` keys with string values (lists as JSON), each bounded; None values left out."""
    labels: dict[str, str] = {} if into is None else into
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, Mapping):
            flat_labels(value, f"{name}.", labels)
            continue
        labels[name] = _text(value)[:MAX_LABEL_CHARS]
    return labels


def tag_labels(tags: Iterable[str]) -> dict[str, str]:
    """`key:value` tags as labels (a bare tag is its own value), the first value of a repeated key kept."""
    labels: dict[str, str] = {}
    for tag in tags:
        key, sep, value = str(tag).partition(":")
        labels.setdefault(key.strip(), (value if sep else key).strip())
    return labels


def iso_utc(at: datetime, *, digits: int = 3) -> str:
    """An aware time as RFC 3339 in UTC with `Z` and `digits` fractional digits (0, 3, 6)."""
    text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (text[: len(text) - 6 + digits] if digits else text[:-7]) + "Z"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def first_page(store: LogStore, span: timedelta) -> int:
    """How many records the first page of the last `span` holds: one real read, for `sources check`."""
    end = datetime.now(UTC)
    session = Session(store.options, ReadAccount(store.name, store.describe()), Deadline(store.options.timeout_s))
    pages = store.pages(end - span, end, session)
    try:
        return len(next(pages, []))
    finally:
        # The rest of the read is not wanted: a generator's close releases its client now.
        close = getattr(pages, "close", None)
        if close is not None:
            close()
