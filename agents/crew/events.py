"""crewai event-bus listeners that turn task and tool events into our progress lines.

The bus is process-wide, so each run registers its own handlers, keeps only
events of its own tasks (by task id), and removes the handlers when it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

ProgressFn = Callable[..., Any]
STAGE = "analysing"


def describe_tool(name: str, args: Any) -> str:
    params = args if isinstance(args, dict) else {}
    if name == "search_logs":
        query = str(params.get("query") or "")
        return f"searching logs for {query[:60]!r}" if query else f"reading signature #{params.get('signature')}"
    if name == "show_commit":
        return f"reading commit {str(params.get('sha', ''))[:10]}"
    if name == "query_metric":
        return f"querying metric {str(params.get('metric', ''))[:60]}"
    if name == "read_runbook":
        return f"reading runbook {str(params.get('title', ''))[:60]!r}"
    if name == "list_suspects":
        return "listing suspect changes"
    return f"using {name}"


class ProgressRelay:
    """Forwards one run's crewai events to `progress`: '<label>: <what it does>'."""

    def __init__(self, progress: ProgressFn) -> None:
        self.progress = progress
        self.labels: dict[str, str] = {}
        self.starts: dict[str, str] = {}
        self._handlers: list[tuple[type[Any], Callable[..., None]]] = []
        self.closed = False

    def track(self, task_id: str, label: str, start_message: str) -> None:
        self.labels[task_id] = label
        self.starts[task_id] = start_message

    def close(self) -> None:
        """Say nothing more: the run was given up (deadline) while its thread may still emit events."""
        self.closed = True

    def _emit(self, message: str) -> None:
        if self.closed:
            return
        try:
            self.progress(STAGE, message)
        except Exception:  # noqa: BLE001  (a progress line is never worth failing the analysis for)
            log.warning("crew_progress_failed", message=message)

    def _label(self, event: Any) -> str | None:
        task_id = getattr(event, "task_id", None)
        if task_id is None and getattr(event, "task", None) is not None:
            task_id = str(event.task.id)
        return self.labels.get(str(task_id)) if task_id is not None else None

    def attach(self) -> None:
        from crewai.events import (
            TaskCompletedEvent,
            TaskFailedEvent,
            TaskStartedEvent,
            ToolUsageStartedEvent,
            crewai_event_bus,
        )

        def on_task_started(_source: Any, event: Any) -> None:
            label = self._label(event)
            if label is not None:
                self._emit(f"{label}: {self.starts[str(event.task_id or event.task.id)]}")

        def on_task_completed(_source: Any, event: Any) -> None:
            label = self._label(event)
            if label is not None:
                self._emit(f"{label}: done")

        def on_task_failed(_source: Any, event: Any) -> None:
            label = self._label(event)
            if label is not None:
                self._emit(f"{label}: stopped ({str(getattr(event, 'error', ''))[:120]})")

        def on_tool(_source: Any, event: Any) -> None:
            label = self._label(event)
            if label is not None:
                self._emit(f"{label}: {describe_tool(event.tool_name, event.tool_args)}")

        self._handlers = [
            (TaskStartedEvent, on_task_started),
            (TaskCompletedEvent, on_task_completed),
            (TaskFailedEvent, on_task_failed),
            (ToolUsageStartedEvent, on_tool),
        ]
        for event_type, handler in self._handlers:
            crewai_event_bus.on(event_type)(handler)

    def detach(self) -> None:
        from crewai.events import crewai_event_bus

        # Handlers run on the bus's own threads; let this run's last lines out before unhooking.
        crewai_event_bus.flush(timeout=2.0)
        for event_type, handler in self._handlers:
            crewai_event_bus.off(event_type, handler)
        self._handlers = []
