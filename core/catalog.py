"""The service catalog (SERVICES_FILE): which evidence belongs to which service.

Validated at start-up; an error names the file, the line and the field, because
the person fixing it at 3 a.m. is looking at the YAML, not at our code.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class CatalogError(ValueError):
    """The catalog cannot be used; the message says where and why."""


def parse_duration(text: str) -> int:
    """Seconds in a duration such as `30m`, `2h`, `1d`."""
    match = DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (use forms like 30m, 2h, 1d)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class SourceSpec(BaseModel):
    """One evidence source; each kind reads its own extra keys."""

    model_config = ConfigDict(extra="allow")
    kind: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ServiceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    aliases: list[str] = Field(default_factory=list)
    pagerduty_service_ids: list[str] = Field(default_factory=list)
    channel: str | None = None
    jira_project: str | None = None
    logs: list[SourceSpec] = Field(default_factory=list)
    code: list[SourceSpec] = Field(default_factory=list)
    deploys: list[SourceSpec] = Field(default_factory=list)
    metrics: list[SourceSpec] = Field(default_factory=list)
    runbooks: list[SourceSpec] = Field(default_factory=list)


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lookback: str = "6h"
    after: str = "15m"

    @field_validator("lookback", "after")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: Defaults = Field(default_factory=Defaults)
    services: dict[str, ServiceSpec]
    base_dir: Path = Field(default=Path("."), exclude=True)

    def names(self) -> list[str]:
        return sorted(self.services)

    def get(self, name: str) -> ServiceSpec | None:
        return self.services.get(name)

    def resolve(self, name: str) -> str | None:
        """The catalog name for a service name, alias or PagerDuty service id, case-insensitively."""
        wanted = name.strip().lower()
        for key, spec in self.services.items():
            candidates = [key, *spec.aliases, *spec.pagerduty_service_ids]
            if any(wanted == c.lower() for c in candidates):
                return key
        return None

    def close_matches(self, name: str, n: int = 3) -> list[str]:
        pool = {c.lower(): key for key, spec in self.services.items() for c in [key, *spec.aliases]}
        hits = difflib.get_close_matches(name.lower(), list(pool), n=n, cutoff=0.5)
        return list(dict.fromkeys(pool[h] for h in hits))

    def path(self, relative: str) -> Path:
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.base_dir / candidate


def _node_at(root: yaml.Node, loc: tuple[int | str, ...]) -> yaml.Node:
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == part), None)
            if found is None:
                found = next((k for k, _ in node.value if k.value == part), None)
            if found is None:
                break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file, or raise CatalogError naming file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the service catalog ({exc.strerror})") from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CatalogError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict) or root is None:
        raise CatalogError(f"{path}:1: the catalog must be a mapping with a 'services' key")
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        node = _node_at(root, loc)
        field = ".".join(str(p) for p in loc) or "(top level)"
        raise CatalogError(f"{path}:{node.start_mark.line + 1}: {field}: {first['msg']}") from exc
    catalog.base_dir = path.resolve().parent
    return catalog


def empty_catalog() -> Catalog:
    return Catalog(services={})
