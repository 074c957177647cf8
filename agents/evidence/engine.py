"""The deterministic evidence engine: an incident window in, a compact ranked evidence set out.

Logs are streamed once; every other step works on the aggregates. Any part that
fails becomes a `degraded` entry: the engine always returns Evidence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.evidence.classify import AWAY_FROM_CODE, KeySignature, classify, our_service, volume_ratio
from agents.evidence.facts import expiry_fact, read_facts
from agents.evidence.logstats import LogStats
from agents.evidence.metric_shifts import metric_shifts
from agents.evidence.model import Evidence, EvidenceInputs, Finding, MetricShiftEvidence, SuspectEvidence, TimelineItem
from agents.evidence.reading import read_logs
from agents.evidence.runbook_match import match_runbooks
from agents.evidence.signatures import Ranked, find_onset, rank_signatures
from agents.evidence.suspects import (
    COMMIT_LOOKBACK,
    MAX_DIFFS,
    MENTIONABLE,
    Candidate,
    SuspectRanker,
    key_failure,
    score_candidate,
    timing_factor,
)
from core.degraded import Degradation
from core.redaction import redact_text
from integrations import roles

Progress = Callable[[str, str], None]
MAX_SUSPECTS = 10
# Away-from-code findings keep suspects listed (for the record) but never at a blaming score.
AWAY_CAP = 0.35
KEY_MIN_SCORE = 0.12
MAX_EXPIRY_LOOKUP = 10


def _quiet(_stage: str, _message: str) -> None:
    return None


def _key_signatures(ranked: list[Ranked]) -> list[KeySignature]:
    keys = []
    for item in ranked:
        ev = item.evidence
        if ev.trend not in ("new", "spiking", "untimed") or ev.score < KEY_MIN_SCORE:
            continue
        text = "\n".join(
            filter(None, [item.group.text, item.group.exception or "", item.group.samples[0][:1500] if item.group.samples else ""])
        )
        keys.append(KeySignature(group=item.group, score=ev.score, text=text))
    return keys


def _mentions(stats: LogStats, names: set[str], onset: datetime | None) -> dict[str, float]:
    """Commit file names that log lines mention (a migration being applied, a config file loaded), with when."""
    found: dict[str, float] = {}
    if not names:
        return found
    for group in stats.groups.values():
        blob = "\n".join(group.samples)
        for name in names:
            if name in blob and group.first_ts is not None:
                found[name] = min(found.get(name, group.first_ts), group.first_ts)
    return found


def _suspects(
    inputs: EvidenceInputs,
    stats: LogStats,
    keys: list[KeySignature],
    onset: datetime,
    degraded: list[Degradation],
    service_names: set[str],
) -> tuple[list[Candidate], list[dict[str, object]], list[str]]:
    """Ranked candidates, the deploys found, and the services that run this repository's code."""
    ranker = SuspectRanker(inputs.change_sources, service_names=service_names, degraded=lambda c, r: degraded.append(Degradation(c, r)))
    events = ranker.deploy_events(inputs.deploys, stats.markers.values(), stats.pods) if inputs.change_sources else []
    earliest = min([inputs.window_start, *(e.at for e in events)]) - COMMIT_LOOKBACK
    commits = {c.sha: c for c in inputs.commits}
    if inputs.change_sources:
        for listed in ranker.commits_for(earliest, inputs.window_end):
            commits.setdefault(listed.sha, listed)
    shipped = ranker.shipped(events, {sha: c.committed_at for sha, c in commits.items()})
    failure = key_failure(
        [k.text for k in keys[:3]],
        [k.group.text for k in keys[:3]],
        [f for k in keys[:3] for f in k.group.frames],
        {f for k in keys[:3] for f in k.group.frame_files},
        {f for k in keys[:3] for f in k.group.frame_functions},
    )
    names = {
        f.path.rsplit("/", 1)[-1]
        for c in commits.values()
        for f in c.files
        if len(f.path.rsplit("/", 1)[-1]) >= 8 and MENTIONABLE.search(f.path)
    }
    failure.mentions = _mentions(stats, names, onset)
    candidate_shas = {sha for sha, c in commits.items() if inputs.window_start <= c.committed_at <= inputs.window_end} | set(shipped)
    have_deploys = bool(events)
    candidates: list[Candidate] = []
    for sha in candidate_shas:
        if (commit := commits.get(sha)) is None:
            continue
        deploy = shipped.get(sha)
        deployed_at = deploy.at if deploy else None
        mentioned = [
            datetime.fromtimestamp(t, UTC) for f in commit.files if (t := failure.mentions.get(f.path.rsplit("/", 1)[-1])) is not None
        ]
        if deployed_at is None and mentioned:
            deployed_at = min(mentioned)
        candidates.append(Candidate(commit=commit, deployed_at=deployed_at, deploy_label=deploy.label if deploy else ""))
    # Diffs cost a git call each: read them for the commits that could matter most.
    candidates.sort(
        key=lambda c: (c.deployed_at is not None and c.deployed_at <= onset + timedelta(minutes=2), c.commit.committed_at), reverse=True
    )
    for index, candidate in enumerate(candidates):
        timing, why = timing_factor(candidate.deployed_at, candidate.commit.committed_at, onset, have_deploys)
        facts = ranker.diff(candidate.commit.sha) if index < MAX_DIFFS else None
        score_candidate(candidate, facts, failure, timing)
        candidate.reasons.insert(0, why)
    candidates.sort(key=lambda c: c.score, reverse=True)
    deploy_list = [{"at": e.at, "sha": e.sha, "version": e.version, "source": e.label} for e in events]
    code_services = sorted(ranker.code_services, key=lambda name: -ranker.code_services[name])
    return candidates, deploy_list, code_services


def _suspect_evidence(candidates: list[Candidate], cap: float | None) -> list[SuspectEvidence]:
    out = []
    for c in candidates[:MAX_SUSPECTS]:
        score = c.score if cap is None else min(c.score, cap * c.score + 0.0, cap)
        reasons = [r for r in c.reasons if r]
        out.append(
            SuspectEvidence(
                sha=c.commit.sha,
                score=round(max(0.0, min(1.0, score)), 3),
                reason="; ".join(reasons) or "committed in the window",
                author=c.commit.author,
                message=c.commit.message,
                files=[f.path for f in c.commit.files][:30],
                committed_at=c.commit.committed_at,
                deployed_at=c.deployed_at,
                url=c.commit.url,
                pr_url=c.commit.pr_url,
                pr_title=c.commit.pr_title,
                signals=c.signals,
            )
        )
    out.sort(key=lambda s: s.score, reverse=True)
    return out


def _timeline(
    onset: datetime | None,
    alert_at: datetime,
    ranked: list[Ranked],
    deploys: list[dict[str, object]],
    shifts: list[MetricShiftEvidence],
    paging: list[tuple[datetime, str, str]],
    onset_from: str = "logs",
) -> list[TimelineItem]:
    items = [TimelineItem(at=alert_at, event="alert fired", source="alert")]
    # What the paging tool recorded (triggered, escalated, acknowledged) places people's actions among the evidence.
    items += [TimelineItem(at=at, event=event, source=tool) for at, event, tool in paging]
    if onset is not None and onset_from == "logs":
        items.append(TimelineItem(at=onset, event="incident onset (first key error)", source="logs"))
    elif onset is not None:
        items.append(TimelineItem(at=onset, event=f"incident onset ({onset_from.removeprefix('facts: ')})", source="infra"))
    for deploy in deploys:
        at = deploy["at"]
        if isinstance(at, datetime):
            items.append(TimelineItem(at=at, event=f"{deploy['source']}", source="deploys"))
    for item in ranked[:3]:
        ev = item.evidence
        if ev.trend in ("new", "spiking") and ev.first_seen is not None:
            # Redacted before it is cut: a secret cut in half (an e-mail without its domain) no longer matches a pattern.
            items.append(TimelineItem(at=ev.first_seen, event=f"first '{redact_text(ev.template)[:120]}' ({ev.trend})", source=ev.source))
    for shift in shifts[:3]:
        items.append(
            TimelineItem(
                at=shift.change_at, event=f"{shift.metric} {shift.direction} from {shift.before:g} to {shift.after:g}", source="metrics"
            )
        )
    items.sort(key=lambda t: t.at)
    return items


def build_evidence(inputs: EvidenceInputs, progress: Callable[[str, str], None] | None = None) -> Evidence:
    report = progress or _quiet
    started = time.perf_counter()
    degraded: list[Degradation] = list(inputs.degraded)
    alert_at = inputs.alert.created_at.astimezone(UTC)
    timings: dict[str, float] = {}

    log_reads: list[dict[str, Any]] = []
    stats = read_logs(inputs, report, degraded, log_reads)
    timings["logs_s"] = time.perf_counter() - started
    onset, _key_gid = find_onset(stats, inputs.window_start, inputs.window_end, alert_at)
    facts = read_facts(inputs.items(roles.INFRA), inputs.service, inputs.window_start, inputs.window_end)
    onset_from = "logs" if onset is not None else ""
    if onset is None and facts.onset is not None:
        # Container output often has no timestamps; the platform's own times (a termination, an event) date the failure.
        onset, onset_from = facts.onset, f"facts: {facts.onset_fact}"
    if onset is None:
        if stats.untimed and stats.untimed * 2 > stats.events:
            degraded.append(
                Degradation(
                    "onset",
                    "unknown: the logs carry no timestamps and no container or event time dates the failure; "
                    "the alert time stands in for ranking only",
                )
            )
        elif stats.events:
            degraded.append(Degradation("onset", "no error or latency change found in the logs; the alert time stands in for the onset"))
        onset_for_scoring = alert_at
    else:
        onset_for_scoring = onset
    ranked = rank_signatures(stats, inputs.window_start, inputs.window_end, onset)
    keys = _key_signatures(ranked)
    new_count = sum(1 for r in ranked if r.evidence.trend == "new" and r.evidence.score >= KEY_MIN_SCORE)
    report("signatures", f"found {new_count} new error signatures" + (f", onset {onset:%H:%M:%S} UTC" if onset else ""))

    service_names = {inputs.service, inputs.alert.service}
    try:
        candidates, deploys, code_services = _suspects(inputs, stats, keys, onset_for_scoring, degraded, service_names)
    except Exception as exc:  # noqa: BLE001  (suspects are one part; the rest of the evidence stands)
        degraded.append(Degradation("suspects", f"{type(exc).__name__}: {exc}"))
        candidates, deploys, code_services = [], [], []
    timings["suspects_s"] = time.perf_counter() - started - timings["logs_s"]
    code_reads = _code_host_reads(inputs, degraded)

    try:
        shifts = metric_shifts(inputs.series, not_after=inputs.window_end)
    except Exception as exc:  # noqa: BLE001
        degraded.append(Degradation("metrics", f"{type(exc).__name__}: {exc}"))
        shifts = []

    own = our_service(keys, code_services, inputs.service)
    totals = {m: t.events for m, t in stats.minutes.items()}
    classification = classify(
        keys,
        candidates,
        shifts,
        volume=volume_ratio(totals, int(onset.timestamp() // 60) if onset else None),
        service=own,
        own_names={own, inputs.service},
        facts=facts,
    )
    finding: Finding = classification.finding
    if finding.category == "expired_credential":
        # A warning that names the expiry date is often logged once, beside the errors it explains.
        said = ((r.group.source, "\n".join([r.group.text, *r.group.samples])) for r in ranked[:MAX_EXPIRY_LOOKUP])
        stated = expiry_fact(said, finding.component or inputs.service)
        if stated is not None:
            facts.shown.insert(0, stated)
    if classification.supporting:
        # The signature that states the failure (the pool exhausted, the credential rejected) leads, not its aftermath.
        leading = set(classification.supporting)
        ranked.sort(key=lambda r: r.group.gid not in leading)
    cap = AWAY_CAP if finding.category in AWAY_FROM_CODE or finding.category == "unknown" else None
    suspects = _suspect_evidence(candidates, cap)
    if suspects:
        report("suspects", f"top suspect {suspects[0].sha[:7]} (score {suspects[0].score:.2f})")
    report("classify", f"{finding.category} in {finding.component} (confidence {finding.confidence:.2f})")

    finding_text = " ".join(
        [finding.category.replace("_", " "), finding.component or "", *(k.text[:400] for k in keys[:3]), inputs.alert.text]
    )
    runbooks = match_runbooks(inputs.runbooks, finding_text)
    timeline = _timeline(onset, alert_at, ranked, deploys, shifts, inputs.alert.incident_timeline, onset_from)
    timeline += [
        TimelineItem(at=f.at, event=f"{f.reason or f.kind} {f.subject}: {f.detail[:120]}", source="infra")
        for f in facts.shown
        if f.at is not None and f.about_service and (f.failing or f.kind == "rollout")
    ][:6]
    timeline.sort(key=lambda t: t.at)
    timings["total_s"] = time.perf_counter() - started
    return Evidence(
        service=inputs.service,
        window_start=inputs.window_start,
        window_end=inputs.window_end,
        alert_at=alert_at,
        onset=onset,
        onset_from=onset_from,
        facts=facts.shown,
        signatures=[r.evidence for r in ranked],
        suspects=suspects,
        metric_shifts=shifts[:10],
        deploys=[{**d, "at": d["at"].isoformat() if isinstance(d["at"], datetime) else d["at"]} for d in deploys],
        runbooks=runbooks,
        timeline=timeline,
        finding=finding,
        degraded=degraded,
        log_reads=log_reads,
        stats={
            "events": float(stats.events),
            "signatures": float(len(stats.groups)),
            **code_reads,
            **{k: round(v, 3) for k, v in timings.items()},
        },
    )


def _code_host_reads(inputs: EvidenceInputs, degraded: list[Degradation]) -> dict[str, float]:
    """What the code hosts cost (API calls) and could not fetch (commits left without files), said in the evidence.

    Read by attribute: a code host counts its calls (`api_calls`) and keeps what it could not read (`problems`);
    a local clone does neither.
    """
    calls = 0
    for source in inputs.change_sources:
        calls += int(getattr(source, "api_calls", 0) or 0)
        for problem in dict.fromkeys(getattr(source, "problems", None) or []):
            degraded.append(Degradation(f"code:{source.name}", str(problem)))
    return {"code_api_calls": float(calls)} if calls else {}
