"""The ticketing role: the incident tools people already work in (Jira, PagerDuty, ServiceNow, ...).

Every tool is one module exposing `from_settings(settings)` and a class that
declares what it can do in `capabilities`; the agents ask the registry
(`trackers.py`) for the tools with a capability, never for a concrete class:

- `read`: the incident an alert names (its service, urgency, owners, details, timeline);
- `note`: the finished report's summary and link added to that incident;
- `create`: a new ticket filed for an investigation (the Jira and ServiceNow buttons).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Capability(StrEnum):
    read = "read"
    note = "note"
    create = "create"


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


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    event: str


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """What a tool knows of the incident an investigation is about; times are UTC."""

    tool: str
    key: str
    url: str | None = None
    title: str = ""
    service: str | None = None
    service_id: str | None = None
    urgency: str | None = None
    priority: str | None = None
    assignees: tuple[str, ...] = ()
    opened_at: datetime | None = None
    # Flat strings a person or an alert rule wrote (failing query, host, pod, labels): words the evidence can match.
    details: dict[str, str] = field(default_factory=dict)
    timeline: tuple[TimelineEntry, ...] = ()
    # Reads that did not finish (deadline, rate limit): the facts are partial, and say so.
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Note:
    """The finished report, as a note on the incident it investigated."""

    summary: str
    report_url: str
    # Unique to the investigation and carried in the note's text: a retried job finds the note it already added.
    marker: str


class TrackerError(Exception):
    """The tool refused or failed; `permanent` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class TicketingTool(Protocol):
    name: str
    # How people name the tool ("ServiceNow"), for buttons and messages.
    label: str
    capabilities: frozenset[Capability]

    def incident_key(self, alert: dict[str, Any]) -> str | None:
        """The key of this tool's incident that an alert (Alert.model_dump) names, if any.

        An incident already read for the alert (`details[INCIDENT_TOOLS][name]`) is the one it names.
        """
        ...


class IncidentReader(TicketingTool, Protocol):
    def ref_in(self, word: str) -> str | None:
        """The incident key a word a person typed names (a link, a number), if it names one of this tool's."""
        ...

    def read(self, key: str, *, deadline_s: float) -> IncidentFacts:
        """The incident `key`; raises TrackerError. Parts not read by the deadline are listed in `missing`."""
        ...


class NoteWriter(TicketingTool, Protocol):
    def add_note(self, key: str, note: Note) -> bool:
        """Add the note unless one carrying `note.marker` is there; True when added. Raises TrackerError."""
        ...


class IncidentTracker(TicketingTool, Protocol):
    def find(self, marker: str, *, project: str) -> TicketRef | None:
        """The ticket carrying `marker`, if one was filed already."""
        ...

    def create(self, ticket: NewTicket) -> TicketRef:
        """File the ticket; raises TrackerError."""
        ...
