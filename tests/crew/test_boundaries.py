"""Process boundaries: crewai loads only inside a run, telemetry stays off, a run talks only to loopback, our spans survive."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crew_fixtures import happy_script, make_alert, make_evidence, offline_report
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from standin_openai import StandinOpenAI

from agents.crew.env import CREWAI_ENV, ensure_crewai_env
from agents.crew.runner import run_crew
from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_crew_modules_does_not_load_crewai() -> None:
    code = "import sys, agents.crew.runner, agents.crew.followup, agents.pipeline; assert 'crewai' not in sys.modules, 'crewai loaded'"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREWAI_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_ensure_crewai_env_switches_telemetry_off_and_never_touches_otel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREWAI_STORAGE_DIR", raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    ensure_crewai_env(tmp_path)
    for key, value in CREWAI_ENV.items():
        assert os.environ[key] == value
    assert os.environ["CREWAI_STORAGE_DIR"] == str((tmp_path / "crewai").resolve())
    assert "OTEL_SDK_DISABLED" not in os.environ


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider: Any = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()


def test_a_crew_run_connects_only_to_loopback_and_our_spans_are_still_exported(
    standin: StandinOpenAI, crew_settings: Settings, progress: Any, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> Any:
        addresses.append(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        addresses.append(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    standin.script = happy_script()
    alert, evidence = make_alert(), make_evidence()
    with trace.get_tracer("test").start_as_current_span("investigation"):
        report = run_crew(
            evidence=evidence,
            alert=alert,
            offline=offline_report(evidence, alert),
            settings=crew_settings,
            progress=progress,
            has_metrics=True,
        )
    assert report.analyst == "crew"
    assert addresses, "the run opened no connection at all"
    hosts = {a[0] if isinstance(a, tuple) else a for a in addresses}
    assert hosts <= {"127.0.0.1", "::1", "localhost"}, hosts
    finished = spans.get_finished_spans()
    names = [s.name for s in finished]
    assert "crew.run" in names
    calls = [s for s in finished if s.name == "llm.call"]
    assert len(calls) == report.usage.llm_calls
    root = next(s for s in finished if s.name == "investigation")
    assert all(s.context.trace_id == root.context.trace_id for s in calls)
