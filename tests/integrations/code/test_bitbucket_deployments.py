"""The `bitbucket_deployments` kind through httpx against the loopback Bitbucket stand-in: the deploys contract, states, pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from standin_bitbucket import BitbucketStandin

from contracts import Broken, DeployRecord, DeploySourceContract, MakeDeploySource, Options
from integrations.code import bitbucket as bitbucket_kind
from integrations.code.bitbucket import BitbucketDeployOptions
from integrations.code.bitbucket_client import BitbucketDeploySource
from tests.integrations.code.test_bitbucket import broken, options_of, standins
from tests.integrations.code.test_github import T0

__all__ = ["standins"]


class TestBitbucketDeploysContract(DeploySourceContract):
    kind = bitbucket_kind.DEPLOYS_KIND

    @pytest.fixture
    def make_source(self, standins: Callable[..., BitbucketStandin]) -> MakeDeploySource:
        def make(records: Sequence[DeployRecord]) -> Options:
            server = standins()
            for record in records:
                # Each service deploys to its own environment, named after the production one.
                server.add_deployment(record.version, at=record.at, environment=f"Production/{record.service}", actor=record.actor)
            return options_of(server)

        return make

    @pytest.fixture(params=["wrong token", "missing repository", "unreachable host"])
    def broken_source(
        self, request: pytest.FixtureRequest, standins: Callable[..., BitbucketStandin], monkeypatch: pytest.MonkeyPatch
    ) -> Broken:
        return broken(request, standins, monkeypatch)


def source_of(server: BitbucketStandin, **extra: object) -> BitbucketDeploySource:
    return BitbucketDeploySource(BitbucketDeployOptions.model_validate(options_of(server, **extra)))


def test_failed_running_and_other_environments_deployments_are_not_deploys(standins: Callable[..., BitbucketStandin]) -> None:
    server = standins()
    at = T0 - timedelta(minutes=30)
    server.add_deployment("v1", at=at, status="FAILED")
    server.add_deployment("v2", at=at, status="IN_PROGRESS")
    server.add_deployment("v3", at=at + timedelta(minutes=4), actor="Bo")
    server.add_deployment("v4", at=at, environment="Staging")

    deploys = source_of(server).deploys(T0 - timedelta(hours=1), T0)

    assert [(d.version, d.at, d.service, d.actor) for d in deploys] == [
        ("v3", at + timedelta(minutes=4), server.full_name.split("/")[1], "Bo")
    ]


def test_reading_stops_at_the_first_deployment_before_the_window_and_is_cached_briefly(
    standins: Callable[..., BitbucketStandin],
) -> None:
    server = standins()
    for i in range(250):
        server.add_deployment(f"v1.{i}", at=T0 - timedelta(minutes=250 - i), actor="Bo")
    window = (T0 - timedelta(minutes=120), T0)

    deploys = source_of(server).deploys(*window)

    assert [d.version for d in deploys] == [f"v1.{i}" for i in range(130, 250)]
    # Two pages of deployments reach past the window's start; the third is never asked for.
    assert server.api_calls("/deployments") == 2
    before = len(server.requests)
    assert source_of(server).deploys(*window) == deploys
    assert len(server.requests) == before
