"""Git, deploy, metric and runbook sources on real files and a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.catalog import load_catalog
from integrations.code.deploys_file import DeploysFile
from integrations.code.git import GitChangeSource
from integrations.errors import SourceError
from integrations.metrics.csv_file import MetricsCsv
from integrations.registry import build_sources
from integrations.runbooks.folder import RunbookFolder

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


def test_a_folder_that_is_not_a_repository_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a git repository"):
        GitChangeSource(tmp_path)
    with pytest.raises(SourceError, match="does not exist"):
        GitChangeSource(tmp_path / "missing")


def test_deploys_file_filters_to_the_window(tmp_path: Path) -> None:
    path = tmp_path / "deploys.json"
    path.write_text(
        json.dumps(
            [
                {"at": "2026-03-10T11:00:00Z", "service": "checkout", "version": "v1.1.0", "actor": "argocd"},
                {"at": "2026-03-01T11:00:00Z", "service": "checkout", "version": "v1.0.0"},
                {"service": "broken"},
            ]
        )
    )
    deploys = DeploysFile(path).deploys(T0 - timedelta(hours=6), T0)
    assert [(d.service, d.version, d.actor) for d in deploys] == [("checkout", "v1.1.0", "argocd")]


def test_deploys_file_that_is_not_json_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "deploys.json"
    path.write_text("{nope")
    with pytest.raises(SourceError, match="not JSON"):
        DeploysFile(path).deploys(T0, T0)


def test_metrics_csv_groups_series_by_metric_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "timestamp,metric,labels,value\n"
        "2026-03-10T11:00:00Z,http_5xx_ratio,service=checkout,0.01\n"
        "2026-03-10T11:01:00Z,http_5xx_ratio,service=checkout,0.2\n"
        "2026-03-10T11:00:00Z,cpu,pod=a;container=app,0.5\n"
        "garbage,row\n"
    )
    series = {s.key: s for s in MetricsCsv(path).series(T0 - timedelta(hours=2), T0)}
    assert set(series) == {'http_5xx_ratio{service="checkout"}', 'cpu{container="app",pod="a"}'}
    assert [v for _, v in series['http_5xx_ratio{service="checkout"}'].points] == [0.01, 0.2]


def test_runbook_titles_come_from_the_first_heading(tmp_path: Path) -> None:
    (tmp_path / "rollback.md").write_text("intro\n# Roll back a deploy\nsteps")
    (tmp_path / "no-heading.md").write_text("just text")
    books = RunbookFolder(tmp_path).runbooks()
    assert sorted(b.title for b in books) == ["Roll back a deploy", "no heading"]


def test_registry_turns_unknown_kinds_and_bad_paths_into_errors_not_exceptions(tmp_path: Path) -> None:
    catalog_path = tmp_path / "services.yaml"
    catalog_path.write_text(
        "services:\n  checkout:\n"
        "    code:\n      - {kind: git, path: nowhere}\n"
        "    metrics:\n      - {kind: graphite, url: x}\n"
        "    runbooks:\n      - {kind: runbooks_dir, path: .}\n"
    )
    catalog = load_catalog(catalog_path)
    built = build_sources(catalog, catalog.services["checkout"])
    assert len(built.runbooks) == 1
    reasons = dict(built.errors)
    assert "does not exist" in reasons["code:git"]
    assert "unknown metrics source kind 'graphite'" in reasons["metrics:graphite"]


def test_catalog_may_point_git_at_a_fast_export_stream(repo: Path, tmp_path: Path, app_env: dict[str, str]) -> None:
    stream = tmp_path / "repo.fi"
    stream.write_bytes(subprocess.run(["git", "-C", str(repo), "fast-export", "--all"], capture_output=True, check=True).stdout)
    catalog_path = tmp_path / "services.yaml"
    catalog_path.write_text("services:\n  checkout:\n    code:\n      - {kind: git, path: repo.fi}\n")
    catalog = load_catalog(catalog_path)
    first = build_sources(catalog, catalog.services["checkout"])
    again = build_sources(catalog, catalog.services["checkout"])
    assert not first.errors
    commits = first.code[0].commits(T0 - timedelta(hours=3), T0)
    assert [c.title for c in commits] == ["Rename pricing", "Change the price"]
    assert first.code[0].path == again.code[0].path  # type: ignore[attr-defined]
