"""The whole investigation path on a public bundle with the LLM crew answering from the stand-in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from standin_openai import Call, Reply, StandinOpenAI

from agents.pipeline import run_local
from core.alert import alert_from_payload
from core.settings import reset_settings
from integrations.code.git import import_fast_export

SHARED = Path(__file__).resolve().parents[3] / "shared"
BUNDLE = SHARED / "scenarios" / "public" / "pub-03-checkout"


def _script(call: Call) -> Reply:
    if "incident commander" in call.system.lower():
        text = json.dumps(call.messages)
        category = re.search(r"engine finding: category=(\w+)", text)
        return Reply.json(
            {
                "category": category.group(1) if category else "unknown",
                "component": "payments-api",
                "confidence": 0.8,
                "summary": "Every call to payments-api is rejected since the onset.",
                "blamed_commits": [],
                "cited_files": [],
                "cited_metrics": [],
                "actions": [{"title": "Rotate the payments-api token", "detail": "", "kind": "mitigate", "runbook": None}],
            }
        )
    return Reply.text("The key signature starts at the onset.")


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLE.is_dir(), reason="public scenario bundles are not there")
def test_a_public_bundle_gets_a_crew_report_that_keeps_the_contract(
    standin: StandinOpenAI, app_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.script = _script
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-standin-key-0000")
    monkeypatch.setenv("OPENAI_BASE_URL", standin.base_url)
    reset_settings()
    repo = tmp_path / "repo"
    repo = import_fast_export(BUNDLE / "repo.fi", repo.parent)
    alert = alert_from_payload(json.loads((BUNDLE / "alert.json").read_text()), source="cli")
    report = run_local(
        alert=alert,
        logs=BUNDLE / "logs",
        repo=repo,
        deploys=BUNDLE / "deploys.json",
        metrics=BUNDLE / "metrics.csv",
        runbooks=BUNDLE / "runbooks",
    )
    assert report.analyst == "crew", report.degraded
    assert report.usage.llm_calls == standin.usage_sent["calls"] > 0
    assert report.usage.input_tokens <= 15_000
    assert report.root_cause.component == "payments-api"
    schema = json.loads((SHARED / "contracts" / "report.schema.json").read_text())
    jsonschema.validate(report.to_json_dict(), schema)
