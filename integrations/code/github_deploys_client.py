"""The `github_deployments` kind through PyGithub: deployments of one environment, each at its first successful status.

Every request passes the gate of `github_api`; statuses are cached briefly (they move).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from itertools import islice
from typing import Final

from github.Deployment import Deployment as GhDeployment
from pydantic import TypeAdapter

from integrations.cache import cached
from integrations.code.base import Deploy
from integrations.code.github import GitHubDeployOptions
from integrations.code.github_api import GitHubApi
from integrations.code.host_common import (
    MOVING_TTL_S,
    Deadline,
    in_parallel,
    utc,
)
from integrations.errors import SourceError

# Statuses that put a deployment in production (inactive: it was, until a newer one replaced it), and those that failed it.
_STATUS_NAMES: Final = {"success", "inactive"}
_FAILED: Final = {"failure", "error"}
# A deployment may succeed a while after it was created: look that far before the window for ones that landed in it.
DEPLOY_LAG: Final = timedelta(hours=6)


class GitHubDeploySource:
    """Deployments of one environment of a GitHub repository, each at the time its first successful status says."""

    def __init__(self, options: GitHubDeployOptions, *, name: str = "github_deployments") -> None:
        self.options = options
        self.name = name
        self.gh = GitHubApi(options)
        self.problems: list[str] = []

    @property
    def api_calls(self) -> int:
        return self.gh.api_calls

    def deploys(self, start: datetime, end: datetime) -> list[Deploy]:
        deadline = Deadline(self.options.deadline_s)
        start, end = utc(start), utc(end)
        listed = self.gh.within(deadline, lambda: self._deployments(start - DEPLOY_LAG, end), "listing deployments")
        landed, problems = in_parallel(
            listed, partial(self._landed_within, deadline), workers=self.options.parallel, deadline=deadline, what="deployments"
        )
        if problems:
            # A deploy whose status is unknown could be the culprit's: say so rather than answer without it.
            raise SourceError(f"GitHub deployments of {self.options.repository}: {problems[0]}")
        found = [deploy for deploy in (landed[i] for i in sorted(landed)) if deploy is not None and start <= deploy.at <= end]
        return sorted(found, key=lambda d: d.at)

    def _deployments(self, floor: datetime, end: datetime) -> list[_Deployment]:
        found: list[_Deployment] = []
        for item in islice(self.gh.repo.get_deployments(environment=self.options.environment), self.options.max_deployments):
            created = utc(item.created_at)
            # Listed newest first: once one was created before the floor, every later one was too.
            if created < floor:
                break
            if created > end:
                continue
            payload = item.payload if isinstance(item.payload, dict) else {}
            service = str(payload.get("service") or self.options.service or self.options.repository.split("/", 1)[1])
            actor = item.creator.login if item.creator else ""
            found.append(_Deployment(item, item.id, created, service, item.ref or item.sha, item.sha, actor))
        return found

    def _landed_within(self, deadline: Deadline, deployment: _Deployment) -> Deploy | None:
        return self.gh.within(deadline, lambda: self._landed(deployment), f"deployment {deployment.id}")

    def _landed(self, deployment: _Deployment) -> Deploy | None:
        statuses = cached(self.gh.key("statuses", deployment.id), MOVING_TTL_S, _STATUSES, lambda: _statuses(deployment.item))
        if statuses and statuses[0][0] in _FAILED:
            return None
        succeeded = [at for state, at in statuses if state in _STATUS_NAMES]
        if statuses and not succeeded:
            # Queued or in progress: not in production yet.
            return None
        at = min(succeeded) if succeeded else deployment.created
        return Deploy(at=at, service=deployment.service, version=deployment.ref, actor=deployment.actor, sha=deployment.sha)

    def describe(self) -> str:
        deadline = Deadline(self.options.deadline_s)

        def first() -> str:
            latest = next(iter(self.gh.repo.get_deployments(environment=self.options.environment)), None)
            if latest is None:
                return f"{self.options.repository}: no deployments to {self.options.environment} yet"
            when = f"{utc(latest.created_at):%Y-%m-%d %H:%M} UTC"
            return f"{self.options.repository}: latest deployment to {self.options.environment} {latest.ref} at {when}"

        return self.gh.within(deadline, first, "listing deployments")


class _Deployment:
    __slots__ = ("actor", "created", "id", "item", "ref", "service", "sha")

    def __init__(self, item: GhDeployment, id: int, created: datetime, service: str, ref: str, sha: str, actor: str) -> None:
        self.item = item
        self.id = id
        self.created = created
        self.service = service
        self.ref = ref
        self.sha = sha
        self.actor = actor


_STATUSES: Final = TypeAdapter(list[tuple[str, datetime]])


def _statuses(item: GhDeployment) -> list[tuple[str, datetime]]:
    # Newest first, as GitHub lists them; a handful is all a deployment ever has.
    return [(s.state, utc(s.created_at)) for s in islice(item.get_statuses(), 50)]
