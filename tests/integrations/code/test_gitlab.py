"""The `gitlab` kinds through python-gitlab against the loopback GitLab stand-in: both role contracts, pages, limits, errors, links."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standin_github import SilentHost, closed_port
from standin_gitlab import GitLabStandin

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
from integrations.code import gitlab as gitlab_kind
from integrations.code.gitlab import GitLabCodeOptions, GitLabDeployOptions
from integrations.code.gitlab_client import GitLabChangeSource, GitLabDeploySource
from integrations.errors import SourceError
from integrations.health import check_service
from tests.integrations.code.test_github import HOSTED_BUNDLES as BUNDLES
from tests.integrations.code.test_github import T0, git, many, repository
from tests.integrations.code.test_github import _folder as log_folder

TOKEN_ENV = "IR_TEST_GITLAB_TOKEN"
TOKEN = "glpat-standin-token"
WINDOW = (T0 - timedelta(hours=6), T0)


def unique_path() -> str:
    # A project of its own per stand-in: the source cache (the real Redis) is keyed by host and project.
    return f"acme/platform/shop-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., GitLabStandin]]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    started: list[GitLabStandin] = []
    counter = itertools.count()

    def start(records: Sequence[CommitRecord] = (), **kwargs: Any) -> GitLabStandin:
        repo = repository(tmp_path / f"repo-{next(counter)}", records)
        server = GitLabStandin(repo=repo, path=kwargs.pop("path", unique_path()), token=TOKEN, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def options_of(server: GitLabStandin, **extra: Any) -> Options:
    return {"project": server.path, "base_url": server.url, "token_env": TOKEN_ENV, **extra}


def broken(request: pytest.FixtureRequest, standins: Callable[..., GitLabStandin], monkeypatch: pytest.MonkeyPatch) -> Broken:
    prefix = f"/{SECRET_DIR}"
    if request.param == "unreachable host":
        url = f"http://127.0.0.1:{closed_port()}{prefix}"
        return Broken({"project": "acme/shop", "base_url": url, "token_env": TOKEN_ENV, "deadline_s": 5}, target=url)
    server = standins(COMMIT_RECORDS[:1], prefix=prefix)
    if request.param == "wrong token":
        monkeypatch.setenv("IR_TEST_GITLAB_WRONG", "glpat-wrong")
        return Broken(options_of(server, token_env="IR_TEST_GITLAB_WRONG"), target=server.url)
    return Broken(options_of(server, project="acme/no-such-project"), target=server.url)


class TestGitLabCodeContract(ChangeSourceContract):
    kind = gitlab_kind.KIND

    @pytest.fixture
    def make_source(self, standins: Callable[..., GitLabStandin]) -> MakeChangeSource:
        return lambda records: options_of(standins(records))

    @pytest.fixture(params=["wrong token", "missing project", "unreachable host"])
    def broken_source(
        self, request: pytest.FixtureRequest, standins: Callable[..., GitLabStandin], monkeypatch: pytest.MonkeyPatch
    ) -> Broken:
        return broken(request, standins, monkeypatch)

    @pytest.fixture
    def slow_source(self, tmp_path: Path) -> Iterator[Slow]:
        host = SilentHost()
        source = build(self.kind, {"project": "acme/shop", "base_url": host.url, "deadline_s": 1, "timeout_s": 1}, tmp_path)
        yield Slow(source, 1.0, target=host.url)
        host.close()


# --- what the contracts do not cover ---------------------------------------------------------------


def code_source(server: GitLabStandin, **extra: Any) -> GitLabChangeSource:
    return GitLabChangeSource(GitLabCodeOptions.model_validate(options_of(server, **extra)))


def listing(server: GitLabStandin) -> list[str]:
    return [r for r in server.requests if r.split("?")[0].endswith("/repository/commits")]


def test_every_page_is_read_and_files_are_fetched_once_then_served_from_the_cache(standins: Callable[..., GitLabStandin]) -> None:
    server = standins(many(230))
    source = code_source(server, max_pull_requests=0, max_commits_with_files=300)

    commits = source.commits(*WINDOW)

    assert len(commits) == 230 and all(c.files for c in commits)
    pages = listing(server)
    assert len(pages) == 3 and "page=2" in pages[1] and "page=3" in pages[2]
    assert server.api_calls("/diff") == 230
    assert source.api_calls == len(server.requests) == 3 + 230

    # Commits are immutable by sha: a second source (a Re-run) lists the window again and fetches no diff.
    before = len(server.requests)
    again = code_source(server, max_pull_requests=0, max_commits_with_files=300).commits(*WINDOW)
    assert [c.files for c in again] == [c.files for c in commits]
    assert len(server.requests) - before == 3


def test_a_commits_diff_over_several_pages_is_read_whole(standins: Callable[..., GitLabStandin]) -> None:
    files = {f"app/module_{i}.py": f"value = {i}\n" for i in range(250)}
    server = standins([CommitRecord(T0 - timedelta(minutes=5), "Touch everything", files)])

    [commit] = code_source(server, max_pull_requests=0).commits(*WINDOW)

    assert sorted(f.path for f in commit.files) == sorted(files)
    assert server.api_calls("/diff") == 3


def test_the_window_is_sent_in_utc(standins: Callable[..., GitLabStandin]) -> None:
    from datetime import timezone

    server = standins(many(3))
    plus_5 = timezone(timedelta(hours=5))

    commits = code_source(server).commits((T0 - timedelta(minutes=2)).astimezone(plus_5), T0.astimezone(plus_5))

    assert [c.title for c in commits] == ["Change 2", "Change 1"]
    assert "since=2026-03-10T11%3A58%3A00Z&until=2026-03-10T12%3A00%3A00Z" in listing(server)[0]


def test_a_429_is_waited_out_for_its_retry_after_and_the_read_succeeds(standins: Callable[..., GitLabStandin]) -> None:
    server = standins(many(2))
    server.rate_limit(1, retry_after_s=1)
    began = time.monotonic()

    commits = code_source(server, max_pull_requests=0).commits(*WINDOW)

    assert len(commits) == 2 and all(c.files for c in commits)
    assert time.monotonic() - began >= 0.9
    assert len(listing(server)) == 2


def test_a_429_past_the_deadline_is_a_clear_source_error_at_once(standins: Callable[..., GitLabStandin]) -> None:
    server = standins(many(2))
    server.rate_limit(1, retry_after_s=3600)
    began = time.monotonic()

    with pytest.raises(SourceError, match=r"rate-limiting .* \(429\) until \d\d:\d\d:\d\d UTC, past the source deadline of 5s"):
        code_source(server, deadline_s=5).commits(*WINDOW)
    assert time.monotonic() - began < 2


def test_a_passing_503_is_asked_again_and_a_lasting_one_is_a_clear_source_error(standins: Callable[..., GitLabStandin]) -> None:
    server = standins(many(2))
    server.fail(2, status=503)

    assert len(code_source(server, max_pull_requests=0).commits(*WINDOW)) == 2

    server.fail(3, status=503)
    with pytest.raises(SourceError, match=rf"GitLab at {server.url} answered 503 to listing commits"):
        code_source(server, max_pull_requests=0).commits(*WINDOW)


def test_the_call_budget_bounds_an_investigation(standins: Callable[..., GitLabStandin]) -> None:
    server = standins(many(20))
    source = code_source(server, max_api_calls=5, max_pull_requests=0)

    commits = source.commits(*WINDOW)

    assert len(commits) == 20 and sum(1 for c in commits if c.files) == 4
    assert len(server.requests) == 5
    assert any("budget of 5 API calls" in p for p in source.problems)


def test_a_wrong_token_and_a_missing_project_are_clear_and_never_show_the_token(
    standins: Callable[..., GitLabStandin], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = standins(many(1))
    monkeypatch.setenv("IR_TEST_GITLAB_WRONG", "glpat-wrong-secret-value")

    with pytest.raises(SourceError) as raised:
        code_source(server, token_env="IR_TEST_GITLAB_WRONG").commits(*WINDOW)
    assert f"GitLab at {server.url} refused the token in IR_TEST_GITLAB_WRONG (401)" in str(raised.value)
    assert "glpat-wrong-secret-value" not in str(raised.value)
    assert raised.value.__suppress_context__

    with pytest.raises(SourceError, match=rf"project acme/gone not found at GitLab at {server.url} \(404\)"):
        code_source(server, project="acme/gone").commits(*WINDOW)
    with pytest.raises(SourceError, match="branch no-such-branch not found"):
        code_source(server, branch="no-such-branch").commits(*WINDOW)


def test_a_wrong_token_is_a_degraded_check_naming_the_host(
    standins: Callable[..., GitLabStandin], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = standins(many(1))
    monkeypatch.setenv("IR_TEST_GITLAB_WRONG", "glpat-wrong")

    [result] = check_service(catalog_of(gitlab_kind.KIND, options_of(server, token_env="IR_TEST_GITLAB_WRONG"), tmp_path), "svc")

    assert not result.ok and "(401)" in result.detail and server.url in result.detail


def test_a_numeric_project_id_reads_the_same_project(standins: Callable[..., GitLabStandin]) -> None:
    server = standins(many(2))

    commits = code_source(server, project=str(server.project_id)).commits(*WINDOW)

    assert [c.title for c in commits] == ["Change 1", "Change 0"]


def test_every_commit_links_to_the_host_and_to_its_merge_request(standins: Callable[..., GitLabStandin]) -> None:
    server = standins(many(3))
    newest = git(server.repo, "rev-parse", "HEAD")
    server.add_merge_request(newest, 17, "Raise the limit", labels=["ops"])
    source = code_source(server, max_pull_requests=1)

    commits = source.commits(*WINDOW)

    assert commits[0].url == f"{server.web}/-/commit/{newest}"
    assert (commits[0].pr_url, commits[0].pr_title) == (f"{server.web}/-/merge_requests/17", "Raise the limit")
    assert commits[1].pr_url is None and commits[1].url == f"{server.web}/-/commit/{commits[1].sha}"
    assert server.api_calls("/merge_requests") == 1
    pull = source.pull_request(newest)
    assert pull is not None and pull.labels == ["ops"] and pull.author == "ana"


def test_a_merge_request_named_in_the_message_links_without_a_call(standins: Callable[..., GitLabStandin]) -> None:
    server = standins(many(1))
    git(server.repo, "commit", "--allow-empty", "-qm", f"Cap retries\n\nSee merge request {server.path}!23", when=T0 - timedelta(minutes=1))

    commit = code_source(server, max_pull_requests=0).commits(*WINDOW)[0]

    assert (commit.pr_url, commit.pr_title) == (f"{server.url}/{server.path}/-/merge_requests/23", "Cap retries")
    assert server.api_calls("/merge_requests") == 0


def test_a_renamed_file_keeps_its_old_path_in_files_and_diff(standins: Callable[..., GitLabStandin]) -> None:
    server = standins([CommitRecord(T0 - timedelta(hours=2), "Add", {"app/pricing.py": "def price():\n    return 1\n"})])
    git(server.repo, "mv", "app/pricing.py", "app/prices.py")
    git(server.repo, "commit", "-qm", "Rename", when=T0 - timedelta(hours=1))

    [rename, _] = code_source(server).commits(*WINDOW)

    assert [(f.old_path, f.path) for f in rename.files] == [("app/pricing.py", "app/prices.py")]
    assert "rename from app/pricing.py" in code_source(server).diff(rename.sha)


def test_added_and_deleted_lines_are_counted_from_the_diff(standins: Callable[..., GitLabStandin]) -> None:
    server = standins([CommitRecord(T0 - timedelta(hours=2), "Add", {"app/pricing.py": "a = 1\nb = 2\n"})])
    (server.repo / "app/pricing.py").write_text("a = 1\nb = 3\nc = 4\n")
    git(server.repo, "commit", "-qam", "Edit", when=T0 - timedelta(hours=1))

    [edit, add] = code_source(server).commits(*WINDOW)

    assert [(f.additions, f.deletions) for f in edit.files] == [(2, 1)]
    assert [(f.additions, f.deletions) for f in add.files] == [(2, 0)]


def test_option_names_are_checked() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        GitLabCodeOptions.model_validate({"project": "acme/shop", "token": "glpat-inline"})
    with pytest.raises(ValueError, match="pattern"):
        GitLabCodeOptions.model_validate({"project": "shop"})


# --- end to end: a public bundle's history served by the stand-in ranks like the local clone ------------------


@pytest.mark.skipif(not BUNDLES, reason="public scenario bundles are not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_bundle_served_by_gitlab_gives_the_same_suspects_as_local_git(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    def serve(repo: Path, branch: str, recorded: list[dict[str, Any]]) -> tuple[GitLabStandin, Any, Any]:
        server = GitLabStandin(repo=repo, path=unique_path(), token=TOKEN, default_branch=branch).start()
        for item in recorded:
            at = datetime.fromisoformat(item["at"].replace("Z", "+00:00"))
            environment = f"production/{item['service']}" if item.get("service") else "production"
            server.add_deployment(item["version"], at=at, user=item.get("actor", ""), environment=environment)
        return server, code_source(server), GitLabDeploySource(GitLabDeployOptions.model_validate(options_of(server)))

    ranks_like_local_git(bundle, tmp_path, serve)


def ranks_like_local_git(
    bundle: Path, tmp_path: Path, serve: Callable[[Path, str, list[dict[str, Any]]], tuple[Any, Any, Any]], *, counts_lines: bool = True
) -> None:
    """The bundle's history served by a host stand-in (`serve` starts it and builds the hosted sources) ranks like the clone.

    `counts_lines` False: the host lists changed paths without line counts (Azure DevOps), so only the paths compare.
    """
    from agents.evidence.engine import build_evidence
    from agents.evidence.model import EvidenceInputs
    from core.alert import alert_from_payload
    from integrations.code.deploys_file import DeploysFile
    from integrations.code.git import GitChangeSource, import_fast_export
    from integrations.registry import ServiceSources
    from integrations.roles import CODE, LOGS

    repo = import_fast_export(bundle / "repo.fi", tmp_path)
    alert = alert_from_payload(json.loads((bundle / "alert.json").read_text()))
    start, end = alert.created_at - timedelta(hours=6), alert.created_at + timedelta(minutes=15)
    recorded = json.loads((bundle / "deploys.json").read_text()) if (bundle / "deploys.json").exists() else []
    server, hosted, hosted_deploys = serve(repo, git(repo, "symbolic-ref", "--short", "HEAD"), recorded)
    try:
        local = GitChangeSource(repo)
        # A bundle without a deploy record reads as an empty one from either side.
        local_deploys = DeploysFile(bundle / "deploys.json") if recorded else hosted_deploys

        def suspects(code: Any, deploys: Any) -> list[tuple[str, float, str]]:
            inputs = EvidenceInputs(
                alert=alert,
                service=alert.service,
                window_start=start,
                window_end=end,
                sources=ServiceSources.holding({LOGS: [log_folder(bundle / "logs")], CODE: [code]}),
                gathered={"code": code.commits(start, end), "deploys": deploys.deploys(start, end), "metrics": [], "runbooks": []},
            )
            evidence = build_evidence(inputs)
            # What the host cost is in the evidence: calls of this read and those before it.
            assert evidence.stats.get("code_api_calls", 0.0) == float(getattr(code, "api_calls", 0))
            return [(s.sha, s.score, s.reason) for s in evidence.suspects]

        expected = suspects(local, local_deploys)
        got = suspects(hosted, hosted_deploys)
        listed = [(c.sha, c.files, c.is_merge) for c in hosted.commits(start, end)]
    finally:
        server.stop()
    assert got == expected
    if counts_lines:
        assert listed == [(c.sha, c.files, c.is_merge) for c in local.commits(start, end)]
    else:
        paths = [(sha, [(f.path, f.old_path) for f in files], merge) for sha, files, merge in listed]
        assert paths == [(c.sha, [(f.path, f.old_path) for f in c.files], c.is_merge) for c in local.commits(start, end)]
    assert hosted.problems == []
