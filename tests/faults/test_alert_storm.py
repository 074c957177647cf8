"""An alert storm: many PagerDuty incidents for a few services at once, through two web processes. Every alert is
recorded, one investigation runs per service, and the other alerts are linked to it and end with its report.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from harness import Stack, checkout_service, pagerduty_delivery, until

from core.models import Status
from core.store import Store

SERVICES = 3
ALERTS_PER_SERVICE = 8


def test_alert_storm_is_coalesced_into_one_investigation_per_service_and_none_is_lost(stack: Stack, db: Store, example_repo: Path) -> None:
    catalog = Path(stack.env["SERVICES_FILE"])
    extra = "".join(checkout_service(example_repo, name=f"shop-{n}").replace("PCHECKOUT", f"PSHOP{n}") for n in range(SERVICES))
    catalog.write_text(catalog.read_text() + extra, encoding="utf-8")
    web = stack.web(workers=2)
    deliveries = [pagerduty_delivery(f"PSTORM{n:03d}", service_id=f"PSHOP{n % SERVICES}") for n in range(SERVICES * ALERTS_PER_SERVICE)]

    def send(delivery: tuple[bytes, dict[str, str]]) -> int:
        return httpx.post(f"{web.url}/webhooks/pagerduty", content=delivery[0], headers=delivery[1], timeout=15).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(send, deliveries))
    assert statuses == [201] * len(deliveries)

    rows, _ = db.list_investigations(limit=200)
    assert len(rows) == len(deliveries), "every alert is recorded"
    leads = [r for r in rows if r.parent_id is None]
    assert sorted(r.service for r in leads) == [f"shop-{n}" for n in range(SERVICES)]
    lead_of = {r.service: r.id for r in leads}
    assert all(r.parent_id == lead_of[r.service] for r in rows if r.parent_id is not None)

    stack.worker()

    def all_finished() -> bool:
        current, _ = db.list_investigations(limit=200)
        return all(Status(r.status).finished for r in current)

    until(all_finished, timeout=120, every=0.5, what="every alert's investigation finishing")
    rows, _ = db.list_investigations(limit=200)
    assert {r.status for r in rows} <= {Status.done.value, Status.degraded.value}
    assert all(r.report is not None and r.report["investigation_id"] == lead_of[r.service] for r in rows)
    assert all(r.attempts == 0 for r in rows if r.parent_id is not None), "linked alerts never ran a job of their own"
