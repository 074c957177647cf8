"""Streaming log template miner: turns raw log messages into stable signatures.

Two stages. ``mask`` rewrites the values a message carries (numbers, ids, addresses,
paths, quoted values, timestamps...) as ``<*>``. ``TemplateMiner`` then groups masked
messages Drain-style: messages are bucketed by token count and leading words, and a
message joins the closest group of its bucket when the only words that differ look like
values. Group ids are never renumbered or merged, so an id is a stable signature.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable
from itertools import islice
from operator import methodcaller
from typing import TextIO, TypeVar

VAR = "<*>"
_K = TypeVar("_K", str, bytes)

# Longer messages are cut before mining: a signature comes from the start of a message.
_MAX_CHARS = 8192
# The caches hold at most this many entries of at most this many bytes each.
_CACHE_LIMIT = 100_000
_CACHED_LEN = 512
_MAX_SCAN = 1000
# Past this many distinct second words after one first word, the second word is a value (a user, a host):
# later messages share one bucket per first word instead of opening a bucket, and a group, per value.
_WIDE_AFTER = 64
_MONTHS = (
    "Jan(?:uary)?",
    "Feb(?:ruary)?",
    "Mar(?:ch)?",
    "Apr(?:il)?",
    "May",
    "June?",
    "July?",
    "Aug(?:ust)?",
    "Sep(?:t(?:ember)?)?",
    "Oct(?:ober)?",
    "Nov(?:ember)?",
    "Dec(?:ember)?",
)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_V = r"<\*>"

# Every rule treats all digits alike and never counts them, so the mask of a message only
# depends on its digit-normalised form; ``TemplateMiner.add`` caches on that form.
# Each regex pass costs a scan of the line: rare shapes are only looked for after a cheap
# substring test, and the rules that run on masked text start with a literal to skip to.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.ASCII)
_URL = re.compile(r"://[^\s\"'<>\])},;]+")
_IPV6 = re.compile(
    r"\[?(?<![\w:.])(?=[0-9a-fA-F:]*\d)[0-9a-fA-F]*(?::[0-9a-fA-F]*){2,7}(?![\w:])\]?(?::\d+)?",
    re.ASCII,
)
_WIN_PATH = re.compile(r"\b[A-Za-z]:\\[^\s\"'<>,;]+", re.ASCII)
# Identifier-like units holding a digit: numbers, ids, hex, versions, durations ("12ms"),
# base64 and slash-joined values ("HTTP/1.1", "3/5"). Dots join a unit only between word
# characters, so leader dots ("enable.....0") do not.
_UNIT = re.compile(
    r"(?<![\w\-+/])(?<![\w\-]\.)(?:[A-Za-z_\-+/]++(?:\.(?=[\w\-+/])[A-Za-z_\-+/]*+)*+)?+\d(?:\.?[\w\-+/]++)*+",
    re.ASCII,
)
# The rules below run on masked text.
_PATH = re.compile(r"/(?<![\w.:/\\>]/)(?:[^\s\"'<>,;()\[\]{}|]|<\*>)+")
_DQUOTED = re.compile(r"\"(?<![\w\"]\")[^\"\s]*\"(?![\w\"]|\s*:)")
_SQUOTED = re.compile(r"'(?<!\w')[^'\s]*'(?!\w)")
# One value written in several pieces ("10.0.0.1:80", "12:30:01", "5.2 KB", "7##3##0").
_JOINED = re.compile(
    rf"{_V}(?:[:,;#|\-]+{_V})+"
    rf"|{_V}\s?(?:[KMGTP]i?B|B|bytes|ms|us|ns|s|sec|secs|seconds|min|mins|minutes|h|hours)\b"
)
# Written as one flat alternation of literals so that the engine only stops at those
# capital letters; runs after _UNIT and _JOINED, which turn "14 15:16:01" into "<*> <*>".
_DATE = re.compile(
    "|".join(
        [rf"{d}[a-z]*,?\s+(?:{'|'.join(_MONTHS)})\b\s+{_V}(?:,?\s+{_V})*" for d in _DAYS]
        + [rf"{m}\b\s+{_V}(?:,?\s+{_V})*" for m in _MONTHS]
    )
)
# Booleans and nulls are values as much as numbers are ("setLightsOn(true)", "ok=false").
_NULLS_AND_BOOLS = re.compile(
    "|".join(rf"{w}(?<!\w{w})(?!\w)" for w in ("true", "false", "null", "True", "False", "None", "TRUE", "FALSE", "NULL"))
)
_VAR_RUN = re.compile(rf"{_V}(?:\s+{_V})+")
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_strip_eol = methodcaller("rstrip", "\r\n")


def mask(message: str) -> str:
    """Replace the variable parts of a log message with ``<*>``."""
    text = message
    if "@" in text:
        text = _EMAIL.sub(VAR, text)
    if "://" in text:
        text = _URL.sub("://" + VAR, text)
    if "::" in text:
        text = _IPV6.sub(VAR, text)
    if ":\\" in text:
        text = _WIN_PATH.sub(VAR, text)
    text = _NULLS_AND_BOOLS.sub(VAR, _UNIT.sub(VAR, text))
    if "/" in text:
        text = _PATH.sub(VAR, text)
    if '"' in text:
        text = _DQUOTED.sub(VAR, text)
    if "'" in text:
        text = _SQUOTED.sub(VAR, text)
    if VAR not in text:
        return text
    # Adjacent variables are one value of variable length ("Jun 18 2005", "blk_1 blk_2").
    return _VAR_RUN.sub(VAR, _DATE.sub(VAR, _JOINED.sub(VAR, text)))


def _same_shape(a: str, b: str) -> bool:
    # "<*>:" and "<*>" are one variable written two ways; "(uid=<*>)" and
    # "LOGIN(uid=<*>)" differ in constant text.
    return (a == VAR and VAR in b) or (b == VAR and VAR in a)


def _looks_like_value(word: str) -> bool:
    # Names a message is about (users, hosts, booleans) are written in lower case, while
    # words in upper or camel case are code constants: methods, states, exception classes.
    return word.lower() == word


def _bucket_key(tokens: list[str]) -> tuple[str, ...]:
    # The first constant words usually name the component and the event, whatever
    # timestamps or ids come before them. For "key=value" words only the key counts.
    head = [t.partition("=")[0] for t in tokens if VAR not in t][: 2 if len(tokens) > 2 else 1]
    return (str(len(tokens)), *head)


class _Group:
    __slots__ = ("count", "free", "gid", "text", "tokens")

    def __init__(self, gid: int, tokens: list[str]) -> None:
        self.gid = gid
        self.tokens = tokens
        # Positions already seen with two different words: they accept any word.
        self.free = [False] * len(tokens)
        self.count = 0
        self.text = " ".join(tokens)

    def score(self, tokens: list[str], allowed: int) -> tuple[int, int] | None:
        """(value-like words that differ, words in common), or None when too far apart."""
        soft = common = 0
        for t, m, free in zip(self.tokens, tokens, self.free, strict=True):
            if t == m:
                common += VAR not in t
            elif free or _same_shape(t, m):
                continue
            elif soft == allowed or not (_looks_like_value(t) and _looks_like_value(m)):
                return None
            else:
                soft += 1
        return (soft, -common) if common or not soft else None

    def merge(self, tokens: list[str]) -> None:
        changed = False
        for i, (t, m) in enumerate(zip(self.tokens, tokens, strict=True)):
            if t != m and not self.free[i]:
                self.free[i] = not _same_shape(t, m)
                if t != VAR:
                    self.tokens[i] = VAR
                    changed = True
        if changed:
            self.text = " ".join(self.tokens)


def _closest(bucket: list[_Group], tokens: list[str]) -> _Group | None:
    # A variable is one word, so a long message may differ in a few value-like words,
    # a short one in a single word; a constant word in upper case never differs.
    allowed = max(1, len(tokens) // 5)
    best: _Group | None = None
    best_score = (allowed + 1, 0)
    # Free text behind a constant prefix can fill a bucket with thousands of groups; the
    # oldest are the common ones, and a bounded scan keeps the worst case linear.
    for group in islice(bucket, _MAX_SCAN):
        score = group.score(tokens, allowed)
        if score is not None and score < best_score:
            best, best_score = group, score
    return best


def _remember(cache: dict[_K, _Group], key: _K, group: _Group) -> None:
    # Dropping the whole cache when full is cheap and only costs a re-mask per line shape.
    if len(key) <= _CACHED_LEN:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = group


class TemplateMiner:
    """Groups log messages by template; one configuration for every log format."""

    def __init__(self) -> None:
        self._groups: list[_Group] = []
        self._by_key: dict[bytes, _Group] = {}
        self._by_masked: dict[str, _Group] = {}
        self._buckets: dict[tuple[str, ...], list[_Group]] = {}
        self._second_words: dict[tuple[str, ...], set[str]] = {}

    def add(self, message: str) -> int:
        """Assign a message to a group and return the group id."""
        message = message[:_MAX_CHARS]
        key = message.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_ZERO)
        group = self._by_key.get(key)
        if group is None:
            group = self._add_masked(mask(message))
            _remember(self._by_key, key, group)
        group.count += 1
        return group.gid

    def _add_masked(self, masked: str) -> _Group:
        group = self._by_masked.get(masked)
        if group is not None:
            return group
        tokens = masked.split()
        bucket = self._buckets.setdefault(self._bucket_for(tokens), [])
        group = _closest(bucket, tokens)
        if group is None:
            group = _Group(len(self._groups), tokens)
            self._groups.append(group)
            bucket.append(group)
        else:
            group.merge(tokens)
        _remember(self._by_masked, masked, group)
        return group

    def _bucket_for(self, tokens: list[str]) -> tuple[str, ...]:
        key = _bucket_key(tokens)
        if len(key) < 3:
            return key
        family, second = key[:2], key[2]
        seen = self._second_words.setdefault(family, set())
        if second not in seen:
            if len(seen) >= _WIDE_AFTER:
                return (*family, VAR)
            seen.add(second)
        return key

    def template(self, group_id: int) -> str:
        """Current template of a group, ``<*>`` marking its variables."""
        return self._groups[group_id].text

    def groups(self) -> list[tuple[int, str, int]]:
        """Every group as (id, template, number of messages)."""
        return [(g.gid, g.text, g.count) for g in self._groups]


def mine_lines(lines: Iterable[str], out: TextIO) -> None:
    """Write "<group id>\\t<final template>" for each input line, in input order."""
    miner = TemplateMiner()
    # Only the int ids are kept per line; map() keeps the loop in C.
    ids = array("l", map(miner.add, map(_strip_eol, lines)))
    rendered = [f"{gid}\t{text}\n" for gid, text, _ in miner.groups()]
    out.writelines(map(rendered.__getitem__, ids))
