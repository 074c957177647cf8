"""Log files cut into units that can be read apart: whole files, and large plain files split into byte ranges.

A range starts at a line that begins an event of its own, parsed the same whether the
lines before it were read or not, so that reading the ranges one after the other yields
the events of reading the file once: a stack trace or a folded message never straddles
a cut. Where no such line is near, the file is not cut there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from integrations.logs.base import LogEvent
from integrations.logs.file_lines import GZIP_MAGIC, range_lines
from integrations.logs.parsing import parse_stream
from integrations.logs.window import in_window

# How far past a wished-for cut to look for a line that starts an event.
SCAN_BYTES = 256 * 1024
# A candidate cut is parsed with the lines after it, with and without the lines before it:
# the cut is clean when the events from it on come out the same.
_CONTEXT_LINES = 8
_FOLLOWING_LINES = 8
_MAX_CANDIDATES = 200
_MAX_CANDIDATE_CHARS = 16 * 1024
# Pods' lines interleave and each pod's event stays open across the others: no cut is clean.
_POD_PREFIX = "[pod/"


@dataclass(frozen=True, slots=True)
class FileUnit:
    """Bytes [start, end) of a log file (end None: to the end of the file), read as source `name`."""

    path: Path
    start: int = 0
    end: int | None = None
    # Bytes to read as planned: the largest units go to the workers first.
    size: int = 0

    @property
    def name(self) -> str:
        return self.path.name

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        """The events of the unit in the window, as a `FileLogSource` over its file would yield them."""
        return in_window(parse_stream(range_lines(self.path, self.start, self.end), self.name), start, end)


def split(path: Path, target_bytes: int) -> list[FileUnit]:
    """`path` as units of about `target_bytes`; one unit when it is small, compressed or cannot be cut cleanly."""
    try:
        size = path.stat().st_size
        pieces = round(size / target_bytes)
        if pieces < 2:
            return [FileUnit(path, size=size)]
        with path.open("rb") as handle:
            # Compressed files are told apart by content, as `open_lines` does; they cannot be cut.
            if handle.read(2) == GZIP_MAGIC:
                return [FileUnit(path, size=size)]
            cuts = [0]
            for piece in range(1, pieces):
                wished = max(piece * size // pieces, cuts[-1] + 1)
                handle.seek(wished)
                cut = _clean_cut(handle.read(SCAN_BYTES), wished)
                if cut is not None and cut < size:
                    cuts.append(cut)
    except OSError:
        # Reading the whole file reports the problem as a degraded source, as it always has.
        return [FileUnit(path)]
    ends = [*cuts[1:], size]
    return [FileUnit(path, start, end if end < size else None, end - start) for start, end in zip(cuts, ends, strict=True)]


def _clean_cut(data: bytes, offset: int) -> int | None:
    """The offset of the first line in `data` (read at `offset`) where a unit may start, if any."""
    first = data.find(b"\n")
    if first < 0:
        return None
    # The last piece may be a cut-off line, and a cut is only judged with the lines that follow it.
    physical = data[first + 1 :].split(b"\n")[:-1]
    texts = [line.decode("utf-8", "replace") for line in physical]
    if any(text.startswith(_POD_PREFIX) for text in texts):
        return None
    starts = [offset + first + 1]
    for line in physical:
        starts.append(starts[-1] + len(line) + 1)
    last = min(len(texts) - _FOLLOWING_LINES, _CONTEXT_LINES + _MAX_CANDIDATES)
    for index in range(_CONTEXT_LINES, last):
        if _starts_event(texts[index - _CONTEXT_LINES : index], texts[index : index + _FOLLOWING_LINES]):
            return starts[index]
    return None


def _starts_event(before: list[str], following: list[str]) -> bool:
    """Whether the first of `following` opens an event, and the events from it on parse alike with or without `before`."""
    head = following[0]
    if not head or head[0] in " \t" or len(head) > _MAX_CANDIDATE_CHARS:
        return False
    alone = list(parse_stream(following, "cut"))
    if not alone or alone[0].ts is None or alone[0].raw.partition("\n")[0] != head.rstrip("\r"):
        return False
    joined = list(parse_stream([*before, *following], "cut"))
    return joined[-len(alone) :] == alone
