"""The `grafana_annotations` deploys kind: deploy markers a team puts on its Grafana dashboards, read as deploys.

CD pipelines often post an annotation per deploy (`POST /api/annotations` with tags
such as `deploy`, `service:checkout`, `version:v1.3.0`); the dashboards show them as
markers on the same graphs the metric kinds read. This kind asks `GET /api/annotations`
for those in the window carrying the configured tags (Grafana answers newest first,
at most `limit` a page, so pages move `to` back to the oldest one seen) and turns each
into a `Deploy`: its time, the service and version its `service:`/`version:` tags name
(else the source's `service` and the text's first line), and who posted it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field

from integrations import roles
from integrations.code.base import Deploy
from integrations.errors import SourceError
from integrations.metrics.grafana import GrafanaConnection
from integrations.metrics.prometheus import PrometheusApi
from integrations.plugin import SourceKind, SourceOptions
from integrations.remote_calls import Deadline, RetryableError, with_retries

PAGE = 100
_HTML_TAG = re.compile(r"<[^>]{0,200}>")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_SHA_TAGS = ("sha", "commit", "git_sha")


class GrafanaAnnotationsOptions(SourceOptions, GrafanaConnection):
    tags: list[str] = Field(
        ["deploy"], min_length=1, description="tags a deploy marker carries (all of them, unless match_any); `k` matches any `k:v`"
    )
    match_any: bool = Field(False, description="a marker needs only one of the tags")
    dashboard_uid: str | None = Field(None, description="only markers of this dashboard (default: organisation-wide and every dashboard's)")
    service: str | None = Field(None, description="service a marker is of when no service tag names one (default: none)")
    service_tag: str = Field("service", description="tag key naming the deployed service, as in service:checkout")
    version_tag: str = Field("version", description="tag key naming the version, as in version:v1.3.0 (default: the text's first line)")
    max_annotations: int = Field(500, ge=1, le=10_000, description="most markers read for one window; the newest are kept")
    deadline_s: float = Field(20.0, gt=0, description="longest time for reading the window, retries included")
    timeout_s: float = Field(10.0, gt=0, description="longest wait for one request")
    retries: int = Field(3, ge=0, le=10, description="retries of one request on 429 and 5xx answers, within the deadline")


def _tag_values(tags: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for tag in tags:
        key, sep, value = str(tag).partition(":")
        if sep and value.strip():
            values.setdefault(key.strip().lower(), value.strip())
    return values


def deploy_of(item: dict[str, Any], options: GrafanaAnnotationsOptions) -> Deploy | None:
    """The `Deploy` one annotation records; None when it has no time."""
    at_ms = item.get("time")
    if not isinstance(at_ms, int | float) or isinstance(at_ms, bool):
        return None
    tags = _tag_values([str(t) for t in item.get("tags") or []])
    text = " ".join(_HTML_TAG.sub(" ", str(item.get("text") or "")).split("\n", 1)[0].split())[:200]
    sha = next((tags[k].lower() for k in _SHA_TAGS if _SHA.match(tags.get(k, "").lower())), None)
    return Deploy(
        at=datetime.fromtimestamp(at_ms / 1000, UTC),
        service=tags.get(options.service_tag.lower()) or options.service or "",
        version=tags.get(options.version_tag.lower()) or text or f"annotation {item.get('id')}",
        actor=str(item.get("login") or item.get("email") or ""),
        sha=sha,
    )


class GrafanaAnnotationsSource:
    def __init__(self, options: GrafanaAnnotationsOptions, *, transport: httpx.BaseTransport | None = None) -> None:
        self.name = options.name or "grafana_annotations"
        self.options = options
        self.api = options.api("", what="Grafana", timeout_s=options.timeout_s, retries=options.retries, transport=transport)

    def _params(self, first_ms: int, last_ms: int, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"from": first_ms, "to": last_ms, "limit": limit, "type": "annotation", "tags": self.options.tags}
        if self.options.match_any:
            params["matchAny"] = "true"
        if self.options.dashboard_uid:
            params["dashboardUID"] = self.options.dashboard_uid
        return params

    def annotations(self, start: datetime, end: datetime, deadline: Deadline) -> list[dict[str, Any]]:
        """The raw annotations in [start, end], newest first, at most `max_annotations`."""
        first_ms, last_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        found: dict[int, dict[str, Any]] = {}
        limit = min(PAGE, self.options.max_annotations)
        while len(found) < self.options.max_annotations:
            call = partial(self._page, self._params(first_ms, last_ms, limit), deadline)
            page = with_retries(call, retries=self.options.retries, deadline=deadline)
            fresh = [item for item in page if isinstance(item.get("id"), int) and item["id"] not in found]
            for item in fresh:
                found[item["id"]] = item
            times = [item["time"] for item in page if isinstance(item.get("time"), int)]
            # A short page is the last; a page adding nothing (a full page at one millisecond) cannot move `to` further.
            if len(page) < limit or not fresh or not times:
                break
            last_ms = min(times)
        newest_first = sorted(found.values(), key=lambda item: (item.get("time") or 0, item["id"]), reverse=True)
        return newest_first[: self.options.max_annotations]

    def _page(self, params: dict[str, Any], deadline: Deadline) -> list[dict[str, Any]]:
        body = grafana_json(self.api, "/api/annotations", params, deadline.timeout(self.options.timeout_s))
        if not isinstance(body, list):
            raise SourceError(f"{self.api.where} answered /api/annotations without a list")
        return [item for item in body if isinstance(item, dict)]

    def deploys(self, start: datetime, end: datetime) -> list[Deploy]:
        deadline = Deadline(self.options.deadline_s)
        found = [deploy_of(item, self.options) for item in self.annotations(start, end, deadline)]
        # Grafana matches annotations overlapping the window; a deploy is at its marker's start.
        return sorted((d for d in found if d is not None and start <= d.at <= end), key=lambda d: d.at)


def grafana_json(api: PrometheusApi, path: str, params: dict[str, Any], timeout: float) -> object:
    """The JSON of a GET to Grafana's own API; 429/5xx retryable, a refused token and other errors as SourceError."""
    try:
        with api.client(timeout) as client:
            response = client.get(path, params=params)
    except httpx.TimeoutException:
        raise RetryableError(f"{api.where} did not answer within {timeout:.1f}s") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"{api.where} cannot be reached ({type(exc).__name__})") from None
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    message = " ".join(str(body.get("message") or "").split())[:300] if isinstance(body, dict) else ""
    detail = f": {message}" if message else ""
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After", "")
        wait = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
        raise RetryableError(f"{api.where} answered {status}{detail}", wait_s=wait)
    if status in (401, 403):
        raise SourceError(f"{api.where} refused the token ({status}{detail}); it needs the annotations:read permission (Viewer has it)")
    if status >= 400 or body is None:
        raise SourceError(f"{api.where} answered {status} for {path}{detail or ' without JSON'}")
    return body


def _check(source: GrafanaAnnotationsSource) -> str:
    deadline = Deadline(source.options.deadline_s)
    params = source._params(0, int(datetime.now(UTC).timestamp() * 1000), 1)
    latest = with_retries(lambda: source._page(params, deadline), retries=source.options.retries, deadline=deadline)
    tags = ", ".join(source.options.tags)
    if not latest:
        return f"{source.api.where}: no annotation tagged {tags} yet"
    deploy = deploy_of(latest[0], source.options)
    when = f"{deploy.at:%Y-%m-%d %H:%M} UTC" if deploy else "?"
    return f"{source.api.where}: latest annotation tagged {tags} at {when}"


def _build(options: GrafanaAnnotationsOptions, _base_dir: Path) -> GrafanaAnnotationsSource:
    return GrafanaAnnotationsSource(options)


KIND = SourceKind(
    name="grafana_annotations",
    role=roles.DEPLOYS,
    options=GrafanaAnnotationsOptions,
    build=_build,
    check=_check,
    summary="Grafana annotations tagged as deploy markers (GET /api/annotations), read as deploys",
)
