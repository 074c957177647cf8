"""Each part of the evidence engine on small synthetic inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from agents.evidence.engine import build_evidence
from agents.evidence.logstats import LogPart, LogStats
from agents.evidence.model import EvidenceInputs
from agents.evidence.onset import rising_change_point
from agents.offline import write_report
from core.alert import Alert
from integrations.code.base import Commit, Deploy, FileChange
from integrations.logs.base import Frame, LogEvent
from integrations.registry import ServiceSources
from integrations.roles import CODE, LOGS

SCHEMA = Path("/work/shared/contracts/report.schema.json")
ALERT_AT = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
ONSET = ALERT_AT - timedelta(minutes=10)
START = ALERT_AT - timedelta(hours=2)
END = ALERT_AT + timedelta(minutes=15)


class ListSource:
    name = "list"

    def __init__(self, events: list[LogEvent]) -> None:
        self._events = events

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        yield from (e for e in self._events if e.ts is None or start <= e.ts <= end)


class BrokenSource:
    name = "broken"

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        raise OSError("disk went away")
        yield  # pragma: no cover


class FakeCode:
    name = "fake"

    def __init__(self, commits: list[Commit], diffs: dict[str, str]) -> None:
        self._commits = commits
        self._diffs = diffs

    def commits(self, start: datetime, end: datetime, *, limit: int = 2000) -> list[Commit]:
        return [c for c in self._commits if start <= c.committed_at <= end][:limit]

    def diff(self, sha: str, *, paths: list[str] | None = None, max_bytes: int = 200_000) -> str:
        return self._diffs.get(sha, "")

    def resolve(self, ref: str) -> str | None:
        return next((c.sha for c in self._commits if c.sha.startswith(ref)), None)

    def commits_between(self, old: str | None, new: str, *, limit: int = 500) -> list[str]:
        shas = [c.sha for c in sorted(self._commits, key=lambda c: c.committed_at, reverse=True)]
        out = shas[shas.index(new) :] if new in shas else []
        return out[: out.index(old)] if old in out else out[:limit]


def ev(minute: float, message: str, level: str = "info", **kwargs: object) -> LogEvent:
    ts = START + timedelta(minutes=minute)
    return LogEvent(ts=ts, level=level, message=message, raw=message, source="app.log", **kwargs)  # type: ignore[arg-type]


def background(chronic: bool = True) -> list[LogEvent]:
    events = [ev(m + 0.1 * i, "request completed", status=200, method="GET") for m in range(135) for i in range(3)]
    if chronic:
        events += [ev(m + 0.5, "failed to flush metrics to statsd:9125: connection refused", "error") for m in range(0, 135, 2)]
    return events


def after_onset(message: str, level: str = "error", **kwargs: object) -> list[LogEvent]:
    base = (ONSET - START).total_seconds() / 60
    return [ev(base + i * 0.3, message, level, **kwargs) for i in range(40)]


def commit(sha: str, minutes_before_onset: float, files: list[str], message: str = "change") -> Commit:
    return Commit(
        sha=sha,
        author="dev",
        committed_at=ONSET - timedelta(minutes=minutes_before_onset),
        message=message,
        files=[FileChange(p, 1, 1) for p in files],
    )


def inputs(
    events: list[LogEvent], commits: list[Commit] | None = None, diffs: dict[str, str] | None = None, deploys: list[Deploy] | None = None
) -> EvidenceInputs:
    code = FakeCode(commits or [], diffs or {})
    return EvidenceInputs(
        alert=Alert(title="errors", service="shop", created_at=ALERT_AT),
        service="shop",
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [ListSource(events)], CODE: [code] if commits else []}),
        gathered={"code": code.commits(START - timedelta(days=1), END), "deploys": deploys or []},
    )


def test_change_point_finds_the_rise() -> None:
    counts = {m: 1 for m in range(0, 100, 5)} | {m: 6 for m in range(60, 100)}
    change = rising_change_point(counts, 0, 99)
    assert change is not None and change.minute == 60


def test_chronic_error_ranks_below_the_new_one_and_onset_is_found() -> None:
    evidence = build_evidence(inputs(background() + after_onset("payment failed: NullPointerException in charge")))
    assert evidence.onset is not None and abs((evidence.onset - ONSET).total_seconds()) < 60
    top = evidence.signatures[0]
    assert "NullPointerException" in top.template and top.trend == "new"
    chronic = next(s for s in evidence.signatures if "statsd" in s.template)
    assert chronic.trend == "chronic" and chronic.score < 0.2


def test_dependency_outage_blames_no_commit() -> None:
    deployed = commit("a" * 40, 30, ["src/orders/service.py"], "tidy orders")
    events = background() + after_onset("could not connect to server: Connection to orders-db:5432 refused", peers=("orders-db",))
    evidence = build_evidence(
        inputs(events, [deployed], deploys=[Deploy(at=ONSET - timedelta(minutes=25), service="shop", version="a" * 40)])
    )
    assert evidence.finding.category == "dependency_failure"
    assert evidence.finding.component == "orders-db"
    assert all(s.score < 0.5 for s in evidence.suspects)


def test_config_value_in_the_errors_blames_the_config_commit() -> None:
    culprit = commit("b" * 40, 20, ["config/production.yaml"], "lower push timeout")
    other = commit("c" * 40, 25, ["src/app.py"], "refactor")
    diff = "+++ b/config/production.yaml\n@@ -3,3 +3,3 @@\n push:\n-  timeout_ms: 2500\n+  timeout_ms: 25\n"
    events = background() + after_onset("push failed: Read timed out. (read timeout=0.025)")
    deploys = [Deploy(at=ONSET - timedelta(minutes=5), service="shop", version="b" * 40)]
    evidence = build_evidence(inputs(events, [culprit, other], {"b" * 40: diff}, deploys))
    assert evidence.suspects[0].sha == "b" * 40 and evidence.suspects[0].score >= 0.5
    assert "timeout_ms" in evidence.suspects[0].reason
    assert evidence.finding.category == "config_change"


def test_migration_with_lock_errors_is_a_data_migration() -> None:
    culprit = commit("d" * 40, 60, ["migrations/0007_widen_orders_note.up.sql"], "widen orders.note")
    diff = "+++ b/migrations/0007_widen_orders_note.up.sql\n@@ -0,0 +1 @@\n+ALTER TABLE orders ALTER COLUMN note TYPE text;\n"
    events = background() + after_onset("query failed: ERROR: canceling statement due to statement timeout on orders")
    deploys = [Deploy(at=ONSET - timedelta(minutes=2), service="shop", version="d" * 40)]
    evidence = build_evidence(inputs(events, [culprit], {"d" * 40: diff}, deploys))
    assert evidence.finding.category == "data_migration"
    assert evidence.suspects[0].sha == "d" * 40 and evidence.suspects[0].score >= 0.5


def test_frames_tie_the_deploy_to_the_crash() -> None:
    culprit = commit("e" * 40, 15, ["src/main/java/shop/CartService.java"], "support coupons")
    bystander = commit("f" * 40, 16, ["README.md"], "docs")
    frames = [Frame(file="shop/CartService.java", function="shop.CartService.apply", line=42)]
    events = background() + after_onset("java.lang.NullPointerException: coupon is null", frames=frames)
    deploys = [Deploy(at=ONSET - timedelta(minutes=3), service="shop", version="e" * 40)]
    diff = "+++ b/src/main/java/shop/CartService.java\n@@ -40,2 +40,3 @@\n a\n b\n+        coupon.trim();\n"
    evidence = build_evidence(inputs(events, [culprit, bystander], {"e" * 40: diff}, deploys))
    assert evidence.finding.category == "bad_deploy"
    assert evidence.suspects[0].sha == "e" * 40 and evidence.suspects[0].score >= 0.5


@pytest.mark.skipif(not SCHEMA.exists(), reason="the report schema is not present")
def test_empty_window_and_no_logs_still_give_a_valid_report() -> None:
    schema = json.loads(SCHEMA.read_text())
    for events in ([], [ev(-500, "long ago", "error")]):
        evidence = build_evidence(inputs(events))
        assert evidence.finding.category == "unknown"
        report = write_report(evidence, Alert(title="errors", service="shop", created_at=ALERT_AT))
        jsonschema.validate(report.to_json_dict(), schema)


def test_a_failing_source_degrades() -> None:
    data = inputs(background())
    data.sources.add(LOGS, BrokenSource())
    evidence = build_evidence(data)
    assert any("disk went away" in d.reason for d in evidence.degraded)


def test_untimed_lines_do_not_crash() -> None:
    events = [LogEvent(ts=None, level="error", message="boom \udcff", raw="boom", source="x.log") for _ in range(5)]
    evidence = build_evidence(inputs(events))
    assert evidence.signatures and evidence.onset is None


def test_log_statistics_read_the_typed_fields_of_events() -> None:
    at = START + timedelta(minutes=1)
    pod = "shop-7d9f8b6c5-x2k4q"
    part = LogPart(START, END)
    for event in [
        LogEvent(at, "info", "GET /v1/items 503", "gw", "gw.log", status=503, duration_ms=120.0, method="GET"),
        LogEvent(at, "info", "GET /v1/items 200", "gw", "gw.log", status=200, duration_ms=40.0, method="GET"),
        LogEvent(at, "info", "starting shop", "app", "app.log", version="2.4.1", host=pod),
        LogEvent(at, "error", "charge failed", "app", "app.log", error_text="gateway timeout", peers=("stripe",), pod=pod),
    ]:
        part.add(event)

    stats = LogStats.merge([part.seal()])

    totals = stats.minutes[int(at.timestamp() // 60)]
    assert (totals.server_errors, totals.latency_n, totals.latency_sum_ms) == (1, 2, 160.0)
    groups = {group.text: group for group in stats.groups.values()}
    failed = groups["charge failed | gateway timeout"]
    assert (failed.names, failed.services) == ({"stripe": 1}, {"shop": 1})
    assert groups["GET /v1/items 503"].http and groups["GET /v1/items 503"].server_errors == 1
    marker = stats.markers["2.4.1|"]
    assert (marker.service, marker.pods) == ("shop", {pod})
    assert stats.pods == {pod: at.timestamp()}


def test_a_code_hosts_calls_and_what_it_could_not_read_are_in_the_evidence() -> None:
    data = inputs(background(), commits=[commit("c" * 40, 10, ["app/pricing.py"])])
    [code] = data.change_sources
    code.api_calls = 42  # type: ignore[attr-defined]
    code.problems = ["12 older commits listed without files (max_commits_with_files=200)"]  # type: ignore[attr-defined]

    evidence = build_evidence(data)

    assert evidence.stats["code_api_calls"] == 42.0
    assert [(d.component, d.reason) for d in evidence.degraded if d.component.startswith("code:")] == [
        (f"code:{code.name}", "12 older commits listed without files (max_commits_with_files=200)")
    ]
    assert "code_api_calls" not in build_evidence(inputs(background())).stats
