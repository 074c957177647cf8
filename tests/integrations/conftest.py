"""The integrations suite: its contract kit (`contracts.py`) importable from every kind's test module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
# The contract kit's asserts are the tests: they should explain themselves like a test module's.
pytest.register_assert_rewrite("contracts")


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test's log-store reads cache under its own folder: a cached page from another test would hide API calls."""
    from core.settings import reset_settings

    monkeypatch.setenv("DATA_DIR", str(tmp_path_factory.mktemp("data")))
    reset_settings()
