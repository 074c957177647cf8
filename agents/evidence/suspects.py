"""Rank the changes an incident may be blamed on, each with a score in [0, 1] and a reason.

A commit is suspect when it reached production shortly before the onset and
something ties it to the failure: the stack frames name its files, a config
value it changed shows up in the errors, it is a migration and the errors are
schema or lock errors, or it added a growing structure and the service runs
out of memory. Time alone never makes a culprit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agents.evidence.diffs import DiffFacts, parse_diff
from agents.evidence.lexicon import RESOURCE, SCHEMA
from agents.evidence.logstats import DeployMarker
from core.redaction import MASK, redact_text
from integrations.code.base import ChangeSource, Commit, Deploy

MAX_DIFFS = 60
MAX_SHIPPED = 300
UNKNOWN_PREVIOUS_LOOKBACK = timedelta(hours=72)
COMMIT_LOOKBACK = timedelta(days=14)
_HEX = re.compile(r"(?<![0-9a-f])[0-9a-f]{7,40}(?![0-9a-f])")
_SEMVER = re.compile(r"^(?P<prefix>v?)(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?$")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_WORD = re.compile(r"[a-z][a-z0-9]{3,}")
# Code identifiers an error names (getMfaMethod, push_gateway_timeout_ms): long and mixed enough not to be prose.
_IDENTIFIER = re.compile(r"\b(?:[a-z]+[A-Z]\w*|[a-z]+_[a-z_]+\w*)\b")
MENTIONABLE = re.compile(r"\.(?:sql|ya?ml|json|toml|ini|conf|cfg|env|properties)$|migrat", re.IGNORECASE)
_CONFIG_FILE = re.compile(r"\.(?:ya?ml|json|toml|ini|conf|cfg|env|properties|tf|hcl)$|(?:^|/)(?:config|settings|\.env)", re.IGNORECASE)
_TIMED_OUT = re.compile(r"timed?[ _-]?out", re.IGNORECASE)
_LITERAL = re.compile(r"^[\w.:/@-]+$")
_TRIVIAL_VALUES = {"0", "1", "true", "false", "yes", "no", "on", "off", "null", "none", ""}
_DEPENDENCY_FILES = re.compile(
    r"(?:^|/)(?:go\.(?:mod|sum)|requirements[\w.-]*\.txt|poetry\.lock|package(?:-lock)?\.json|yarn\.lock|pom\.xml|build\.gradle|Gemfile\.lock|Cargo\.lock)$"
)
# The process cannot load a module the build should have shipped: the manifest or image that left it out is the change.
_MISSING_MODULE = re.compile(
    r"no module named '?(?P<py>[\w.]+)|cannot find module '(?P<js>[^']+)'|"
    r"(?:classnotfoundexception|noclassdeffounderror):? (?P<jvm>[\w.$/]+)|error while loading shared libraries: (?P<so>[\w.+-]+)",
    re.IGNORECASE,
)
_BUILD_FILES = re.compile(r"(?:^|/)(?:Dockerfile[\w.-]*|Containerfile|setup\.(?:py|cfg)|pyproject\.toml)$")
_NON_PRODUCTION = re.compile(
    r"(?:^|/)(?:tests?|spec|__tests__|docs?|\.github)/|_test\.go$|(?:^|/)test_[\w]+\.py$|Test\.java$|\.md$|\.spec\.\w+$", re.IGNORECASE
)


@dataclass(slots=True)
class KeyFailure:
    """What the key signatures say, in the form the suspect scoring needs."""

    text: str
    frame_files: set[str]
    frame_functions: set[str]
    frame_lines: dict[str, set[int]]
    numbers: set[float]
    words: set[str]
    identifiers: set[str] = field(default_factory=set)
    mentions: dict[str, float] = field(default_factory=dict)

    @property
    def schema(self) -> bool:
        return SCHEMA.search(self.text) is not None

    @property
    def resource(self) -> bool:
        return RESOURCE.search(self.text) is not None

    @property
    def missing_modules(self) -> set[str]:
        """The modules the errors say cannot be loaded (`PIL`, `express`), by their first name part."""
        return {
            re.split(r"[./]", next(g for g in m.groups() if g))[0].lower() for m in _MISSING_MODULE.finditer(self.text) if any(m.groups())
        }


@dataclass(slots=True)
class Candidate:
    commit: Commit
    deployed_at: datetime | None = None
    deploy_label: str = ""
    signals: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0


@dataclass(slots=True)
class DeployEvent:
    at: datetime
    sha: str
    label: str
    version: str


def key_failure(
    texts: Iterable[str], messages: Iterable[str], frames: Iterable[str], frame_files: set[str], frame_functions: set[str]
) -> KeyFailure:
    text = "\n".join(texts)
    # Numbers come from the messages only: stack-trace line numbers would match any changed value.
    numbers = {float(n) for n in _NUMBER.findall("\n".join(messages))}
    lines: dict[str, set[int]] = {}
    for frame in frames:
        match = re.search(r"([\w.$-]+\.\w+):(\d+)\)?$", frame)
        if match:
            lines.setdefault(match.group(1), set()).add(int(match.group(2)))
    return KeyFailure(
        text=text,
        frame_files=frame_files,
        frame_functions={f for f in frame_functions if len(f) > 2 and not f.startswith("<")},
        frame_lines=lines,
        numbers=numbers,
        # "timed out" is how errors say what a `timeout` setting bounds.
        words=set(_WORD.findall(text.lower())) | ({"timeout"} if _TIMED_OUT.search(text) else set()),
        identifiers=set(_IDENTIFIER.findall("\n".join(messages))),
    )


def _semver_predecessors(version: str) -> list[str]:
    match = _SEMVER.match(version.strip())
    if not match:
        return []
    prefix, major, minor = match.group("prefix"), int(match.group("major")), int(match.group("minor"))
    patch = int(match.group("patch")) if match.group("patch") else None
    found: list[str] = []
    if patch is not None:
        found += [f"{prefix}{major}.{minor}.{p}" for p in range(patch - 1, max(-1, patch - 6), -1)]
    for m in range(minor - 1, max(-1, minor - 3), -1):
        found += [f"{prefix}{major}.{m}.{p}" for p in (9, 8, 7, 6, 5, 4, 3, 2, 1, 0)] if patch is not None else [f"{prefix}{major}.{m}"]
    return found


class SuspectRanker:
    def __init__(self, sources: list[ChangeSource], *, service_names: set[str], degraded: Callable[[str, str], None]) -> None:
        self.sources = sources
        self.service_names = {s.lower() for s in service_names if s}
        self.degraded = degraded
        self._resolved: dict[str, str | None] = {}
        # Services whose start-up lines name a build of this repository: the code under investigation runs there.
        self.code_services: dict[str, int] = {}

    def resolve(self, ref: str) -> str | None:
        ref = ref.strip()
        if ref in self._resolved:
            return self._resolved[ref]
        sha: str | None = None
        for source in self.sources:
            try:
                sha = source.resolve(ref)
            except Exception as exc:  # noqa: BLE001  (a failing code host degrades, never stops the analysis)
                self.degraded(f"code:{source.name}", f"resolve {ref}: {exc}")
                sha = None
            if sha:
                break
        self._resolved[ref] = sha
        return sha

    def _between(self, old: str | None, new: str, limit: int) -> list[str]:
        for source in self.sources:
            try:
                shas = source.commits_between(old, new, limit=limit)
            except Exception as exc:  # noqa: BLE001
                self.degraded(f"code:{source.name}", f"commits between {old} and {new}: {exc}")
                continue
            if shas:
                return shas
        return []

    def deploy_events(self, deploys: list[Deploy], markers: Iterable[DeployMarker], pods: dict[str, float]) -> list[DeployEvent]:
        """Deploys of this code base: from the deploy record, from start-up lines, from pods named after a build."""
        events: dict[str, DeployEvent] = {}

        def keep(at: datetime, ref: str, label: str, version: str) -> None:
            sha = self.resolve(ref)
            if sha is None:
                return
            current = events.get(sha)
            if current is None or at < current.at:
                events[sha] = DeployEvent(at=at, sha=sha, label=label, version=version)

        for deploy in deploys:
            ours = deploy.service.lower() in self.service_names or any(
                name and (name in deploy.service.lower() or deploy.service.lower() in name) for name in self.service_names
            )
            full_sha = re.fullmatch(r"[0-9a-f]{40}", deploy.version) is not None
            if ours or full_sha:
                keep(deploy.at, deploy.sha or deploy.version, f"deploy of {deploy.version} by {deploy.actor or 'unknown'}", deploy.version)
        for marker in markers:
            for ref in filter(None, (marker.sha, marker.version)):
                if self.resolve(ref):
                    if marker.service:
                        self.code_services[marker.service] = self.code_services.get(marker.service, 0) + len(marker.pods) + 1
                    keep(
                        marker.first_seen,
                        ref,
                        f"pods started {marker.version}" + (f" ({marker.sha})" if marker.sha else ""),
                        marker.version,
                    )
                    break
        for pod, first_seen in pods.items():
            for token in _HEX.findall(pod):
                if any(c.isdigit() for c in token) and any(c.isalpha() for c in token):
                    keep(datetime.fromtimestamp(first_seen, UTC), token, f"pod {pod} ran build {token}", token)
        return sorted(events.values(), key=lambda e: e.at)

    def shipped(self, events: list[DeployEvent], commit_time: dict[str, datetime]) -> dict[str, DeployEvent]:
        """Which deploy first put each commit in production."""
        first_deploy: dict[str, DeployEvent] = {}
        previous: str | None = None
        for event in events:
            old = previous
            if old is None:
                old = next((sha for v in _semver_predecessors(event.version) if (sha := self.resolve(v))), None)
            shas = self._between(old, event.sha, MAX_SHIPPED if old else 60)
            if old is None:
                floor = event.at - UNKNOWN_PREVIOUS_LOOKBACK
                shas = [s for s in shas if s in commit_time and commit_time[s] >= floor]
            for sha in shas:
                first_deploy.setdefault(sha, event)
            previous = event.sha
        return first_deploy

    def commits_for(self, start: datetime, end: datetime) -> list[Commit]:
        found: dict[str, Commit] = {}
        for source in self.sources:
            try:
                for commit in source.commits(start, end, limit=2000):
                    found.setdefault(commit.sha, commit)
            except Exception as exc:  # noqa: BLE001
                self.degraded(f"code:{source.name}", f"commits: {exc}")
        return list(found.values())

    def diff(self, sha: str) -> DiffFacts | None:
        for source in self.sources:
            try:
                return parse_diff(source.diff(sha, max_bytes=200_000))
            except Exception as exc:  # noqa: BLE001
                self.degraded(f"code:{source.name}", f"diff {sha[:8]}: {exc}")
        return None


def timing_factor(deployed_at: datetime | None, committed_at: datetime, onset: datetime, have_deploys: bool) -> tuple[float, str]:
    if deployed_at is not None:
        lead = (onset - deployed_at).total_seconds()
        if lead < -120:
            return 0.03, f"deployed {(-lead) / 60:.0f} min after the onset"
        minutes = max(lead, 0) / 60
        factor = 1.0 if minutes <= 30 else max(0.3, 1.0 - (minutes - 30) / 360)
        return factor, f"deployed {minutes:.0f} min before the onset"
    lead = (onset - committed_at).total_seconds()
    if have_deploys:
        return 0.1, "merged but not deployed before the onset"
    if lead < 0:
        return 0.03, "committed after the onset"
    hours = lead / 3600
    return max(0.15, 0.6 - hours / 24), f"committed {hours:.1f} h before the onset (no deploy record)"


def _value_matches(value: str, numbers: set[float], text: str) -> bool:
    if value.lower() in _TRIVIAL_VALUES:
        return False
    try:
        number = float(value)
    except ValueError:
        return len(value) >= 4 and value.lower() in text.lower()
    scaled = {number, number / 1000, number * 1000, number / 1_000_000, number / 60}
    return any(math.isclose(a, b, rel_tol=1e-9) for a in scaled for b in numbers if b != 0)


def _shown(key: str, value: str) -> str:
    """The value as a reason may quote it: "changed password to X" has lost the key=value shape redaction recognises."""
    return value if redact_text(f"{key}={value}") == f"{key}={value}" else MASK


def _key_words(key: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()) if len(w) >= 4}


def score_candidate(candidate: Candidate, facts: DiffFacts | None, failure: KeyFailure, timing: float) -> None:
    commit = candidate.commit
    files = [f.path for f in commit.files]
    production = [p for p in files if not _NON_PRODUCTION.search(p)]
    basenames = {p.rsplit("/", 1)[-1] for p in production}
    evidence = 0.0
    if failure.frame_files and basenames & failure.frame_files:
        hit = sorted(basenames & failure.frame_files)
        frame_score = 0.5
        reason = f"touches {', '.join(hit)} named in the stack frames"
        if facts is not None:
            frame_lines = {(p.rsplit("/", 1)[-1], n) for p in facts.hunks for n in failure.frame_lines.get(p.rsplit("/", 1)[-1], set())}
            on_added = any(n in facts.added_lines.get(p, set()) for p in facts.hunks for (b, n) in frame_lines if b == p.rsplit("/", 1)[-1])
            in_hunk = any(
                lo - 3 <= n <= hi + 3
                for p, ranges in facts.hunks.items()
                for (b, n) in frame_lines
                if b == p.rsplit("/", 1)[-1]
                for lo, hi in ranges
            )
            added_text = "\n".join(facts.added)
            named = sorted(i for i in failure.identifiers if i in added_text)
            function_hit = any(fn in " ".join(facts.headers) or fn in added_text for fn in failure.frame_functions)
            modules = failure.missing_modules
            if modules and any(re.search(rf"\b{re.escape(m)}\b", line.lower()) for line in facts.removed for m in modules):
                # The failing import was there before this change (it only edited the line): a module the build
                # no longer ships is a packaging change, not this one.
                frame_score = 0.3
                reason += " (an import that was already there)"
            elif on_added:
                frame_score = 0.85
                reason += " (it added the failing line" + (f", which uses {named[0]}" if named else "") + ")"
            elif named:
                frame_score = 0.75
                reason += f" (its new code uses {named[0]}, which the error names)"
            elif in_hunk or function_hit:
                frame_score = 0.65
                reason += " (next to the failing line)" if in_hunk else " (the failing function)"
        candidate.signals["frames"] = frame_score
        candidate.reasons.append(reason)
        evidence = max(evidence, frame_score)
    if facts is not None:
        for change in facts.config:
            if _NON_PRODUCTION.search(change.path) or not _LITERAL.match(change.new):
                continue
            key_words = _key_words(change.key) & failure.words
            if key_words and _value_matches(change.new, failure.numbers, failure.text):
                old = f" from {_shown(change.key, change.old)}" if change.old is not None else ""
                candidate.signals["config"] = 0.85
                candidate.reasons.append(f"changed {change.key}{old} to {_shown(change.key, change.new)}, a value the errors show")
                evidence = max(evidence, 0.85)
                break
            if _CONFIG_FILE.search(change.path) and len(key_words) >= 2:
                candidate.signals["config"] = max(candidate.signals.get("config", 0.0), 0.45)
                candidate.reasons.append(f"changed {change.key} ({', '.join(sorted(key_words))} appear in the errors)")
                evidence = max(evidence, 0.45)
        migration = facts.sql or any("migrat" in p.lower() for p in files)
        if migration and failure.schema:
            table_hit = any(t.split(".")[-1] in failure.text.lower() for t in facts.tables)
            migration_score = 0.8 if table_hit else 0.6
            candidate.signals["migration"] = migration_score
            candidate.reasons.append(
                "a schema migration" + (" on the table the errors name" if table_hit else "") + ", and the errors are schema/lock errors"
            )
            evidence = max(evidence, migration_score)
        if failure.resource and production and facts.growth and not all(_DEPENDENCY_FILES.search(p) for p in production):
            words = _WORD.findall(commit.message.lower())
            memory_words = {"cache", "memory", "keep", "store", "buffer", "pool", "retain", "preload", "goroutine", "thread"} & set(words)
            growth_score = 0.55 if memory_words else 0.35
            candidate.signals["growth"] = growth_score
            candidate.reasons.append("adds state that grows with traffic, and the service runs out of resources")
            evidence = max(evidence, growth_score)
    packaging = [p for p in production if _DEPENDENCY_FILES.search(p) or _BUILD_FILES.search(p)]
    if failure.missing_modules and packaging:
        candidate.signals["packaging"] = 0.7
        candidate.reasons.append(
            f"changes {packaging[0]}, and the errors say {', '.join(sorted(failure.missing_modules))} cannot be loaded"
        )
        evidence = max(evidence, 0.7)
    mentioned = [b for b in {p.rsplit("/", 1)[-1] for p in files} if b in failure.mentions]
    if mentioned:
        candidate.signals["mentioned"] = 0.3
        candidate.reasons.append(f"the logs name {mentioned[0]} around the onset")
        evidence = max(evidence, 0.3)
    if production and all(_DEPENDENCY_FILES.search(p) for p in production) and "packaging" not in candidate.signals:
        evidence *= 0.5
    if not production:
        evidence *= 0.2
    candidate.signals["timing"] = round(timing, 3)
    candidate.score = round(min(1.0, 0.15 * timing + evidence * (0.45 + 0.55 * timing)), 4)
