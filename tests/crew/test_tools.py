"""The specialists' read-only tools: bounded results that say 'narrow your query' when cut, redacted, evidence-only commits."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from crew_fixtures import CULPRIT, SECRETS, T0, make_alert, make_evidence

from agents.crew.digest import Digest
from agents.crew.tools import MAX_LINES, NARROW, Toolbox, crew_tools, relevant_hunks
from agents.evidence.model import Evidence
from integrations.code.git import GitChangeSource
from integrations.logs.base import LogEvent
from integrations.metrics.base import Series
from integrations.metrics.csv_file import MetricsCsv
from integrations.registry import ServiceSources
from integrations.roles import CODE, LOGS, METRICS, RUNBOOKS
from integrations.runbooks.folder import RunbookFolder


class ListLogSource:
    """A LogSource over events in memory that records the window it was asked for."""

    name = "memory"

    def __init__(self, events: list[LogEvent]) -> None:
        self._events = events
        self.windows: list[tuple[datetime, datetime]] = []

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        self.windows.append((start, end))
        yield from (e for e in self._events if e.ts is None or start <= e.ts <= end)


def _event(i: int, text: str) -> LogEvent:
    return LogEvent(ts=T0 + timedelta(seconds=i), level="error", message=text, raw=f"2025-10-03 ERROR {text}", source="app.log")


def _toolbox(evidence: Evidence | None = None, sources: ServiceSources | None = None) -> Toolbox:
    evidence = evidence or make_evidence()
    return Toolbox(evidence, Digest(evidence, make_alert()), sources)


def test_search_logs_cuts_at_the_line_limit_and_asks_to_narrow_the_query() -> None:
    source = ListLogSource([_event(i, f"timeout calling payments attempt={i}") for i in range(500)])
    out = _toolbox(sources=ServiceSources.holding({LOGS: [source]})).search_logs("timeout calling payments")
    assert out.startswith("status: ok")
    assert out.count("timeout calling payments attempt=") == MAX_LINES
    assert NARROW in out
    evidence = make_evidence()
    assert source.windows == [(evidence.window_start, evidence.window_end)]


def test_search_logs_finds_signatures_by_id_and_redacts_what_it_returns() -> None:
    out = _toolbox().search_logs("", signature=3)
    assert "sig#3" in out
    for secret in SECRETS:
        assert secret not in out
    assert _toolbox().search_logs("no such words anywhere").startswith("status: no_data")


def test_show_commit_refuses_a_sha_outside_the_evidence() -> None:
    out = _toolbox().show_commit("0123456789abcdef")
    assert out.startswith("status: error") and "list_suspects" in out


def _repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "user.email", "dev@example.com")
    git("config", "user.name", "dev")
    (repo / "src/checkout").mkdir(parents=True)
    (repo / "docs").mkdir()
    (repo / "src/checkout/discounts.py").write_text("def apply(order):\n    return order.total\n")
    (repo / "docs/notes.md").write_text("\n".join(f"line {i}" for i in range(10)) + "\n")
    git("add", ".")
    git("commit", "-qm", "base")
    (repo / "docs/notes.md").write_text("\n".join(f"changed line {i}" for i in range(200)) + "\n")
    (repo / "src/checkout/discounts.py").write_text(
        "def apply(order):\n    return order.discount.total  # password=hunter2-planted-password\n"
    )
    git("add", ".")
    git("commit", "-qm", "Apply discounts before tax")
    return repo, git("rev-parse", "HEAD")


def test_show_commit_puts_the_hunks_of_files_the_failure_names_first_and_cuts_the_rest(tmp_path: Path) -> None:
    repo, sha = _repo(tmp_path)
    evidence = make_evidence()
    evidence.suspects[0].sha = sha
    out = _toolbox(evidence, ServiceSources.holding({CODE: [GitChangeSource(repo)]})).show_commit(sha[:10])
    diff = out[out.index("diff:") :]
    assert diff.index("src/checkout/discounts.py") < diff.index("docs/notes.md")
    assert "order.discount.total" in diff
    assert "hunter2-planted-password" not in out
    assert NARROW in out


def test_relevant_hunks_keeps_whole_order_when_nothing_is_named() -> None:
    diff = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x\n+y\n"
    lines, total = relevant_hunks(diff, [], 80)
    assert lines == ["--- a.py", "@@ -1 +1 @@", "-x", "+y"] and total == 4


def test_query_metric_shows_the_shift_and_the_series_sampled(tmp_path: Path) -> None:
    csv = tmp_path / "metrics.csv"
    rows = ["timestamp,metric,labels,value"]
    for i in range(90):
        at = (T0 - timedelta(minutes=45) + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(f"{at},http_requests_errors_ratio,service=checkout,{0.01 if i < 45 else 0.27}")
    csv.write_text("\n".join(rows) + "\n")
    out = _toolbox(sources=ServiceSources.holding({METRICS: [MetricsCsv(csv)]})).query_metric("errors_ratio")
    assert "0.01 -> 0.27" in out
    assert "points=" in out and "min=0.01 max=0.27" in out


class _FollowingSource:
    """A metric source that holds one series per PromQL it was asked to follow."""

    name = "following"

    def __init__(self, expressions: Sequence[str] = ()) -> None:
        self.expressions = list(expressions)

    def with_alert_expressions(self, expressions: Sequence[str]) -> _FollowingSource:
        return _FollowingSource(expressions)

    def series(self, start: datetime, end: datetime) -> list[Series]:
        return [Series(metric=expr, points=[(start, 1.0), (end, 9.0)]) for expr in self.expressions]


def test_query_metric_reads_what_the_alerts_rule_measures_as_the_investigation_did() -> None:
    evidence = make_evidence()
    alert = make_alert().model_copy(update={"details": {"expr": "rate(payment_errors_total[5m]) > 1"}})
    box = Toolbox(evidence, Digest(evidence, alert), ServiceSources.holding({METRICS: [_FollowingSource()]}), alert=alert)

    out = box.query_metric("payment_errors")

    assert out.startswith("status: ok") and "rate(payment_errors_total[5m]) > 1" in out
    assert (
        _toolbox(sources=ServiceSources.holding({METRICS: [_FollowingSource()]}))
        .query_metric("payment_errors")
        .startswith("status: no_data")
    )


def test_read_runbook_reads_only_runbooks_named_in_the_evidence(tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "rollback-a-deploy.md").write_text("# Rollback a deploy\n" + "\n".join(f"step {i}" for i in range(100)))
    evidence = make_evidence()
    evidence.runbooks[0].path = str(folder / "rollback-a-deploy.md")
    box = _toolbox(evidence, ServiceSources.holding({RUNBOOKS: [RunbookFolder(folder)]}))
    out = box.read_runbook("rollback")
    assert "step 0" in out and "step 99" not in out and "first 60 lines" in out
    assert box.read_runbook("delete the database").startswith("status: error")


def test_list_suspects_gives_reasons_and_crew_tools_carry_argument_schemas() -> None:
    box = _toolbox()
    assert CULPRIT[:12] in box.list_suspects() and "reason=" in box.list_suspects()
    tools = crew_tools(box, ["search_logs", "show_commit", "list_suspects", "query_metric", "read_runbook"])
    assert {t.name for t in tools} == {"search_logs", "show_commit", "list_suspects", "query_metric", "read_runbook"}
    search = next(t for t in tools if t.name == "search_logs")
    assert set(search.args_schema.model_json_schema()["properties"]) == {"query", "signature"}
    assert "sig#1" in search.run(query="NullPointerException", signature=None)
