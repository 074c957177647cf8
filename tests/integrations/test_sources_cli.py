"""`sources`, `catalog check` and start-up refusal as an operator meets them: a real `python app.py` process, its output, its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.describe import catalog_schema
from integrations.registry import KINDS
from tests.standins.loopback import free_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "Hunter2-c0rrect-h0rse"
MISSPELLED = "services:\n  x:\n    logs:\n      - {kind: files, pathz: ['logs/*.log']}\n"


def run(*args: str, tmp_path: Path, services: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """app.py in a clean environment: SQLite and data under tmp, no Slack, no LLM, and a Redis nobody listens on."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SERVICES_FILE", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "JIRA_URL", "PORT", "HOST"}
    }
    env |= {
        "APP_ENV": "test",
        "OPENAI_API_KEY": "",
        "LOG_FORMAT": "console",
        "DATA_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ir.db'}",
        # Nothing answers here: a command that refuses a bad catalog must do so before it needs Redis.
        "REDIS_URL": "redis://127.0.0.1:9/0",
    }
    if services is not None:
        env["SERVICES_FILE"] = str(services)
    return subprocess.run([sys.executable, str(REPO / "app.py"), *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error: ")]


@pytest.fixture
def misspelled(tmp_path: Path) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(MISSPELLED)
    return path


def misspelled_line(path: Path) -> str:
    return f"error: {path}:4: services.x.logs.0.pathz: unknown option 'pathz' for a 'files' source (did you mean 'path'?)"


def test_sources_json_lists_every_kind_with_its_role_and_typed_options(tmp_path: Path) -> None:
    done = run("sources", "--json", tmp_path=tmp_path)

    assert done.returncode == 0, done.stderr
    rows = {(row["role"], row["kind"]): row for row in json.loads(done.stdout)}
    assert set(rows) == {(kind.role.name, kind.name) for kind in KINDS}
    for kind in KINDS:
        options = rows[(kind.role.name, kind.name)]["options"]
        assert [option["name"] for option in options][-1] == "name"
        assert all(set(option) == {"name", "type", "required", "default", "description"} for option in options)
    git = {option["name"]: option for option in rows[("code", "git")]["options"]}
    assert (git["path"]["type"], git["path"]["required"]) == ("str", True)
    assert (git["timeout_s"]["type"], git["timeout_s"]["required"], git["timeout_s"]["default"]) == ("float", False, 30.0)


def test_sources_prints_a_table_of_every_kind_and_exits_0(tmp_path: Path) -> None:
    done = run("sources", tmp_path=tmp_path)

    assert done.returncode == 0, done.stderr
    for kind in KINDS:
        assert f" {kind.name} " in done.stdout


def test_catalog_schema_prints_the_generated_schema(tmp_path: Path) -> None:
    done = run("catalog", "schema", tmp_path=tmp_path)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == catalog_schema()


def test_catalog_check_prints_every_problem_with_its_file_and_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MISSPELLED + "    code:\n      - {kind: files, path: repo}\n    runbooks:\n      - {kind: runbooks_dir}\n")

    done = run("catalog", "check", str(bad), tmp_path=tmp_path)

    assert done.returncode == 2, done.stderr
    assert error_lines(done) == [
        misspelled_line(bad),
        f"error: {bad}:6: services.x.code.0.kind: 'files' is a logs source, not a code source",
        f"error: {bad}:8: services.x.runbooks.0.path: 'path' is required for a 'runbooks_dir' source",
    ]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_catalog_check_of_a_good_catalog_exits_0(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "services:\n  x:\n    logs:\n      - {kind: files, paths: ['logs/*.log']}\n    code:\n      - {kind: git, path: repo}\n"
    )

    done = run("catalog", "check", str(good), tmp_path=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{good}: 1 services, 2 sources, no problems"


def test_catalog_check_without_a_file_checks_services_file(tmp_path: Path, misspelled: Path) -> None:
    done = run("catalog", "check", tmp_path=tmp_path, services=misspelled)

    assert done.returncode == 2
    assert error_lines(done) == [misspelled_line(misspelled)]


def test_sources_check_prints_ok_and_fail_lines_with_secrets_redacted_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "app.log").write_text("2026-03-10 12:00:00,000 INFO [a] up\n")
    services = tmp_path / "services.yaml"
    services.write_text(
        "services:\n  x:\n"
        "    logs:\n      - {kind: files, paths: ['logs/*.log']}\n"
        f"    code:\n      - {{kind: git, path: 'password={SECRET}/repo'}}\n"
    )

    done = run("sources", "check", tmp_path=tmp_path, services=services)

    assert done.returncode == 1, done.stderr
    assert sorted(done.stdout.splitlines()) == [
        f"FAIL x code:git: git repository {tmp_path}/password=[REDACTED] does not exist",
        "ok   x logs:files: 1 readable files, 0.0 MB",
    ]
    assert SECRET not in done.stdout + done.stderr


def test_sources_check_of_healthy_sources_exits_0(tmp_path: Path) -> None:
    (tmp_path / "runbooks").mkdir()
    services = tmp_path / "services.yaml"
    services.write_text("services:\n  x:\n    runbooks:\n      - {kind: runbooks_dir, path: runbooks}\n")

    done = run("sources", "check", "x", tmp_path=tmp_path, services=services)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ok   x runbooks:runbooks_dir: 0 runbooks"]


def test_sources_check_also_asks_the_ops_targets_without_sending_them_anything(tmp_path: Path) -> None:
    (tmp_path / "runbooks").mkdir()
    down = free_port()
    services = tmp_path / "services.yaml"
    services.write_text(
        "defaults:\n  ops_notify:\n"
        f"    - {{kind: webhook, name: ops-hook, url: 'http://127.0.0.1:{down}/ops', timeout_s: 2}}\n"
        "services:\n  x:\n    runbooks:\n      - {kind: runbooks_dir, path: runbooks}\n"
    )

    done = run("sources", "check", tmp_path=tmp_path, services=services)
    one_service = run("sources", "check", "x", tmp_path=tmp_path, services=services)

    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "ok   x runbooks:runbooks_dir: 0 runbooks",
        f"FAIL defaults.ops_notify notify:ops-hook: http://127.0.0.1:{down}/ops did not answer: ConnectError",
    ]
    # Asked about one service, it answers about that service only.
    assert one_service.returncode == 0 and one_service.stdout.splitlines() == ["ok   x runbooks:runbooks_dir: 0 runbooks"]


def test_sources_check_of_an_unknown_service_exits_2(tmp_path: Path) -> None:
    services = tmp_path / "services.yaml"
    services.write_text("services:\n  checkout: {}\n")

    done = run("sources", "check", "payments", tmp_path=tmp_path, services=services)

    assert done.returncode == 2
    assert error_lines(done) == ["error: unknown service 'payments'; known: checkout"]


def test_the_worker_refuses_to_start_when_services_file_has_a_misspelled_option(tmp_path: Path, misspelled: Path) -> None:
    done = run("worker", "--burst", tmp_path=tmp_path, services=misspelled)

    assert done.returncode == 2, done.stderr[-2000:]
    assert error_lines(done) == [misspelled_line(misspelled)]
    assert "Traceback" not in done.stderr


def test_serve_refuses_to_start_before_binding_when_services_file_has_a_misspelled_option(tmp_path: Path, misspelled: Path) -> None:
    port = free_port()

    done = run("serve", "--host", "127.0.0.1", "--port", str(port), tmp_path=tmp_path, services=misspelled, timeout=30)

    assert done.returncode == 2, done.stderr[-2000:]
    assert error_lines(done) == [misspelled_line(misspelled)]
    assert "Uvicorn running" not in done.stderr and "Started server" not in done.stderr
    assert "Traceback" not in done.stderr
