"""Each evidence role bound to its Protocol and to what an investigation gathers from it up front.

The names and their order come from `core.roles`; this table adds what only the
integrations know. Logs are not gathered up front: the evidence engine streams them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from core import roles as names
from core.roles import RoleInfo
from integrations.code.base import ChangeSource, Commit, Deploy, DeploySource
from integrations.infra.base import InfraFact, InfraSource
from integrations.logs.base import LogEvent, LogSource
from integrations.metrics.base import MetricSource, Series
from integrations.notify.base import Notifier
from integrations.runbooks.base import Runbook, RunbookSource

SourceT = TypeVar("SourceT")
ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class Role(Generic[SourceT, ItemT]):
    """A role: its name, the Protocol its sources implement, and how to read one source's items for a window."""

    info: RoleInfo
    # The Protocol class itself; `type[SourceT]` would reject it, Protocols being abstract.
    protocol: type[Any]
    gather: Callable[[SourceT, datetime, datetime], list[ItemT]] | None

    @property
    def name(self) -> str:
        return self.info.name


def _commits(source: ChangeSource, start: datetime, end: datetime) -> list[Commit]:
    return source.commits(start, end)


def _deploys(source: DeploySource, start: datetime, end: datetime) -> list[Deploy]:
    return source.deploys(start, end)


def _series(source: MetricSource, start: datetime, end: datetime) -> list[Series]:
    return source.series(start, end)


def _facts(source: InfraSource, start: datetime, end: datetime) -> list[InfraFact]:
    return source.facts(start, end)


def _runbooks(source: RunbookSource, _start: datetime, _end: datetime) -> list[Runbook]:
    return source.runbooks()


LOGS: Final[Role[LogSource, LogEvent]] = Role(names.LOGS, LogSource, None)
CODE: Final[Role[ChangeSource, Commit]] = Role(names.CODE, ChangeSource, _commits)
DEPLOYS: Final[Role[DeploySource, Deploy]] = Role(names.DEPLOYS, DeploySource, _deploys)
METRICS: Final[Role[MetricSource, Series]] = Role(names.METRICS, MetricSource, _series)
RUNBOOKS: Final[Role[RunbookSource, Runbook]] = Role(names.RUNBOOKS, RunbookSource, _runbooks)

INFRA: Final[Role[InfraSource, InfraFact]] = Role(names.INFRA, InfraSource, _facts)

NOTIFY: Final[Role[Notifier, None]] = Role(names.NOTIFY, Notifier, None)

ROLES: Final[tuple[Role[Any, Any], ...]] = (LOGS, CODE, DEPLOYS, METRICS, RUNBOOKS, INFRA, NOTIFY)
BY_NAME: Final[dict[str, Role[Any, Any]]] = {role.name: role for role in ROLES}
if tuple(BY_NAME) != names.ROLE_NAMES:  # pragma: no cover - a programming error, caught by any test run
    raise RuntimeError("integrations.roles must bind every role of core.roles, in its order")
