"""The runbook role: what the team wrote down about handling incidents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Runbook:
    title: str
    path: str
    text: str


class RunbookSource(Protocol):
    name: str

    def runbooks(self) -> list[Runbook]: ...
