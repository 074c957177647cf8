"""Read-only tools the specialists may call, over the evidence and the service's sources.

Every tool returns the same shape (status, the parameters it was called with,
the data) and a bounded amount of it; when a result is cut it says so and asks
the model to narrow the query instead of silently dropping lines. Tools never
write anywhere, and every line they return passes redaction.

`Toolbox` is plain Python (tested without crewai); `crew_tools` wraps it in
crewai `BaseTool`s with argument schemas and is only called inside a run.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import structlog
from pydantic import BaseModel, Field

from agents.crew.digest import Digest, quoted
from agents.evidence.model import Evidence, SuspectEvidence
from core.alert import Alert
from core.redaction import redact_text
from integrations.metrics.base import Series, for_alert
from integrations.registry import ServiceSources
from integrations.roles import CODE, LOGS, METRICS, RUNBOOKS

log = structlog.get_logger(__name__)

MAX_LINES = 20
LINE_CHARS = 300
MAX_SCAN_EVENTS = 200_000
MAX_SCAN_S = 5.0
DIFF_LINES = 80
RUNBOOK_LINES = 60
MAX_SERIES = 3
SERIES_POINTS = 24
NARROW = "narrow your query"


def result(status: str, params: dict[str, Any], lines: list[str], *, note: str = "") -> str:
    head = f"status: {status}\nparams: {json.dumps(params, default=str)}"
    body = "\n".join(redact_text(line) for line in lines)
    return "\n".join(part for part in (head, body, note) if part)


class Toolbox:
    def __init__(self, evidence: Evidence, digest: Digest, sources: ServiceSources | None = None, *, alert: Alert | None = None) -> None:
        self.evidence = evidence
        self.digest = digest
        self.sources = sources or ServiceSources()
        # Metric sources read as the investigation read them: with what the alert's own rule measures.
        self.alert = alert

    def list_suspects(self) -> str:
        suspects = self.evidence.suspects[:10]
        lines = [self.digest.suspect_line(s) + (f" signals={json.dumps(s.signals)}" if s.signals else "") for s in suspects]
        note = f"{len(self.evidence.suspects) - 10} lower-ranked suspects not shown" if len(self.evidence.suspects) > 10 else ""
        return result("ok" if lines else "no_data", {}, lines or ["no suspect changes in the window"], note=note)

    def search_logs(self, query: str = "", signature: int | None = None, limit: int = MAX_LINES) -> str:
        params: dict[str, Any] = {"query": query, "signature": signature, "limit": limit}
        limit = max(1, min(limit, MAX_LINES))
        needle = query.strip().lower()
        if not needle and signature is None:
            return result("error", params, ["give a query (words from a log line) or a signature id (sig#)"])
        lines = []
        for sig in self.evidence.signatures:
            text = " ".join([sig.template, sig.sample, sig.exception or "", *sig.frames]).lower()
            if sig.group_id == signature or (needle and needle in text):
                lines.append(self.digest.signature_line(sig))
        if signature is not None and not needle:
            match = next((s for s in self.evidence.signatures if s.group_id == signature), None)
            needle = match.template.split("<")[0].strip().lower()[:60] if match else ""
        raw, cut, scanned_all = self._scan_logs(needle, limit) if needle and self.sources.of(LOGS) else ([], False, True)
        lines += raw
        if not lines:
            return result("no_data", params, [f"no signature or log line in the window matches {query!r}"])
        note = ""
        if cut:
            note = f"more lines match than the {limit} shown: {NARROW} (more words, or a signature id)"
        elif not scanned_all:
            note = f"only the first {MAX_SCAN_EVENTS} events or {MAX_SCAN_S:.0f}s of the window were searched; {NARROW}"
        return result("ok", params, lines, note=note)

    def _scan_logs(self, needle: str, limit: int) -> tuple[list[str], bool, bool]:
        found: list[str] = []
        scanned = 0
        started = time.monotonic()
        for source in self.sources.of(LOGS):
            try:
                for event in source.events(self.evidence.window_start, self.evidence.window_end):
                    scanned += 1
                    if scanned > MAX_SCAN_EVENTS or time.monotonic() - started > MAX_SCAN_S:
                        return found, False, False
                    if needle in event.raw.lower() or needle in event.message.lower():
                        if len(found) >= limit:
                            return found, True, True
                        at = event.ts.strftime("%H:%M:%S") if event.ts else "--:--:--"
                        found.append(f"{at} {source.name} {quoted(event.raw, LINE_CHARS)}")
            except Exception as exc:  # noqa: BLE001  (a failing source is reported to the model, not raised into the crew)
                log.warning("tool_log_source_failed", source=getattr(source, "name", "?"), error=str(exc))
                found.append(f"(log source {getattr(source, 'name', '?')} failed: {type(exc).__name__})")
        return found, False, True

    def show_commit(self, sha: str) -> str:
        params = {"sha": sha}
        suspect = self._suspect(sha)
        if suspect is None:
            return result("error", params, [f"commit {sha!r} is not among the suspects; list_suspects shows the commits you may inspect"])
        lines = [
            f"commit {suspect.sha} author={quoted(suspect.author, 80)}",
            f"committed={suspect.committed_at or '-'} deployed={suspect.deployed_at or '-'}",
            f"message={quoted(suspect.message, 600)}",
            f"files={json.dumps(suspect.files[:20])}" + (f" (+{len(suspect.files) - 20} more)" if len(suspect.files) > 20 else ""),
        ]
        if not self.sources.of(CODE):
            return result("ok", params, [*lines, "diff: unavailable (no code source in this run)"])
        try:
            diff = self.sources.of(CODE)[0].diff(suspect.sha, max_bytes=200_000)
        except Exception as exc:  # noqa: BLE001  (the model learns the diff is unavailable; the run goes on)
            return result("ok", params, [*lines, f"diff: unavailable ({type(exc).__name__})"])
        hunks, total = relevant_hunks(diff, self._named_paths(), DIFF_LINES)
        note = f"diff cut to the {DIFF_LINES} most relevant lines of {total}; {NARROW} (ask about one file)" if total > DIFF_LINES else ""
        return result("ok", params, [*lines, "diff:", *hunks], note=note)

    def query_metric(self, metric: str) -> str:
        params = {"metric": metric}
        needle = metric.strip().lower()
        if not needle:
            return result("error", params, ["give a metric name (or part of one)"])
        lines = [
            line
            for line, m in zip(self.digest.shift_lines(len(self.evidence.metric_shifts)), self.evidence.metric_shifts, strict=False)
            if needle in m.metric.lower()
        ]
        matching: list[Series] = []
        for source in self.sources.of(METRICS):
            try:
                source = for_alert(source, self.alert) if self.alert else source
                matching += [s for s in source.series(self.evidence.window_start, self.evidence.window_end) if needle in s.key.lower()]
            except Exception as exc:  # noqa: BLE001  (see show_commit)
                lines.append(f"(metric source {source.name} failed: {type(exc).__name__})")
        for series in matching[:MAX_SERIES]:
            lines.append(series_line(series))
        if not lines:
            return result("no_data", params, [f"no metric matches {metric!r}"])
        note = f"{len(matching)} series match, {MAX_SERIES} shown: {NARROW} (a longer metric name)" if len(matching) > MAX_SERIES else ""
        return result("ok", params, lines, note=note)

    def read_runbook(self, title: str) -> str:
        params = {"title": title}
        needle = title.strip().lower()
        match = next((r for r in self.evidence.runbooks if needle and (needle in r.title.lower() or needle in r.path.lower())), None)
        if match is None:
            return result(
                "error",
                params,
                [f"no runbook in the evidence matches {title!r}; the evidence lists: {[r.title for r in self.evidence.runbooks]}"],
            )
        for source in self.sources.of(RUNBOOKS):
            try:
                for book in source.runbooks():
                    if book.path == match.path or book.title == match.title:
                        text = book.text.splitlines()
                        note = f"runbook cut to its first {RUNBOOK_LINES} lines" if len(text) > RUNBOOK_LINES else ""
                        return result("ok", params, [f"runbook {quoted(book.title, 120)}", *text[:RUNBOOK_LINES]], note=note)
            except Exception as exc:  # noqa: BLE001  (see show_commit)
                log.warning("tool_runbook_source_failed", error=str(exc))
        return result("ok", params, [f"runbook {quoted(match.title, 120)} path={quoted(match.path, 160)}: text unavailable in this run"])

    def _suspect(self, sha: str) -> SuspectEvidence | None:
        wanted = sha.strip().lower()
        if len(wanted) < 7:
            return None
        hits = [s for s in self.evidence.suspects if s.sha.lower().startswith(wanted)]
        return hits[0] if len(hits) == 1 else None

    def _named_paths(self) -> list[str]:
        """Words of the signatures (frames, templates) that a diff's file names are matched against."""
        words: list[str] = []
        for sig in self.evidence.signatures[:8]:
            words += sig.frames
            words.append(sig.template)
        return words


_HUNK_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)")


def relevant_hunks(diff: str, named: list[str], max_lines: int) -> tuple[list[str], int]:
    """The hunks of a diff that touch files the failure names first, then the others, cut to `max_lines`."""
    hunks: list[tuple[str, list[str]]] = []
    path = ""
    for line in diff.splitlines():
        head = _HUNK_FILE.match(line)
        if head:
            path = head.group(2)
            continue
        if line.startswith("@@"):
            hunks.append((path, [f"--- {path}", line]))
        elif hunks and not line.startswith(("index ", "--- ", "+++ ")):
            hunks[-1][1].append(line[:200])
    haystack = "\n".join(named).lower()

    def weight(item: tuple[str, list[str]]) -> int:
        file = item[0].lower()
        base = file.rsplit("/", 1)[-1]
        return 2 if file and file in haystack else 1 if base and base in haystack else 0

    total = sum(len(lines) for _, lines in hunks)
    out: list[str] = []
    for _, lines in sorted(hunks, key=weight, reverse=True):
        if len(out) >= max_lines:
            break
        out += lines[: max_lines - len(out)]
    return out, total


def series_line(series: Series) -> str:
    points = series.points
    step = max(1, len(points) // SERIES_POINTS)
    sampled = points[::step][:SERIES_POINTS]
    values = ", ".join(f"{_hm(at)}={value:.4g}" for at, value in sampled)
    low = min((v for _, v in points), default=0.0)
    high = max((v for _, v in points), default=0.0)
    return f"series {quoted(series.key, 160)} points={len(points)} min={low:.4g} max={high:.4g} every {step}: {values}"


def _hm(at: datetime) -> str:
    return at.strftime("%H:%M")


class _SearchLogsArgs(BaseModel):
    query: str = Field(description="Words to find in log lines of the incident window (case-insensitive); empty to use a signature id.")
    signature: int | None = Field(description="A signature id (the number after sig#), or null.")


class _ShowCommitArgs(BaseModel):
    sha: str = Field(description="A suspect commit's sha (at least 7 characters).")


class _QueryMetricArgs(BaseModel):
    metric: str = Field(description="A metric name or part of one.")


class _ReadRunbookArgs(BaseModel):
    title: str = Field(description="A runbook title (or part of it) from the evidence.")


class _NoArgs(BaseModel):
    pass


TOOL_TABLE: dict[str, tuple[str, type[BaseModel]]] = {
    "search_logs": (
        "Find log signatures and log lines in the incident window by words or signature id. Returns at most 20 lines.",
        _SearchLogsArgs,
    ),
    "show_commit": ("Show a suspect commit: message, files and the diff hunks most related to the failure.", _ShowCommitArgs),
    "query_metric": ("Show a metric's shift and its values around the onset.", _QueryMetricArgs),
    "read_runbook": ("Read a runbook named in the evidence (first 60 lines).", _ReadRunbookArgs),
    "list_suspects": ("List the suspect changes with their scores and reasons.", _NoArgs),
}


def crew_tools(toolbox: Toolbox, names: list[str]) -> list[Any]:
    """crewai tools for `names`; imports crewai, so only call this inside a run."""
    from crewai.tools import BaseTool

    def build(tool_name: str) -> BaseTool:
        description, schema = TOOL_TABLE[tool_name]
        method = getattr(toolbox, tool_name)

        class _Tool(BaseTool):
            name: str = tool_name
            description: str = ""
            args_schema: type[BaseModel] = schema

            def _run(self, **kwargs: Any) -> str:
                return str(method(**{k: v for k, v in kwargs.items() if v is not None or k == "signature"}))

        return _Tool(description=description)

    return [build(name) for name in names if name in TOOL_TABLE]
