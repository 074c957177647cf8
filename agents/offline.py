"""The offline analyst: turns Evidence into a Report without an LLM.

Everyone gets this report on day one, and the crew starts from it, so it says
plainly what broke, since when, why, and what to do first.
"""

from __future__ import annotations

from datetime import datetime

from agents.evidence.facts import workload
from agents.evidence.model import Evidence, FactEvidence, SignatureEvidence, SuspectEvidence
from agents.report import (
    Action,
    Degraded,
    Fact,
    MetricShift,
    Report,
    RootCause,
    RunbookRef,
    Signature,
    SuspectCommit,
    TimelineEntry,
    Window,
)
from core.alert import Alert
from core.redaction import redact_text
from core.timeparse import isoformat

BLAME_THRESHOLD = 0.5
MAX_SIGNATURES = 10
RUNBOOK_LINK_MIN = 0.2

_MITIGATION: dict[str, tuple[str, str]] = {
    "bad_deploy": ("Roll back the deploy", "Roll back to the build before the suspect commit, then confirm the new errors stop."),
    "config_change": ("Revert the config change", "Restore the previous value and redeploy the config; confirm the errors stop."),
    "data_migration": (
        "Stop or roll back the migration",
        "Cancel the running migration (or apply its down migration) and release its locks; re-run it off-peak with a lock timeout.",
    ),
    "resource_exhaustion": (
        "Restore headroom",
        "Restart or scale out the affected pods and raise limits temporarily; roll back the change that made usage grow.",
    ),
    "traffic_surge": (
        "Scale out and shed the excess",
        "Scale out, enable or tighten per-client rate limits, and block abusive clients at the edge.",
    ),
    "dependency_failure": (
        "Restore or fail over the dependency",
        "Check the dependency's health, fail over or restart it; degrade gracefully (circuit breaker, cached reads) meanwhile.",
    ),
    "expired_credential": (
        "Rotate the credential",
        "Issue a new credential, store it where the service reads it, and restart the pods so they pick it up.",
    ),
    "infrastructure": (
        "Fail over away from the broken infrastructure",
        "Move traffic off the failing node, zone or egress path (cordon the node, switch NAT gateway or DNS); escalate to platform.",
    ),
    "unknown": ("Triage the top signatures", "Start from the newest error signatures and the metric shifts below."),
}


def _when(value: datetime | None) -> str:
    return f"{value:%H:%M:%S} UTC" if value is not None else "an unknown time"


def _quote(signature: SignatureEvidence | None) -> str:
    if signature is None:
        return "no distinctive error"
    # Redacted before it is cut: a secret cut in half (an e-mail without its domain) no longer matches a pattern.
    text = redact_text(signature.template).replace("\n", " ")
    return f"'{text[:160]}{'…' if len(text) > 160 else ''}'"


def _key_signature(evidence: Evidence) -> SignatureEvidence | None:
    for signature in evidence.signatures:
        if signature.trend in ("new", "spiking", "untimed"):
            return signature
    return evidence.signatures[0] if evidence.signatures else None


def _blamed(evidence: Evidence) -> SuspectEvidence | None:
    top = evidence.suspects[0] if evidence.suspects else None
    return top if top is not None and top.score >= BLAME_THRESHOLD else None


def _commit_phrase(suspect: SuspectEvidence) -> str:
    title = suspect.message.strip().splitlines()[0] if suspect.message.strip() else ""
    by = f" by {suspect.author}" if suspect.author else ""
    return f'commit {suspect.sha[:8]} "{title}"{by}'


def _fact_phrase(evidence: Evidence) -> str:
    """The platform's own statement that backs the finding, when there is one: it is observed, not inferred.

    A fact about the component the failure comes from (the dependency's pod evicted) says most; else one about the service.
    """
    component = (evidence.finding.component or "").lower()
    failing = [f for f in evidence.facts if f.failing]
    origin = next((f for f in failing if component and (name := workload(f.subject).lower()) and name in component), None)
    fact = origin or next((f for f in failing if f.about_service), None)
    if fact is None:
        return ""
    if fact.kind == "cert_expiry":
        return f" The logs state the {fact.detail} for {fact.subject}."
    times = f" ({fact.count} times)" if fact.count > 1 else ""
    return f" Kubernetes reports {fact.subject}: {fact.detail[:200].rstrip('.')}{times}."


def _onset_note(evidence: Evidence) -> str:
    if evidence.onset is None:
        return " The onset is unknown: the logs carry no timestamps and no container or event time dates the failure."
    if evidence.onset_from.startswith("facts"):
        return f" The onset is taken from the platform ({evidence.onset_from.removeprefix('facts: ')}); the logs carry no usable times."
    return ""


def summarise(evidence: Evidence, alert: Alert) -> str:
    return _summary(evidence, alert) + _fact_phrase(evidence) + _onset_note(evidence)


def _summary(evidence: Evidence, alert: Alert) -> str:
    finding = evidence.finding
    key = _key_signature(evidence)
    component = finding.component or evidence.service
    since = _when(evidence.onset)
    if key is not None and key.trend == "untimed":
        count = f" ({key.count} times in the container output)"
    else:
        count = f" ({key.count_after} times since)" if key is not None and key.count_after else ""
    suspect = _blamed(evidence)
    cause = f" The most likely cause is {_commit_phrase(suspect)}: {suspect.reason}." if suspect is not None else ""
    category = finding.category
    if category == "bad_deploy":
        first = f"{component} started failing at {since} with {_quote(key)}{count}."
        return first + (
            cause + " Roll back that deploy." if cause else " A recent deploy is the likely cause, but no single commit stands out."
        )
    if category == "config_change":
        first = f"{component} started failing at {since} with {_quote(key)}{count} after a configuration change."
        return first + (cause + " Revert the change." if cause else " Review and revert the recent configuration changes.")
    if category == "data_migration":
        first = f"{component} queries started failing at {since} with {_quote(key)}{count} while a schema migration ran."
        return first + (cause if cause else "") + " Stop or roll back the migration and release its locks."
    if category == "resource_exhaustion":
        first = f"{component} is running out of resources since {since}: {_quote(key)}{count}."
        return first + (
            cause + " Restart or scale out to restore headroom, then roll back that change."
            if cause
            else " Scale out or raise limits, then find what grew."
        )
    if category == "traffic_surge":
        return (
            f"Traffic to {component} surged at {since}; {_quote(key)}{count}. No recent change is to blame. "
            "Scale out and rate-limit or block the noisy clients."
        )
    if category == "dependency_failure":
        return (
            f"{evidence.service} is failing because its dependency {component} is failing since {since}: {_quote(key)}{count}. "
            f"No change in {evidence.service} is to blame; restore or fail over {component}."
        )
    if category == "expired_credential":
        return (
            f"Calls to {component} are rejected since {since} because a credential expired: {_quote(key)}{count}. "
            f"Rotate the credential {evidence.service} uses for {component} and restart the pods that hold it."
        )
    if category == "infrastructure":
        return (
            f"An infrastructure failure ({component}) since {since} breaks {evidence.service}: {_quote(key)}{count}. "
            "No code change is to blame; move traffic off the failing path and escalate to the platform team."
        )
    return f"No clear cause stands out for '{alert.title}'. The newest error is {_quote(key)}; start from the signatures and metric shifts."


def _actions(evidence: Evidence) -> list[Action]:
    finding = evidence.finding
    runbook = evidence.runbooks[0] if evidence.runbooks and evidence.runbooks[0].score >= RUNBOOK_LINK_MIN else None
    title, detail = _MITIGATION.get(finding.category, _MITIGATION["unknown"])
    suspect = _blamed(evidence)
    component = finding.component or evidence.service
    if suspect is not None and finding.category in ("bad_deploy", "config_change", "data_migration", "resource_exhaustion"):
        verb = "Revert" if finding.category == "config_change" else "Roll back"
        title = f"{verb} {suspect.sha[:8]} in {evidence.service if finding.category != 'bad_deploy' else component}"
        detail = f"{detail} Suspect: {_commit_phrase(suspect)} ({suspect.reason})."
    elif finding.category in ("dependency_failure", "expired_credential", "infrastructure"):
        title = f"{title}: {component}"
    actions = [Action(title=title, detail=detail, kind="mitigate", runbook=runbook.path if runbook else None)]
    key = _key_signature(evidence)
    if key is not None:
        actions.append(
            Action(
                title="Watch the key signature recede",
                detail=f"After mitigating, confirm {_quote(key)} stops in {key.source or 'the logs'}.",
                kind="investigate",
            )
        )
    if finding.category in ("bad_deploy", "config_change", "data_migration"):
        actions.append(
            Action(
                title="Add a guard before the next rollout", detail="Cover the failing path with a test or canary check.", kind="prevent"
            )
        )
    elif finding.category == "expired_credential":
        actions.append(
            Action(title="Alert before credentials expire", detail="Track expiry dates and page well before them.", kind="prevent")
        )
    elif finding.category == "traffic_surge":
        actions.append(Action(title="Set per-client rate limits and autoscaling headroom", kind="prevent"))
    return actions


def write_report(evidence: Evidence, alert: Alert, *, investigation_id: str | None = None) -> Report:
    finding = evidence.finding
    return Report(
        investigation_id=investigation_id,
        alert=alert.to_report_dict(),
        window=Window(
            start=isoformat(evidence.window_start) or "", end=isoformat(evidence.window_end) or "", onset=isoformat(evidence.onset)
        ),
        root_cause=RootCause(
            category=finding.category if finding.category in _MITIGATION else "unknown",
            summary=summarise(evidence, alert),
            component=finding.component,
            confidence=max(0.0, min(1.0, finding.confidence)),
        ),
        suspect_commits=[
            SuspectCommit(
                sha=s.sha,
                score=s.score,
                reason=s.reason,
                author=s.author,
                message=s.message,
                files=s.files,
                committed_at=isoformat(s.committed_at) or "",
                deployed_at=isoformat(s.deployed_at),
                url=s.url,
                pr_url=s.pr_url,
                pr_title=s.pr_title,
            )
            for s in evidence.suspects
        ],
        signatures=[
            Signature(
                template=s.template,
                count=s.count,
                count_before=s.count_before,
                count_after=s.count_after,
                first_seen=isoformat(s.first_seen) or "",
                last_seen=isoformat(s.last_seen) or "",
                level=s.level,
                sample=s.sample[:2000],
                source=s.source,
                frames=s.frames,
                trend=s.trend,
            )
            for s in evidence.signatures[:MAX_SIGNATURES]
        ],
        metrics=[
            MetricShift(metric=m.metric, change_at=isoformat(m.change_at) or "", before=m.before, after=m.after, unit=m.unit, url=m.url)
            for m in evidence.metric_shifts
        ],
        timeline=[TimelineEntry(at=isoformat(t.at) or "", event=t.event, source=t.source) for t in evidence.timeline],
        actions=_actions(evidence),
        runbooks=[RunbookRef(title=r.title, path=r.path, score=r.score) for r in evidence.runbooks],
        degraded=[Degraded(component=d.component, reason=d.reason) for d in evidence.degraded],
        log_reads=evidence.log_reads,
        facts=[fact_entry(f) for f in evidence.facts if f.about_service or f.failing],
        analyst="offline",
    )


def fact_entry(fact: FactEvidence) -> Fact:
    return Fact(
        kind=fact.kind,
        subject=fact.subject,
        detail=fact.detail,
        at=isoformat(fact.at),
        last_at=isoformat(fact.last_at),
        count=fact.count,
        reason=fact.reason,
        exit_code=fact.exit_code,
        source=fact.source,
        failing=fact.failing,
    )
