"""Log files on disk as a log source: globs and folders, plain or gzip, streamed line by line."""

from __future__ import annotations

import glob
import gzip
import io
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from integrations.errors import SourceError
from integrations.logs.base import LogEvent
from integrations.logs.parsing import MAX_LINE, parse_stream

_GZIP_MAGIC = b"\x1f\x8b"


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
            stream: io.BufferedIOBase = gzip.GzipFile(fileobj=handle) if handle.peek(2)[:2] == _GZIP_MAGIC else handle
            yield from _bounded_lines(stream)
        except EOFError:
            return
        except (OSError, zlib.error) as exc:
            raise SourceError(f"cannot read log file '{path}': {exc}") from exc


def _bounded_lines(stream: io.BufferedIOBase) -> Iterator[str]:
    readline = stream.readline
    while line := readline(MAX_LINE):
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            while (rest := readline(MAX_LINE)) and not rest.endswith(b"\n"):
                pass
        yield line.decode("utf-8", "replace")


class FileLogSource:
    """Log files named by globs, folders (every file inside) or paths, relative to `base_dir`."""

    def __init__(self, paths: list[str], base_dir: Path, name: str = "files") -> None:
        self.paths = list(paths)
        self.base_dir = Path(base_dir)
        self.name = name

    def files(self) -> list[Path]:
        """The files the paths name, each once, in a stable order; SourceError when a path names none."""
        found: dict[Path, None] = {}
        for pattern in self.paths:
            matches = _expand(self.base_dir, pattern)
            if not matches:
                raise SourceError(f"log path '{pattern}' matched no files under {self.base_dir}")
            found.update(dict.fromkeys(matches))
        return list(found)

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        """Events in [start, end] and events without a time, file by file, streaming.

        The files are resolved and opened here rather than on the first `next()`,
        so that a missing or unreadable path raises `SourceError` at the call.
        """
        files = self.files()
        for path in files:
            _check_readable(path)
        return _window(files, _utc(start), _utc(end))


def _window(files: list[Path], start: datetime, end: datetime) -> Iterator[LogEvent]:
    for path in files:
        for event in parse_stream(open_lines(path), path.name):
            if event.ts is None or start <= event.ts <= end:
                yield event


def _expand(base_dir: Path, pattern: str) -> list[Path]:
    target = Path(pattern).expanduser()
    if not target.is_absolute():
        target = base_dir / target
    files: list[Path] = []
    for match in sorted(glob.glob(str(target), recursive=True)):
        path = Path(match)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            files.append(path)
    return files


def _check_readable(path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise SourceError(f"cannot read log file '{path}': {exc.strerror or exc}") from exc


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
