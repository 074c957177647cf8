"""Saved `kubectl` output as an infra source: what an engineer pasted, read into the same facts the API gives.

`kubectl describe pod|deployment|node`, `kubectl get events` (table, `-o yaml`, `-o json`)
and `kubectl get pods -o yaml|json`, several in one file or one per file. Relative ages
("3m", "12m (x5 over 3h)") become times against the dump's capture time: the `captured_at`
option, else a `# captured at ...` line or `date` output at the top of a file; without
either they stay unknown rather than guessed.
"""

from __future__ import annotations

import glob
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field, field_validator

from integrations import roles
from integrations.errors import SourceError
from integrations.infra.base import InfraFact
from integrations.infra.kubectl_text import FactReader, captured_at, parse_time
from integrations.plugin import SourceKind, SourceOptions

MAX_FILE_BYTES = 20 * 1024 * 1024


class KubectlDump:
    """Facts from saved kubectl output in files, folders (the files inside) or globs, relative to `base_dir`."""

    def __init__(self, paths: list[str], base_dir: Path, *, anchor: datetime | None = None, name: str = "kubectl_dump") -> None:
        self.paths = list(paths)
        self.base_dir = Path(base_dir)
        self.anchor = anchor
        self.name = name

    def files(self) -> list[Path]:
        found: dict[Path, None] = {}
        for pattern in self.paths:
            target = Path(pattern).expanduser()
            target = target if target.is_absolute() else self.base_dir / target
            matches = [Path(m) for m in sorted(glob.glob(str(target)))]
            files = [f for m in matches for f in (sorted(m.iterdir()) if m.is_dir() else [m]) if f.is_file() and not f.name.startswith(".")]
            if not files:
                raise SourceError(f"kubectl dump path '{pattern}' matched no files under {self.base_dir}")
            found.update(dict.fromkeys(files))
        return list(found)

    def facts(self, start: datetime, end: datetime) -> list[InfraFact]:
        """Facts whose span meets [start, end], and facts without a time."""
        found: list[InfraFact] = []
        for path in self.files():
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise SourceError(
                        f"kubectl dump {path.name} is over {MAX_FILE_BYTES // 2**20} MB; save the describe/events output alone"
                    )
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise SourceError(f"kubectl dump {path} cannot be read ({exc.strerror})") from exc
            reader = FactReader(f"{self.name}:{path.name}", self.anchor or captured_at(text))
            reader.read(text)
            found += [f for f in reader.facts if _meets(f, start, end)]
        return found


def _meets(fact: InfraFact, start: datetime, end: datetime) -> bool:
    """A fact is of the window when its span (first to last seen) meets it; one without a time always is."""
    if fact.at is None:
        return fact.last_at is None or fact.last_at >= start
    return fact.at <= end and (fact.last_at or fact.at) >= start


class KubectlDumpOptions(SourceOptions):
    paths: list[str] = Field(
        min_length=1,
        description="files, folders (the files directly inside) or globs holding saved `kubectl describe`/`get events`/`get pods -o yaml` "
        "output; relative to the catalog's folder",
    )
    captured_at: str | None = Field(
        None,
        description="when the output was taken (ISO 8601, UTC); anchors relative ages such as '3m ago'. "
        "Default: a '# captured at ...' line or `date` output at the top of each file, else those ages stay unknown",
    )

    @field_validator("captured_at")
    @classmethod
    def _a_time(cls, value: str | None) -> str | None:
        if value is not None and parse_time(value) is None:
            raise ValueError(f"captured_at '{value}' is not a time (use ISO 8601, e.g. 2026-12-06T03:12:00Z)")
        return value


def _build(options: KubectlDumpOptions, base_dir: Path) -> KubectlDump:
    anchor = parse_time(options.captured_at) if options.captured_at else None
    return KubectlDump(options.paths, base_dir, anchor=anchor, name=options.name or "kubectl_dump")


def _check(source: KubectlDump) -> str:
    files = source.files()
    facts = source.facts(datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
    return f"{len(files)} files, {len(facts)} facts"


KIND = SourceKind(
    name="kubectl_dump",
    role=roles.INFRA,
    options=KubectlDumpOptions,
    build=_build,
    check=_check,
    summary="saved kubectl describe / get events / get pods output, read into pod, container, node and rollout facts",
)
