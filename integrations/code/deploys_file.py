"""Deploy events from a JSON file: [{"at", "service", "version", "actor"}]."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from core.timeparse import parse_iso
from integrations import roles
from integrations.code.base import Deploy
from integrations.errors import SourceError
from integrations.plugin import SourceKind, SourceOptions, resolve_path


class DeploysFile:
    def __init__(self, path: Path, *, name: str = "deploys_file") -> None:
        self.path = path
        self.name = name

    def deploys(self, start: datetime, end: datetime) -> list[Deploy]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SourceError(f"deploys file {self.path} cannot be read ({exc.strerror})") from exc
        except ValueError as exc:
            raise SourceError(f"deploys file {self.path} is not JSON: {exc}") from exc
        if isinstance(data, dict):
            data = data.get("deploys")
        if not isinstance(data, list):
            raise SourceError(f'deploys file {self.path} must hold a list of deploys or {{"deploys": [...]}}')
        found: list[Deploy] = []
        for item in data:
            if not isinstance(item, dict) or "at" not in item or "version" not in item:
                continue
            try:
                at = parse_iso(str(item["at"]))
            except ValueError:
                continue
            if start <= at <= end:
                found.append(
                    Deploy(at=at, service=str(item.get("service", "")), version=str(item["version"]), actor=str(item.get("actor", "")))
                )
        return sorted(found, key=lambda d: d.at)


class DeploysFileOptions(SourceOptions):
    path: str = Field(description='JSON file: a list (or {"deploys": [...]}) of {at, service, version, actor}')


def _build(options: DeploysFileOptions, base_dir: Path) -> DeploysFile:
    return DeploysFile(resolve_path(options.path, base_dir), name=options.name or "deploys_file")


def _check(source: DeploysFile) -> str:
    everything = source.deploys(datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
    return f"{len(everything)} deploys, the latest {everything[-1].at:%Y-%m-%d %H:%M} UTC" if everything else "no deploys recorded yet"


KIND = SourceKind(
    name="deploys_file",
    role=roles.DEPLOYS,
    options=DeploysFileOptions,
    build=_build,
    check=_check,
    summary="deploy events from a JSON file written by the CD pipeline",
)
