"""The command line as a user runs it: a real process, exit codes, stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from integrations.code.git import import_fast_export

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SCHEMA = json.loads((SHARED / "contracts" / "report.schema.json").read_text()) if (SHARED / "contracts").exists() else None
EXAMPLE = REPO / "examples" / "checkout-discount-crash"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "APP_ENV": "test", "OPENAI_API_KEY": "", "LOG_FORMAT": "console", **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / "app.py"), *args], capture_output=True, text=True, env=full_env, cwd=cwd, input=stdin, timeout=240
    )


def assert_clean_error(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert fragment in done.stderr
    assert done.stdout == ""


def test_alert_that_is_not_json_is_one_error_line(tmp_path: Path) -> None:
    alert = tmp_path / "alert.json"
    alert.write_text("{not json")
    assert_clean_error(run("investigate", "--alert", str(alert), "--logs", str(tmp_path)), "is not JSON")


def test_alert_without_service_is_one_error_line(tmp_path: Path) -> None:
    alert = tmp_path / "alert.json"
    alert.write_text('{"title": "x"}')
    assert_clean_error(run("investigate", "--alert", str(alert), "--logs", str(tmp_path)), "names no service")


def test_missing_log_folder_is_one_error_line() -> None:
    assert_clean_error(
        run("investigate", "--alert", str(EXAMPLE / "alert.json"), "--logs", "/nonexistent/logs"), "--logs /nonexistent/logs does not exist"
    )


def test_unknown_service_suggests_close_matches(tmp_path: Path) -> None:
    done = run("investigate", "--service", "chekout", env={"SERVICES_FILE": str(REPO / "services.example.yaml"), "DATA_DIR": str(tmp_path)})
    assert_clean_error(done, "did you mean checkout")


def test_malformed_catalog_names_file_and_line(tmp_path: Path) -> None:
    catalog = tmp_path / "services.yaml"
    catalog.write_text("services:\n  checkout:\n    logz: []\n")
    done = run("investigate", "--service", "checkout", env={"SERVICES_FILE": str(catalog), "DATA_DIR": str(tmp_path)})
    assert_clean_error(done, f"{catalog}:3: services.checkout.logz")


def test_templates_writes_one_group_per_input_line() -> None:
    done = run("templates", stdin="user 1 logged in\nuser 22 logged in\ndisk full on /dev/sda1\n")
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert len(lines) == 3
    assert lines[0][0] == lines[1][0] != lines[2][0]


def test_repo_that_is_not_git_and_hostile_logs_still_give_a_report(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "binary.log").write_bytes(os.urandom(20000) + b"\x00\x00\n")
    (logs / "huge.log").write_bytes(b"2026-03-10 13:40:00,000 ERROR [x] " + b"A" * 10_000_000 + b"\n")
    done = run("investigate", "--alert", str(EXAMPLE / "alert.json"), "--logs", str(logs), "--repo", str(tmp_path), "--format", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert any("not a git repository" in d["reason"] for d in report["degraded"])
    if SCHEMA:
        jsonschema.validate(report, SCHEMA)


def test_demo_prints_a_full_report(tmp_path: Path) -> None:
    done = run("demo", cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "## Suspect changes" in done.stdout and "0228e444" in done.stdout
    assert "Bad deploy" in done.stdout
    assert "gathering" in done.stderr


def scenario_dirs() -> list[Path]:
    root = SHARED / "scenarios" / "public"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("bundle", scenario_dirs(), ids=lambda p: p.name)
def test_every_public_bundle_gives_a_report_that_validates(bundle: Path, tmp_path: Path) -> None:
    repo = tmp_path / "R"
    repo = import_fast_export(bundle / "repo.fi", repo.parent)
    args = ["investigate", "--alert", str(bundle / "alert.json"), "--logs", str(bundle / "logs"), "--repo", str(repo), "--format", "json"]
    for flag, name in (("--deploys", "deploys.json"), ("--metrics", "metrics.csv"), ("--runbooks", "runbooks")):
        if (bundle / name).exists():
            args += [flag, str(bundle / name)]
    done = run(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert SCHEMA is not None
    jsonschema.validate(report, SCHEMA)
