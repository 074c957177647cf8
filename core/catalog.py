"""The service catalog (SERVICES_FILE): which evidence belongs to which service.

Validated at start-up; an error names the file, the line and the field, because
the person fixing it at 3 a.m. is looking at the YAML, not at our code.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.roles import ROLE_NAMES

DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class CatalogError(ValueError):
    """The catalog cannot be used; the message says where and why, one line per problem."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]

    @classmethod
    def listing(cls, path: Path, root: yaml.Node, problems: list[tuple[tuple[int | str, ...], str]]) -> CatalogError:
        located = sorted(((_node_at(root, loc).start_mark.line + 1, loc, message) for loc, message in problems), key=lambda p: p[0])
        lines = [f"{path}:{line}: {'.'.join(str(p) for p in loc) or '(top level)'}: {message}" for line, loc, message in located]
        return cls("\n".join(lines), lines)


def parse_duration(text: str) -> int:
    """Seconds in a duration such as `30m`, `2h`, `1d`."""
    match = DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (use forms like 30m, 2h, 1d)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class SourceSpec(BaseModel):
    """One evidence source as the catalog names it: a kind and that kind's own options, checked by the registry."""

    model_config = ConfigDict(extra="allow")
    kind: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ServiceSpec(BaseModel):
    """A service: how people and alerts name it, and its sources under one key per role (`logs:`, `code:`, ...)."""

    model_config = ConfigDict(extra="forbid")
    aliases: list[str] = Field(default_factory=list)
    pagerduty_service_ids: list[str] = Field(default_factory=list)
    channel: str | None = None
    jira_project: str | None = None
    sources: dict[str, list[SourceSpec]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather_roles(cls, data: Any) -> Any:
        # The YAML keeps each role beside the service's other keys; the model keeps them in one table keyed by role.
        if not isinstance(data, dict) or "sources" in data:
            return data
        roles = {key: data[key] for key in ROLE_NAMES if key in data}
        rest = {key: value for key, value in data.items() if key not in roles}
        return {**rest, "sources": roles}

    def specs(self, role: str) -> list[SourceSpec]:
        return self.sources.get(role, [])


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lookback: str = "6h"
    after: str = "15m"
    # Who is told of a finished report when a service lists no `notify` of its own.
    notify: list[SourceSpec] = Field(default_factory=list)
    # Who is told of the responder's own trouble (failed jobs, failing sources, the LLM breaker, a backed-up queue).
    ops_notify: list[SourceSpec] = Field(default_factory=list)

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


Location = tuple[int | str, ...]
# Checks one source's kind and options against the registry: (location inside the source, message) per problem.
SourceCheck = Callable[[str, SourceSpec], list[tuple[Location, str]]]


def load_catalog(path: Path, check_source: SourceCheck | None = None) -> Catalog:
    """Read and validate a catalog file, or raise CatalogError listing every problem as `FILE:LINE: FIELD: message`.

    `check_source` adds the registry's checks of each source's kind and options: core
    knows the catalog's shape, only the integrations know what each kind accepts.
    """
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
    problems: list[tuple[Location, str]] = []
    catalog: Catalog | None = None
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        problems = [_structure_problem(error) for error in exc.errors()]
    if check_source is not None:
        problems.extend(_source_problems(data, check_source))
    if problems or catalog is None:
        raise CatalogError.listing(path, root, problems)
    catalog.base_dir = path.resolve().parent
    return catalog


def _source_problems(data: dict[str, Any], check_source: SourceCheck) -> list[tuple[Location, str]]:
    """The registry's problems with every source entry that has a kind, read from the raw file.

    Read from the raw data rather than the model so that a mistake elsewhere in the file
    does not hide them: the person fixing the catalog sees every problem in one go.
    """
    problems: list[tuple[Location, str]] = []
    defaults = data.get("defaults")
    for key in ("notify", "ops_notify"):
        notify = defaults.get(key) if isinstance(defaults, dict) else None
        for index, entry in enumerate(notify if isinstance(notify, list) else ()):
            if isinstance(entry, dict) and isinstance(entry.get("kind"), str):
                spec = SourceSpec.model_validate(entry)
                problems.extend((("defaults", key, index, *loc), message) for loc, message in check_source("notify", spec))
    services = data.get("services")
    for name, service in services.items() if isinstance(services, dict) else ():
        for role in ROLE_NAMES:
            entries = service.get(role) if isinstance(service, dict) else None
            for index, entry in enumerate(entries if isinstance(entries, list) else ()):
                if isinstance(entry, dict) and isinstance(entry.get("kind"), str):
                    spec = SourceSpec.model_validate(entry)
                    problems.extend((("services", name, role, index, *loc), message) for loc, message in check_source(role, spec))
    return problems


def _structure_problem(error: Any) -> tuple[Location, str]:
    # The role lists live under `sources` in the model but beside the other keys in the file.
    loc: Location = tuple(part for index, part in enumerate(error["loc"]) if not (index == 2 and part == "sources"))
    if error["type"] == "extra_forbidden":
        return loc, unknown_key(str(loc[-1]), _allowed_at(loc[:-1]))
    return loc, str(error["msg"])


def _allowed_at(parent: Location) -> list[str]:
    if not parent:
        return [name for name, info in Catalog.model_fields.items() if not info.exclude]
    if parent == ("defaults",):
        return list(Defaults.model_fields)
    return [name for name in ServiceSpec.model_fields if name != "sources"] + list(ROLE_NAMES)


def unknown_key(key: str, allowed: Iterable[str], what: str = "key", where: str = "") -> str:
    """`unknown key 'pathz' (did you mean 'paths'?)`, or the known keys when none is close."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(allowed) or 'none'}"
    return f"unknown {what} '{key}'{where} ({hint})"


def empty_catalog() -> Catalog:
    return Catalog(services={})
