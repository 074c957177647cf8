"""What a unified diff says: changed config values, touched line ranges, added code, migrations."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FILE = re.compile(r"^\+\+\+ (?:b/)?(?P<path>\S+)")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(?P<start>\d+)(?:,(?P<len>\d+))? @@(?P<header>.*)$")
_KEYVAL = re.compile(
    r"""^\s*(?:export\s+|const\s+|var\s+|final\s+|static\s+|public\s+|private\s+)*["']?(?P<key>[A-Za-z_][\w.-]*)["']?\s*(?::=|[:=])\s*["']?(?P<value>[^"'#,;\s}]+)"""
)
_SQL = re.compile(
    r"\b(?:alter\s+table|create\s+(?:unique\s+)?index|drop\s+(?:table|column|index)|add\s+column|rename\s+column|update\s+\w+\s+set|create\s+table)\b",
    re.IGNORECASE,
)
_SQL_TABLE = re.compile(
    r"\b(?:alter\s+table|create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?\w*\s*on|update|drop\s+table|create\s+table)\s+(?:if\s+(?:not\s+)?exists\s+)?[\"`]?(?P<table>[\w.]+)",
    re.IGNORECASE,
)
# Added code that keeps things around for ever, or starts work without bound: the usual leak shapes.
_GROWTH = re.compile(
    r"sync\.Map|\bmap\[|make\(map|append\(|\bcache\b|\.Store\(|\.put\(|\.add\(|\.append\(|\bglobal\b|\bstatic\b.*(?:Map|List|Set)|"
    r"lru|memo|buffer|goroutine|\bgo func|new Thread|threadpool|executor|setinterval|\bpush\(|in memory|in-memory|keep",
    re.IGNORECASE,
)


@dataclass(slots=True)
class ConfigChange:
    path: str
    key: str
    old: str | None
    new: str


@dataclass(slots=True)
class DiffFacts:
    hunks: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    added_lines: dict[str, set[int]] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    config: list[ConfigChange] = field(default_factory=list)
    sql: bool = False
    tables: set[str] = field(default_factory=set)

    @property
    def growth(self) -> bool:
        return any(_GROWTH.search(line) for line in self.added)


def parse_diff(text: str) -> DiffFacts:
    facts = DiffFacts()
    path = ""
    new_line = 0
    removed: dict[str, str] = {}
    added: dict[str, str] = {}

    def flush() -> None:
        for key, value in added.items():
            old = removed.get(key)
            if old != value:
                facts.config.append(ConfigChange(path=path, key=key, old=old, new=value))
        removed.clear()
        added.clear()

    for line in text.splitlines():
        if line.startswith("+++ "):
            flush()
            match = _FILE.match(line)
            path = match.group("path") if match else ""
            facts.hunks.setdefault(path, [])
            continue
        if line.startswith("--- ") or line.startswith("diff --git"):
            continue
        if line.startswith("@@"):
            flush()
            match = _HUNK.match(line)
            if match:
                start = int(match.group("start"))
                new_line = start
                length = int(match.group("len") or 1)
                facts.hunks.setdefault(path, []).append((start, start + max(length, 1) - 1))
                if match.group("header").strip():
                    facts.headers.append(match.group("header").strip())
            continue
        if line.startswith("+"):
            body = line[1:]
            facts.added.append(body)
            facts.added_lines.setdefault(path, set()).add(new_line)
            new_line += 1
            if (kv := _KEYVAL.match(body)) is not None:
                added[kv.group("key")] = kv.group("value")
            if _SQL.search(body):
                facts.sql = True
                facts.tables.update(m.group("table").lower() for m in _SQL_TABLE.finditer(body))
        elif line.startswith("-"):
            facts.removed.append(line[1:])
            if (kv := _KEYVAL.match(line[1:])) is not None:
                removed[kv.group("key")] = kv.group("value")
        else:
            new_line += 1
    flush()
    return facts
