"""Fixtures for the crew: a scripted OpenAI-compatible stand-in on loopback and settings pointing at it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "standins"), str(HERE)]

from standin_openai import StandinOpenAI  # noqa: E402

from core.settings import Settings  # noqa: E402


@pytest.fixture
def standin() -> Iterator[StandinOpenAI]:
    with StandinOpenAI() as server:
        yield server


@pytest.fixture
def crew_settings(app_env: dict[str, str], standin: StandinOpenAI, tmp_path: Path) -> Settings:
    return Settings(
        openai_api_key="sk-test-standin-key-0000",
        openai_base_url=standin.base_url,
        llm_model="gpt-4o-mini",
        llm_timeout_s=3.0,
        llm_max_retries=2,
        llm_deadline_s=30.0,
        llm_token_budget=15_000,
        data_dir=tmp_path / "var",
        redis_url=app_env["REDIS_URL"],
    )


@pytest.fixture
def progress_lines() -> list[str]:
    return []


@pytest.fixture
def progress(progress_lines: list[str]) -> Callable[..., None]:
    def record(stage: str, message: str, **_kwargs: Any) -> None:
        progress_lines.append(f"{stage}: {message}")

    return record
