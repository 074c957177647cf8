"""`POST /webhooks/pagerduty`: PagerDuty v3 webhooks start investigations like the Slack posts do.

The signature header may carry several `v1=` signatures (one per active secret
while a secret is rotated); any one matching any configured secret is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agents.flows import open_investigation, window_for
from agents.history import record_resolution
from bot.context import BACKEND_ERRORS
from bot.refusals import DeliveryRefused, Endpoint
from bot.service_mapping import catalog_service_for
from core.alert import Alert
from core.catalog import CatalogError
from core.models import Source
from core.queue import QueueUnavailable
from core.runtime import get_store
from core.settings import Settings
from core.timeparse import parse_iso
from integrations.catalog import get_catalog

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-PagerDuty-Signature"
PAGERDUTY_PATH = "/webhooks/pagerduty"
BAD_SIGNATURE = "X-PagerDuty-Signature is missing or matches none of PAGERDUTY_WEBHOOK_SECRETS"
STARTS = frozenset({"incident.triggered", "incident.reopened"})


def signature_valid(body: bytes, header: str | None, secrets: list[str]) -> bool:
    if not header or not secrets:
        return False
    offered = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return True
    return False


def _alert(data: dict[str, Any], service: str) -> Alert:
    created = data.get("created_at")
    try:
        created_at = parse_iso(created) if isinstance(created, str) else datetime.now(UTC)
    except ValueError:
        created_at = datetime.now(UTC)
    pd_service = data.get("service") or {}
    return Alert(
        title=str(data.get("title") or f"PagerDuty incident {data.get('id')}"),
        service=service,
        summary=str(data.get("title") or ""),
        urgency=str(data.get("urgency") or "high"),
        status=str(data.get("status") or "triggered"),
        created_at=created_at,
        source=Source.pagerduty_webhook.value,
        url=data.get("html_url"),
        incident_id=str(data["id"]),
        details={
            "pagerduty_service": pd_service.get("summary"),
            "pagerduty_service_id": pd_service.get("id"),
            "number": data.get("number"),
        },
    )


def handle_event(envelope: dict[str, Any], settings: Settings) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for one verified delivery."""
    event = envelope.get("event") or {}
    event_type = str(event.get("event_type") or "")
    data = event.get("data") or {}
    if event.get("resource_type") != "incident" or not data.get("id"):
        return 202, {"status": "ignored", "reason": f"not an incident event ({event_type or 'no type'})"}
    incident_id = str(data["id"])
    store = get_store()
    if not store.claim_delivery(f"pagerduty-webhook:{event.get('id')}:{incident_id}", "pagerduty_webhook"):
        return 200, {"status": "duplicate"}
    if event_type == "incident.resolved":
        existing = store.find_by_pagerduty(incident_id)
        log.info("pagerduty_incident_resolved", incident_id=incident_id, investigation_id=existing.id if existing else None)
        # What a person wrote ("Resolved: ..." in the thread) says more than PagerDuty's status change: it is kept.
        if existing is not None and not existing.resolution:
            record_resolution(existing.id, _resolution_of(event, data), by="pagerduty", inline=False)
        return 202, {"status": "noted", "investigation_id": existing.id if existing else None}
    if event_type not in STARTS:
        return 202, {"status": "ignored", "reason": event_type}
    try:
        catalog = get_catalog()
    except CatalogError as exc:
        return 503, {"status": "error", "reason": str(exc)}
    pd_service = data.get("service") or {}
    service = catalog_service_for(catalog, settings, name=pd_service.get("summary"), service_id=pd_service.get("id"))
    if service is None:
        log.warning("pagerduty_service_unmapped", service=pd_service.get("summary"), service_id=pd_service.get("id"))
        return 202, {"status": "ignored", "reason": f"PagerDuty service {pd_service.get('summary')!r} is not mapped to a catalog service"}
    alert = _alert(data, service)
    investigation, created = open_investigation(
        alert=alert, service=service, source=Source.pagerduty_webhook, window=window_for(catalog, at=alert.created_at)
    )
    return (201 if created else 200), {"status": "started" if created else "existing", "investigation_id": investigation.id}


def _resolution_of(event: dict[str, Any], data: dict[str, Any]) -> str:
    reason = data.get("resolve_reason")
    who = (event.get("agent") or {}).get("summary")
    said = reason.get("summary") if isinstance(reason, dict) else reason
    return " ".join(part for part in (f"Resolved in PagerDuty{f' by {who}' if who else ''}.", str(said or "")) if part).strip()


def pagerduty_endpoint(settings: Settings) -> Endpoint:
    secrets = [s.get_secret_value() for s in settings.pagerduty_webhook_secrets]

    async def pagerduty_webhook(request: Request, body: bytes) -> Response:
        if not signature_valid(body, request.headers.get(SIGNATURE_HEADER), secrets):
            raise DeliveryRefused(401, "INVALID_SIGNATURE", BAD_SIGNATURE)
        try:
            envelope = json.loads(body)
        except ValueError as exc:
            raise DeliveryRefused(400, "BAD_REQUEST", f"the body is not JSON: {exc}"[:300]) from None
        if not isinstance(envelope, dict):
            raise DeliveryRefused(400, "BAD_REQUEST", "the JSON body is not an object")
        try:
            status, payload = await run_in_threadpool(handle_event, envelope, settings)
        except QueueUnavailable:
            # The row is stored as queued; the worker's sweep queues it once Redis is back.
            return JSONResponse({"status": "accepted", "reason": "queue unavailable; will start when it is back"}, status_code=202)
        except BACKEND_ERRORS:
            log.exception("pagerduty_webhook_store_failed")
            return JSONResponse({"status": "error", "reason": "temporarily unavailable"}, status_code=503)
        return JSONResponse(payload, status_code=status)

    return pagerduty_webhook
