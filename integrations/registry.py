"""Every source kind, and the only way to build sources: from catalog entries, checked against each kind's options.

A new source kind is one module with a `KIND` descriptor plus one line in `KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from core.catalog import Catalog, Location, ServiceSpec, SourceSpec, unknown_key
from core.degraded import Degradation
from integrations.code import azure_devops, bitbucket, deploys_file, git, github, gitlab
from integrations.errors import SourceError
from integrations.infra import kubectl_dump, kubernetes
from integrations.logs import (
    azure_monitor,
    cloud_logging,
    cloudwatch,
    elasticsearch,
    files,
    gcs,
    kafka,
    kubectl_logs,
    loki,
    opensearch,
    s3,
    splunk,
)
from integrations.logs import datadog as datadog_logs
from integrations.metrics import csv_file, datadog, grafana, grafana_annotations, newrelic, prometheus
from integrations.notify import email, slack_channel, teams, webhook
from integrations.plugin import SourceKind, SourceOptions
from integrations.roles import BY_NAME, ROLES, Role
from integrations.runbooks import folder

KINDS: tuple[SourceKind[Any, Any], ...] = (
    files.KIND,
    git.KIND,
    deploys_file.KIND,
    github.KIND,
    github.DEPLOYS_KIND,
    gitlab.KIND,
    gitlab.DEPLOYS_KIND,
    bitbucket.KIND,
    bitbucket.DEPLOYS_KIND,
    azure_devops.KIND,
    csv_file.KIND,
    prometheus.KIND,
    grafana.KIND,
    datadog.KIND,
    newrelic.KIND,
    grafana_annotations.KIND,
    folder.KIND,
    slack_channel.KIND,
    webhook.KIND,
    teams.KIND,
    email.KIND,
    kubernetes.KIND,
    kubernetes.LOGS_KIND,
    kubernetes.DEPLOYS_KIND,
    loki.KIND,
    elasticsearch.KIND,
    opensearch.KIND,
    cloudwatch.KIND,
    s3.KIND,
    gcs.KIND,
    datadog_logs.KIND,
    splunk.KIND,
    kafka.KIND,
    cloud_logging.KIND,
    azure_monitor.KIND,
    kubectl_dump.KIND,
    kubectl_logs.KIND,
)

_BY_ROLE: dict[str, dict[str, SourceKind[Any, Any]]] = {role.name: {} for role in ROLES}
for _kind in KINDS:
    _BY_ROLE[_kind.role.name][_kind.name] = _kind

SourceT = TypeVar("SourceT")


@dataclass
class BuiltSource:
    """A source ready to read, with its label (`logs:files`) and the kind it was built by (None: built by hand, in tests)."""

    label: str
    source: Any
    kind: SourceKind[Any, Any] | None = None


@dataclass
class ServiceSources:
    """A service's built sources by role, and a degradation for each that could not be built."""

    built: dict[str, list[BuiltSource]] = field(default_factory=lambda: {role.name: [] for role in ROLES})
    errors: list[Degradation] = field(default_factory=list)

    def of(self, role: Role[SourceT, Any]) -> list[SourceT]:
        """The sources of one role, typed as its Protocol."""
        return [entry.source for entry in self.built[role.name]]

    def entries(self, role: Role[Any, Any]) -> list[BuiltSource]:
        return self.built[role.name]

    def add(self, role: Role[SourceT, Any], source: SourceT, *, label: str | None = None, kind: SourceKind[Any, Any] | None = None) -> None:
        name = getattr(source, "name", type(source).__name__)
        self.built[role.name].append(BuiltSource(label or f"{role.name}:{name}", source, kind))

    @classmethod
    def holding(cls, sources: dict[Role[Any, Any], list[Any]]) -> ServiceSources:
        """Sources built elsewhere (benchmarks, tests, a caller with its own objects), by role."""
        built = cls()
        for role, listed in sources.items():
            for source in listed:
                built.add(role, source)
        return built


def kinds_of(role: str) -> dict[str, SourceKind[Any, Any]]:
    return _BY_ROLE.get(role, {})


def find_kind(role: str, name: str) -> SourceKind[Any, Any] | None:
    return _BY_ROLE.get(role, {}).get(name)


def check_source(role: str, spec: SourceSpec) -> list[tuple[Location, str]]:
    """Every problem with one catalog source: an unknown kind, or options its kind does not accept."""
    kind = find_kind(role, spec.kind)
    if kind is None:
        return [(("kind",), _unknown_kind(role, spec.kind))]
    try:
        kind.options.model_validate(spec.options)
    except ValidationError as exc:
        return [_option_problem(kind, error) for error in exc.errors()]
    return []


def parse_options(spec: SourceSpec, role: str) -> tuple[SourceKind[Any, Any], SourceOptions]:
    """The kind and validated options of a catalog source; SourceError naming every problem otherwise."""
    problems = check_source(role, spec)
    kind = find_kind(role, spec.kind)
    if problems or kind is None:
        raise SourceError("; ".join(f"{'.'.join(map(str, loc))}: {message}" for loc, message in problems))
    return kind, kind.options.model_validate(spec.options)


def build_sources(catalog: Catalog, service: ServiceSpec) -> ServiceSources:
    """Every source the catalog lists for a service; one that cannot be built becomes a degradation, not an exception."""
    specs = dict(service.sources)
    if not specs.get("notify") and catalog.defaults.notify:
        specs["notify"] = catalog.defaults.notify
    return build_specs(specs, catalog.base_dir)


def build_ops_targets(catalog: Catalog) -> ServiceSources:
    """The deployment's ops targets (`defaults.ops_notify`): notify kinds, built as a service's are."""
    return build_specs({"notify": catalog.defaults.ops_notify}, catalog.base_dir)


def build_specs(specs: dict[str, list[SourceSpec]], base_dir: Path) -> ServiceSources:
    built = ServiceSources()
    for role in ROLES:
        for spec in specs.get(role.name, []):
            label = f"{role.name}:{spec.kind}"
            try:
                kind, options = parse_options(spec, role.name)
                label = f"{role.name}:{kind.label(options)}"
                built.add(kind.role, kind.build(options, base_dir), label=label, kind=kind)
            except SourceError as exc:
                built.errors.append(Degradation(label, str(exc)))
    return built


def _unknown_kind(role: str, name: str) -> str:
    elsewhere = [other for other in BY_NAME if other != role and name in _BY_ROLE[other]]
    if elsewhere:
        return f"'{name}' is a {elsewhere[0]} source, not a {role} source"
    return unknown_key(name, _BY_ROLE.get(role, {}), what=f"{role} source kind")


def _option_problem(kind: SourceKind[Any, Any], error: Any) -> tuple[Location, str]:
    loc: Location = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        return loc, unknown_key(str(loc[-1]), [*kind.options.model_fields, "kind"], what="option", where=f" for a '{kind.name}' source")
    if error["type"] == "missing":
        return loc, f"'{loc[-1]}' is required for a '{kind.name}' source"
    return loc, str(error["msg"]).removeprefix("Value error, ")
