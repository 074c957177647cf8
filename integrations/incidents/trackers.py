"""The ticketing tools configured for this deployment; the agents ask here by capability, never for a concrete class.

A tool is one module with `LABEL`, `CAPABILITIES` and `from_settings(settings) -> tool | None`
(None when its settings are not all set); adding one is a module and a line in
`TOOLS`. Modules load their client library only when a tool is built, and only
tools with the capability asked for are built (building Jira logs in).
"""

from __future__ import annotations

import importlib
from typing import cast

from core.settings import Settings
from integrations.incidents.base import Capability, IncidentReader, IncidentTracker, NoteWriter, TicketingTool

TOOLS: dict[str, str] = {
    "jira": "integrations.incidents.jira",
    "pagerduty": "integrations.incidents.pagerduty",
    "servicenow": "integrations.incidents.servicenow",
}


def configured_tool(settings: Settings, name: str) -> TicketingTool | None:
    """The tool `name` built from settings; None when it is unknown or not configured. Raises TrackerError."""
    module = TOOLS.get(name)
    if module is None:
        return None
    return cast(TicketingTool | None, importlib.import_module(module).from_settings(settings))


def label_of(name: str) -> str:
    """How people name the tool `name` ("ServiceNow"); the name itself for an unknown one."""
    module = TOOLS.get(name)
    return str(importlib.import_module(module).LABEL) if module else name


def configured_tools(settings: Settings, capability: Capability, *, besides: frozenset[str] = frozenset()) -> list[TicketingTool]:
    able = [name for name, module in TOOLS.items() if name not in besides and capability in importlib.import_module(module).CAPABILITIES]
    tools = (configured_tool(settings, name) for name in able)
    return [tool for tool in tools if tool is not None]


def readers(settings: Settings) -> list[IncidentReader]:
    return [cast(IncidentReader, tool) for tool in configured_tools(settings, Capability.read)]


def note_writers(settings: Settings) -> list[NoteWriter]:
    return [cast(NoteWriter, tool) for tool in configured_tools(settings, Capability.note)]


def tracker(settings: Settings, name: str) -> IncidentTracker | None:
    """The tool `name` when it is configured and files tickets."""
    tool = configured_tool(settings, name)
    return cast(IncidentTracker, tool) if tool is not None and Capability.create in tool.capabilities else None


def button_trackers(settings: Settings) -> list[IncidentTracker]:
    """The trackers offered as "Create <tool> incident" buttons: all but Jira, which keeps its own button and table."""
    return [cast(IncidentTracker, tool) for tool in configured_tools(settings, Capability.create, besides=frozenset({"jira"}))]


def configured_tracker(settings: Settings) -> IncidentTracker | None:
    """The Jira tracker behind the Create Jira button, or None when Jira is not configured."""
    return tracker(settings, "jira")
