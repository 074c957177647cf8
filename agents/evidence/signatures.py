"""Which log signatures tell the story: onset, trend per signature, and a ranking.

A signature matters when it is new or spiking at the onset, says something fails
(level, failure words), and starts close to the onset. Chronic errors at the same
rate before and after are red herrings and sink to the bottom.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from agents.evidence.lexicon import FAILURE, LEVEL_WEIGHT, ROUTINE
from agents.evidence.logstats import GroupStats, LogStats
from agents.evidence.model import SignatureEvidence, SignatureTrend
from agents.evidence.onset import ChangePoint, first_event_from, rising_change_point
from agents.evidence.templates import VAR

TREND_FACTOR: dict[str, float] = {"new": 1.0, "spiking": 0.8, "steady": 0.12, "chronic": 0.04, "fading": 0.02, "untimed": 0.9}
MAX_SIGNATURES = 25
MAX_PLACEHOLDERS = 12
# Output without timestamps: a line repeated this often says no more than once more.
UNTIMED_REPEAT_CAP = 2
# The first key error may precede the loudest one by a few minutes; look this far back for it.
ONSET_LOOKBACK_MIN = 20
# A descriptive `Key:   value` line (kubectl describe, a printed config) or a bare section header: it states, it does not fail.
_DESCRIPTIVE = re.compile(
    r"^\s*(?!(?:INFO|ERROR|ERR|WARNING|WARN|DEBUG|CRITICAL|FATAL|TRACE|NOTICE|PANIC|SEVERE)\b)"
    r"[A-Z][\w./-]*(?: [A-Za-z][\w./-]*){0,3}:(?:\s{2,}\S.*|\s*)$"
)


@dataclass(slots=True)
class Ranked:
    group: GroupStats
    weight: float
    change: ChangePoint | None
    evidence: SignatureEvidence


def display_template(template: str, texts: list[str]) -> str:
    """The template with every placeholder that held the same text in all samples written out.

    Masking is right for grouping, but a responder (and a search) needs the distinctive
    constant text: the null field's name, the timeout value every failure shows.
    """
    parts = template.split(VAR)
    if len(parts) == 1 or len(parts) > MAX_PLACEHOLDERS + 1 or not texts:
        return template
    pattern = re.compile("(.*?)".join(re.escape(p) for p in parts), re.DOTALL)
    captures = [m.groups() for t in texts if (m := pattern.fullmatch(" ".join(t.split()))) is not None]
    if len(captures) != len(texts):
        return template
    out = [parts[0]]
    for index, tail in enumerate(parts[1:]):
        values = {c[index] for c in captures}
        value = next(iter(values))
        constant = len(values) == 1 and 0 < len(value) <= 200 and (len(texts) > 1 or not any(ch.isdigit() for ch in value))
        out.append((value if constant else VAR) + tail)
    return "".join(out)


def descriptive(group: GroupStats) -> bool:
    """A line that states a setting or a status (`Tolerations:  node.kubernetes.io/not-ready...`), whatever words it holds."""
    return bool(group.samples) and group.exception is None and _DESCRIPTIVE.match(group.samples[0].partition("\n")[0]) is not None


def failure_weight(group: GroupStats) -> float:
    """How much a signature's own words and level say that something fails (0 .. ~1.5)."""
    text = group.text if group.exception is None else f"{group.text} {group.exception}"
    if descriptive(group):
        return LEVEL_WEIGHT["debug"]
    weight = LEVEL_WEIGHT.get(group.level, 0.25)
    failing = FAILURE.search(text) is not None
    if failing:
        weight = max(weight, 0.6) * 1.3
    elif ROUTINE.search(text):
        weight *= 0.3
    if group.server_errors * 2 > group.count:
        weight = max(weight, 0.5)
    if group.frames:
        weight *= 1.2
    if group.http:
        # An access-log line is a symptom seen at the edge; the cause is logged elsewhere.
        weight *= 0.5
    return weight


def _minute_range(stats: LogStats, window_start: datetime, window_end: datetime) -> tuple[int, int] | None:
    if not stats.minutes:
        return None
    first = max(int(window_start.timestamp() // 60), min(stats.minutes))
    last = min(int(window_end.timestamp() // 60), max(stats.minutes))
    return (first, last) if last > first else None


def find_onset(stats: LogStats, window_start: datetime, window_end: datetime, alert_at: datetime) -> tuple[datetime | None, int | None]:
    """The onset (first event of the key signature after its rise) and the id of that signature."""
    span = _minute_range(stats, window_start, window_end)
    if span is None:
        return None, None
    first, last = span
    latest = int(alert_at.timestamp() // 60) + 2
    scored: list[tuple[float, GroupStats, ChangePoint]] = []
    for group in stats.groups.values():
        if group.count < 2:
            continue
        weight = failure_weight(group)
        if weight < 0.3:
            continue
        change = rising_change_point(group.minutes, first, last, latest=latest)
        if change is None:
            continue
        scored.append((weight * change.gain, group, change))
    if not scored:
        return None, None
    scored.sort(key=lambda item: item[0], reverse=True)
    top_score, top_group, top_change = scored[0]
    onset_ts = first_event_from(top_group.first_in_minute, list(top_group.minutes), top_change.minute)
    key_gid = top_group.gid
    for score, group, change in scored[1:12]:
        if score < 0.25 * top_score or change.before > 0:
            continue
        if top_change.minute - ONSET_LOOKBACK_MIN <= change.minute < top_change.minute:
            candidate = first_event_from(group.first_in_minute, list(group.minutes), change.minute)
            if candidate is not None and (onset_ts is None or candidate < onset_ts):
                onset_ts = candidate
    return (datetime.fromtimestamp(onset_ts, UTC) if onset_ts is not None else None), key_gid


def _trend(before: int, after: int, minutes_before: int, minutes_after: int, failing: bool) -> SignatureTrend:
    if after == 0:
        return "fading" if before else "steady"
    if before == 0:
        return "new"
    rate_before = before / max(minutes_before, 1)
    rate_after = after / max(minutes_after, 1)
    if rate_after >= 3 * rate_before and after >= 3:
        return "spiking"
    if rate_after <= rate_before / 3:
        return "fading"
    return "chronic" if failing and before >= 3 else "steady"


def _untimed_order(stats: LogStats) -> dict[int, float]:
    """Per source, the failing groups without timestamps by where they first appear: later ones weigh more (0.4 .. 1.0)."""
    by_source: dict[str, list[GroupStats]] = {}
    for group in stats.groups.values():
        if group.count and group.untimed == group.count and FAILURE.search(group.text) is not None and not descriptive(group):
            by_source.setdefault(group.source, []).append(group)
    order: dict[int, float] = {}
    for groups in by_source.values():
        groups.sort(key=lambda g: g.first_position)
        for index, group in enumerate(groups):
            order[group.gid] = 0.4 + 0.6 * index / (len(groups) - 1) if len(groups) > 1 else 1.0
    return order


def rank_signatures(stats: LogStats, window_start: datetime, window_end: datetime, onset: datetime | None) -> list[Ranked]:
    span = _minute_range(stats, window_start, window_end)
    order = _untimed_order(stats)
    onset_minute = int(onset.timestamp() // 60) if onset is not None else None
    ranked: list[Ranked] = []
    for group in stats.groups.values():
        weight = failure_weight(group)
        failing = (FAILURE.search(group.text) is not None or bool(group.frames)) and not descriptive(group)
        if group.count and group.untimed == group.count:
            # Container output without timestamps: no before and after, and repetition is no rate. What it says and
            # where it stands count: the last errors a container wrote are the ones it died with.
            before, after, trend = 0, group.count, "untimed"
            factor = TREND_FACTOR["untimed"] if failing else TREND_FACTOR["steady"]
            score = weight * factor * math.log1p(min(group.count, UNTIMED_REPEAT_CAP)) * order.get(group.gid, 1.0)
        elif onset_minute is not None and span is not None:
            first, last = span
            before = sum(n for m, n in group.minutes.items() if m < onset_minute)
            after = group.count - group.untimed - before
            trend = _trend(before, after, onset_minute - first, last - onset_minute + 1, failing)
            start_after = first_event_from(group.first_in_minute, list(group.minutes), onset_minute)
            delay_min = (start_after - onset.timestamp()) / 60 if start_after is not None and onset is not None else 1e9
            proximity = 1.0 if delay_min <= 10 else math.exp(-(delay_min - 10) / 30)
            score = weight * TREND_FACTOR[trend] * math.log1p(after) * proximity
        else:
            before, after, trend = 0, group.count, "steady"
            score = weight * math.log1p(group.count)
        change = None
        evidence = SignatureEvidence(
            group_id=group.gid,
            template=display_template(stats.template(group.gid), group.texts),
            count=group.count,
            count_before=before,
            count_after=after,
            first_seen=datetime.fromtimestamp(group.first_ts, UTC) if group.first_ts is not None else None,
            last_seen=datetime.fromtimestamp(group.last_ts, UTC) if group.last_ts is not None else None,
            level=group.level,
            sample=group.samples[0] if group.samples else "",
            source=group.source,
            sources=sorted(group.sources),
            frames=group.frames[:15],
            exception=group.exception,
            trend=trend,
            score=score,
        )
        ranked.append(Ranked(group=group, weight=weight, change=change, evidence=evidence))
    ranked.sort(key=lambda r: r.evidence.score, reverse=True)
    top = ranked[0].evidence.score if ranked and ranked[0].evidence.score > 0 else 1.0
    for item in ranked:
        item.evidence.score = round(item.evidence.score / top, 4)
    return ranked[:MAX_SIGNATURES]
