"""The `gitlab_deployments` kind through python-gitlab against the loopback GitLab stand-in: the deploys contract, filters, pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from standin_gitlab import GitLabStandin

from contracts import Broken, DeployRecord, DeploySourceContract, MakeDeploySource, Options
from integrations.code import gitlab as gitlab_kind
from integrations.code.gitlab import GitLabDeployOptions
from integrations.code.gitlab_client import GitLabDeploySource
from tests.integrations.code.test_github import T0
from tests.integrations.code.test_gitlab import broken, options_of, standins

__all__ = ["standins"]


class TestGitLabDeploysContract(DeploySourceContract):
    kind = gitlab_kind.DEPLOYS_KIND

    @pytest.fixture
    def make_source(self, standins: Callable[..., GitLabStandin]) -> MakeDeploySource:
        def make(records: Sequence[DeployRecord]) -> Options:
            server = standins()
            for record in records:
                # Each service deploys to its own environment in the production folder.
                server.add_deployment(record.version, at=record.at, environment=f"production/{record.service}", user=record.actor)
            return options_of(server)

        return make

    @pytest.fixture(params=["wrong token", "missing project", "unreachable host"])
    def broken_source(
        self, request: pytest.FixtureRequest, standins: Callable[..., GitLabStandin], monkeypatch: pytest.MonkeyPatch
    ) -> Broken:
        return broken(request, standins, monkeypatch)


def test_failed_deployments_and_other_environments_are_not_deploys(standins: Callable[..., GitLabStandin]) -> None:
    server = standins()
    at = T0 - timedelta(minutes=30)
    server.add_deployment("v1", at=at, status="failed")
    server.add_deployment("v2", at=at, status="running")
    server.add_deployment("v3", at=at + timedelta(minutes=4), started=at)
    server.add_deployment("v4", at=at, environment="staging")
    server.add_deployment("v5", at=at, environment="production-eu")
    source = GitLabDeploySource(GitLabDeployOptions.model_validate(options_of(server)))

    deploys = source.deploys(T0 - timedelta(hours=1), T0)

    assert [(d.version, d.at, d.service, d.actor) for d in deploys] == [
        ("v3", at + timedelta(minutes=4), server.path.rsplit("/", 1)[1], "deployer")
    ]


def test_deployments_over_several_pages_are_all_read(standins: Callable[..., GitLabStandin]) -> None:
    server = standins()
    for i in range(250):
        server.add_deployment(f"v1.{i}", at=T0 - timedelta(minutes=250 - i))

    deploys = GitLabDeploySource(GitLabDeployOptions.model_validate(options_of(server, max_deployments=1000))).deploys(
        T0 - timedelta(days=1), T0
    )

    assert [d.version for d in deploys] == [f"v1.{i}" for i in range(250)]
    assert server.api_calls("/deployments") == 3
