"""A public incident bundle's logs as a log store holds them, and an investigation of the bundle through a catalog.

A shipper (promtail, filebeat) sends one entry per event, its folded lines (a stack
trace) together, stamped with the event's time; `entries` cuts a bundle's files the
same way, with the file parser, so that a store loaded with them holds the same logs.
`investigate` runs the offline pipeline on the bundle with the given log sources and
the bundle's other sources (repository, deploys, metrics, runbooks), as the worker
would from a catalog.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agents.pipeline import investigate as run_pipeline
from core.alert import Alert, alert_from_payload
from core.catalog import Catalog, ServiceSpec
from integrations.code.git import import_fast_export
from integrations.logs.parsing import parse_stream
from integrations.registry import build_sources

PUBLIC = Path(__file__).resolve().parents[3] / "shared" / "scenarios" / "public"
ALL_BUNDLES = sorted(p for p in PUBLIC.glob("pub-0*") if (p / "logs").is_dir()) if PUBLIC.is_dir() else []
# A store's bundle test checks its transport (pages, fields, times) against files, not the analysis the scenario
# suite scores on every bundle: two bundles of different shapes keep `make test` within its time; IR_ALL_BUNDLES=1
# runs all of them (every one passed for every store when the stores were added).
PAIR = ("pub-02-notifications-worker", "pub-08-payments-api")
BUNDLES = ALL_BUNDLES if os.environ.get("IR_ALL_BUNDLES") else [b for b in ALL_BUNDLES if b.name in PAIR]


@dataclass(frozen=True)
class Entry:
    file: str
    ts: datetime
    text: str


def alert_of(bundle: Path) -> Alert:
    return alert_from_payload(json.loads((bundle / "alert.json").read_text()))


def window_of(bundle: Path) -> tuple[datetime, datetime]:
    """The window `investigate` reads (as `run_local` and the worker's default choose it)."""
    alert = alert_of(bundle)
    return alert.created_at - timedelta(hours=6), alert.created_at + timedelta(minutes=15)


def entries(bundle: Path) -> Iterator[Entry]:
    """Every event of the bundle's log files as one store entry; an event without a time takes the time of the one before."""
    for path in sorted((bundle / "logs").iterdir()):
        with path.open(encoding="utf-8", errors="replace") as handle:
            events = list(parse_stream(handle, path.name))
        timed = [e.ts for e in events if e.ts is not None]
        if not timed:
            continue
        last = timed[0]
        for event in events:
            last = event.ts or last
            yield Entry(path.name, last, event.raw)


def investigate(bundle: Path, logs: list[dict[str, Any]], base_dir: Path) -> dict[str, Any]:
    """The offline report on the bundle, its logs read from `logs` (catalog entries), built through a catalog."""
    alert = alert_of(bundle)
    repo = base_dir / "repo"
    if not repo.exists():
        repo = import_fast_export(bundle / "repo.fi", base_dir)
    roles: dict[str, Any] = {"logs": logs, "code": [{"kind": "git", "path": str(repo)}]}
    if (bundle / "deploys.json").exists():
        roles["deploys"] = [{"kind": "deploys_file", "path": str(bundle / "deploys.json")}]
    if (bundle / "metrics.csv").exists():
        roles["metrics"] = [{"kind": "metrics_csv", "path": str(bundle / "metrics.csv")}]
    if (bundle / "runbooks").exists():
        roles["runbooks"] = [{"kind": "runbooks_dir", "path": str(bundle / "runbooks")}]
    catalog = Catalog(services={alert.service: ServiceSpec.model_validate(roles)}, base_dir=base_dir)
    spec = catalog.get(alert.service)
    assert spec is not None
    start, end = window_of(bundle)
    report = run_pipeline(
        alert=alert, service=alert.service, window_start=start, window_end=end, sources=build_sources(catalog, spec)
    ).to_json_dict()
    assert isinstance(report, dict)
    return report


def findings(report: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """What a store must reproduce: the category, the top signature and the onset."""
    signatures = report.get("signatures") or []
    return report["root_cause"]["category"], signatures[0]["template"] if signatures else None, (report.get("window") or {}).get("onset")
