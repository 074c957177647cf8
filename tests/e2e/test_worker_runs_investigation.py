"""An investigation enqueued on the real Redis, run by `python app.py worker`, ends `done` in the real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agents.flows import open_investigation, window_for
from core.alert import Alert, alert_from_payload
from core.models import Source, Status
from core.runtime import get_store, reset_runtime
from core.settings import reset_settings
from core.timeparse import parse_iso
from integrations.catalog import get_catalog
from integrations.code.git import import_fast_export

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "checkout-discount-crash"


def build_catalog(tmp_path: Path) -> Path:
    repo = tmp_path / "checkout-repo"
    repo = import_fast_export(EXAMPLE / "repo.fi", repo.parent)
    catalog = tmp_path / "services.yaml"
    catalog.write_text(
        f"""services:
  checkout:
    logs: [{{kind: files, paths: ["{EXAMPLE}/logs/*.log"]}}]
    code: [{{kind: git, path: {repo}}}]
    deploys: [{{kind: deploys_file, path: {EXAMPLE}/deploys.json}}]
    metrics: [{{kind: metrics_csv, path: {EXAMPLE}/metrics.csv}}]
    runbooks: [{{kind: runbooks_dir, path: {EXAMPLE}/runbooks}}]
"""
    )
    return catalog


@pytest.fixture
def pg_env(app_env: dict[str, str], pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {**app_env, "DATABASE_URL": pg_url, "SERVICES_FILE": str(build_catalog(tmp_path))}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    reset_runtime()
    return env


def example_alert() -> Alert:
    return alert_from_payload(__import__("json").loads((EXAMPLE / "alert.json").read_text()), source="api")


def test_worker_process_takes_the_job_and_the_report_lands_in_postgresql(pg_env: dict[str, str]) -> None:
    alert = example_alert()
    window = window_for(get_catalog(), at=parse_iso("2026-03-10T13:38:14Z"), now=parse_iso("2026-03-10T13:53:14Z"))
    row, created = open_investigation(alert=alert, service="checkout", source=Source.api, window=window)
    assert created and row.status == Status.queued.value
    done = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "worker", "--burst"],
        env={**os.environ, **pg_env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    final = get_store().require(row.id)
    assert final.status == Status.done.value, final.error
    assert final.category == "bad_deploy"
    assert final.report is not None and final.report["suspect_commits"][0]["sha"].startswith("0228e444")
    stages = [e.stage for e in get_store().progress(row.id)]
    assert stages[0] == "gathering" and stages[-1] == "done"


def test_log_lines_of_a_run_carry_the_investigation_id(pg_env: dict[str, str]) -> None:
    alert = example_alert()
    window = window_for(get_catalog(), at=alert.created_at, now=parse_iso("2026-03-10T13:53:14Z"))
    row, _ = open_investigation(alert=alert, service="checkout", source=Source.api, window=window)
    env = {**os.environ, **pg_env, "LOG_FORMAT": "json"}
    done = subprocess.run([sys.executable, str(REPO / "app.py"), "worker", "--burst"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    run_lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{") and '"progress"' in line]
    assert run_lines, done.stderr[-2000:]
    assert {line.get("investigation_id") for line in run_lines} == {row.id}


def test_dev_profile_without_redis_runs_the_investigation_in_process(
    app_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "dev")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SERVICES_FILE", str(build_catalog(tmp_path)))
    reset_settings()
    reset_runtime()
    alert = example_alert()
    window = window_for(get_catalog(), at=alert.created_at, now=parse_iso("2026-03-10T13:53:14Z"))
    row, _ = open_investigation(alert=alert, service="checkout", source=Source.api, window=window)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not Status(get_store().require(row.id).status).finished:
        time.sleep(0.2)
    final = get_store().require(row.id)
    assert final.status == Status.done.value
    first = get_store().progress(row.id)[0]
    assert first.stage == "queued" and "inside this process" in first.message
    # After the report, the thread still indexes it, keeps its files and queues its notifications: then it ends.
    lingering = [t for t in threading.enumerate() if t.name == f"inline-{row.id}"]
    for thread in lingering:
        thread.join(timeout=15)
    assert not [t for t in lingering if t.is_alive()]
