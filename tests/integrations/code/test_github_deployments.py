"""The `github_deployments` kind through PyGithub against the loopback GitHub stand-in: the deploys contract, statuses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from standin_github import GitHubStandin

from contracts import Broken, DeployRecord, DeploySourceContract, MakeDeploySource, Options
from integrations.code import github as github_kind
from integrations.code.github import GitHubDeployOptions
from integrations.code.github_deploys_client import GitHubDeploySource
from tests.integrations.code.test_github import T0, broken, options_of, standins

__all__ = ["standins"]


class TestGitHubDeploysContract(DeploySourceContract):
    kind = github_kind.DEPLOYS_KIND

    @pytest.fixture
    def make_source(self, standins: Callable[..., GitHubStandin]) -> MakeDeploySource:
        def make(records: Sequence[DeployRecord]) -> Options:
            server = standins()
            for record in records:
                server.add_deployment(record.version, at=record.at, creator=record.actor, payload={"service": record.service})
            return options_of(server)

        return make

    @pytest.fixture(params=["wrong token", "missing repository", "unreachable host"])
    def broken_source(
        self, request: pytest.FixtureRequest, standins: Callable[..., GitHubStandin], monkeypatch: pytest.MonkeyPatch
    ) -> Broken:
        return broken(request, standins, monkeypatch)


def test_deployments_that_failed_or_are_still_running_are_not_deploys(standins: Callable[..., GitHubStandin]) -> None:
    server = standins()
    at = T0 - timedelta(minutes=30)
    server.add_deployment("v1", at=at, statuses=[("in_progress", at), ("failure", at + timedelta(minutes=2))])
    server.add_deployment("v2", at=at, statuses=[("queued", at)])
    server.add_deployment("v3", at=at, statuses=[("in_progress", at), ("success", at + timedelta(minutes=4))])
    server.add_deployment("v4", at=at, environment="staging")
    source = GitHubDeploySource(GitHubDeployOptions.model_validate(options_of(server)))

    deploys = source.deploys(T0 - timedelta(hours=1), T0)

    assert [(d.version, d.at, d.service) for d in deploys] == [("v3", at + timedelta(minutes=4), server.full_name.split("/")[1])]
