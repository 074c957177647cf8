"""The `github` kinds through PyGithub against the loopback GitHub stand-in: the role contracts, limits, errors, caching, links."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standin_github import GitHubStandin, SilentHost, closed_port

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
)
from integrations.code import github as github_kind
from integrations.code.github import GitHubCodeOptions, GitHubDeployOptions
from integrations.code.github_client import GitHubChangeSource
from integrations.code.github_deploys_client import GitHubDeploySource
from integrations.errors import SourceError

TOKEN_ENV = "IR_TEST_GITHUB_TOKEN"
TOKEN = "ghp-standin-token"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def git(repo: Path, *args: str, when: datetime | None = None) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="Ana",
        GIT_AUTHOR_EMAIL="ana@example.com",
        GIT_COMMITTER_NAME="Ana",
        GIT_COMMITTER_EMAIL="ana@example.com",
    )
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


def repository(path: Path, records: Sequence[CommitRecord]) -> Path:
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for record in records:
        for name, text in record.files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_text(text)
        git(path, "add", "-A")
        git(path, "commit", "-qm", record.title, when=record.at)
    return path


def unique_name() -> str:
    # A repository name of its own per stand-in: the source cache (the real Redis) is keyed by host and repository.
    return f"acme/shop-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., GitHubStandin]]:
    """Start stand-ins serving repositories (stopped after the test); the token's variable is set."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    started: list[GitHubStandin] = []
    counter = itertools.count()

    def start(records: Sequence[CommitRecord] = (), **kwargs: Any) -> GitHubStandin:
        repo = repository(tmp_path / f"repo-{next(counter)}", records)
        server = GitHubStandin(repo=repo, full_name=kwargs.pop("full_name", unique_name()), token=TOKEN, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def options_of(server: GitHubStandin, **extra: Any) -> Options:
    return {"repository": server.full_name, "base_url": server.url, "token_env": TOKEN_ENV, **extra}


def broken(request: pytest.FixtureRequest, standins: Callable[..., GitHubStandin], monkeypatch: pytest.MonkeyPatch) -> Broken:
    prefix = f"/{SECRET_DIR}/api/v3"
    if request.param == "unreachable host":
        url = f"http://127.0.0.1:{closed_port()}{prefix}"
        return Broken({"repository": "acme/shop", "base_url": url, "token_env": TOKEN_ENV, "deadline_s": 5}, target=url)
    server = standins(COMMIT_RECORDS[:1], prefix=prefix)
    if request.param == "wrong token":
        monkeypatch.setenv("IR_TEST_GITHUB_WRONG", "ghp-wrong")
        return Broken(options_of(server, token_env="IR_TEST_GITHUB_WRONG"), target=server.url)
    return Broken(options_of(server, repository="acme/no-such-repo"), target=server.url)


class TestGitHubCodeContract(ChangeSourceContract):
    kind = github_kind.KIND

    @pytest.fixture
    def make_source(self, standins: Callable[..., GitHubStandin]) -> MakeChangeSource:
        return lambda records: options_of(standins(records))

    @pytest.fixture(params=["wrong token", "missing repository", "unreachable host"])
    def broken_source(
        self, request: pytest.FixtureRequest, standins: Callable[..., GitHubStandin], monkeypatch: pytest.MonkeyPatch
    ) -> Broken:
        return broken(request, standins, monkeypatch)

    @pytest.fixture
    def slow_source(self, tmp_path: Path) -> Iterator[Slow]:
        host = SilentHost()
        url = host.url + "/api/v3"
        source = build(self.kind, {"repository": "acme/shop", "base_url": url, "deadline_s": 1, "timeout_s": 1}, tmp_path)
        yield Slow(source, 1.0, target=url)
        host.close()


# --- what the contract does not cover ---------------------------------------------------------------


def code_source(server: GitHubStandin, **extra: Any) -> GitHubChangeSource:
    return GitHubChangeSource(GitHubCodeOptions.model_validate(options_of(server, **extra)))


def many(count: int) -> list[CommitRecord]:
    return [CommitRecord(T0 - timedelta(minutes=count - i), f"Change {i}", {f"app/m{i % 7}.py": f"value = {i}\n"}) for i in range(count)]


def test_pages_are_followed_through_link_headers_and_files_fetched_in_parallel_once(standins: Callable[..., GitHubStandin]) -> None:
    server = standins(many(130))
    source = code_source(server)

    commits = source.commits(T0 - timedelta(hours=3), T0)

    assert len(commits) == 130 and all(c.files for c in commits)
    listing = [r for r in server.requests if r.endswith("/commits") or "/commits?" in r]
    assert len(listing) == 2 and "page=2" in listing[1]
    # Pull requests only for the newest 30 (max_pull_requests): they link a suspect, they never rank one.
    assert server.api_calls("/pulls") == 30
    assert source.api_calls == len(server.requests) == 2 + 130 + 30

    # Commits are immutable by sha: a second source (a Re-run) fetches only the list again.
    before = len(server.requests)
    again = code_source(server).commits(T0 - timedelta(hours=3), T0)
    assert [c.files for c in again] == [c.files for c in commits]
    assert len(server.requests) - before == 2


def test_the_window_is_sent_in_utc_whatever_the_callers_offset(standins: Callable[..., GitHubStandin]) -> None:
    server = standins(many(3))
    offset = timezone_plus_5()

    commits = code_source(server).commits((T0 - timedelta(minutes=2)).astimezone(offset), T0.astimezone(offset))

    assert [c.title for c in commits] == ["Change 2", "Change 1"]
    listing = next(r for r in server.requests if "/commits?" in r)
    assert "since=2026-03-10T11%3A58%3A00Z" in listing and "until=2026-03-10T12%3A00%3A00Z" in listing


def timezone_plus_5() -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=5))


def test_files_are_fetched_for_the_newest_commits_up_to_the_cap_and_the_rest_is_reported(standins: Callable[..., GitHubStandin]) -> None:
    server = standins(many(10))
    source = code_source(server, max_commits_with_files=4, max_pull_requests=0)

    commits = source.commits(T0 - timedelta(hours=3), T0)

    assert [bool(c.files) for c in commits] == [True] * 4 + [False] * 6
    assert server.api_calls("/commits/") == 4
    assert any("6 older commits" in p for p in source.problems)


def test_the_call_budget_bounds_an_investigation(standins: Callable[..., GitHubStandin]) -> None:
    server = standins(many(20))
    source = code_source(server, max_api_calls=5, max_pull_requests=0)

    commits = source.commits(T0 - timedelta(hours=3), T0)

    assert len(commits) == 20 and sum(1 for c in commits if c.files) == 4
    assert len(server.requests) == 5
    assert any("budget of 5 API calls" in p for p in source.problems)


def test_a_rate_limit_that_resets_within_the_deadline_is_waited_out(standins: Callable[..., GitHubStandin]) -> None:
    server = standins(many(2))
    server.rate_limit(1, reset_in_s=1)
    began = time.monotonic()

    commits = code_source(server, max_pull_requests=0).commits(T0 - timedelta(hours=3), T0)

    assert len(commits) == 2 and time.monotonic() - began >= 0.9


def test_a_429_with_retry_after_is_waited_out(standins: Callable[..., GitHubStandin]) -> None:
    server = standins(many(2))
    server.rate_limit(1, reset_in_s=1, status=429, retry_after=True)

    assert len(code_source(server, max_pull_requests=0).commits(T0 - timedelta(hours=3), T0)) == 2


def test_a_rate_limit_past_the_deadline_is_a_clear_source_error_at_once(standins: Callable[..., GitHubStandin]) -> None:
    server = standins(many(2))
    server.rate_limit(1, reset_in_s=3600)
    began = time.monotonic()

    with pytest.raises(SourceError, match=r"rate-limiting .* until \d\d:\d\d:\d\d UTC, past the source deadline of 5s"):
        code_source(server, deadline_s=5).commits(T0 - timedelta(hours=3), T0)
    assert time.monotonic() - began < 2


def test_errors_name_the_host_and_never_the_token(standins: Callable[..., GitHubStandin], monkeypatch: pytest.MonkeyPatch) -> None:
    server = standins(many(1))
    monkeypatch.setenv("IR_TEST_GITHUB_WRONG", "ghp-wrong-secret-value")
    with pytest.raises(SourceError) as raised:
        code_source(server, token_env="IR_TEST_GITHUB_WRONG").commits(T0 - timedelta(hours=3), T0)
    assert "refused the token in IR_TEST_GITHUB_WRONG (401)" in str(raised.value)
    assert "ghp-wrong-secret-value" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__

    with pytest.raises(SourceError, match=r"repository acme/gone not found at .* \(404\)"):
        code_source(server, repository="acme/gone").commits(T0 - timedelta(hours=3), T0)

    monkeypatch.delenv("IR_TEST_GITHUB_UNSET", raising=False)
    with pytest.raises(SourceError, match="IR_TEST_GITHUB_UNSET is not set"):
        code_source(server, token_env="IR_TEST_GITHUB_UNSET")


def test_the_merged_pull_request_links_the_commit(standins: Callable[..., GitHubStandin]) -> None:
    server = standins(many(2))
    newest = git(server.repo, "rev-parse", "HEAD")
    server.add_pull(newest, 42, "Raise the limit", labels=["ops"])
    source = code_source(server)

    commits = source.commits(T0 - timedelta(hours=3), T0)
    pull = source.pull_request(newest)

    assert commits[0].url == f"{server.root}/{server.full_name}/commit/{newest}"
    assert (commits[0].pr_url, commits[0].pr_title) == (f"{server.root}/{server.full_name}/pull/42", "Raise the limit")
    assert commits[1].pr_url is None
    assert pull is not None and pull.labels == ["ops"] and pull.author == "ana"


def test_a_pull_request_named_in_the_message_links_without_a_call(standins: Callable[..., GitHubStandin]) -> None:
    server = standins([CommitRecord(T0 - timedelta(minutes=5), "Raise the limit (#77)", {"app/limits.py": "LIMIT = 5\n"})])

    [commit] = code_source(server, max_pull_requests=0).commits(T0 - timedelta(hours=1), T0)

    assert (commit.pr_url, commit.pr_title) == (f"{server.root}/{server.full_name}/pull/77", "Raise the limit (#77)")
    assert server.api_calls("/pulls") == 0


def test_a_renamed_file_keeps_its_old_path_in_files_and_diff(standins: Callable[..., GitHubStandin], tmp_path: Path) -> None:
    server = standins([CommitRecord(T0 - timedelta(hours=2), "Add", {"app/pricing.py": "def price():\n    return 1\n"})])
    git(server.repo, "mv", "app/pricing.py", "app/prices.py")
    git(server.repo, "commit", "-qm", "Rename", when=T0 - timedelta(hours=1))

    [rename, _] = code_source(server).commits(T0 - timedelta(hours=3), T0)

    assert [(f.old_path, f.path) for f in rename.files] == [("app/pricing.py", "app/prices.py")]
    assert "rename from app/pricing.py" in code_source(server).diff(rename.sha)


def test_option_names_are_checked() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        GitHubCodeOptions.model_validate({"repository": "acme/shop", "token": "ghp-inline"})
    with pytest.raises(ValueError, match="pattern"):
        GitHubCodeOptions.model_validate({"repository": "shop"})


# --- end to end: a public bundle's history served by the stand-in ranks like the local clone ------------------

BUNDLES = sorted(
    p for p in (Path(__file__).resolve().parents[4] / "shared" / "scenarios" / "public").glob("pub-0*") if (p / "repo.fi").exists()
)
# The other hosts' bundle tests check their transport on two histories of different shapes (IR_ALL_BUNDLES=1: all).
HOSTED_BUNDLES = (
    BUNDLES
    if os.environ.get("IR_ALL_BUNDLES")
    else [b for b in BUNDLES if b.name in ("pub-02-notifications-worker", "pub-05-inventory-svc")]
)


@pytest.mark.skipif(not BUNDLES, reason="public scenario bundles are not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_bundle_served_by_github_gives_the_same_suspects_as_local_git(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from agents.evidence.engine import build_evidence
    from agents.evidence.model import EvidenceInputs
    from core.alert import alert_from_payload
    from integrations.code.deploys_file import DeploysFile
    from integrations.code.git import GitChangeSource, import_fast_export
    from integrations.registry import ServiceSources
    from integrations.roles import CODE, LOGS

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    repo = import_fast_export(bundle / "repo.fi", tmp_path)
    alert = alert_from_payload(json.loads((bundle / "alert.json").read_text()))
    start, end = alert.created_at - timedelta(hours=6), alert.created_at + timedelta(minutes=15)
    branch = git(repo, "symbolic-ref", "--short", "HEAD")
    server = GitHubStandin(repo=repo, full_name=unique_name(), token=TOKEN, default_branch=branch).start()
    try:
        recorded = json.loads((bundle / "deploys.json").read_text()) if (bundle / "deploys.json").exists() else []
        for item in recorded:
            at = datetime.fromisoformat(item["at"].replace("Z", "+00:00"))
            server.add_deployment(item["version"], at=at, creator=item.get("actor", ""), payload={"service": item.get("service", "")})
        hosted = GitHubChangeSource(GitHubCodeOptions.model_validate(options_of(server)))
        hosted_deploys = GitHubDeploySource(GitHubDeployOptions.model_validate(options_of(server)))
        local = GitChangeSource(repo)
        # A bundle without a deploy record reads as an empty one from either side.
        local_deploys = DeploysFile(bundle / "deploys.json") if recorded else hosted_deploys

        def suspects(code: Any, deploys: Any) -> list[tuple[str, float, str]]:
            inputs = EvidenceInputs(
                alert=alert,
                service=alert.service,
                window_start=start,
                window_end=end,
                sources=ServiceSources.holding({LOGS: [_folder(bundle / "logs")], CODE: [code]}),
                gathered={"code": code.commits(start, end), "deploys": deploys.deploys(start, end), "metrics": [], "runbooks": []},
            )
            return [(s.sha, s.score, s.reason) for s in build_evidence(inputs).suspects]

        expected = suspects(local, local_deploys)
        got = suspects(hosted, hosted_deploys)
        listed = [(c.sha, c.files, c.is_merge) for c in hosted.commits(start, end)]
    finally:
        server.stop()
    # Some bundles are not code incidents: then both rank nothing.
    assert got == expected
    assert listed == [(c.sha, c.files, c.is_merge) for c in local.commits(start, end)]
    print(f"{bundle.name}: {len(expected)} suspects, {len(listed)} commits, {hosted.api_calls} API calls")
    assert hosted.problems == []


def _folder(folder: Path) -> Any:
    from integrations.logs.parsing import parse_stream

    class Folder:
        name = "files"

        def events(self, start: datetime, end: datetime) -> Iterator[Any]:
            for path in sorted(folder.iterdir()):
                with path.open(encoding="utf-8", errors="replace") as fh:
                    for event in parse_stream(fh, path.name):
                        if event.ts is None or start <= event.ts <= end:
                            yield event

    return Folder()
