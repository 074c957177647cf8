"""One investigation, end to end: gather → evidence → analyst → report.

Gathering runs the sources in parallel, each under a deadline; a source that
fails or hangs becomes a `degraded` entry and the investigation carries on.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from agents.evidence.engine import build_evidence
from agents.evidence.model import Evidence, EvidenceInputs
from agents.history import similar_to
from agents.offline import write_report
from agents.report import Degraded, Report
from core.alert import Alert
from core.catalog import SourceSpec
from core.degraded import Degradation
from core.metrics import inc, observe
from core.redaction import redact
from core.settings import Settings, get_settings
from core.tracing import tracer
from integrations.errors import SourceError
from integrations.metrics.base import for_alert
from integrations.registry import ServiceSources, build_specs
from integrations.roles import METRICS, ROLES

log = structlog.get_logger(__name__)

ProgressFn = Callable[..., Any]
GATHER_DEADLINE_S = 60.0


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    return None


def gather(
    *,
    alert: Alert,
    service: str,
    window_start: datetime,
    window_end: datetime,
    sources: ServiceSources,
    deadline_s: float = GATHER_DEADLINE_S,
) -> EvidenceInputs:
    """Read every role that is gathered up front, all sources in parallel; logs stay sources for the engine to stream."""
    inputs = EvidenceInputs(
        alert=alert, service=service, window_start=window_start, window_end=window_end, sources=sources, degraded=list(sources.errors)
    )
    jobs: dict[Future[Any], tuple[str, list[Any]]] = {}
    # Not a `with` block: a hanging source must not hold the investigation past its deadline.
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="gather")
    for role in ROLES:
        if role.gather is None:
            continue
        for entry in sources.entries(role):
            # Each source runs on a pool thread: carry the current span over so its span nests under the investigation's.
            # A metric source may also read what the alert's own rule measures (the PromQL an Alertmanager alert carries).
            source = for_alert(entry.source, alert) if role is METRICS else entry.source
            call = partial(role.gather, source, window_start, window_end)
            jobs[pool.submit(contextvars.copy_context().run, _traced, entry.label, call)] = (entry.label, inputs.gathered[role.name])
    done, pending = wait(jobs, timeout=deadline_s)
    for future in done:
        label, into = jobs[future]
        error = future.exception()
        if error is None:
            result = future.result()
            into.extend(result)
            # A source may answer in part (one metric query of several failing): each failed part is shown, the rest counts.
            for failure in getattr(result, "failures", ()):
                inputs.degraded.append(Degradation(f"{label}:{failure.query}", failure.reason))
        else:
            reason = str(error) if isinstance(error, SourceError) else f"{type(error).__name__}: {error}"
            log.warning("source_failed", source=label, reason=reason)
            inc("integration_errors_total", source=label)
            inputs.degraded.append(Degradation(label, reason))
    for future in pending:
        label, _ = jobs[future]
        inc("integration_errors_total", source=label)
        inputs.degraded.append(Degradation(label, f"no answer within {deadline_s:.0f}s; skipped"))
        future.cancel()
    pool.shutdown(wait=False, cancel_futures=True)
    inputs.commits.sort(key=lambda c: c.committed_at, reverse=True)
    inputs.deploys.sort(key=lambda d: d.at)
    return inputs


def _traced(label: str, call: Callable[[], Any]) -> Any:
    with tracer().start_as_current_span(f"source {label}", attributes={"source": label}):
        return call()


@contextmanager
def _stage(name: str, investigation_id: str | None, timings: dict[str, float]) -> Iterator[None]:
    """A span and a duration (report timings, Prometheus) for one stage of the pipeline."""
    started = time.perf_counter()
    attributes = {"investigation.id": investigation_id or "", "stage": name}
    with tracer().start_as_current_span(f"investigation.{name}", attributes=attributes):
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            timings[f"{name}_s"] = round(elapsed, 3)
            observe("stage_duration_seconds", elapsed, stage=name)


def analyse(
    evidence: Evidence,
    alert: Alert,
    *,
    investigation_id: str | None,
    settings: Settings,
    progress: ProgressFn,
    has_metrics: bool,
    sources: ServiceSources | None = None,
) -> Report:
    """The offline analyst always writes a report; with an LLM configured the crew may replace it."""
    offline = write_report(evidence, alert, investigation_id=investigation_id)
    similar = similar_to(offline, title=alert.title, service=evidence.service, investigation_id=investigation_id, settings=settings)
    offline.similar_incidents = similar.found
    if similar.degraded is not None:
        offline.degraded.append(similar.degraded)
    # The crew weighs them too: "the same failure last week was fixed by ..." is evidence.
    evidence.similar_incidents = [incident.model_dump(exclude_none=True) for incident in similar.found]
    if not settings.llm_enabled:
        return offline
    from agents.crew.runner import run_crew

    try:
        return run_crew(
            evidence=evidence, alert=alert, offline=offline, settings=settings, progress=progress, has_metrics=has_metrics, sources=sources
        )
    except Exception as exc:  # noqa: BLE001  (any crew failure degrades to the offline report)
        log.warning("crew_failed", error=f"{type(exc).__name__}: {exc}")
        offline.degraded.append(
            Degraded(component="llm", reason=f"the LLM crew failed ({type(exc).__name__}: {exc}); offline analysis shown")
        )
        return offline


def investigate(
    *,
    alert: Alert,
    service: str,
    window_start: datetime,
    window_end: datetime,
    sources: ServiceSources,
    investigation_id: str | None = None,
    progress: ProgressFn = _quiet,
    settings: Settings | None = None,
) -> Report:
    settings = settings or get_settings()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    progress("gathering", f"Gathering evidence for {service} from {window_start:%H:%M} to {window_end:%H:%M} UTC")
    with _stage("gather", investigation_id, timings):
        inputs = gather(
            alert=alert,
            service=service,
            window_start=window_start,
            window_end=window_end,
            sources=sources,
            deadline_s=settings.source_deadline_s,
        )
    inputs.log_deadline_s = settings.log_read_deadline_s
    with _stage("evidence", investigation_id, timings):
        evidence = build_evidence(inputs, progress=lambda stage, message: progress(stage, message))
    progress(
        "analysing",
        f"Evidence gathered: {len(evidence.signatures)} log signatures, {len(evidence.suspects)} suspect changes, "
        f"{len(evidence.metric_shifts)} metric shifts",
        milestone=True,
    )
    top = evidence.suspects[0] if evidence.suspects else None
    if top is not None and top.score >= 0.5:
        progress(
            "analysing",
            f"Suspect found: {top.sha[:8]} ({top.score:.2f}) {top.message.splitlines()[0] if top.message else ''}",
            milestone=True,
        )
    with _stage("analyse", investigation_id, timings):
        report = analyse(
            evidence,
            alert,
            investigation_id=investigation_id,
            settings=settings,
            progress=progress,
            has_metrics=bool(sources.of(METRICS)),
            sources=sources,
        )
    timings["total_s"] = round(time.perf_counter() - started, 3)
    report.timings.update(timings)
    # Evidence is redacted here, before the report leaves the worker for Slack, Jira, the dashboard or a log line.
    return Report.model_validate(redact(report.to_json_dict()))


# The command line's path flags, each one source of a local kind: (role, kind, option that takes the path).
PATH_FLAGS: dict[str, tuple[str, str, str]] = {
    "logs": ("logs", "files", "paths"),
    "repo": ("code", "git", "path"),
    "deploys": ("deploys", "deploys_file", "path"),
    "metrics": ("metrics", "metrics_csv", "path"),
    "runbooks": ("runbooks", "runbooks_dir", "path"),
    "kubectl": ("infra", "kubectl_dump", "paths"),
    "pod_logs": ("logs", "kubectl_logs", "paths"),
}


def path_specs(**paths: Path | None) -> dict[str, list[SourceSpec]]:
    """Catalog entries for paths given on the command line (`logs=`, `repo=`, ...), to be built by the registry."""
    specs: dict[str, list[SourceSpec]] = {}
    for flag, path in paths.items():
        if path is None:
            continue
        role, kind, option = PATH_FLAGS[flag]
        value: str | list[str] = [str(path)] if option == "paths" else str(path)
        specs.setdefault(role, []).append(SourceSpec.model_validate({"kind": kind, option: value}))
    return specs


def run_local(
    *,
    alert: Alert,
    logs: Path | None,
    repo: Path | None,
    deploys: Path | None = None,
    metrics: Path | None = None,
    runbooks: Path | None = None,
    kubectl: Path | None = None,
    pod_logs: Path | None = None,
    lookback_s: int = 6 * 3600,
    after_s: int = 900,
    progress: ProgressFn = _quiet,
) -> Report:
    """Investigate an alert against paths on disk, with no catalog and no store."""
    specs = path_specs(logs=logs, repo=repo, deploys=deploys, metrics=metrics, runbooks=runbooks, kubectl=kubectl, pod_logs=pod_logs)
    sources = build_specs(specs, Path.cwd())
    return investigate(
        alert=alert,
        service=alert.service,
        window_start=alert.created_at - timedelta(seconds=lookback_s),
        window_end=alert.created_at + timedelta(seconds=after_s),
        sources=sources,
        progress=progress,
    )
