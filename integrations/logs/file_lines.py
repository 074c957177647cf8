"""Physical lines of a log file, whole or a byte range of it: plain or gzip, decoded leniently, memory bounded."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from integrations.errors import SourceError
from integrations.logs.parsing import MAX_LINE

GZIP_MAGIC = b"\x1f\x8b"


def open_lines(path: Path) -> Iterator[str]:
    """The physical lines of a plain or gzip file (told apart by content), decoded leniently.

    Memory stays bounded: a line longer than `MAX_LINE` bytes keeps its first
    `MAX_LINE` bytes and the rest is skipped. A gzip file cut short (still being
    written, or copied mid-rotation) yields what it holds instead of failing.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SourceError(f"cannot read log file '{path}': {exc.strerror or exc}") from exc
    with handle:
        try:
            stream: io.BufferedIOBase = gzip.GzipFile(fileobj=handle) if handle.peek(2)[:2] == GZIP_MAGIC else handle
            yield from bounded_lines(stream.readline)
        except EOFError:
            return
        except (OSError, zlib.error) as exc:
            raise SourceError(f"cannot read log file '{path}': {exc}") from exc


def range_lines(path: Path, start: int, end: int | None) -> Iterator[str]:
    """The lines of a plain file that start in bytes [start, end) (end None: to the end), cut as `open_lines` cuts them."""
    if start == 0 and end is None:
        yield from open_lines(path)
        return
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SourceError(f"cannot read log file '{path}': {exc.strerror or exc}") from exc
    with handle:
        try:
            handle.seek(start)
            yield from bounded_lines(handle.readline, start, end)
        except OSError as exc:
            raise SourceError(f"cannot read log file '{path}': {exc}") from exc


def bounded_lines(readline: Callable[[int], bytes], position: int = 0, end: int | None = None) -> Iterator[str]:
    """Lines from `readline` until `end` bytes: an over-long line keeps its first MAX_LINE bytes, the rest is skipped."""
    while (end is None or position < end) and (line := readline(MAX_LINE)):
        position += len(line)
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            while rest := readline(MAX_LINE):
                position += len(rest)
                if rest.endswith(b"\n"):
                    break
        yield line.decode("utf-8", "replace")


def check_readable(path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise SourceError(f"cannot read log file '{path}': {exc.strerror or exc}") from exc
