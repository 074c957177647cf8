"""Token budget for one investigation, and usage as the API reported it.

The budget is checked before every call with a cheap estimate (chars / 4 of the
request body, which over-counts JSON punctuation and so errs on the safe side);
usage is recorded from each response's `usage` field. crewai keeps totals of
its own, but they count some calls twice, so the report never uses them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str | bytes) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


class BudgetExceeded(Exception):
    """The next call would spend more input tokens than the investigation (or this agent) may."""


@dataclass
class Usage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens


@dataclass
class Budget:
    """Input tokens allowed across all calls, with an optional cap per agent.

    Parallel specialists call at the same time, so a call first reserves its
    estimate; the reservation is replaced by the reported usage when the answer
    arrives (or released when the call fails).
    """

    total: int
    caps: dict[str, int] = field(default_factory=dict)
    used: Usage = field(default_factory=Usage)
    by_agent: dict[str, Usage] = field(default_factory=dict)
    _reserved: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reserve(self, agent: str, estimate: int) -> None:
        with self._lock:
            reserved_all = sum(self._reserved.values())
            mine = self.by_agent.get(agent, Usage()).input_tokens + self._reserved.get(agent, 0)
            if self.used.input_tokens + reserved_all + estimate > self.total:
                raise BudgetExceeded(
                    f"the token budget of {self.total} input tokens is spent ({self.used.input_tokens} used, ~{estimate} more needed)"
                )
            cap = self.caps.get(agent)
            if cap is not None and mine + estimate > cap:
                raise BudgetExceeded(f"{agent} has spent its share of the token budget ({mine} of {cap} input tokens)")
            self._reserved[agent] = self._reserved.get(agent, 0) + estimate

    def settle(self, agent: str, estimate: int, actual: Usage | None) -> None:
        """Replace a reservation by what the API reported; `None` means the call produced no answer."""
        with self._lock:
            self._reserved[agent] = max(0, self._reserved.get(agent, 0) - estimate)
            if actual is None:
                return
            self.used.add(actual)
            self.by_agent.setdefault(agent, Usage()).add(actual)

    def remaining(self) -> int:
        with self._lock:
            return self.total - self.used.input_tokens - sum(self._reserved.values())
