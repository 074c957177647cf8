"""The `cloud_logging` log kind: Google Cloud Logging entries read with google-cloud-logging (`entries:list` over HTTP/JSON).

The window is added to the catalog's filter in RFC 3339 UTC (`timestamp>="..." AND
timestamp<="..."`), entries come oldest first (`timestamp asc`), and the client follows
`nextPageToken` page by page as they are consumed. A failed request ends the client's
iterator, so a retry starts a new listing from the time of the last entry read, leaving
out the entries already read at that instant (by `insertId`).

An entry's `textPayload`, or its `jsonPayload` as a JSON object (with its `severity`
when the payload states no level), is the line; its `labels`, `resource.labels`, the
resource type, the log name, the trace and the HTTP request fields are its labels.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import Field

from integrations import roles
from integrations.errors import SourceError
from integrations.logs.store import LogStore, Record, Session, StoreOptions
from integrations.logs.store_fields import first_page, flat_labels, iso_utc, stated_line
from integrations.plugin import SourceKind
from integrations.remote_calls import RetryableError

MAX_PAGE = 1000
# Keys a JSON payload states its level with; when none is there the entry's severity is added.
_LEVEL_KEYS = ("level", "severity", "lvl", "log.level", "levelname")


class CloudLoggingOptions(StoreOptions):
    project: str = Field(min_length=1, description="Google Cloud project whose logs are read")
    filter: str = Field(
        "", description='Logging query for the service, e.g. resource.type="k8s_container" AND labels.app="checkout" (the window is added)'
    )
    endpoint_url: str | None = Field(
        None, description="API root to call instead of https://logging.googleapis.com (a private endpoint, a test server)"
    )
    anonymous: bool = Field(
        False, description="send no credentials (only for a local emulator or test server); default: application default credentials"
    )
    page_size: int = Field(MAX_PAGE, ge=1, le=MAX_PAGE, description="entries per request (Cloud Logging allows at most 1000)")


class CloudLoggingSource(LogStore):
    kind = "cloud_logging"

    def __init__(self, options: CloudLoggingOptions) -> None:
        self.options: CloudLoggingOptions = options
        self.url = (options.endpoint_url or "https://logging.googleapis.com").rstrip("/")
        super().__init__(options)

    def describe(self) -> str:
        return f"Cloud Logging {self.options.filter or 'every entry'!r} in project {self.options.project} at {self.url}"

    def window_filter(self, start: datetime, end: datetime) -> str:
        window = f'timestamp>="{iso_utc(start, digits=6)}" AND timestamp<="{iso_utc(end, digits=6)}"'
        return f"({self.options.filter}) AND {window}" if self.options.filter.strip() else window

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        client = self._client(session)
        where = f"Cloud Logging at {self.url} for project {self.options.project}"
        # Where a new listing resumes after a failed request: the last time read, and the entries read at that time.
        resume_at, read_there = start, set[str]()
        entries: Iterator[Any] | None = None

        def page() -> list[Any]:
            nonlocal entries
            if entries is None:
                entries = iter(
                    client.list_entries(
                        resource_names=[f"projects/{self.options.project}"],
                        filter_=self.window_filter(resume_at, end),
                        order_by="timestamp asc",
                        page_size=self.options.page_size,
                    )
                )
            try:
                return self._guarded(lambda: list(islice(entries, self.options.page_size)))
            except SourceError:
                entries = None
                raise

        while True:
            batch = session.call(page, what=where)
            records: list[Record] = []
            for entry in batch:
                if entry.timestamp is not None and entry.timestamp == resume_at and entry.insert_id in read_there:
                    continue
                if entry.timestamp is not None and entry.timestamp != resume_at:
                    resume_at, read_there = entry.timestamp, set()
                read_there.add(entry.insert_id)
                records.append(record_of(entry))
            yield records
            if len(batch) < self.options.page_size:
                return

    def _client(self, session: Session) -> Any:
        import google.auth
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError
        from google.auth.transport.requests import AuthorizedSession

        try:
            credentials = AnonymousCredentials() if self.options.anonymous else google.auth.default()[0]
        except DefaultCredentialsError:
            raise SourceError(
                "Cloud Logging: no Google credentials found (set GOOGLE_APPLICATION_CREDENTIALS or run on a machine with a service account)"
            ) from None

        class TimedSession(AuthorizedSession):
            """Every request bounded by what remains of the source's deadline (the client's own default is a minute)."""

            def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
                kwargs["timeout"] = session.timeout()
                return super().request(method, url, *args, **kwargs)

        options = {"api_endpoint": self.url} if self.options.endpoint_url else None
        # Imported by name: mypy, once it follows google-cloud-logging's typed part of the `google.cloud` namespace,
        # no longer sees the untyped google-cloud-storage beside it (integrations/artifacts/stores.py).
        client_class = importlib.import_module("google.cloud.logging").Client
        return client_class(
            project=self.options.project, credentials=credentials, _http=TimedSession(credentials), _use_grpc=False, client_options=options
        )

    def _guarded(self, call: Any) -> Any:
        import requests
        from google.api_core import exceptions

        try:
            return call()
        except (
            exceptions.TooManyRequests,
            exceptions.ServiceUnavailable,
            exceptions.InternalServerError,
            exceptions.GatewayTimeout,
        ) as exc:
            raise RetryableError(f"answered {exc.code} ({_said(exc)})") from None
        except (exceptions.Unauthorized, exceptions.Forbidden) as exc:
            raise SourceError(
                f"refused the credentials ({exc.code} {_said(exc)}); the account needs roles/logging.viewer on the project"
            ) from None
        except exceptions.GoogleAPICallError as exc:
            raise SourceError(f"rejected the listing ({exc.code} {_said(exc)})") from None
        except requests.RequestException as exc:
            raise RetryableError(f"no answer ({type(exc).__name__})") from None


def _said(exc: Any) -> str:
    """The API's own message, without the method and URL the client puts before it."""
    text = " ".join(str(getattr(exc, "message", "") or "").split())
    return re.sub(r"^[A-Z]+ \S+: ", "", text)[:300]


def record_of(entry: Any) -> Record:
    """One entry: its payload as the line, its labels, resource labels and request fields as labels."""
    severity = str(entry.severity) if entry.severity else None
    payload = entry.payload
    if isinstance(payload, dict):
        fields = dict(payload)
        if severity and not any(key in fields for key in _LEVEL_KEYS):
            fields["severity"] = severity.lower()
        line = json.dumps(fields, ensure_ascii=False, default=str)
    else:
        line = stated_line(str(payload or ""), severity.lower() if severity else None)
    labels = flat_labels(entry.labels or {})
    if entry.resource is not None:
        labels["resource.type"] = str(entry.resource.type)
        # GKE names the pod `pod_name`, the container `container_name`: the names the typed fields read.
        flat_labels(entry.resource.labels or {}, into=labels)
    if entry.log_name:
        labels["log_name"] = str(entry.log_name)
    if entry.trace:
        labels["trace_id"] = str(entry.trace).rsplit("/", 1)[-1]
    request = entry.http_request or {}
    for key, label in (("status", "status"), ("requestMethod", "method"), ("latency", "latency"), ("requestUrl", "url")):
        if request.get(key) not in (None, ""):
            labels[label] = str(request[key])
    ts = entry.timestamp.astimezone(UTC) if entry.timestamp is not None else None
    return Record(ts, line, labels)


def _check(source: CloudLoggingSource) -> str:
    first = first_page(CloudLoggingSource(source.options.model_copy(update={"page_size": 10})), timedelta(hours=1))
    return f"{source.describe()}: credentials accepted, {first} entries in the last hour (first page)"


def _build(options: CloudLoggingOptions, _base_dir: Path) -> CloudLoggingSource:
    return CloudLoggingSource(options)


KIND = SourceKind(
    name="cloud_logging",
    role=roles.LOGS,
    options=CloudLoggingOptions,
    build=_build,
    check=_check,
    summary="Google Cloud Logging entries (entries:list) with google-cloud-logging",
)
