"""The `azure_devops` kind through the azure-devops client against the loopback Azure DevOps stand-in: contract, pages, limits, links."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from standin_azure_devops import AzureDevOpsStandin
from standin_github import SilentHost, closed_port

from contracts import (
    COMMIT_RECORDS,
    SECRET_DIR,
    Broken,
    ChangeSourceContract,
    CommitRecord,
    MakeChangeSource,
    Options,
    Slow,
    build,
    catalog_of,
)
from integrations.code import azure_devops as azure_kind
from integrations.code.azure_devops import AzureDevOpsOptions
from integrations.code.azure_devops_client import AzureDevOpsChangeSource
from integrations.errors import SourceError
from integrations.health import check_service
from tests.integrations.code.test_github import HOSTED_BUNDLES as BUNDLES
from tests.integrations.code.test_github import T0, git, many, repository
from tests.integrations.code.test_gitlab import ranks_like_local_git

TOKEN_ENV = "IR_TEST_AZURE_DEVOPS_PAT"
TOKEN = "azdo-standin-pat"
WINDOW = (T0 - timedelta(hours=6), T0)


@pytest.fixture
def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AzureDevOpsStandin]]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    started: list[AzureDevOpsStandin] = []
    counter = itertools.count()

    def start(records: Sequence[CommitRecord] = (), **kwargs: Any) -> AzureDevOpsStandin:
        repo = repository(tmp_path / f"repo-{next(counter)}", records)
        # A repository of its own per stand-in: the source cache (the real Redis) is keyed by host and repository.
        name = kwargs.pop("repository", f"shop-{uuid.uuid4().hex[:10]}")
        server = AzureDevOpsStandin(repo=repo, repository=name, token=TOKEN, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def options_of(server: AzureDevOpsStandin, **extra: Any) -> Options:
    return {"base_url": server.url, "project": server.project, "repository": server.repository, "token_env": TOKEN_ENV, **extra}


class TestAzureDevOpsCodeContract(ChangeSourceContract):
    kind = azure_kind.KIND

    @pytest.fixture
    def make_source(self, standins: Callable[..., AzureDevOpsStandin]) -> MakeChangeSource:
        return lambda records: options_of(standins(records))

    @pytest.fixture(params=["wrong token", "missing repository", "missing project", "unreachable host"])
    def broken_source(
        self, request: pytest.FixtureRequest, standins: Callable[..., AzureDevOpsStandin], monkeypatch: pytest.MonkeyPatch
    ) -> Broken:
        prefix = f"/{SECRET_DIR}"
        if request.param == "unreachable host":
            url = f"http://127.0.0.1:{closed_port()}{prefix}"
            return Broken({"base_url": url, "project": "Shop", "repository": "shop", "token_env": TOKEN_ENV, "deadline_s": 5}, target=url)
        server = standins(COMMIT_RECORDS[:1], prefix=prefix)
        if request.param == "wrong token":
            monkeypatch.setenv("IR_TEST_AZURE_DEVOPS_WRONG", "azdo-wrong")
            return Broken(options_of(server, token_env="IR_TEST_AZURE_DEVOPS_WRONG"), target=server.url)
        if request.param == "missing project":
            return Broken(options_of(server, project="Gone"), target=server.url)
        return Broken(options_of(server, repository="no-such-repo"), target=server.url)

    @pytest.fixture
    def slow_source(self, tmp_path: Path) -> Iterator[Slow]:
        host = SilentHost()
        options = {"base_url": host.url + "/acme", "project": "Shop", "repository": "shop", "deadline_s": 1, "timeout_s": 1}
        yield Slow(build(self.kind, options, tmp_path), 1.0, target=host.url + "/acme")
        host.close()


# --- what the contract does not cover ---------------------------------------------------------------


def code_source(server: AzureDevOpsStandin, **extra: Any) -> AzureDevOpsChangeSource:
    return AzureDevOpsChangeSource(AzureDevOpsOptions.model_validate(options_of(server, **extra)))


def listing(server: AzureDevOpsStandin) -> list[str]:
    return [r for r in server.requests if r.startswith("GET ") and r.split("?")[0].endswith("/commits")]


def test_pages_are_read_with_top_and_skip_and_changes_fetched_once(standins: Callable[..., AzureDevOpsStandin]) -> None:
    server = standins(many(250))
    source = code_source(server, max_pull_requests=0, max_commits_with_files=300)

    commits = source.commits(*WINDOW)

    assert len(commits) == 250 and all(c.files for c in commits)
    pages = listing(server)
    assert len(pages) == 3 and "%24skip=100" in pages[1] and "%24skip=200" in pages[2]
    assert "searchCriteria.fromDate=2026-03-10T06%3A00%3A00Z" in pages[0]
    assert server.api_calls("/changes") == 250
    # The route discovery (OPTIONS _apis) happens once per organization URL in a process.
    assert source.api_calls == sum(1 for r in server.requests if not r.startswith("OPTIONS")) + server.api_calls("OPTIONS")

    before = len(server.requests)
    again = code_source(server, max_pull_requests=0, max_commits_with_files=300).commits(*WINDOW)
    assert [c.files for c in again] == [c.files for c in commits]
    assert len(server.requests) - before == 3


def test_a_diff_is_built_from_the_blobs_only_when_read(standins: Callable[..., AzureDevOpsStandin]) -> None:
    server = standins([CommitRecord(T0 - timedelta(hours=2), "Add", {"app/pricing.py": "a = 1\nb = 2\n"})])
    (server.repo / "app/pricing.py").write_text("a = 1\nb = 3\nc = 4\n")
    git(server.repo, "commit", "-qam", "Edit", when=T0 - timedelta(hours=1))
    source = code_source(server)

    [edit, _] = source.commits(*WINDOW)
    assert server.api_calls("/blobs/") == 0

    diff = source.diff(edit.sha)

    assert "-b = 2\n+b = 3\n+c = 4" in diff and "diff --git a/app/pricing.py b/app/pricing.py" in diff
    assert server.api_calls("/blobs/") == 2
    assert code_source(server).diff(edit.sha) == diff
    assert server.api_calls("/blobs/") == 2


def test_a_429_is_waited_out_and_the_read_succeeds(standins: Callable[..., AzureDevOpsStandin]) -> None:
    server = standins(many(2))
    code_source(server).resolve("main")
    server.rate_limit(1, retry_after_s=1)
    began = time.monotonic()

    commits = code_source(server, max_pull_requests=0).commits(*WINDOW)

    assert len(commits) == 2 and all(c.files for c in commits)
    assert time.monotonic() - began >= 0.9


def test_a_429_past_the_deadline_is_a_clear_source_error_at_once(standins: Callable[..., AzureDevOpsStandin]) -> None:
    server = standins(many(2))
    server.rate_limit(1, retry_after_s=3600)
    began = time.monotonic()

    with pytest.raises(SourceError, match=r"rate-limiting .* \(429\) until \d\d:\d\d:\d\d UTC, past the source deadline of 5s"):
        code_source(server, deadline_s=5).commits(*WINDOW)
    assert time.monotonic() - began < 2


def test_a_wrong_token_and_a_missing_repository_are_clear(
    standins: Callable[..., AzureDevOpsStandin], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = standins(many(1))
    monkeypatch.setenv("IR_TEST_AZURE_DEVOPS_WRONG", "azdo-wrong-secret-value")

    with pytest.raises(SourceError) as raised:
        code_source(server, token_env="IR_TEST_AZURE_DEVOPS_WRONG").commits(*WINDOW)
    assert f"Azure DevOps at {server.url} refused the token in IR_TEST_AZURE_DEVOPS_WRONG (401)" in str(raised.value)
    assert "azdo-wrong-secret-value" not in str(raised.value)

    with pytest.raises(SourceError, match=r"Shop/gone not found at Azure DevOps at .*: TF401019"):
        code_source(server, repository="gone").commits(*WINDOW)

    [result] = check_service(catalog_of(azure_kind.KIND, options_of(server, token_env="IR_TEST_AZURE_DEVOPS_WRONG"), tmp_path), "svc")
    assert not result.ok and "(401)" in result.detail


def test_every_commit_links_to_the_host_and_to_its_pull_request(standins: Callable[..., AzureDevOpsStandin]) -> None:
    server = standins(many(3))
    newest = git(server.repo, "rev-parse", "HEAD")
    server.add_pull(newest, 41, "Raise the limit")
    source = code_source(server, max_pull_requests=1)

    commits = source.commits(*WINDOW)

    assert commits[0].url == f"{server.web}/commit/{newest}"
    assert (commits[0].pr_url, commits[0].pr_title) == (f"{server.web}/pullrequest/41", "Raise the limit")
    assert commits[1].pr_url is None and commits[1].url == f"{server.web}/commit/{commits[1].sha}"
    assert server.api_calls("/pullRequestQuery") == 1


def test_a_pull_request_named_in_a_merge_message_links_without_a_call(standins: Callable[..., AzureDevOpsStandin]) -> None:
    server = standins(many(1))
    git(server.repo, "commit", "--allow-empty", "-qm", "Merged PR 23: Cap retries", when=T0 - timedelta(minutes=1))

    commit = code_source(server, max_pull_requests=0).commits(*WINDOW)[0]

    assert (commit.pr_url, commit.pr_title) == (f"{server.web}/pullrequest/23", "Cap retries")
    assert server.api_calls("/pullRequestQuery") == 0


def test_a_renamed_file_keeps_its_old_path(standins: Callable[..., AzureDevOpsStandin]) -> None:
    server = standins([CommitRecord(T0 - timedelta(hours=2), "Add", {"app/pricing.py": "def price():\n    return 1\n"})])
    git(server.repo, "mv", "app/pricing.py", "app/prices.py")
    git(server.repo, "commit", "-qm", "Rename", when=T0 - timedelta(hours=1))

    [rename, _] = code_source(server).commits(*WINDOW)

    assert [(f.old_path, f.path) for f in rename.files] == [("app/pricing.py", "app/prices.py")]
    assert "rename from app/pricing.py" in code_source(server).diff(rename.sha)


def test_option_names_are_checked() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        AzureDevOpsOptions.model_validate({"base_url": "https://dev.azure.com/acme", "project": "Shop", "repository": "shop", "pat": "x"})


# --- end to end: a public bundle's history served by the stand-in ranks like the local clone ------------------


@pytest.mark.skipif(not BUNDLES, reason="public scenario bundles are not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_bundle_served_by_azure_devops_gives_the_same_suspects_as_local_git(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.code.deploys_file import DeploysFile

    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    def serve(repo: Path, branch: str, recorded: list[dict[str, Any]]) -> tuple[AzureDevOpsStandin, Any, Any]:
        # Azure DevOps is a code source only here: deploys come from the bundle's record as they do for the clone.
        name = f"shop-{uuid.uuid4().hex[:10]}"
        server = AzureDevOpsStandin(repo=repo, repository=name, token=TOKEN, default_branch=branch).start()
        deploys = DeploysFile(bundle / "deploys.json") if recorded else NoDeploys()
        return server, code_source(server), deploys

    ranks_like_local_git(bundle, tmp_path, serve, counts_lines=False)


class NoDeploys:
    name = "none"

    def deploys(self, start: Any, end: Any) -> list[Any]:
        return []
