"""The `s3` log kind: log objects in an S3 bucket, listed by `list_objects_v2` and streamed line by line through boto3.

Keys are listed page by page with continuation tokens, under the prefix filled for each
day of the window (see `objects`). Each object is read as a stream (gzip or plain, told
by its first bytes) and never held whole; its events outside the window are dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from integrations import roles
from integrations.errors import SourceError
from integrations.logs import aws, objects
from integrations.logs.store import LogStore, Record, Session
from integrations.plugin import SourceKind

GRANT = "s3:ListBucket on the bucket and s3:GetObject on its objects"


class S3Options(aws.AwsOptions):
    bucket: str = Field(min_length=3, max_length=63, description="bucket the logs are written to")
    prefix: str = Field(
        "",
        description="key prefix of the service's log objects; {date:<strftime>} is filled for each UTC day (or hour) of the window, "
        "e.g. logs/checkout/{date:%Y/%m/%d}/",
    )
    page_size: int = Field(1000, ge=1, le=1000, description="keys per list_objects_v2 call")

    @field_validator("prefix")
    @classmethod
    def _template(cls, prefix: str) -> str:
        return objects.check_template(prefix)


class S3Logs(LogStore):
    """Log objects under a prefix of an S3 bucket as a log source."""

    kind = "s3"

    def __init__(self, options: S3Options) -> None:
        self._options = options
        self.where = aws.where("S3", options, options.region)
        self._client: Any = None
        super().__init__(options, options.name or "s3")

    def describe(self) -> str:
        return f"s3://{self._options.bucket}/{self._options.prefix} at {self.where}"

    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("s3", self._options, self.where)
        return self._client

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        bucket = self._options.bucket
        for prefix in objects.prefixes(self._options.prefix, start, end):
            for item in self._keys(prefix, session):
                key, written = str(item["Key"]), item["LastModified"].astimezone(UTC)
                if written < start - objects.SKEW:
                    continue
                uri = f"s3://{bucket}/{key}"
                request = {"Bucket": bucket, "Key": key}

                def opened(request: dict[str, Any] = request, uri: str = uri) -> Any:
                    return session.call(lambda: self._api("get_object", request, missing=f"object {uri}")["Body"], what="get_object")

                def broke(exc: Exception, uri: str = uri) -> SourceError:
                    return SourceError(f"{self.where}: reading {uri} broke off ({type(exc).__name__})")

                yield from objects.stream_object(opened, start, end, {"object": uri}, written, broke, item.get("Size"))

    def _keys(self, prefix: str, session: Session) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"Bucket": self._options.bucket, "Prefix": prefix, "MaxKeys": self._options.page_size}
        while True:
            answer = session.call(lambda request=request: self._api("list_objects_v2", request), what="list_objects_v2")  # type: ignore[misc]
            yield from answer.get("Contents") or []
            token = answer.get("NextContinuationToken")
            if not answer.get("IsTruncated") or not token:
                return
            request = {**request, "ContinuationToken": token}

    def _api(self, operation: str, request: dict[str, Any], *, missing: str | None = None) -> dict[str, Any]:
        client = self.client()
        try:
            answer: dict[str, Any] = getattr(client, operation)(**request)
        except Exception as exc:  # noqa: BLE001  (every client failure becomes a SourceError or a RetryableError)
            raise aws.api_error(exc, self.where, missing=missing or f"bucket {self._options.bucket}", grant=GRANT) from None
        return answer

    def check(self) -> str:
        """One listing under today's prefix: the credentials, the region and the bucket answer."""
        now = datetime.now(UTC)
        prefix = objects.prefixes(self._options.prefix, now, now)[0]
        found = self._api("list_objects_v2", {"Bucket": self._options.bucket, "Prefix": prefix, "MaxKeys": 1}).get("KeyCount", 0)
        return f"{self.where} lists s3://{self._options.bucket}/{prefix}; {'objects' if found else 'no objects'} there now"


def _check(source: S3Logs) -> str:
    return source.check()


def _build(options: S3Options, _base_dir: Path) -> S3Logs:
    return S3Logs(options)


KIND = SourceKind(
    name="s3",
    role=roles.LOGS,
    options=S3Options,
    build=_build,
    check=_check,
    summary="log objects (plain or gzip) under a dated prefix of an S3 bucket, through boto3",
)
