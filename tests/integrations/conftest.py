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
