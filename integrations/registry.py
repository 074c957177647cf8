"""Builds a service's evidence sources from its catalog entry.

A new source kind is one module plus one line in the table of its role.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.catalog import Catalog, ServiceSpec, SourceSpec
from core.settings import get_settings
from integrations.code.base import ChangeSource, DeploySource
from integrations.errors import SourceError
from integrations.logs.base import LogSource
from integrations.metrics.base import MetricSource
from integrations.runbooks.base import RunbookSource

Factory = Callable[[SourceSpec, Path], Any]


def _files(spec: SourceSpec, base: Path) -> LogSource:
    from integrations.logs.files import FileLogSource

    paths = spec.options.get("paths") or ([spec.options["path"]] if "path" in spec.options else [])
    if not paths:
        raise SourceError("a 'files' log source needs 'paths'")
    return FileLogSource([str(p) for p in paths], base_dir=base)


def _git(spec: SourceSpec, base: Path) -> ChangeSource:
    from integrations.code.git import GitChangeSource, import_fast_export

    path = _path(spec, base)
    if path.is_file():
        # A history shipped as a `git fast-export` stream (incident bundles, fixtures) is imported once and reused.
        path = import_fast_export(path, get_settings().data_dir / "repos")
    return GitChangeSource(path, branch=str(spec.options.get("branch", "main")), url_template=spec.options.get("url_template"))


def _deploys_file(spec: SourceSpec, base: Path) -> DeploySource:
    from integrations.code.deploys_file import DeploysFile

    return DeploysFile(_path(spec, base))


def _metrics_csv(spec: SourceSpec, base: Path) -> MetricSource:
    from integrations.metrics.csv_file import MetricsCsv

    return MetricsCsv(_path(spec, base))


def _runbooks_dir(spec: SourceSpec, base: Path) -> RunbookSource:
    from integrations.runbooks.folder import RunbookFolder

    return RunbookFolder(_path(spec, base))


def _path(spec: SourceSpec, base: Path) -> Path:
    raw = spec.options.get("path")
    if not raw:
        raise SourceError(f"a '{spec.kind}' source needs 'path'")
    path = Path(str(raw))
    return path if path.is_absolute() else base / path


LOG_KINDS: dict[str, Factory] = {"files": _files}
CODE_KINDS: dict[str, Factory] = {"git": _git}
DEPLOY_KINDS: dict[str, Factory] = {"deploys_file": _deploys_file}
METRIC_KINDS: dict[str, Factory] = {"metrics_csv": _metrics_csv}
RUNBOOK_KINDS: dict[str, Factory] = {"runbooks_dir": _runbooks_dir}


@dataclass
class ServiceSources:
    logs: list[LogSource] = field(default_factory=list)
    code: list[ChangeSource] = field(default_factory=list)
    deploys: list[DeploySource] = field(default_factory=list)
    metrics: list[MetricSource] = field(default_factory=list)
    runbooks: list[RunbookSource] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def build_sources(catalog: Catalog, service: ServiceSpec) -> ServiceSources:
    """Every source the catalog lists for a service; one that cannot be built becomes an error entry, not an exception."""
    built = ServiceSources()
    roles: list[tuple[str, list[SourceSpec], dict[str, Factory], list[Any]]] = [
        ("logs", service.logs, LOG_KINDS, built.logs),
        ("code", service.code, CODE_KINDS, built.code),
        ("deploys", service.deploys, DEPLOY_KINDS, built.deploys),
        ("metrics", service.metrics, METRIC_KINDS, built.metrics),
        ("runbooks", service.runbooks, RUNBOOK_KINDS, built.runbooks),
    ]
    for role, specs, kinds, target in roles:
        for spec in specs:
            factory = kinds.get(spec.kind)
            if factory is None:
                built.errors.append(
                    (f"{role}:{spec.kind}", f"unknown {role} source kind '{spec.kind}' (known: {', '.join(sorted(kinds))})")
                )
                continue
            try:
                target.append(factory(spec, catalog.base_dir))
            except SourceError as exc:
                built.errors.append((f"{role}:{spec.kind}", str(exc)))
    return built


def known_kinds() -> dict[str, list[str]]:
    return {
        "logs": sorted(LOG_KINDS),
        "code": sorted(CODE_KINDS),
        "deploys": sorted(DEPLOY_KINDS),
        "metrics": sorted(METRIC_KINDS),
        "runbooks": sorted(RUNBOOK_KINDS),
    }
