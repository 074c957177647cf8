"""Saved `kubectl logs [--previous] [--prefix] [--timestamps]` output as a log source, the pod on every event.

Container output often carries no timestamp of its own; such events keep their order
in the file (the analysis orders them by position) and stay untimed rather than guessed.
A file of a previous container is read before the current one of the same pod, as it ran first.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pydantic import Field

from integrations import roles
from integrations.errors import SourceError
from integrations.logs.base import LogEvent
from integrations.logs.file_lines import check_readable, open_lines
from integrations.logs.parsing import parse_stream
from integrations.logs.window import in_window
from integrations.plugin import SourceKind, SourceOptions

_PREVIOUS = re.compile(r"[._-]+(?:previous|prev)$", re.IGNORECASE)
_SUFFIX = re.compile(r"\.(?:log|txt|out)$", re.IGNORECASE)


def pod_of(path: Path) -> tuple[str, bool]:
    """The pod a saved file is named after (`<pod>.log`, `<pod>.previous.log`) and whether it is a previous container's."""
    stem = _SUFFIX.sub("", path.name)
    previous = _PREVIOUS.search(stem) is not None
    return _PREVIOUS.sub("", stem), previous


class KubectlLogs:
    """Container logs saved from `kubectl logs`, in files, folders or globs relative to `base_dir`."""

    def __init__(self, paths: list[str], base_dir: Path, *, pod: str | None = None, name: str = "kubectl_logs") -> None:
        self.paths = list(paths)
        self.base_dir = Path(base_dir)
        self.pod = pod
        self.name = name

    def files(self) -> list[Path]:
        found: dict[Path, None] = {}
        for pattern in self.paths:
            target = Path(pattern).expanduser()
            target = target if target.is_absolute() else self.base_dir / target
            matches = [Path(m) for m in sorted(glob.glob(str(target)))]
            files = [f for m in matches for f in (sorted(m.iterdir()) if m.is_dir() else [m]) if f.is_file() and not f.name.startswith(".")]
            if not files:
                raise SourceError(f"kubectl logs path '{pattern}' matched no files under {self.base_dir}")
            found.update(dict.fromkeys(files))
        # A previous container ran before the current one: its lines come first.
        return sorted(found, key=lambda p: (pod_of(p)[0], not pod_of(p)[1], p.name))

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        files = self.files()
        for path in files:
            check_readable(path)
        return (event for path in files for event in in_window(self._file_events(path), start, end))

    def _file_events(self, path: Path) -> Iterator[LogEvent]:
        named_pod, previous = pod_of(path)
        pod = self.pod or named_pod
        # `--prefix` lines name their own pod and container (the parser reads them); the others belong to the file's pod.
        for event in parse_stream(open_lines(path), path.name):
            if event.pod is None:
                event.pod = pod
                event.attributes.setdefault("pod", pod)
            if previous:
                event.attributes["previous"] = True
            yield event


class KubectlLogsOptions(SourceOptions):
    paths: list[str] = Field(
        min_length=1,
        description="files, folders (the files directly inside) or globs of saved `kubectl logs` output, one pod per file "
        "(named <pod>.log, <pod>.previous.log) or with --prefix; relative to the catalog's folder",
    )
    pod: str | None = Field(None, description="the pod every file belongs to (default: from --prefix lines, else the file name)")


def _build(options: KubectlLogsOptions, base_dir: Path) -> KubectlLogs:
    return KubectlLogs(options.paths, base_dir, pod=options.pod, name=options.name or "kubectl_logs")


def _check(source: KubectlLogs) -> str:
    files = source.files()
    pods = {pod_of(p)[0] for p in files}
    return f"{len(files)} files from {len(pods)} pods"


KIND = SourceKind(
    name="kubectl_logs",
    role=roles.LOGS,
    options=KubectlLogsOptions,
    build=_build,
    check=_check,
    summary="container logs saved from kubectl logs (current and --previous), the pod on every event",
)
