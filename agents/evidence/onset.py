"""When did it start: change points in per-minute counts.

A Poisson change point (the split that best explains the counts as two rates)
is robust to steady noise: a chronic error at the same rate before and after
gains nothing from a split, a new error gains a lot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChangePoint:
    minute: int
    gain: float
    before: int
    after: int
    rate_before: float
    rate_after: float


def _xlogx_over(n: float, t: float) -> float:
    return n * math.log(n / t) if n > 0 and t > 0 else 0.0


def rising_change_point(counts: Mapping[int, int], first: int, last: int, *, latest: int | None = None) -> ChangePoint | None:
    """The minute in [first, last] after which the rate rose most (log-likelihood gain), or None.

    `latest` bounds where the split may fall (an incident starts before its alert fires).
    """
    if last <= first or not counts:
        return None
    total_minutes = last - first + 1
    total = sum(n for m, n in counts.items() if first <= m <= last)
    if total == 0:
        return None
    base = _xlogx_over(total, total_minutes)
    ordered = sorted(m for m in counts if first <= m <= last)
    best: ChangePoint | None = None
    before = 0
    stop = last if latest is None else min(last, latest)
    # Only minutes holding events can start the rise: the split is just before one.
    for minute in ordered:
        if minute > stop:
            break
        if minute > first:
            t1 = minute - first
            t2 = total_minutes - t1
            after = total - before
            r1, r2 = before / t1, after / t2
            if r2 > r1:
                gain = _xlogx_over(before, t1) + _xlogx_over(after, t2) - base
                if best is None or gain > best.gain:
                    best = ChangePoint(minute, gain, before, after, r1, r2)
        before += counts[minute]
    return best


def first_event_from(first_in_minute: Mapping[int, float], minutes: Sequence[int], start_minute: int) -> float | None:
    """Epoch seconds of the first event at or after `start_minute`."""
    later = [m for m in minutes if m >= start_minute]
    return first_in_minute[min(later)] if later else None
