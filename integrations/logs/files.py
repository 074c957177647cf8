"""Log files on disk as a log source: globs and folders, plain or gzip, streamed line by line, split for parallel reading."""

from __future__ import annotations

import glob
import itertools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pydantic import Field, model_validator

from integrations import roles
from integrations.errors import SourceError
from integrations.logs.base import LogEvent
from integrations.logs.capabilities import LogUnit
from integrations.logs.file_lines import check_readable, open_lines
from integrations.logs.file_ranges import split
from integrations.logs.parsing import parse_stream
from integrations.logs.window import in_window
from integrations.plugin import SourceKind, SourceOptions


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
            check_readable(path)
        return (event for path in files for event in in_window(parse_stream(open_lines(path), path.name), start, end))

    def volume(self) -> int:
        """Bytes on disk across the files (compressed size for gzip files)."""
        try:
            return sum(path.stat().st_size for path in self.files())
        except OSError as exc:
            raise SourceError(f"cannot list log files: {exc.strerror or exc}") from exc

    def units(self, target: int) -> list[LogUnit]:
        """Each file as byte ranges of about `target` bytes where it can be cut cleanly, else whole."""
        return [unit for path in self.files() for unit in split(path, target)]


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


class FileLogOptions(SourceOptions):
    paths: list[str] = Field(
        default_factory=list, description="globs, folders or files; relative to the catalog's folder; plain or gzip (told by content)"
    )
    path: str | None = Field(None, description="one glob, folder or file (shorthand for a single entry of `paths`)")

    @model_validator(mode="after")
    def _some_path(self) -> FileLogOptions:
        if not self.paths and not self.path:
            raise ValueError("give 'paths' (a list of globs, folders or files)")
        return self

    def patterns(self) -> list[str]:
        return [*self.paths, *([self.path] if self.path else [])]


def _build(options: FileLogOptions, base_dir: Path) -> FileLogSource:
    return FileLogSource(options.patterns(), base_dir=base_dir, name=options.name or "files")


def _check(source: FileLogSource) -> str:
    files = source.files()
    for path in files:
        # The first lines, not just an open: a corrupt gzip file opens fine and fails on its first block.
        for _line in itertools.islice(open_lines(path), 10):
            pass
    return f"{len(files)} readable files, {source.volume() / 1e6:.1f} MB"


KIND = SourceKind(
    name="files",
    role=roles.LOGS,
    options=FileLogOptions,
    build=_build,
    check=_check,
    summary="log files on the worker's disk: globs and folders, plain or gzip, any format mixed",
)
