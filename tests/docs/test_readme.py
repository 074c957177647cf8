"""The README stays true: its configuration table is the settings, and its first commands are the set-up contract."""

from __future__ import annotations

import runpy
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_configuration_table_matches_the_settings() -> None:
    table = runpy.run_path(str(REPO / "scripts" / "config_table.py"))["rows"]()
    readme = (REPO / "README.md").read_text()
    missing = [row for row in table if row not in readme]
    assert not missing, "README configuration table is stale; regenerate with python scripts/config_table.py:\n" + "\n".join(missing)


def test_quick_start_leads_with_make_demo_and_make_test() -> None:
    readme = (REPO / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1]
    first_block = quick.split("```", 2)[1]
    assert "make demo" in first_block and "make test" in first_block


def test_procfile_runs_serve_and_worker() -> None:
    lines = (REPO / "Procfile").read_text().splitlines()
    assert "web: python app.py serve" in lines and "worker: python app.py worker" in lines


def test_error_code_table_matches_the_web_error_codes() -> None:
    from web.errors import error_markdown_table

    readme = (REPO / "README.md").read_text()
    assert error_markdown_table() in readme, "README error table is stale; paste web.errors.error_markdown_table()"
