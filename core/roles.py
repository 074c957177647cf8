"""The evidence roles, declared once, in the order an investigation gathers and shows them.

The catalog's keys under a service, the registry, the gather loop, the evidence
model and the crew's tools all derive from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class RoleInfo:
    name: str
    summary: str


LOGS: Final = RoleInfo("logs", "where the service's log events are kept (files, log stores)")
CODE: Final = RoleInfo("code", "the code host: commits, their files and diffs")
DEPLOYS: Final = RoleInfo("deploys", "where deploys are recorded (a CD system, a file)")
METRICS: Final = RoleInfo("metrics", "time series around the incident")
RUNBOOKS: Final = RoleInfo("runbooks", "what the team wrote down about handling incidents")
INFRA: Final = RoleInfo("infra", "what the platform says about the service's pods, containers and nodes (Kubernetes)")

# Not evidence: who is told once the report is ready. Declared here so the catalog, the registry and `sources check` know it.
NOTIFY: Final = RoleInfo("notify", "who is told when the report is ready (a Slack or Teams channel, e-mail, a webhook)")

ROLES: Final = (LOGS, CODE, DEPLOYS, METRICS, RUNBOOKS, INFRA, NOTIFY)
ROLE_NAMES: Final = tuple(role.name for role in ROLES)
