"""Reports rendered from Jinja2 templates; a team may override any of them from TEMPLATES_DIR."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from agents.report import Report

BUILTIN = Path(__file__).resolve().parent / "templates"
TEMPLATES = {"markdown": "report.md.j2", "html": "report.html.j2", "jira": "report.jira.j2", "slack": "report.slack.j2"}


class TemplateProblem(ValueError):
    """A report template is missing or does not render; raised at start-up, not at 3 a.m."""


def _short(value: str | None, length: int = 8) -> str:
    return (value or "")[:length]


def _when(value: str | None) -> str:
    """ISO-8601 as `2026-03-10 13:31:58 UTC`: responders compare times across tools, seconds are enough."""
    if not value:
        return "?"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _pct(value: float | None) -> str:
    return f"{(value or 0) * 100:.0f}%"


def _clip(value: str | None, length: int = 300) -> str:
    value = value or ""
    return value if len(value) <= length else value[: length - 1] + "…"


def _human(value: str | None) -> str:
    return (value or "").replace("_", " ")


@lru_cache(maxsize=8)
def environment(override_dir: str | None = None) -> Environment:
    loaders = [FileSystemLoader(override_dir)] if override_dir else []
    loaders.append(FileSystemLoader(str(BUILTIN)))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(short=_short, when=_when, pct=_pct, clip=_clip, human=_human, tojson_compact=lambda v: json.dumps(v, default=str))
    return env


def render(report: Report | dict[str, Any], fmt: str, *, override_dir: str | Path | None = None, **context: Any) -> str:
    """The report as `markdown`, `html`, `jira` (wiki markup), `slack` (the plain-text fallback of the Block Kit message) or `json`."""
    data = report.to_json_dict() if isinstance(report, Report) else report
    if fmt == "json":
        return json.dumps(data, indent=2, default=str)
    name = TEMPLATES.get(fmt)
    if name is None:
        raise ValueError(f"unknown report format {fmt!r}; use json, {', '.join(TEMPLATES)}")
    template = environment(str(override_dir) if override_dir else None).get_template(name)
    return template.render(report=data, **context)


def validate_templates(override_dir: str | Path | None, sample: Report) -> None:
    """Render every template once with a sample report so a broken override fails at start-up."""
    for fmt in TEMPLATES:
        try:
            render(sample, fmt, override_dir=override_dir, report_url="http://example.invalid/report", thread_url=None)
        except TemplateError as exc:
            raise TemplateProblem(f"report template for {fmt} does not render: {exc}") from exc
