"""The engine on every public incident bundle: category, culprit, signature, component and onset as truth.json says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agents.evidence.engine import build_evidence
from agents.evidence.model import EvidenceInputs
from agents.offline import write_report
from bench.scoring import score_report
from core.alert import alert_from_payload
from integrations.code.deploys_file import DeploysFile
from integrations.code.git import GitChangeSource, import_fast_export
from integrations.logs.base import LogEvent
from integrations.logs.parsing import parse_stream
from integrations.metrics.csv_file import MetricsCsv
from integrations.registry import ServiceSources
from integrations.roles import CODE, LOGS
from integrations.runbooks.folder import RunbookFolder

PUBLIC = Path("/work/shared/scenarios/public")
BUNDLES = sorted(p for p in PUBLIC.iterdir() if (p / "truth.json").exists()) if PUBLIC.is_dir() else []


class _Folder:
    name = "files"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        for path in sorted(self.folder.iterdir()):
            with path.open(encoding="utf-8", errors="replace") as fh:
                for event in parse_stream(fh, path.name):
                    if event.ts is None or start <= event.ts <= end:
                        yield event


@pytest.mark.skipif(not BUNDLES, reason="public scenario bundles are not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_bundle(bundle: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo = import_fast_export(bundle / "repo.fi", repo.parent)
    alert = alert_from_payload(json.loads((bundle / "alert.json").read_text()))
    start, end = alert.created_at - timedelta(hours=6), alert.created_at + timedelta(minutes=15)
    code = GitChangeSource(repo)
    inputs = EvidenceInputs(
        alert=alert,
        service=alert.service,
        window_start=start,
        window_end=end,
        sources=ServiceSources.holding({LOGS: [_Folder(bundle / "logs")], CODE: [code]}),
        gathered={
            "code": code.commits(start, end),
            "deploys": DeploysFile(bundle / "deploys.json").deploys(start, end) if (bundle / "deploys.json").exists() else [],
            "metrics": MetricsCsv(bundle / "metrics.csv").series(start, end) if (bundle / "metrics.csv").exists() else [],
            "runbooks": RunbookFolder(bundle / "runbooks").runbooks() if (bundle / "runbooks").exists() else [],
        },
    )
    report = write_report(build_evidence(inputs), alert).to_json_dict()
    scores = score_report(report, json.loads((bundle / "truth.json").read_text()))
    failed = {k: v for k, v in scores.items() if v is not None and (v if k == "false_blame" else not v)}
    assert not failed, f"{bundle.name}: {failed}; got {report['root_cause']}"
