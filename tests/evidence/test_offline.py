"""The offline analyst: a valid report for every category, naming the component, linking the runbook."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from agents.evidence.model import Evidence, Finding, RunbookMatch, SignatureEvidence, SuspectEvidence
from agents.offline import write_report
from agents.report import CATEGORIES
from core.alert import Alert

SCHEMA = Path("/work/shared/contracts/report.schema.json")
AT = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def evidence(category: str, suspect_score: float) -> Evidence:
    return Evidence(
        service="shop",
        window_start=AT - timedelta(hours=6),
        window_end=AT + timedelta(minutes=15),
        alert_at=AT,
        onset=AT - timedelta(minutes=8),
        signatures=[
            SignatureEvidence(group_id=1, template="Connection to orders-db:<*> refused", count=40, count_after=40, trend="new", score=1.0)
        ],
        suspects=[
            SuspectEvidence(sha="a" * 40, score=suspect_score, reason="deployed 5 min before the onset", message="tidy", author="dev")
        ],
        runbooks=[RunbookMatch(title="Database connection errors", path="runbooks/db.md", score=0.6)],
        finding=Finding(category=category, confidence=0.8, component="orders-db" if category == "dependency_failure" else "shop"),
    )


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_gives_a_valid_actionable_report(category: str) -> None:
    blamed = category in ("bad_deploy", "config_change", "data_migration", "resource_exhaustion")
    report = write_report(
        evidence(category, 0.9 if blamed else 0.2), Alert(title="errors", service="shop", created_at=AT), investigation_id="inv-1"
    )
    data = report.to_json_dict()
    if SCHEMA.exists():
        jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert data["root_cause"]["category"] == category
    assert data["actions"] and data["actions"][0]["runbook"] == "runbooks/db.md"
    if blamed:
        assert "aaaaaaaa" in data["root_cause"]["summary"] and "aaaaaaaa" in data["actions"][0]["title"]
    if category == "dependency_failure":
        assert "orders-db" in data["root_cause"]["summary"]
