"""Which catalog service a PagerDuty service is: explicit map first, then the catalog's names, aliases and ids."""

from __future__ import annotations

from core.catalog import Catalog
from core.settings import Settings


def catalog_service_for(catalog: Catalog, settings: Settings, *, name: str | None, service_id: str | None) -> str | None:
    candidates = [c for c in (service_id, name) if c]
    explicit = {k.strip().lower(): v for k, v in settings.pagerduty_service_map.items()}
    for candidate in candidates:
        mapped = explicit.get(candidate.strip().lower())
        if mapped:
            return catalog.resolve(mapped) or mapped
    for candidate in candidates:
        resolved = catalog.resolve(candidate)
        if resolved:
            return resolved
    return None


def how_to_map(*, name: str | None, service_id: str | None) -> str:
    """The short thread reply for an unmapped PagerDuty service: exactly what to add, and where."""
    shown = f"*{name}*" if name else "this PagerDuty service"
    ident = f" (id `{service_id}`)" if service_id else ""
    key = service_id or name or "<PagerDuty service id>"
    return (
        f"I don't know which service {shown}{ident} is, so I did not start an investigation. "
        f"Map it in SERVICES_FILE with `pagerduty_service_ids: [{key}]` (or an alias) under the service, "
        f'or set `PAGERDUTY_SERVICE_MAP={{"{key}": "<catalog service>"}}`.'
    )
