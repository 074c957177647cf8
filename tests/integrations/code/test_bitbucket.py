"""The `bitbucket` code kind through httpx against the loopback Bitbucket Cloud stand-in: the contract, pages, limits, errors, links."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from standin_bitbucket import BitbucketStandin
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
from integrations.code import bitbucket as bitbucket_kind
from integrations.code.bitbucket import BitbucketCodeOptions
from integrations.code.bitbucket_client import BitbucketChangeSource
from integrations.errors import SourceError
from integrations.health import check_service
from tests.integrations.code.test_github import T0, git, many, repository

TOKEN_ENV = "IR_TEST_BITBUCKET_TOKEN"
TOKEN = "bb-standin-token"
WINDOW = (T0 - timedelta(hours=6), T0)


def unique_name() -> str:
    # A repository of its own per stand-in: the source cache (the real Redis) is keyed by host and repository.
    return f"acme/shop-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., BitbucketStandin]]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    started: list[BitbucketStandin] = []
    counter = itertools.count()

    def start(records: Sequence[CommitRecord] = (), **kwargs: Any) -> BitbucketStandin:
        repo = repository(tmp_path / f"repo-{next(counter)}", records)
        server = BitbucketStandin(repo=repo, full_name=kwargs.pop("full_name", unique_name()), token=TOKEN, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def options_of(server: BitbucketStandin, **extra: Any) -> Options:
    return {"repository": server.full_name, "base_url": server.url, "token_env": TOKEN_ENV, **extra}


def broken(request: pytest.FixtureRequest, standins: Callable[..., BitbucketStandin], monkeypatch: pytest.MonkeyPatch) -> Broken:
    prefix = f"/{SECRET_DIR}"
    if request.param == "unreachable host":
        url = f"http://127.0.0.1:{closed_port()}{prefix}/2.0"
        return Broken({"repository": "acme/shop", "base_url": url, "token_env": TOKEN_ENV, "deadline_s": 5}, target=url)
    server = standins(COMMIT_RECORDS[:1], prefix=prefix)
    if request.param == "wrong token":
        monkeypatch.setenv("IR_TEST_BITBUCKET_WRONG", "bb-wrong")
        return Broken(options_of(server, token_env="IR_TEST_BITBUCKET_WRONG"), target=server.url)
    return Broken(options_of(server, repository="acme/no-such-repo"), target=server.url)


class TestBitbucketCodeContract(ChangeSourceContract):
    kind = bitbucket_kind.KIND

    @pytest.fixture
    def make_source(self, standins: Callable[..., BitbucketStandin]) -> MakeChangeSource:
        return lambda records: options_of(standins(records))

    @pytest.fixture(params=["wrong token", "missing repository", "unreachable host"])
    def broken_source(
        self, request: pytest.FixtureRequest, standins: Callable[..., BitbucketStandin], monkeypatch: pytest.MonkeyPatch
    ) -> Broken:
        return broken(request, standins, monkeypatch)

    @pytest.fixture
    def slow_source(self, tmp_path: Path) -> Iterator[Slow]:
        host = SilentHost()
        url = host.url + "/2.0"
        source = build(self.kind, {"repository": "acme/shop", "base_url": url, "deadline_s": 1, "timeout_s": 1}, tmp_path)
        yield Slow(source, 1.0, target=url)
        host.close()


# --- what the contract does not cover ---------------------------------------------------------------


def code_source(server: BitbucketStandin, **extra: Any) -> BitbucketChangeSource:
    return BitbucketChangeSource(BitbucketCodeOptions.model_validate(options_of(server, **extra)))


def listing(server: BitbucketStandin) -> list[str]:
    return [r for r in server.requests if r.split("?")[0].endswith("/commits")]


def test_opaque_next_links_are_followed_and_each_commit_costs_one_diff_then_nothing(standins: Callable[..., BitbucketStandin]) -> None:
    server = standins(many(250))
    source = code_source(server, max_pull_requests=0, max_commits_with_files=300)

    commits = source.commits(*WINDOW)

    assert len(commits) == 250 and all(c.files for c in commits)
    assert [c.committed_at for c in commits] == sorted((c.committed_at for c in commits), reverse=True)
    pages = listing(server)
    assert len(pages) == 3 and all("page=" in p for p in pages[1:])
    assert server.api_calls("/diff/") == 250
    # One more: the repository's main branch, the branch read when none is configured (cached briefly).
    assert source.api_calls == len(server.requests) == 1 + 3 + 250

    # Commits are immutable by sha: a second source (a Re-run) lists the window again and fetches no diff.
    before = len(server.requests)
    again = code_source(server, max_pull_requests=0, max_commits_with_files=300).commits(*WINDOW)
    assert [c.files for c in again] == [c.files for c in commits]
    assert len(server.requests) - before == 3


def test_listing_stops_after_the_page_that_reaches_past_the_window(standins: Callable[..., BitbucketStandin]) -> None:
    server = standins(many(350))

    commits = code_source(server, max_pull_requests=0).commits(T0 - timedelta(minutes=30), T0)

    assert len(commits) == 30
    assert len(listing(server)) == 1


def test_a_429_is_waited_out_and_the_read_succeeds(standins: Callable[..., BitbucketStandin]) -> None:
    server = standins(many(2))
    server.rate_limit(1, retry_after_s=1)
    began = time.monotonic()

    commits = code_source(server, max_pull_requests=0).commits(*WINDOW)

    assert len(commits) == 2 and all(c.files for c in commits)
    assert time.monotonic() - began >= 0.9


def test_a_429_past_the_deadline_is_a_clear_source_error_at_once(standins: Callable[..., BitbucketStandin]) -> None:
    server = standins(many(2))
    server.rate_limit(1, retry_after_s=3600)
    began = time.monotonic()

    with pytest.raises(SourceError, match=r"rate-limiting .* \(429\) until \d\d:\d\d:\d\d UTC, past the source deadline of 5s"):
        code_source(server, deadline_s=5).commits(*WINDOW)
    assert time.monotonic() - began < 2


def test_a_passing_502_is_asked_again_and_a_lasting_one_is_a_clear_source_error(standins: Callable[..., BitbucketStandin]) -> None:
    server = standins(many(2))
    server.fail(2, status=502)

    assert len(code_source(server, max_pull_requests=0).commits(*WINDOW)) == 2

    server.fail(3, status=502)
    with pytest.raises(SourceError, match=rf"Bitbucket at {server.url} answered 502"):
        code_source(server, max_pull_requests=0, branch="main").commits(*WINDOW)


def test_a_wrong_credential_and_a_missing_repository_are_clear_and_never_show_the_credential(
    standins: Callable[..., BitbucketStandin], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = standins(many(1))
    monkeypatch.setenv("IR_TEST_BITBUCKET_WRONG", "bb-wrong-secret-value")

    with pytest.raises(SourceError) as raised:
        code_source(server, token_env="IR_TEST_BITBUCKET_WRONG").commits(*WINDOW)
    assert f"Bitbucket at {server.url} refused the credential in IR_TEST_BITBUCKET_WRONG (401)" in str(raised.value)
    assert "bb-wrong-secret-value" not in str(raised.value)

    with pytest.raises(SourceError, match=rf"repository acme/gone not found at Bitbucket at {server.url} \(404\)"):
        code_source(server, repository="acme/gone").commits(*WINDOW)
    with pytest.raises(SourceError, match="branch no-such-branch not found"):
        code_source(server, branch="no-such-branch").commits(*WINDOW)

    [result] = check_service(catalog_of(bitbucket_kind.KIND, options_of(server, token_env="IR_TEST_BITBUCKET_WRONG"), tmp_path), "svc")
    assert not result.ok and "(401)" in result.detail


def test_basic_auth_with_a_username_and_an_api_token(standins: Callable[..., BitbucketStandin]) -> None:
    server = standins(many(2))

    assert len(code_source(server, username=server.username, max_pull_requests=0).commits(*WINDOW)) == 2


def test_every_commit_links_to_the_host_and_to_its_pull_request(standins: Callable[..., BitbucketStandin]) -> None:
    server = standins(many(3))
    newest = git(server.repo, "rev-parse", "HEAD")
    server.add_pull(newest, 31, "Raise the limit")
    source = code_source(server, max_pull_requests=1)

    commits = source.commits(*WINDOW)

    assert commits[0].url == f"{server.web}/commits/{newest}"
    assert (commits[0].pr_url, commits[0].pr_title) == (f"{server.web}/pull-requests/31", "Raise the limit")
    assert commits[1].pr_url is None and commits[1].url == f"{server.web}/commits/{commits[1].sha}"
    assert server.api_calls("/pullrequests") == 1


def test_a_pull_request_named_in_a_merge_message_links_without_a_call(standins: Callable[..., BitbucketStandin]) -> None:
    server = standins(many(1))
    message = "Merged in feature/retries (pull request #23)\n\nCap retries\n\nApproved-by: Bo"
    git(server.repo, "commit", "--allow-empty", "-qm", message, when=T0 - timedelta(minutes=1))

    commit = code_source(server, max_pull_requests=0).commits(*WINDOW)[0]

    assert (commit.pr_url, commit.pr_title) == (f"{server.web}/pull-requests/23", "Cap retries")
    assert server.api_calls("/pullrequests") == 0


def test_files_renames_and_line_counts_come_from_the_one_diff(standins: Callable[..., BitbucketStandin]) -> None:
    before = "".join(f"line_{i} = {i}\n" for i in range(10))
    server = standins([CommitRecord(T0 - timedelta(hours=2), "Add", {"app/pricing.py": before, "old.txt": "x\n"})])
    git(server.repo, "mv", "app/pricing.py", "app/prices.py")
    git(server.repo, "rm", "-q", "old.txt")
    (server.repo / "app/prices.py").write_text(before.replace("line_9 = 9", "line_9 = 10"))
    git(server.repo, "add", "-A")
    git(server.repo, "commit", "-qm", "Rename and edit", when=T0 - timedelta(hours=1))

    [change, add] = code_source(server).commits(*WINDOW)

    assert sorted(((f.path, f.old_path, f.additions, f.deletions) for f in change.files), key=str) == [
        ("app/prices.py", "app/pricing.py", 1, 1),
        ("old.txt", None, 0, 1),
    ]
    assert sorted((f.path, f.additions) for f in add.files) == [("app/pricing.py", 10), ("old.txt", 1)]
    assert "rename from app/pricing.py" in code_source(server).diff(change.sha)


def test_a_next_link_to_another_host_is_not_followed(standins: Callable[..., BitbucketStandin], monkeypatch: pytest.MonkeyPatch) -> None:
    server = standins(many(150))
    original = server._page

    def elsewhere(items: list[Any], path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        body = original(items, path, query)
        if "next" in body:
            body["next"] = "http://attacker.invalid/2.0/next"
        return body

    monkeypatch.setattr(server, "_page", elsewhere)

    with pytest.raises(SourceError, match=r"pointed its next page at another host \(attacker.invalid\)"):
        code_source(server).commits(*WINDOW)


def test_option_names_are_checked() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        BitbucketCodeOptions.model_validate({"repository": "acme/shop", "password": "inline"})
    with pytest.raises(ValueError, match="pattern"):
        BitbucketCodeOptions.model_validate({"repository": "shop"})


def test_commits_are_dated_by_their_author_date_the_only_date_bitbucket_gives(standins: Callable[..., BitbucketStandin]) -> None:
    # A commit authored long before it landed (a rebase) is dated when it was written: a window on the landing time misses it.
    server = standins(many(1))
    git(server.repo, "commit", "--allow-empty", "-qm", "Rebased", f"--date={(T0 - timedelta(days=3)).isoformat()}", when=T0)
    git(server.repo, "commit", "--amend", "--allow-empty", "-qm", "Rebased", f"--date={(T0 - timedelta(days=3)).isoformat()}", when=T0)
    source = code_source(server, max_pull_requests=0)

    assert [c.title for c in source.commits(T0 - timedelta(hours=1), T0)] == ["Change 0"]
    assert {c.title: c.committed_at for c in source.commits(T0 - timedelta(days=5), T0)}["Rebased"] == T0 - timedelta(days=3)
