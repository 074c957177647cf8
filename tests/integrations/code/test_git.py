"""The `git` code kind: the change contract, then `GitChangeSource` on a real repository (stats, renames, fast-export streams)."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import COMMIT_RECORDS, SECRET_DIR, Broken, ChangeSourceContract, CommitRecord, MakeChangeSource, Options, Slow, build
from core.catalog import load_catalog
from integrations import roles
from integrations.code import git as git_kind
from integrations.code.base import Commit
from integrations.code.git import GitChangeSource
from integrations.errors import SourceError
from integrations.registry import build_sources

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SLOW_DEADLINE_S = 0.5


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
    """A repository on `main` with one commit per record, in order, dated as the record says."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    for record in records:
        for name, text in record.files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_text(text)
        git(path, "add", "-A")
        git(path, "commit", "-qm", record.title, when=record.at)
    return path


class TestGitContract(ChangeSourceContract):
    kind = git_kind.KIND

    @pytest.fixture
    def make_source(self, tmp_path: Path) -> MakeChangeSource:
        counter = itertools.count()

        def make(records: Sequence[CommitRecord]) -> Options:
            path = repository(tmp_path / f"repo-{next(counter)}", records)
            return {"path": path.name, "branch": "main"}

        return make

    @pytest.fixture(params=["missing folder", "not a repository", "empty repository"])
    def broken_source(self, request: pytest.FixtureRequest, tmp_path: Path) -> Broken:
        folder = tmp_path / SECRET_DIR / "repo"
        if request.param == "not a repository":
            folder.mkdir(parents=True)
        elif request.param == "empty repository":
            subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
        return Broken({"path": f"{SECRET_DIR}/repo"}, target=str(folder))

    @pytest.fixture
    def slow_source(self, make_source: MakeChangeSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Slow:
        """A repository whose `git` never answers: built with the real git, then read with one that sleeps."""
        options = {**make_source(COMMIT_RECORDS[:2]), "timeout_s": SLOW_DEADLINE_S}
        source: GitChangeSource = build(self.kind, options, tmp_path)
        stalled = tmp_path / "stalled-bin"
        stalled.mkdir()
        # `exec`: the process git's timeout kills is the sleep itself, so nothing keeps its pipes open.
        (stalled / "git").write_text("#!/bin/sh\nexec sleep 60\n")
        (stalled / "git").chmod(0o755)
        monkeypatch.setenv("PATH", f"{stalled}{os.pathsep}{os.environ['PATH']}")
        return Slow(source, SLOW_DEADLINE_S, target=str(source.path))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "app").mkdir()
    (path / "app" / "pricing.py").write_text("def price():\n    return 1\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "Initial", when=T0 - timedelta(days=3))
    git(path, "tag", "v1.0.0")
    (path / "app" / "pricing.py").write_text("def price():\n    return 2\n")
    git(path, "commit", "-qam", "Change the price\n\nLonger body.", when=T0 - timedelta(hours=2))
    git(path, "mv", "app/pricing.py", "app/prices.py")
    git(path, "commit", "-qm", "Rename pricing", when=T0 - timedelta(hours=1))
    return path


def test_git_lists_commits_in_the_window_with_files_and_stats(repo: Path) -> None:
    source = GitChangeSource(repo, url_template="https://git.example/c/{sha}")
    commits = source.commits(T0 - timedelta(hours=3), T0)
    assert [c.title for c in commits] == ["Rename pricing", "Change the price"]
    change = commits[1]
    assert change.files[0].path == "app/pricing.py" and (change.files[0].additions, change.files[0].deletions) == (1, 1)
    assert change.url == f"https://git.example/c/{change.sha}"
    rename = commits[0].files[0]
    assert (rename.old_path, rename.path) == ("app/pricing.py", "app/prices.py")


def test_git_diff_resolve_and_commits_between(repo: Path) -> None:
    source = GitChangeSource(repo)
    head = source.resolve("main")
    tag = source.resolve("v1.0.0")
    assert head and tag and head != tag
    assert source.resolve(head[:8]) == head
    assert source.resolve("no-such-ref") is None
    shipped = source.commits_between(tag, head)
    assert len(shipped) == 2 and shipped[0] == head
    change_sha = shipped[1]
    assert "+    return 2" in source.diff(change_sha)
    assert source.diff(change_sha, paths=["other.py"]) == ""


def test_a_missing_branch_reads_head_instead(repo: Path) -> None:
    source = GitChangeSource(repo, branch="release")

    assert [c.title for c in source.commits(T0 - timedelta(hours=3), T0)] == ["Rename pricing", "Change the price"]


def test_a_merge_commit_is_marked_as_one(repo: Path) -> None:
    git(repo, "checkout", "-qb", "feature")
    (repo / "app" / "cart.py").write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Add the cart", when=T0 - timedelta(minutes=50))
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge the cart", "feature", when=T0 - timedelta(minutes=40))

    commits = {c.title: c for c in GitChangeSource(repo).commits(T0 - timedelta(hours=3), T0)}

    assert commits["Merge the cart"].is_merge
    assert not commits["Add the cart"].is_merge


def test_a_folder_that_is_not_a_repository_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a git repository"):
        GitChangeSource(tmp_path)
    with pytest.raises(SourceError, match="does not exist"):
        GitChangeSource(tmp_path / "missing")


def test_sources_check_names_the_branch_and_its_head(repo: Path) -> None:
    source = GitChangeSource(repo)
    head = source.resolve("main")

    assert git_kind.KIND.check is not None and head is not None
    assert git_kind.KIND.check(source) == f"main at {head[:12]}"


def test_the_timeout_option_must_be_positive() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        git_kind.GitOptions.model_validate({"path": "repo", "timeout_s": 0})


def test_catalog_may_point_git_at_a_fast_export_stream(repo: Path, tmp_path: Path, app_env: dict[str, str]) -> None:
    stream = tmp_path / "repo.fi"
    stream.write_bytes(subprocess.run(["git", "-C", str(repo), "fast-export", "--all"], capture_output=True, check=True).stdout)
    catalog_path = tmp_path / "services.yaml"
    catalog_path.write_text("services:\n  checkout:\n    code:\n      - {kind: git, path: repo.fi}\n")
    catalog = load_catalog(catalog_path)
    first = build_sources(catalog, catalog.services["checkout"])
    again = build_sources(catalog, catalog.services["checkout"])
    assert not first.errors
    commits = first.of(roles.CODE)[0].commits(T0 - timedelta(hours=3), T0)
    assert [c.title for c in commits] == ["Rename pricing", "Change the price"]
    assert first.of(roles.CODE)[0].path == again.of(roles.CODE)[0].path  # type: ignore[attr-defined]


def test_a_fast_export_stream_that_is_not_one_is_a_source_error(tmp_path: Path, app_env: dict[str, str]) -> None:
    stream = tmp_path / "repo.fi"
    stream.write_text("this is not a fast-import stream\n")

    with pytest.raises(SourceError, match="cannot import git history from"):
        build(git_kind.KIND, {"path": "repo.fi"}, tmp_path)


def test_a_window_read_again_for_the_same_head_comes_from_the_cache_and_a_new_commit_is_seen(repo: Path) -> None:
    class Counting(GitChangeSource):
        logs = 0

        def _log(self, start: datetime, end: datetime, limit: int) -> list[Commit]:
            Counting.logs += 1
            return super()._log(start, end, limit)

    window = (T0 - timedelta(hours=3), T0)
    first = Counting(repo).commits(*window)

    assert Counting(repo).commits(*window) == first
    assert Counting.logs == 1

    (repo / "app" / "prices.py").write_text("def price():\n    return 3\n")
    git(repo, "commit", "-qam", "Change the price again", when=T0 - timedelta(minutes=5))
    assert [c.title for c in Counting(repo).commits(*window)] == ["Change the price again", *(c.title for c in first)]
    assert Counting.logs == 2
