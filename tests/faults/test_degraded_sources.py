"""The LLM timing out or failing, and evidence sources that hang: the investigation still ends with a report,
marked degraded with the reason, within the configured deadlines.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from harness import EXAMPLE, EXAMPLE_AT, Stack, checkout_service, until
from standin_openai import Call, Reply, StandinOpenAI

from core.models import Investigation, Status
from core.store import Store


def start_one(web_url: str, api_key: str, service: str = "checkout") -> str:
    import httpx

    response = httpx.post(
        f"{web_url}/api/v1/investigations",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"service": service, "alert_text": "5xx on /pay", "at": EXAMPLE_AT},
        timeout=15,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def finished(db: Store, investigation_id: str) -> Investigation | None:
    row = db.require(investigation_id)
    return row if Status(row.status).finished else None


@pytest.mark.parametrize("failure", ["timeout", "error"])
def test_llm_timing_out_or_failing_gives_the_offline_report_marked_degraded(
    failure: str, stack: Stack, llm: StandinOpenAI, db: Store, api_key: str
) -> None:
    def script(_call: Call) -> Reply:
        return Reply.text("too late", delay_s=5) if failure == "timeout" else Reply.error(503)

    llm.script = script
    web = stack.web()
    stack.worker(
        OPENAI_API_KEY="sk-test-faults-0000000000000000",
        OPENAI_BASE_URL=llm.base_url,
        LLM_TIMEOUT_S="1",
        LLM_MAX_RETRIES="0",
        LLM_DEADLINE_S="20",
    )
    investigation_id = start_one(web.url, api_key)

    final = until(lambda: finished(db, investigation_id), timeout=90, every=0.5, what="the investigation finishing")

    assert final.status == Status.degraded.value, final.error
    assert llm.calls, "the crew did try the LLM"
    assert final.report is not None
    llm_notes = [d["reason"] for d in final.report["degraded"] if d["component"] == "llm"]
    assert llm_notes and "offline" in llm_notes[0]
    assert final.report["root_cause"]["category"] == "bad_deploy", "the offline analyst still names the cause"


def test_hanging_log_and_runbook_sources_are_cut_off_at_their_deadlines(
    stack: Stack, db: Store, api_key: str, tmp_path: Path, example_repo: Path
) -> None:
    stuck = tmp_path / "stuck"
    (stuck / "runbooks").mkdir(parents=True)
    # Opening a FIFO nobody writes to blocks forever: a runbook store that never answers.
    os.mkfifo(stuck / "runbooks" / "never-answers.md")
    # A sparse 64 GiB log: no disk used, yet far more than can be read before the deadline.
    with (stuck / "huge.log").open("wb") as huge:
        huge.truncate(64 * 1024**3)
    extra = f"""    logs: [{{kind: files, paths: ["{EXAMPLE}/logs/*.log", "{stuck}/huge.log"]}}]
    runbooks: [{{kind: runbooks_dir, path: "{stuck}/runbooks"}}]
"""
    slow = checkout_service(example_repo, name="checkout-stuck").split("    logs:")[0] + extra
    catalog = Path(stack.env["SERVICES_FILE"])
    catalog.write_text(catalog.read_text() + slow, encoding="utf-8")
    web = stack.web()
    stack.worker(SOURCE_DEADLINE_S="2", LOG_READ_DEADLINE_S="3")
    started = time.monotonic()
    investigation_id = start_one(web.url, api_key, service="checkout-stuck")

    final = until(lambda: finished(db, investigation_id), timeout=60, every=0.5, what="the investigation finishing")

    assert time.monotonic() - started < 45
    assert final.status == Status.degraded.value, final.error
    assert final.report is not None
    reasons = {d["component"]: d["reason"] for d in final.report["degraded"]}
    assert "no answer within 2s" in reasons.get("runbooks:runbooks_dir", ""), reasons
    assert any("stopped reading after 3s" in r for r in reasons.values()), reasons
