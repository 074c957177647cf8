"""What the tests of hosted log stores share: the contract's records as a store holds them, and reads through the engine.

A store stamps every entry when it arrives and searches by that stamp; the line keeps
the time it was written with. `stored` gives each record of a contract dataset the
stamp the store would give it (arrival order: never earlier than what came before) and
the line as the service wrote it (JSON with time, level and message), so a record
written late but stamped earlier keeps the store's order and its own time. A kind whose
store stamps on arrival says so in its contract class (`stamped_on_arrival`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agents.evidence.model import EvidenceInputs
from agents.evidence.reading import read_logs
from contracts import (
    END,
    START,
    LogRecord,
)
from core.alert import Alert
from core.degraded import Degradation
from integrations.registry import ServiceSources
from integrations.roles import LOGS


@dataclass(frozen=True)
class Stored:
    """One entry as the store holds it: the stamp it searches by, the line as written, and the level the store keeps apart."""

    at: datetime
    line: str
    level: str


def json_line(record: LogRecord) -> str:
    entry: dict[str, Any] = {"level": record.level, "msg": record.message}
    if record.ts is not None:
        entry = {"time": record.ts.isoformat(), **entry}
    return json.dumps(entry)


def stored(records: Sequence[LogRecord]) -> list[Stored]:
    known = [r.ts for r in records if r.ts is not None]
    arrived = min(known) if known else START
    entries = []
    for record in records:
        if record.ts is not None:
            arrived = max(arrived, record.ts)
        entries.append(Stored(arrived, json_line(record), record.level))
    return entries


def engine_read(source: Any) -> tuple[int, list[Degradation], list[dict[str, Any]]]:
    """A source read by the evidence engine over [START, END]: events read, degraded entries, read accounts."""
    inputs = EvidenceInputs(
        alert=Alert(title="errors", service="svc", created_at=END),
        service="svc",
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [source]}),
    )
    degraded: list[Degradation] = []
    reads: list[dict[str, Any]] = []
    stats = read_logs(inputs, lambda *_: None, degraded, reads)
    return stats.events, degraded, reads
