"""What the platform states about the service, weighed before any statistic.

A container OOM-killed four times is not a guess from word counts; neither is a pod
that cannot start because a secret key is missing. Each fact points at a kind of
failure (or is context: a restart count, the limits a container runs with); facts
about other workloads in a pasted namespace dump are shown but do not vote.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agents.evidence.model import FactEvidence
from core.timeparse import parse_iso
from integrations.infra.base import InfraFact

# A rollout this close before the first failure fact is the change that brought it.
ROLLOUT_LEAD = timedelta(minutes=45)
MAX_FACTS = 20
MAX_FACT_VOTE = 2.5
# Facts that say something fails; the others (limits, restart counts, rollouts) are context.
FAILING = frozenset(
    {
        "oom_killed",
        "crash_loop",
        "container_error",
        "image_pull",
        "config_error",
        "probe_failed",
        "unschedulable",
        "mount_failed",
        "evicted",
        "node_condition",
        "cpu_throttled",
        "cert_expiry",
        "dns_failure",
        "network_policy",
    }
)
# How strongly a fact, alone, names the kind of failure: the platform's own verdict outweighs a word count.
_POINTS: dict[str, tuple[str, float]] = {
    "oom_killed": ("resource_exhaustion", 1.6),
    "cpu_throttled": ("resource_exhaustion", 0.8),
    "evicted": ("resource_exhaustion", 0.8),
    "unschedulable": ("resource_exhaustion", 0.9),
    "config_error": ("config_change", 2.0),
    "image_pull": ("bad_deploy", 1.6),
    "node_condition": ("infrastructure:node", 1.4),
    "dns_failure": ("infrastructure:dns", 1.2),
    "network_policy": ("infrastructure:network", 1.2),
    "mount_failed": ("infrastructure:storage", 0.9),
    "cert_expiry": ("expired_credential", 1.2),
}
# The process could not even start: the image or its command is wrong (exit 126/127/128, exec errors).
_START_FAILURE = re.compile(r"executable file not found|exec format error|no such file or directory|permission denied|exec:", re.I)
_START_EXIT_CODES = frozenset({126, 127, 128})
_MISSING_CONFIG = re.compile(
    r"(?:configmap|config map|secret)s? \"?[\w.-]+\"? not found|couldn't find key|(?:configmap|secret) [\w./-]+ (?:is )?missing", re.I
)
_TAINT = re.compile(r"untolerated taint|node\.kubernetes\.io/(?:not-ready|unreachable)|node\(s\) had taint", re.I)
# Cluster services every workload depends on: their failures are the platform's, and name it.
_PLATFORM: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?:coredns|kube-dns|node-local-dns)", re.I), "infrastructure:dns"),
    (re.compile(r"^(?:calico|cilium|aws-node|kube-proxy|flannel|weave|antrea|kube-router)", re.I), "infrastructure:network"),
)
_OBJECT_KINDS = frozenset(
    {"pod", "node", "deployment", "replicaset", "statefulset", "daemonset", "job", "cronjob", "horizontalpodautoscaler", "service"}
)
# Kubernetes draws generated name suffixes from this alphabet (no vowels): a word such as "redis" is never one.
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
# A replica set's hash holds a digit; the pod's own five characters follow it.
_POD_SUFFIX = re.compile(rf"-(?=[a-z]*\d)[a-z0-9]{{6,10}}-[a-z0-9]{{5}}$|-{_SAFE}{{5}}$|-\d+$")
_REPLICA_SET_SUFFIX = re.compile(r"-(?=[a-z]*\d)[a-z0-9]{6,10}$")


@dataclass(slots=True)
class FactReading:
    """The facts as evidence: shown, voting, the onset they give, the rollout they follow."""

    shown: list[FactEvidence] = field(default_factory=list)
    votes: dict[str, float] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    components: dict[str, str] = field(default_factory=dict)
    rationale: list[str] = field(default_factory=list)
    onset: datetime | None = None
    onset_fact: str = ""
    rollout_at: datetime | None = None


def workload(subject: str) -> str:
    """The workload a pod or container belongs to: checkout-7d9f8b6c5-x2k4p/checkout → checkout."""
    kind, _, rest = subject.partition("/")
    if kind == "node":
        return rest
    if kind == "replicaset":
        return _REPLICA_SET_SUFFIX.sub("", rest)
    # "kind/name" for objects (deployment/checkout), "pod/container" for containers.
    return _POD_SUFFIX.sub("", rest if kind in _OBJECT_KINDS else kind)


def _platform(fact: InfraFact) -> str | None:
    name = workload(fact.subject)
    return next((target for pattern, target in _PLATFORM if pattern.match(name)), None)


def _about(fact: InfraFact, service: str) -> bool:
    """Whether a fact concerns the service (its pods, its deployment) or the platform under it (nodes, DNS, the network)."""
    if fact.kind in ("node_condition", "dns_failure", "network_policy") or fact.subject.startswith("node/"):
        return True
    if _platform(fact) is not None and fact.kind in FAILING:
        return True
    name, owner = service.lower(), workload(fact.subject).lower()
    # The deployment may be named a little differently from the service (payments for payments-api).
    return name in fact.subject.lower() or (len(owner) >= 4 and (name in owner or owner in name))


def _merge(facts: Iterable[InfraFact]) -> list[InfraFact]:
    """One fact per (kind, subject, reason): the same BackOff seen in describe output and in the events table is one fact."""
    merged: dict[tuple[str, str, str], InfraFact] = {}
    for fact in facts:
        key = (fact.kind, fact.subject.split("/", 1)[0] if fact.kind != "rollout" else fact.subject, fact.reason or "")
        have = merged.get(key)
        if have is None:
            merged[key] = fact
            continue
        first = min((t for t in (have.at, fact.at) if t is not None), default=None)
        last = max((t for t in (have.last_at, fact.last_at, have.at, fact.at) if t is not None), default=None)
        # The richer statement wins: an exit code, else the longer detail.
        better = max((have, fact), key=lambda f: (f.exit_code is not None, len(f.detail)))
        merged[key] = InfraFact(
            kind=better.kind,
            subject=better.subject,
            detail=better.detail,
            at=first,
            last_at=last,
            count=max(have.count, fact.count),
            reason=better.reason,
            exit_code=better.exit_code,
            source=better.source,
            attributes={**have.attributes, **fact.attributes},
        )
    return list(merged.values())


def _start_failure(fact: InfraFact) -> bool:
    return fact.kind in ("container_error", "crash_loop") and (
        fact.exit_code in _START_EXIT_CODES or _START_FAILURE.search(fact.detail) is not None
    )


def read_facts(facts: list[InfraFact], service: str, window_start: datetime, window_end: datetime) -> FactReading:
    reading = FactReading()
    if not facts:
        return reading
    merged = _merge(facts)
    ours = [f for f in merged if _about(f, service)]
    failing = [f for f in ours if f.kind in FAILING]
    rollouts = sorted((f for f in ours if f.kind == "rollout" and f.at is not None), key=lambda f: f.at or window_start)
    timed = sorted((f for f in failing if f.at is not None and window_start <= f.at <= window_end), key=lambda f: f.at or window_start)
    if timed:
        reading.onset, reading.onset_fact = timed[0].at, f"{timed[0].reason or timed[0].kind} on {timed[0].subject}"
    before = [r for r in rollouts if reading.onset is None or (r.at is not None and r.at <= reading.onset + timedelta(minutes=2))]
    if before and (reading.onset is None or (before[-1].at is not None and reading.onset - before[-1].at <= ROLLOUT_LEAD)):
        reading.rollout_at = before[-1].at

    weights: dict[str, list[float]] = {}
    for fact in failing:
        strength = 1.0 + 0.25 * math.log1p(max(fact.count - 1, 0))
        if (platform := _platform(fact)) is not None and fact.kind != "probe_failed":
            # CoreDNS crash-looping is a DNS outage for every service, whatever made it crash.
            target, weight = platform, 1.2
            why = f"{fact.subject} ({workload(fact.subject)}, a cluster service): {fact.detail}"
        elif fact.kind in ("container_error", "mount_failed") and _MISSING_CONFIG.search(fact.detail):
            # The container cannot be set up because a config map, secret or key it names is missing.
            target, weight = "config_change", 2.0
            why = f"{fact.subject} is missing its configuration ({fact.detail})"
        elif _start_failure(fact):
            target, weight = "bad_deploy", 1.6
            why = f"{fact.subject} cannot start its process ({fact.detail})"
        elif fact.kind == "unschedulable" and _TAINT.search(fact.detail):
            target, weight = "infrastructure:node", 1.0
            why = f"{fact.subject} cannot be placed: {fact.detail}"
        elif fact.kind in _POINTS:
            target, weight = _POINTS[fact.kind]
            why = f"{fact.subject}: {fact.detail}"
        else:
            continue
        category, _, detail = target.partition(":")
        weights.setdefault(category, []).append(weight * min(strength, 1.6))
        if detail:
            reading.details.setdefault(category, detail)
        if category == "infrastructure" and fact.subject.startswith("node/"):
            reading.components.setdefault(category, fact.subject.removeprefix("node/"))
        elif category == "infrastructure" and platform is not None:
            reading.components.setdefault(category, workload(fact.subject))
        reading.rationale.append(f"fact: {why[:200]}")
    for category, found in weights.items():
        # One failure seen many ways (a crash loop in describe, in events, on each pod) is one observation, a bit firmer.
        found.sort(reverse=True)
        reading.votes[category] = min(MAX_FACT_VOTE, found[0] + 0.25 * sum(found[1:]))
    if reading.rollout_at is not None and "bad_deploy" in reading.votes:
        reading.rationale.append(f"a rollout at {reading.rollout_at:%H:%M:%S} UTC came just before")

    reading.shown = [_shown(f, _about(f, service)) for f in sorted(merged, key=lambda f: _order(f, service))][:MAX_FACTS]
    return reading


# Symptoms every failing pod shows; what made it fail (an exit code, an OOM kill, a missing key) is shown first.
_SYMPTOMS = frozenset({"crash_loop", "probe_failed"})


def _order(fact: InfraFact, service: str) -> tuple[int, int, int, float]:
    return (
        0 if _about(fact, service) else 1,
        0 if fact.kind in FAILING else 1,
        1 if fact.kind in _SYMPTOMS else 0,
        -(fact.count or 1),
    )


def _shown(fact: InfraFact, ours: bool) -> FactEvidence:
    return FactEvidence(
        kind=fact.kind,
        subject=fact.subject,
        detail=fact.detail,
        at=fact.at,
        last_at=fact.last_at,
        count=fact.count,
        reason=fact.reason,
        exit_code=fact.exit_code,
        source=fact.source,
        failing=fact.kind in FAILING,
        about_service=ours,
    )


# When a certificate or token stopped being valid, as the errors state it.
_EXPIRY = (
    re.compile(r"current time \S+ is after (?P<at>\d{4}-\d{2}-\d{2}T[\d:.]+Z)"),
    re.compile(r"not_?after\"?\s*[:=]\s*\"?(?P<at>\d{4}-\d{2}-\d{2}[T ][\d:.]+Z?)", re.IGNORECASE),
    re.compile(r"NotAfter: (?P<java>[A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2} (?:UTC|GMT) \d{4})"),
    re.compile(r"expired (?:at|on) (?P<at>\d{4}-\d{2}-\d{2}[T ][\d:.]+Z?)", re.IGNORECASE),
)


def expiry_fact(texts: Iterable[tuple[str, str]], subject: str) -> FactEvidence | None:
    """A credential's expiry date seen in the key errors (`source`, `text` pairs), as a fact shown beside the platform's."""
    for source, text in texts:
        for pattern in _EXPIRY:
            if (match := pattern.search(text)) is None:
                continue
            try:
                if match.groupdict().get("java"):
                    at = datetime.strptime(match.group("java").replace("GMT", "UTC"), "%a %b %d %H:%M:%S UTC %Y").replace(tzinfo=UTC)
                else:
                    at = parse_iso(match.group("at").replace(" ", "T"))
            except ValueError:
                continue
            return FactEvidence(
                kind="cert_expiry",
                subject=subject,
                detail=f"credential valid until {at:%Y-%m-%d %H:%M:%S} UTC",
                at=at,
                source=source,
            )
    return None
