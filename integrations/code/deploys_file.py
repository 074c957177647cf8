"""Deploy events from a JSON file: [{"at", "service", "version", "actor"}]."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from core.timeparse import parse_iso
from integrations.code.base import Deploy
from integrations.errors import SourceError


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
            data = data.get("deploys", [])
        if not isinstance(data, list):
            raise SourceError(f"deploys file {self.path} must hold a list of deploys")
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
