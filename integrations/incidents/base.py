"""The incidents role: a tracker where a human-facing ticket for an investigation is filed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class NewTicket:
    project: str
    summary: str
    description: str
    labels: list[str] = field(default_factory=list)
    priority: str | None = None
    # A label only this investigation's ticket carries: a retried job finds the ticket it already made.
    marker: str = ""


@dataclass(frozen=True, slots=True)
class TicketRef:
    key: str
    url: str


class TrackerError(Exception):
    """The tracker refused or failed; `permanent` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class IncidentTracker(Protocol):
    name: str

    def find(self, marker: str, *, project: str) -> TicketRef | None:
        """The ticket carrying `marker` as a label, if one was filed already."""
        ...

    def create(self, ticket: NewTicket) -> TicketRef:
        """File the ticket; raises TrackerError."""
        ...
