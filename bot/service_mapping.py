"""Which catalog service an alert is about: explicit map first, then the catalog's names, aliases and ids.

PagerDuty posts name a PagerDuty service; other tools' posts carry labels (service, app,
namespace, pod, instance, ...) whose values are tried in order of how specific they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.alerts.base import AlertPost
from core.catalog import Catalog
from core.settings import Settings

# Label names tried in this order; the first value the catalog knows wins.
LABEL_ORDER = (
    "service",
    "service_name",
    "app",
    "app_kubernetes_io_name",
    "kube_deployment",
    "deployment",
    "kube_service",
    "job",
    "container",
    "servicename",
    "functionname",
    "pod",
    "pod_name",
    "namespace",
    "kube_namespace",
    "instance",
    "host",
)
# Kubernetes pod names: <deployment>-<replicaset hash>-<pod hash>, <statefulset>-<ordinal>, <daemonset>-<hash>.
_POD_SUFFIX = re.compile(r"(?:-[a-z0-9]{6,10}-[a-z0-9]{5}|-[a-z0-9]{5}|-\d+)$")


def catalog_service_for(catalog: Catalog, settings: Settings, *, name: str | None, service_id: str | None) -> str | None:
    return _first_known(catalog, settings, [c for c in (service_id, name) if c])


def _first_known(catalog: Catalog, settings: Settings, candidates: Iterable[str]) -> str | None:
    candidates = [c for c in candidates if c and c.strip()]
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


def _variants(label: str, value: str) -> list[str]:
    """A label value and the names it implies: a pod's workload, an instance's host without port or domain."""
    value = value.strip()
    out = [value]
    if label in ("pod", "pod_name"):
        out.append(_POD_SUFFIX.sub("", value))
    if label in ("instance", "host"):
        host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
        out += [host, host.split(".")[0], _POD_SUFFIX.sub("", host.split(".")[0])]
    return list(dict.fromkeys(v for v in out if v))


def service_named_in(catalog: Catalog, text: str) -> str | None:
    """The one catalog service whose name or alias appears as a whole word in `text` (an alarm name, a title)."""
    lowered = text.lower()
    found = {
        key
        for key, spec in catalog.services.items()
        for name in (key, *spec.aliases)
        if len(name) >= 3 and re.search(rf"(?<![a-z0-9]){re.escape(name.lower())}(?![a-z0-9])", lowered)
    }
    return found.pop() if len(found) == 1 else None


def catalog_service_for_alert(catalog: Catalog, settings: Settings, post: AlertPost) -> str | None:
    if post.tool == "pagerduty":
        return catalog_service_for(
            catalog, settings, name=post.labels.get("pagerduty_service"), service_id=post.labels.get("pagerduty_service_id")
        )
    labels = {k.lower(): v for k, v in post.labels.items()}
    candidates = [v for label in LABEL_ORDER if label in labels for v in _variants(label, labels[label])]
    hints = [v for hint in post.service_hints for v in _variants("pod", hint)]
    found = _first_known(catalog, settings, [*candidates, *hints])
    if found:
        return found
    return service_named_in(catalog, " ".join([post.title, *post.service_hints]))


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


def how_to_map_alert(post: AlertPost) -> str:
    """The thread reply for a tool's alert whose labels name no catalog service."""
    if post.tool == "pagerduty":
        return how_to_map(name=post.labels.get("pagerduty_service"), service_id=post.labels.get("pagerduty_service_id"))
    shown = ", ".join(f"`{k}={v}`" for k, v in list(post.labels.items())[:6] if k in LABEL_ORDER or k == "alarm")
    tried = shown or ", ".join(f"`{h}`" for h in post.service_hints[:5]) or "nothing I could use"
    key = next(iter(post.service_hints), "<label value>")
    return (
        f"I don't know which service this {post.tool} alert is about (I looked at {tried}), so I did not start an investigation. "
        f"Add the value as an alias of the service in SERVICES_FILE, or set "
        f'`PAGERDUTY_SERVICE_MAP={{"{key}": "<catalog service>"}}`.'
    )
