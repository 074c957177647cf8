"""structlog set-up: JSON in production, pretty on a terminal; context bound once per run."""

from __future__ import annotations

import io
import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import ExcInfo

from core.redaction import redact, redact_text


def _redact_event(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # Last line of defence: whatever reaches a log line passes the same redaction as evidence, nested values included.
    # exc_info stays as it is for format_exc_info; in JSON the formatted trace comes before this and is redacted here.
    for key, value in list(event_dict.items()):
        if key != "exc_info" and isinstance(value, str | dict | list):
            event_dict[key] = redact(value)
    return event_dict


def _redacted_traceback(sio: TextIO, exc_info: ExcInfo) -> None:
    # The console renderer formats exc_info itself, after every processor, so redaction has to happen here.
    # A plain trace rather than rich's: rich wraps long lines (a secret cut in two escapes every pattern) and
    # prints each frame's locals, which is where DSNs and tokens live.
    trace = io.StringIO()
    structlog.dev.plain_traceback(trace, exc_info)
    sio.write(redact_text(trace.getvalue()))


def _add_trace_id(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    try:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
    except ImportError:
        pass
    return event_dict


def configure_logging(fmt: str = "console", level: str = "info", *, stream: Any = None) -> None:
    """Send structlog and stdlib logging to `stream` (stderr by default) in one format."""
    stream = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_id,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty(), exception_formatter=_redacted_traceback)
    )
    # An exception's message can carry a secret (a driver naming its DSN): its trace is rendered before redaction runs.
    last: list[Any] = [structlog.processors.format_exc_info, _redact_event] if fmt == "json" else [_redact_event]
    structlog.configure(
        processors=[*shared, *last, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *last, renderer], foreign_pre_chain=shared
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.getLevelName(level.upper()))
    for noisy in ("httpx", "urllib3", "LiteLLM", "crewai", "rq.worker", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bind_investigation(investigation_id: str) -> None:
    """Every later log line of this run (this thread or task) carries the id."""
    structlog.contextvars.bind_contextvars(investigation_id=investigation_id)


def unbind_investigation() -> None:
    structlog.contextvars.unbind_contextvars("investigation_id")
