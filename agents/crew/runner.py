"""run_crew: the LLM crew over one investigation's evidence, bounded and degradable.

Specialists chosen from the crew table run in parallel (`async_execution`
tasks), the incident commander writes a `Verdict` after them (sequential
process, no manager, no memory). The whole run happens in a worker thread that
we stop waiting for at LLM_DEADLINE_S — crewai's own `max_execution_time` is
advisory — and every request goes through one gate (deadline, breaker, token
budget, retries, redaction, usage). Whatever goes wrong with the LLM, the
answer is the offline report with a `degraded` entry saying why; only bugs
in our own code raise.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError

from agents.crew import guard
from agents.crew.breaker import breaker_for
from agents.crew.budget import Budget, estimate_tokens
from agents.crew.config import AgentSpec, CrewConfig, choose_specialists, facts_of, load_config, prompt
from agents.crew.digest import Digest
from agents.crew.env import ensure_crewai_env
from agents.crew.events import ProgressRelay
from agents.crew.tools import Toolbox
from agents.crew.transport import Gate, why_failed
from agents.crew.verdict import Verdict, apply_verdict
from agents.evidence.model import Evidence
from agents.report import Degraded, Report, Usage
from core.alert import Alert
from core.settings import Settings
from core.tracing import tracer
from integrations.registry import ServiceSources

log = structlog.get_logger(__name__)

ProgressFn = Callable[..., Any]
STAGE = "analysing"
# Per call, beyond the prompt text: crewai's framing, tool schemas, the JSON schema of the verdict.
CALL_OVERHEAD = 250
TOOL_OVERHEAD = 120
VERDICT_SCHEMA_OVERHEAD = 1400
TOOL_ROUND = 400
MAX_NOTES = 6


@dataclass
class Plan:
    specialists: list[AgentSpec]
    caps: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    commander_estimate: int = 0


def _label(spec: AgentSpec) -> str:
    return spec.role[0].lower() + spec.role[1:]


def specialist_description(spec: AgentSpec, digest: Digest) -> str:
    return prompt(spec.name).replace("{evidence}", digest.for_specialist(spec.name))


def commander_description(digest: Digest) -> str:
    return prompt("commander").replace("{evidence}", digest.for_commander())


def plan_run(config: CrewConfig, digest: Digest, specialists: list[AgentSpec], total: int) -> Plan:
    """Fit the specialists into the budget, dropping the lowest priority first; the commander's part is held back."""
    limits = config.limits
    system = estimate_tokens(prompt("trust"))
    commander = (
        system
        + estimate_tokens(commander_description(digest))
        + VERDICT_SCHEMA_OVERHEAD
        + CALL_OVERHEAD
        + len(specialists) * limits.specialist_max_tokens
    )
    reserve = min(total, max(commander, int(total * limits.commander_reserve)))
    pool = total - reserve
    chosen = sorted(specialists, key=lambda s: -s.priority)
    needs: dict[str, int] = {}
    for spec in chosen:
        first = system + estimate_tokens(specialist_description(spec, digest)) + CALL_OVERHEAD + TOOL_OVERHEAD * len(spec.tools)
        # A tool round sends the first prompt again with the tool's answer; the guard stops anything beyond.
        needs[spec.name] = 2 * first + TOOL_ROUND if spec.tools else first
    skipped = []
    while chosen and sum(needs[s.name] for s in chosen) > pool:
        dropped = chosen.pop()
        skipped.append(dropped.name)
    wanted = sum(needs[s.name] for s in chosen) or 1
    caps = {s.name: int(pool * needs[s.name] / wanted) for s in chosen}
    order = {s.name: i for i, s in enumerate(specialists)}
    return Plan(specialists=sorted(chosen, key=lambda s: order[s.name]), caps=caps, skipped=skipped, commander_estimate=commander)


def endpoint_key(settings: Settings) -> str:
    """The breaker guards one endpoint and model: another endpoint failing says nothing about this one."""
    return f"llm:{settings.openai_base_url or 'openai'}:{settings.llm_model}"


def _usage(gate: Gate) -> Usage:
    used = gate.budget.used
    return Usage(llm_calls=used.calls, input_tokens=used.input_tokens, output_tokens=used.output_tokens)


def _degrade(offline: Report, reason: str, usage: Usage, notes: list[str] | None = None) -> Report:
    report = offline.model_copy(deep=True)
    report.degraded.append(Degraded(component="llm", reason=reason))
    report.degraded.extend(Degraded(component="llm", reason=n) for n in (notes or [])[:MAX_NOTES])
    report.analyst = "offline"
    report.usage = usage
    return report


def _run_with_deadline(work: Callable[[], Any], gate: Gate) -> tuple[bool, Any, BaseException | None]:
    """(finished, result, error): `work` in a thread we stop waiting for at the gate's deadline."""
    box: dict[str, Any] = {}
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            box["result"] = ctx.run(work)
        except BaseException as exc:  # noqa: BLE001  (handed back to the caller, which decides)
            box["error"] = exc

    thread = threading.Thread(target=target, name="crew-run", daemon=True)
    thread.start()
    thread.join(timeout=max(0.0, gate.remaining_s()))
    if thread.is_alive():
        # The thread cannot be killed; refusing its next request makes it end soon after.
        gate.cancelled.set()
        return False, None, None
    return True, box.get("result"), box.get("error")


def _verdict_of(output: Any) -> Verdict:
    pydantic = getattr(output, "pydantic", None)
    if isinstance(pydantic, Verdict):
        return pydantic
    raw = str(getattr(output, "raw", "") or "").strip()
    if raw.startswith("```"):
        raw = raw.strip("`").removeprefix("json").strip()
    return Verdict.model_validate(json.loads(raw))


def run_crew(
    *,
    evidence: Evidence,
    alert: Alert,
    offline: Report,
    settings: Settings,
    progress: ProgressFn,
    has_metrics: bool,
    sources: ServiceSources | None = None,
) -> Report:
    ensure_crewai_env(settings.data_dir)
    config = load_config()
    digest = Digest(evidence, alert)
    breaker = breaker_for(settings.redis_url, endpoint_key(settings))
    if not breaker.allow():
        progress(STAGE, "LLM skipped: its circuit breaker is open after repeated failures; using the offline analysis")
        return _degrade(offline, "the LLM circuit breaker is open after repeated failures; offline analysis shown", Usage())
    plan = plan_run(
        config, digest, choose_specialists(config, facts_of(evidence, alert, has_metrics=has_metrics)), settings.llm_token_budget
    )
    if plan.commander_estimate > settings.llm_token_budget:
        return _degrade(
            offline,
            f"LLM_TOKEN_BUDGET {settings.llm_token_budget} is below what one verdict needs (~{plan.commander_estimate}); "
            "offline analysis shown",
            Usage(),
        )
    gate = Gate(
        budget=Budget(total=settings.llm_token_budget, caps=plan.caps),
        breaker=breaker,
        deadline=time.monotonic() + settings.llm_deadline_s,
        max_retries=settings.llm_max_retries,
        soft_stop_agents=frozenset(s.name for s in plan.specialists),
    )
    names = ", ".join(_label(s) for s in plan.specialists) or "no specialist"
    progress(STAGE, f"LLM crew: {names} in parallel, then the incident commander")
    relay = ProgressRelay(progress)
    toolbox = Toolbox(evidence, digest, sources, alert=alert)
    with tracer().start_as_current_span("crew.run", attributes={"crew.specialists": [s.name for s in plan.specialists]}) as span:
        finished, output, error = _run_with_deadline(lambda: _kickoff(config, plan, digest, toolbox, gate, settings, relay), gate)
        usage = _usage(gate)
        span.set_attribute("llm.calls", usage.llm_calls)
        span.set_attribute("llm.input_tokens", usage.input_tokens)
    # A specialist left out for the budget is the budget doing its job, not a degraded report: said, not flagged.
    for name in plan.skipped:
        progress(STAGE, f"LLM crew: {name} specialist skipped, the token budget could not fit it")
    for name in dict.fromkeys(gate.soft_stops):
        progress(STAGE, f"LLM crew: {name} specialist stopped early, its share of the token budget was spent")
    if not finished:
        relay.close()
        log.warning("crew_deadline", deadline_s=settings.llm_deadline_s)
        return _degrade(
            offline, f"the LLM crew did not finish within LLM_DEADLINE_S={settings.llm_deadline_s:.0f}s; offline analysis shown", usage
        )
    if error is not None:
        reason = why_failed(error, settings.llm_timeout_s)
        log.warning("crew_failed", reason=reason, error_type=type(error).__name__)
        return _degrade(offline, f"the LLM crew failed ({reason}); offline analysis shown", usage)
    try:
        verdict = _verdict_of(output)
    except (ValidationError, ValueError) as exc:
        log.warning("crew_verdict_invalid", error=str(exc)[:300])
        return _degrade(offline, "the LLM's verdict did not validate against the report's shape; offline analysis shown", usage)
    verdict, notes = guard.check(verdict, evidence)
    report = apply_verdict(offline, verdict, usage=usage)
    report.degraded.extend(Degraded(component="llm", reason=n) for n in notes[:MAX_NOTES])
    progress(
        STAGE, f"LLM crew: verdict {verdict.category.replace('_', ' ')} ({report.root_cause.confidence:.0%}) after {usage.llm_calls} calls"
    )
    return report


def _kickoff(config: CrewConfig, plan: Plan, digest: Digest, toolbox: Toolbox, gate: Gate, settings: Settings, relay: ProgressRelay) -> Any:
    from crewai import Agent, Crew, Process, Task

    from agents.crew.llm import bounded_llm
    from agents.crew.tools import crew_tools

    limits = config.limits
    backstory = prompt("trust")
    counts = digest.counts()
    agents: list[Any] = []
    tasks: list[Any] = []
    for spec in plan.specialists:
        agent = Agent(
            role=spec.role,
            goal=spec.goal,
            backstory=backstory,
            llm=bounded_llm(settings=settings, gate=gate, agent=spec.name, max_tokens=limits.specialist_max_tokens),
            tools=crew_tools(toolbox, spec.tools),
            max_iter=limits.specialist_max_iter,
            max_retry_limit=0,
            allow_delegation=False,
            respect_context_window=False,
            verbose=False,
        )
        task = Task(
            description=specialist_description(spec, digest),
            expected_output="A short finding, at most 120 words.",
            agent=agent,
            async_execution=True,
        )
        relay.track(str(task.id), _label(spec), spec.progress.format(**counts))
        agents.append(agent)
        tasks.append(task)
    spec = config.commander
    commander = Agent(
        role=spec.role,
        goal=spec.goal,
        backstory=backstory,
        llm=bounded_llm(settings=settings, gate=gate, agent=spec.name, max_tokens=limits.commander_max_tokens),
        max_iter=limits.commander_max_iter,
        max_retry_limit=0,
        allow_delegation=False,
        respect_context_window=False,
        verbose=False,
    )
    final = Task(
        description=commander_description(digest),
        expected_output="The verdict: category, component, confidence, summary, blamed commits, cited files and metrics, actions.",
        agent=commander,
        context=list(tasks),
        output_pydantic=Verdict,
    )
    relay.track(str(final.id), _label(spec), spec.progress.format(specialists=len(tasks), **counts))
    crew = Crew(agents=[*agents, commander], tasks=[*tasks, final], process=Process.sequential, memory=False, verbose=False)
    relay.attach()
    try:
        return crew.kickoff()
    finally:
        relay.detach()
