"""The `gcs` log kind: log objects in a Google Cloud Storage bucket, listed page by page and streamed through google-cloud-storage.

The same model as `s3` (see `objects`): the prefix filled for each day of the window,
one listing page per call (`pageToken`), each object streamed in chunks (gzip or plain,
told by its first bytes, read as stored: no decompressive transcoding, which would
defeat ranged reads). Credentials are Google's application default credentials
(`GOOGLE_APPLICATION_CREDENTIALS`, the metadata server, `gcloud auth application-default
login`); `anonymous` reads a public bucket or an emulator without any.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from integrations import roles
from integrations.errors import SourceError
from integrations.logs import objects
from integrations.logs.store import LogStore, Record, Session, StoreOptions
from integrations.plugin import SourceKind
from integrations.remote_calls import RetryableError

GRANT = "roles/storage.objectViewer on the bucket (storage.objects.list and storage.objects.get)"
# Bytes per ranged read of an object: memory per object stays this, whatever its size.
CHUNK = 4 * 1024 * 1024
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class GcsOptions(StoreOptions):
    bucket: str = Field(min_length=3, max_length=222, description="bucket the logs are written to")
    prefix: str = Field(
        "",
        description="object name prefix of the service's logs; {date:<strftime>} is filled for each UTC day (or hour) of the window, "
        "e.g. logs/checkout/{date:%Y/%m/%d}/",
    )
    project: str | None = Field(None, description="project billed for the requests (default: the credentials' project)")
    endpoint_url: str | None = Field(
        None, description="API endpoint instead of https://storage.googleapis.com (a private endpoint, an emulator)"
    )
    anonymous: bool = Field(False, description="send no credentials: a public bucket, or an emulator")
    page_size: int = Field(1000, ge=1, le=1000, description="objects per listing call")

    @field_validator("prefix")
    @classmethod
    def _template(cls, prefix: str) -> str:
        return objects.check_template(prefix)


class GcsLogs(LogStore):
    """Log objects under a prefix of a Cloud Storage bucket as a log source."""

    kind = "gcs"

    def __init__(self, options: GcsOptions) -> None:
        self._options = options
        self.where = f"Cloud Storage at {options.endpoint_url}" if options.endpoint_url else "Cloud Storage"
        self._client: Any = None
        super().__init__(options, options.name or "gcs")

    def describe(self) -> str:
        return f"gs://{self._options.bucket}/{self._options.prefix} at {self.where}"

    def client(self) -> Any:
        if self._client is None:
            from google.auth.exceptions import DefaultCredentialsError
            from google.cloud import storage

            options = self._options
            endpoint = {"api_endpoint": options.endpoint_url} if options.endpoint_url else None
            try:
                if options.anonymous:
                    from google.auth.credentials import AnonymousCredentials

                    self._client = storage.Client(
                        project=options.project or "anonymous", credentials=AnonymousCredentials(), client_options=endpoint
                    )
                else:
                    self._client = storage.Client(project=options.project, client_options=endpoint)
            except DefaultCredentialsError:
                raise SourceError(
                    f"{self.where}: no Google credentials found (GOOGLE_APPLICATION_CREDENTIALS, the metadata server, "
                    "or gcloud auth application-default login)"
                ) from None
        return self._client

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        bucket = self._options.bucket
        for prefix in objects.prefixes(self._options.prefix, start, end):
            token: str | None = None
            while True:
                blobs, token = session.call(lambda prefix=prefix, token=token: self._list(prefix, token, session), what="list objects")  # type: ignore[misc]
                for blob in blobs:
                    written = (blob.updated or datetime.now(UTC)).astimezone(UTC)
                    if written < start - objects.SKEW:
                        continue
                    uri = f"gs://{bucket}/{blob.name}"

                    def opened(blob: Any = blob) -> Any:
                        # Retries off: a chunk that fails ends this object's read, within the source's deadline.
                        return blob.open("rb", chunk_size=CHUNK, raw_download=True, timeout=session.timeout(), retry=None)

                    def broke(exc: Exception, uri: str = uri) -> SourceError:
                        return SourceError(f"{self.where}: reading {uri} broke off ({type(exc).__name__})")

                    yield from objects.stream_object(opened, start, end, {"object": uri}, written, broke, blob.size)
                if not token:
                    break

    def _list(self, prefix: str, token: str | None, session: Session) -> tuple[list[Any], str | None]:
        client = self.client()
        try:
            found = client.list_blobs(
                self._options.bucket,
                prefix=prefix,
                page_size=self._options.page_size,
                page_token=token,
                timeout=session.timeout(),
                retry=None,
            )
            page = next(found.pages)
            return list(page), found.next_page_token
        except Exception as exc:  # noqa: BLE001  (every client failure becomes a SourceError or a RetryableError)
            raise _error(exc, self.where, f"bucket {self._options.bucket}") from None

    def check(self) -> str:
        """One listing under today's prefix: the credentials and the bucket answer."""
        now = datetime.now(UTC)
        prefix = objects.prefixes(self._options.prefix, now, now)[0]
        client = self.client()
        try:
            found = list(client.list_blobs(self._options.bucket, prefix=prefix, max_results=1, timeout=self._options.timeout_s, retry=None))
        except Exception as exc:  # noqa: BLE001  (every client failure becomes a SourceError)
            raise _error(exc, self.where, f"bucket {self._options.bucket}") from None
        return f"{self.where} lists gs://{self._options.bucket}/{prefix}; {'objects' if found else 'no objects'} there now"


def _error(exc: Exception, where: str, missing: str) -> SourceError:
    """A google-cloud-storage failure as the error a responder can act on; `RetryableError` when another try may work."""
    import requests
    from google.api_core import exceptions

    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, exceptions.GoogleAPICallError):
        status = int(exc.code or 0)
        # The message starts with the request (`GET <url>: `); the URL may carry a token, and the caller names the target.
        said = " ".join(str(exc.message or "").split())
        method, _, rest = said.partition(" ")
        if method.isupper() and ": " in rest:
            said = rest.partition(": ")[2]
        said = said[:200]
        if status in _RETRYABLE_STATUS:
            return RetryableError(f"{where} answered {status} ({said})")
        if status in (401, 403):
            return SourceError(f"{where} refused the credentials ({status}: {said}); they need {GRANT}")
        if status == 404:
            return SourceError(f"{where} has no {missing} (404)")
        return SourceError(f"{where} answered {status} ({said})")
    if isinstance(exc, requests.Timeout):
        return RetryableError(f"{where} did not answer in time ({type(exc).__name__})")
    if isinstance(exc, requests.ConnectionError):
        return SourceError(f"{where} cannot be reached")
    return SourceError(f"{where}: {type(exc).__name__}")


def _check(source: GcsLogs) -> str:
    return source.check()


def _build(options: GcsOptions, _base_dir: Path) -> GcsLogs:
    return GcsLogs(options)


KIND = SourceKind(
    name="gcs",
    role=roles.LOGS,
    options=GcsOptions,
    build=_build,
    check=_check,
    summary="log objects (plain or gzip) under a dated prefix of a Cloud Storage bucket, through google-cloud-storage",
)
