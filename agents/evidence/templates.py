"""Streaming log template mining: turn raw log messages into stable signatures."""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable
from typing import TextIO

VAR = "<*>"

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"

_PATTERNS = [
    # Timestamps first: they span spaces and would otherwise leave month names behind.
    rf"\b(?:{_DAY},?\s+)?{_MONTH}\s+\d+(?:,?\s+\d+)?(?:\s+\d+:\d+:\d+(?:[.,]\d+)?)?(?:\s+\d{{4}}\b)?",
    r"\b\d+-\d+-\d+(?:[T ]\d+:\d+(?::\d+)?(?:[.,]\d+)?)?(?:Z|[+-]\d+(?::\d+)?)?",
    r"\b\d+:\d+:\d+(?:[.,]\d+)?",
    # Everything after a URL scheme is instance data; the scheme itself is kept.
    r"(?<=://)[^\s\"'<>\])},;]+",
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    r"\"(?:[^\"\\]|\\.)*\"(?!\s*:)",
    r"(?<![\w'])'(?:[^'\\\n]|\\.)*'(?!\w)",
    r"(?<![\w.:/\\])(?:~|\.{1,2})?/[^\s\"'<>,;()\[\]{}]+",
    r"\b[A-Za-z]:\\[^\s\"'<>,;]+",
    # IPv6 (with or without brackets and port) before the generic rule splits it on ':'.
    r"\[?(?<![\w:])(?=[0-9a-fA-F:]*\d)(?=[0-9a-fA-F:]*:[0-9a-fA-F]*:)[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?![\w:])\]?(?::\d+)?",
    r"\b\d+(?:\.\d+){3}(?::\d+)?\b",
    r"(?<![\w+/=.-])(?=[\w+/-]*\d)[\w+/-]{20,}={0,2}",
    # Any remaining identifier-like unit holding a digit: numbers, ids, hex, versions, durations.
    r"(?<![\w.\-])[A-Za-z_.\-]*+\d[\w.\-]*+",
]
_MASK_RE = re.compile("|".join(_PATTERNS), re.ASCII)
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_KEY_CACHE_LIMIT = 200_000
SIM_THRESHOLD = 0.5


def mask(message: str) -> str:
    return _MASK_RE.sub(VAR, message)


class _Group:
    __slots__ = ("gid", "tokens", "count", "text")

    def __init__(self, gid: int, tokens: list[str]) -> None:
        self.gid = gid
        self.tokens = tokens
        self.count = 0
        self.text = " ".join(tokens)


def _similarity(template: list[str], tokens: list[str]) -> tuple[float, int]:
    same = 0
    params = 0
    for t, m in zip(template, tokens):
        if t == m:
            same += 1
        elif t == VAR:
            params += 1
    return same / len(tokens), params


class TemplateMiner:
    def __init__(self) -> None:
        self._groups: list[_Group] = []
        self._by_key: dict[bytes, _Group] = {}
        self._by_masked: dict[str, _Group] = {}
        self._buckets: dict[tuple[int, str], list[_Group]] = {}

    def add(self, message: str) -> int:
        key = message.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_ZERO)
        group = self._by_key.get(key)
        if group is None:
            group = self._add_masked(mask(message))
            if len(self._by_key) >= _KEY_CACHE_LIMIT:
                self._by_key.clear()
            self._by_key[key] = group
        group.count += 1
        return group.gid

    def _add_masked(self, masked: str) -> _Group:
        group = self._by_masked.get(masked)
        if group is not None:
            return group
        tokens = masked.split()
        first = tokens[0] if tokens else ""
        bucket = self._buckets.setdefault((len(tokens), VAR if VAR in first else first), [])
        group = self._best(bucket, tokens)
        if group is None:
            group = _Group(len(self._groups), tokens)
            self._groups.append(group)
            bucket.append(group)
        else:
            self._merge(group, tokens)
        if len(self._by_masked) >= _KEY_CACHE_LIMIT:
            self._by_masked.clear()
        self._by_masked[masked] = group
        return group

    @staticmethod
    def _best(bucket: list[_Group], tokens: list[str]) -> _Group | None:
        best: _Group | None = None
        best_score = (SIM_THRESHOLD, -1)
        for group in bucket:
            score = _similarity(group.tokens, tokens)
            if score >= best_score:
                best, best_score = group, score
        return best

    @staticmethod
    def _merge(group: _Group, tokens: list[str]) -> None:
        merged = [t if t == m else VAR for t, m in zip(group.tokens, tokens)]
        if merged != group.tokens:
            group.tokens = merged
            group.text = " ".join(merged)

    def template(self, group_id: int) -> str:
        return self._groups[group_id].text

    def groups(self) -> list[tuple[int, str, int]]:
        return [(g.gid, g.text, g.count) for g in self._groups]


def mine_lines(lines: Iterable[str], out: TextIO) -> None:
    miner = TemplateMiner()
    ids = array("l", (miner.add(line.rstrip("\r\n")) for line in lines))
    rendered = [f"{gid}\t{text}\n" for gid, text, _ in miner.groups()]
    out.writelines(map(rendered.__getitem__, ids))
