"""Category, component and confidence from the key signatures, the suspects and the metrics.

Each key signature votes for the kind of failure its words describe (weighted
by its rank); traffic volume and metric shifts vote for a surge; a suspect with
a specific tie to the errors (a config value, a migration, the failing frames)
votes for a code cause. The failure's origin is then named from the evidence:
our service for code, config, migration, resource and traffic incidents, else
the dependency, credential issuer, DNS, node or NAT gateway the errors point at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from agents.evidence.facts import FactReading
from agents.evidence.lexicon import CODE, CONFIG, CREDENTIAL, DEPENDENCY, DNS, IMAGE, NETWORK, NODE, RESOURCE, SCHEMA, TRAFFIC
from agents.evidence.logstats import GroupStats
from agents.evidence.model import Finding, MetricShiftEvidence
from agents.evidence.suspects import Candidate

AWAY_FROM_CODE = frozenset({"dependency_failure", "expired_credential", "traffic_surge", "infrastructure"})
MAX_KEY_SIGNATURES = 5
SURGE_RATIO = 3.0
# Errors starting this long after an exhaustion are taken as its effect.
AFTERMATH_S = 30.0
GROWTH_RATIO = 1.5
_MEMORY_METRIC = re.compile(r"memory|heap|rss|working_set", re.IGNORECASE)
_RATE_METRIC = re.compile(r"request|hits|rps|throughput|qps|per_second|jobs_processed|messages_in", re.IGNORECASE)
_HOST_PATTERNS = (
    re.compile(r"host=['\"]?(?P<name>[A-Za-z][\w.-]+)"),
    # libpq and friends: 'Is the server running on host "orders-db" (10.0.5.4)'.
    re.compile(r"\bhost ['\"](?P<name>[A-Za-z][\w.-]+)['\"]"),
    re.compile(r"[Cc]onnection to (?P<name>[A-Za-z][\w.-]+?)(?::\d+)? (?:refused|timed out|failed|closed|reset)"),
    re.compile(r"(?:dial tcp|connect to|connecting to|connect\(\) to|upstream) (?P<name>[A-Za-z][\w.-]+):\d+"),
    re.compile(r"(?P<name>[A-Za-z][\w-]+(?:\.[\w-]+)*):\d{2,5}\b[^\n]{0,40}(?:refused|timed? ?out|unreachable|reset)"),
    re.compile(r"(?:lookup|resolve|resolving) (?P<name>[A-Za-z][\w.-]+)"),
    re.compile(r"(?:credential|token|certificate|api key) for (?P<name>[A-Za-z][\w.-]+)", re.IGNORECASE),
    # A host by its domain name after what the caller did with it: "send to api.mail.example.com failed", "POST https://x.y/...".
    re.compile(r"(?:\bto|\bfrom|\bat|calling|call to|request to|https?://) ?(?P<name>[a-z][\w-]*(?:\.[\w-]+){2,})", re.IGNORECASE),
)
_NODE_OBJECT = re.compile(r"\bnode/(?P<name>[\w.-]+)")
_POLICY = re.compile(r"network ?polic(?:y|ies)|denied by (?:the )?(?:network )?policy", re.IGNORECASE)
_DNS_SERVICE = re.compile(r"\b(?P<name>core-?dns|kube-dns|node-local-dns)\b", re.IGNORECASE)
_GENERIC_NAMES = frozenset(
    {
        "localhost",
        "127.0.0.1",
        "db",
        "prod",
        "production",
        "default",
        "unknown",
        "none",
        "true",
        "false",
        "failed",
        "error",
        "timeout",
        "timed",
    }
)
# The order settles a line that names two kinds: the more specific one wins.
_ORDER: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("code", IMAGE),
    ("expired_credential", CREDENTIAL),
    ("resource_exhaustion", RESOURCE),
    ("config_change", CONFIG),
    ("infrastructure:dns", DNS),
    ("infrastructure:node", NODE),
    ("infrastructure:network", NETWORK),
    ("traffic_surge", TRAFFIC),
    ("schema", SCHEMA),
    ("code", CODE),
    ("dependency_failure", DEPENDENCY),
)


@dataclass(slots=True)
class KeySignature:
    group: GroupStats
    score: float
    text: str


@dataclass(slots=True)
class Classification:
    finding: Finding
    kind: str
    votes: dict[str, float] = field(default_factory=dict)
    # The key signatures that voted for the finding: the ones that state it, shown first.
    supporting: list[int] = field(default_factory=list)


def kind_of(text: str, *, access_log: bool) -> str | None:
    if access_log:
        return "traffic_surge" if TRAFFIC.search(text) else None
    for kind, pattern in _ORDER:
        if pattern.search(text):
            return kind
    return None


def _names_in(key: KeySignature, own: set[str]) -> list[str]:
    found: list[str] = []
    ranked = sorted(key.group.names.items(), key=lambda kv: kv[1], reverse=True)
    found += [name for name, _ in ranked]
    for pattern in _HOST_PATTERNS:
        found += [m.group("name") for m in pattern.finditer(key.text)]
    names = [re.sub(r":\d+$", "", n).strip(".").lower() for n in found]
    return [n for n in names if n and n not in own and n not in _GENERIC_NAMES and not n[0].isdigit()]


def our_service(keys: list[KeySignature], marker_services: Iterable[str], alert_service: str) -> str:
    """The service whose code runs: where the deploy markers come from, else the one logging the key errors."""
    for name in marker_services:
        if name and not name.endswith((".log", ".jsonl", ".txt")):
            return name
    for key in keys:
        if key.group.frames and key.group.services:
            return max(key.group.services.items(), key=lambda kv: kv[1])[0]
    return alert_service


def _dependency(keys: list[KeySignature], own: set[str]) -> str | None:
    tally: dict[str, float] = {}
    for key in keys:
        for rank, name in enumerate(_names_in(key, own)):
            tally[name] = tally.get(name, 0.0) + key.score / (1 + rank * 0.2)
    if tally:
        return max(tally.items(), key=lambda kv: kv[1])[0]
    for key in keys:
        for source in key.group.sources:
            stem = re.sub(r"\.(?:log|jsonl|json|txt)$", "", source.rsplit("/", 1)[-1])
            if stem and all(o not in stem for o in own):
                return stem
    return None


def _infrastructure_component(detail: str, keys: list[KeySignature]) -> str:
    text = "\n".join(k.text + "\n" + "\n".join(k.group.samples) for k in keys)
    if detail == "node":
        for key in keys:
            obj = next((n for n in key.group.names if n.startswith("node/")), None)
            if obj:
                return obj.split("/", 1)[1]
        match = _NODE_OBJECT.search(text)
        return match.group("name") if match else "node"
    if detail == "dns":
        match = _DNS_SERVICE.search(text)
        return match.group("name").lower() if match else "dns"
    if detail == "storage":
        return "storage"
    if _POLICY.search(text):
        return "network-policy"
    return "nat-gateway"


def volume_ratio(minutes: dict[int, int], onset_minute: int | None) -> float:
    """Events per minute in the 15 minutes after the onset over the hour before (medians)."""
    if onset_minute is None:
        return 1.0
    before = sorted(minutes.get(m, 0) for m in range(onset_minute - 60, onset_minute))
    after = sorted(minutes.get(m, 0) for m in range(onset_minute, onset_minute + 15))
    base = before[len(before) // 2] if before else 0
    now = after[len(after) // 2] if after else 0
    return now / base if base > 0 else 1.0


def _aftermath(voters: dict[str, list[KeySignature]], votes: dict[str, float], rationale: list[str]) -> None:
    """Timeouts and refusals that begin after the service ran out of a resource are its effect, not a dependency's failure.

    A pool, memory or file-descriptor exhaustion makes the caller's own calls wait and time out; the errors that
    name a dependency then follow the exhaustion. When the dependency errors came first, the dependency stands.
    """
    exhausted = [k.group.first_ts for k in voters.get("resource_exhaustion", []) if k.group.first_ts is not None]
    if not exhausted:
        return
    since = min(exhausted)
    moved = [k for k in voters.get("dependency_failure", []) if k.group.first_ts is not None and k.group.first_ts > since + AFTERMATH_S]
    if not moved:
        return
    share = sum(k.score for k in moved)
    votes["dependency_failure"] = votes.get("dependency_failure", 0.0) - share
    votes["resource_exhaustion"] = votes.get("resource_exhaustion", 0.0) + share
    voters["dependency_failure"] = [k for k in voters["dependency_failure"] if k not in moved]
    rationale.append(f"{len(moved)} dependency error signature(s) began after the exhaustion: its effect")


def _category_of(kind: str) -> str:
    category = kind.partition(":")[0]
    return {"code": "bad_deploy", "schema": "dependency_failure"}.get(category, category)


def classify(
    keys: list[KeySignature],
    candidates: list[Candidate],
    shifts: list[MetricShiftEvidence],
    *,
    volume: float,
    service: str,
    own_names: set[str],
    facts: FactReading | None = None,
) -> Classification:
    votes: dict[str, float] = {}
    details: dict[str, str] = {}
    rationale: list[str] = []
    voters: dict[str, list[KeySignature]] = {}
    for key in keys[:MAX_KEY_SIGNATURES]:
        kind = kind_of(key.text, access_log=key.group.http)
        if kind is None:
            continue
        category, _, detail = kind.partition(":")
        if detail:
            details.setdefault(category, detail)
        votes[category] = votes.get(category, 0.0) + key.score
        voters.setdefault(_category_of(kind), []).append(key)
    if facts is not None:
        # What the platform states counts as much as several signatures: it is observed, not inferred.
        for category, weight in facts.votes.items():
            votes[category] = votes.get(category, 0.0) + weight
        # Where the platform says the failure is (a node NotReady, CoreDNS down) outranks what the caller's errors suggest.
        details.update(facts.details)
    if volume >= SURGE_RATIO:
        votes["traffic_surge"] = votes.get("traffic_surge", 0.0) + 0.6
        rationale.append(f"log volume rose {volume:.1f}x at the onset")
    for shift in shifts[:6]:
        if _RATE_METRIC.search(shift.metric) and shift.direction == "up" and shift.before > 0 and shift.after / shift.before >= SURGE_RATIO:
            votes["traffic_surge"] = votes.get("traffic_surge", 0.0) + 0.5
            rationale.append(f"{shift.metric} rose from {shift.before:g} to {shift.after:g}")
            break
    for shift in shifts[:6]:
        # Memory that keeps growing is an exhaustion on its way, even before anything is killed.
        if (
            _MEMORY_METRIC.search(shift.metric)
            and shift.direction == "up"
            and shift.before > 0
            and shift.after / shift.before >= GROWTH_RATIO
        ):
            votes["resource_exhaustion"] = votes.get("resource_exhaustion", 0.0) + 0.35
            rationale.append(f"{shift.metric} grew from {shift.before:g} to {shift.after:g}")
            break
    _aftermath(voters, votes, rationale)
    blamed = [c for c in candidates if c.score >= 0.5]
    config = max(
        (c.signals.get("config", 0.0) for c in blamed if c.signals.get("timing", 0.0) >= 0.8 or c.signals.get("config", 0) >= 0.8),
        default=0.0,
    )
    if config >= 0.45:
        # A config change deployed just before, whose keys or values the errors show, is the cause of the errors
        # talking to a dependency or shedding load that follow: those errors are its effect, and vote for it.
        effect = votes.pop("dependency_failure", 0.0) + votes.pop("traffic_surge", 0.0)
        share = 1.0 if config >= 0.8 else 0.5
        votes["config_change"] = votes.get("config_change", 0.0) + (1.5 if config >= 0.8 else 0.75) + share * effect
        if share < 1.0 and effect:
            votes["dependency_failure"] = (1 - share) * effect
        rationale.append("a config change deployed just before the onset touches what the errors show")
    if any(c.signals.get("migration", 0) >= 0.5 for c in blamed):
        votes["data_migration"] = votes.get("data_migration", 0.0) + 0.8 + votes.pop("schema", 0.0)
    framed = [c for c in blamed if c.signals.get("frames", 0) >= 0.5]
    if framed:
        votes["code"] = votes.get("code", 0.0) + max(c.score for c in framed)
    schema = votes.pop("schema", 0.0)
    if schema:
        # Schema and lock errors without a migration to blame point at the database.
        votes["dependency_failure"] = votes.get("dependency_failure", 0.0) + schema * 0.8
    code = votes.pop("code", 0.0)
    if code:
        votes["bad_deploy"] = votes.get("bad_deploy", 0.0) + code
    votes = {k: v for k, v in votes.items() if v > 0}
    if facts is not None:
        rationale += facts.rationale[:4]
    if not votes:
        return Classification(
            Finding(category="unknown", confidence=0.15, component=service, rationale=["no failure stands out in the logs", *rationale]),
            "unknown",
        )
    category, top = max(votes.items(), key=lambda kv: kv[1])
    total = sum(votes.values())
    confidence = round(min(0.95, 0.3 + 0.45 * (top / total) + 0.2 * min(top, 1.0)), 2)
    own = {n.lower() for n in own_names | {service}}
    supporting = voters.get(category, [])
    if category in ("dependency_failure", "expired_credential"):
        # The origin is named by the errors that state this failure (the rejected credential's issuer, the refusing host),
        # not by whatever else the caller logs.
        component = _dependency(supporting, own) or _dependency(keys, own) or service
    elif category == "infrastructure":
        detail = details.get("infrastructure", "network")
        fact_component = facts.components.get(category) if facts is not None else None
        component = fact_component or _infrastructure_component(detail, keys)
    else:
        component = service
    rationale.insert(0, f"{category} ({', '.join(f'{k} {v:.2f}' for k, v in sorted(votes.items(), key=lambda kv: -kv[1]))})")
    return Classification(
        Finding(category=category, confidence=confidence, component=component, rationale=rationale),
        details.get(category, ""),
        votes,
        [k.group.gid for k in supporting],
    )
