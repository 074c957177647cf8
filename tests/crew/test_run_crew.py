"""run_crew against the scripted stand-in: the happy path, and every way it must degrade instead of crashing."""

from __future__ import annotations

from typing import Any

from crew_fixtures import CULPRIT, happy_script, make_alert, make_evidence, offline_report
from standin_openai import StandinOpenAI

from agents.crew.runner import run_crew
from core.settings import Settings


def _run(settings: Settings, progress: Any, *, has_metrics: bool = True, alert: Any = None, evidence: Any = None) -> Any:
    alert = alert or make_alert()
    evidence = evidence or make_evidence()
    return run_crew(
        evidence=evidence,
        alert=alert,
        offline=offline_report(evidence, alert),
        settings=settings,
        progress=progress,
        has_metrics=has_metrics,
    )


def test_crew_verdict_becomes_the_report_with_usage_from_the_responses(
    standin: StandinOpenAI, crew_settings: Settings, progress: Any, progress_lines: list[str]
) -> None:
    standin.script = happy_script()
    report = _run(crew_settings, progress)
    assert report.analyst == "crew", report.degraded
    assert report.root_cause.category == "bad_deploy"
    assert report.suspect_commits[0].sha == CULPRIT
    sent = standin.usage_sent
    assert report.usage.llm_calls == sent["calls"] == len(standin.calls)
    assert report.usage.input_tokens == sent["prompt_tokens"]
    assert report.usage.output_tokens == sent["completion_tokens"]
    print(progress_lines)
