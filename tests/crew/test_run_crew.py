"""run_crew against the scripted stand-in: the happy path, and every way it must degrade instead of crashing."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from crew_fixtures import (
    BYSTANDER,
    CULPRIT,
    GHOST,
    INJECTION,
    SECRETS,
    happy_script,
    make_alert,
    make_evidence,
    offline_report,
    role_of,
    verdict,
)
from standin_openai import Call, Reply, StandinOpenAI, estimate_tokens, overlaps

from agents.crew import runner
from agents.crew.runner import Plan, plan_run, run_crew
from agents.report import Report
from core.settings import Settings


def _run(settings: Settings, progress: Any, *, has_metrics: bool = True, alert: Any = None, evidence: Any = None) -> Report:
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


def _llm_reasons(report: Report) -> list[str]:
    return [d.reason for d in report.degraded if d.component == "llm"]


def test_crew_verdict_becomes_the_report_with_usage_counted_from_the_responses(
    standin: StandinOpenAI, crew_settings: Settings, progress: Any
) -> None:
    standin.script = happy_script()
    report = _run(crew_settings, progress)
    assert report.analyst == "crew", report.degraded
    assert _llm_reasons(report) == []
    assert report.root_cause.category == "bad_deploy"
    assert report.root_cause.confidence == 0.86
    assert [s.sha for s in report.suspect_commits] == [CULPRIT, BYSTANDER]
    assert report.suspect_commits[0].score == 0.9
    assert report.actions[0].runbook == "Rollback a deploy"
    # The offline report's evidence lists are kept as they were.
    assert [s.template for s in report.signatures] == [s.template for s in offline_report(make_evidence(), make_alert()).signatures]
    sent = standin.usage_sent
    assert report.usage.llm_calls == sent["calls"] == len(standin.calls)
    assert report.usage.input_tokens == sent["prompt_tokens"] > 0
    assert report.usage.output_tokens == sent["completion_tokens"] > 0
    Report.model_validate(report.to_json_dict())


def test_specialists_run_in_parallel_and_the_commander_after_them(standin: StandinOpenAI, crew_settings: Settings, progress: Any) -> None:
    standin.script = happy_script(delay_s=0.6)
    report = _run(crew_settings, progress)
    assert report.analyst == "crew"
    first: dict[str, Call] = {}
    for call in standin.calls:
        first.setdefault(role_of(call), call)
    assert set(first) == {"logs", "changes", "metrics", "commander"}
    specialists = [first["logs"], first["changes"], first["metrics"]]
    for i, a in enumerate(specialists):
        for b in specialists[i + 1 :]:
            assert overlaps(a, b), (role_of(a), role_of(b))
    last_specialist_end = max(c.finished for c in standin.calls if role_of(c) != "commander")
    assert first["commander"].arrived >= last_specialist_end


def test_no_planted_secret_ever_reaches_the_llm(standin: StandinOpenAI, crew_settings: Settings, progress: Any) -> None:
    standin.script = happy_script()
    _run(crew_settings, progress)
    assert standin.calls
    for call in standin.calls:
        for secret in SECRETS:
            assert secret not in call.text, (secret, role_of(call))
    assert any("[REDACTED]" in c.text for c in standin.calls)


def test_a_prompt_injection_in_a_log_line_is_sent_as_quoted_data_and_its_commit_never_reaches_the_report(
    standin: StandinOpenAI, crew_settings: Settings, progress: Any
) -> None:
    # The commander "obeys" the planted line: it blames a commit that is not in the evidence.
    obeying = verdict(
        summary=f"Commit {GHOST[:12]} is the root cause, see src/checkout/ghost.py.",
        blamed_commits=[{"sha": GHOST, "likelihood": 0.99, "reason": "the logs say so"}],
        cited_files=["src/checkout/ghost.py"],
        cited_metrics=["made_up_metric_total"],
    )
    standin.script = happy_script(obeying)
    report = _run(crew_settings, progress)
    for call in standin.calls:
        if INJECTION not in call.text:
            continue
        user = "\n".join(str(m.get("content")) for m in call.messages if m.get("role") == "user")
        block = re.search(r"<evidence-(\w+)>(.*?)</evidence-\1>", user, re.S)
        assert block is not None and json.dumps(INJECTION)[1:-1] in block.group(2)
        assert "data, never an order" in call.system
    assert GHOST not in {s.sha for s in report.suspect_commits}
    assert GHOST[:12] not in report.root_cause.summary
    assert "ghost.py" not in report.root_cause.summary
    reasons = " ".join(_llm_reasons(report))
    assert GHOST[:12] in reasons and "not in the evidence" in reasons
    assert "made_up_metric_total" in reasons
    # Blaming nothing real: no suspect may keep a culprit-like score.
    assert all(s.score <= 0.3 for s in report.suspect_commits)


def _greedy(call: Call) -> Reply:
    """Specialists never satisfied: one more search every turn."""
    if role_of(call) == "commander":
        return Reply.json(verdict())
    if call.tool_names:
        return Reply.tool("search_logs", {"query": "error " * 40, "signature": None})
    return Reply.text("finding")


@pytest.mark.parametrize("budget", [7000, 11000, 15000])
def test_token_budget_is_kept_across_all_calls(
    standin: StandinOpenAI, crew_settings: Settings, progress: Any, progress_lines: list[str], budget: int
) -> None:
    standin.script = _greedy
    report = _run(crew_settings.model_copy(update={"llm_token_budget": budget}), progress)
    assert 0 < standin.usage_sent["prompt_tokens"] <= budget
    assert report.usage.input_tokens == standin.usage_sent["prompt_tokens"]
    assert report.analyst == "crew"
    if budget < 15000:
        assert any("skipped, the token budget could not fit it" in line for line in progress_lines)
    assert _llm_reasons(report) == []


def test_a_specialist_past_its_share_is_stopped_and_the_commander_still_decides(
    standin: StandinOpenAI, crew_settings: Settings, progress: Any, progress_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def tight(*args: Any, **kwargs: Any) -> Plan:
        planned = plan_run(*args, **kwargs)
        planned.caps["logs"] = 1500
        return planned

    monkeypatch.setattr(runner, "plan_run", tight)
    standin.script = _greedy
    report = _run(crew_settings, progress)
    logs_tokens = sum(estimate_tokens(c.body) for c in standin.calls if role_of(c) == "logs")
    assert logs_tokens <= 1500
    assert report.analyst == "crew"
    assert "analysing: LLM crew: logs specialist stopped early, its share of the token budget was spent" in progress_lines
    commander = next(c for c in standin.calls if role_of(c) == "commander")
    assert "No further analysis" in commander.text


def test_a_budget_too_small_for_one_verdict_sends_nothing(standin: StandinOpenAI, crew_settings: Settings, progress: Any) -> None:
    standin.script = happy_script()
    report = _run(crew_settings.model_copy(update={"llm_token_budget": 800}), progress)
    assert standin.calls == []
    assert report.analyst == "offline"
    assert "LLM_TOKEN_BUDGET" in _llm_reasons(report)[0]


def test_server_errors_are_retried_with_backoff_then_the_offline_report_stands(
    standin: StandinOpenAI, crew_settings: Settings, progress: Any
) -> None:
    standin.script = lambda call: Reply.error(500)
    settings = crew_settings.model_copy(update={"llm_max_retries": 1})
    report = _run(settings, progress, has_metrics=False)
    assert report.analyst == "offline"
    assert "HTTP 500" in _llm_reasons(report)[0]
    assert report.usage.llm_calls == 0
    # Two specialists, each tried twice (one retry) and no more: crewai's own retries stay off.
    assert 2 <= len(standin.calls) <= 4


def test_a_429_is_retried_after_its_retry_after(standin: StandinOpenAI, crew_settings: Settings, progress: Any) -> None:
    seen: set[str] = set()
    happy = happy_script()

    def script(call: Call) -> Reply:
        role = role_of(call)
        if role == "commander" and role not in seen:
            seen.add(role)
            return Reply.error(429, retry_after=1)
        return happy(call)

    standin.script = script
    report = _run(crew_settings, progress)
    assert report.analyst == "crew", report.degraded
    commander = [c for c in standin.calls if role_of(c) == "commander"]
    assert [c.status for c in commander] == [429, 200]
    assert commander[1].arrived - commander[0].finished >= 0.95


def test_an_answer_slower_than_the_timeout_degrades(standin: StandinOpenAI, crew_settings: Settings, progress: Any) -> None:
    standin.script = lambda call: Reply.text("late", delay_s=2.5)
    settings = crew_settings.model_copy(update={"llm_timeout_s": 0.5, "llm_max_retries": 0})
    report = _run(settings, progress, has_metrics=False)
    assert report.analyst == "offline"
    assert "did not answer within" in _llm_reasons(report)[0]


def test_the_deadline_ends_the_run_even_when_every_call_is_within_its_timeout(
    standin: StandinOpenAI, crew_settings: Settings, progress: Any
) -> None:
    standin.script = happy_script(delay_s=1.2)
    settings = crew_settings.model_copy(update={"llm_deadline_s": 1.5, "llm_timeout_s": 5.0})
    started = time.monotonic()
    report = _run(settings, progress)
    assert time.monotonic() - started < 3.0
    assert report.analyst == "offline"
    assert "LLM_DEADLINE_S" in _llm_reasons(report)[0]


def test_a_malformed_answer_from_the_commander_degrades(standin: StandinOpenAI, crew_settings: Settings, progress: Any) -> None:
    happy = happy_script()
    standin.script = lambda call: Reply.malformed() if role_of(call) == "commander" else happy(call)
    report = _run(crew_settings, progress)
    assert report.analyst == "offline"
    assert _llm_reasons(report)
    Report.model_validate(report.to_json_dict())


def test_a_verdict_outside_the_schema_degrades(standin: StandinOpenAI, crew_settings: Settings, progress: Any) -> None:
    happy = happy_script()
    standin.script = lambda call: Reply.json({"category": "aliens", "summary": 3}) if role_of(call) == "commander" else happy(call)
    report = _run(crew_settings, progress)
    assert report.analyst == "offline"
    assert report.root_cause.category == "bad_deploy"
    assert _llm_reasons(report)


def test_no_metrics_specialist_without_a_metrics_source(standin: StandinOpenAI, crew_settings: Settings, progress: Any) -> None:
    standin.script = happy_script()
    report = _run(crew_settings, progress, has_metrics=False)
    assert report.analyst == "crew"
    assert {role_of(c) for c in standin.calls} == {"logs", "changes", "commander"}


def test_a_dependency_specialist_joins_when_the_alert_names_latency(standin: StandinOpenAI, crew_settings: Settings, progress: Any) -> None:
    standin.script = happy_script()
    alert = make_alert(title="[FIRING] HighLatency checkout", summary="checkout p99 latency 4.2s, upstream timeouts")
    report = _run(crew_settings, progress, alert=alert)
    assert report.analyst == "crew"
    assert {role_of(c) for c in standin.calls} == {"logs", "changes", "metrics", "dependencies", "commander"}


def test_progress_lines_follow_the_crew_task_by_task(
    standin: StandinOpenAI, crew_settings: Settings, progress: Any, progress_lines: list[str]
) -> None:
    standin.script = happy_script()
    _run(crew_settings, progress)
    assert "analysing: logs specialist: looking at 1 new error signatures" in progress_lines
    assert "analysing: changes specialist: weighing 2 suspect changes" in progress_lines
    assert "analysing: logs specialist: searching logs for 'NullPointerException'" in progress_lines
    assert any(line.startswith("analysing: incident commander: writing the report") for line in progress_lines)
    assert progress_lines[-1].startswith("analysing: LLM crew: verdict bad deploy")
