"""Where finished reports are kept as files (JSON, Markdown, HTML): a local folder, S3 or Google Cloud Storage.

`ARTIFACTS_URL` names the store: a folder path (default `DATA_DIR/reports`),
`s3://bucket/prefix` or `gs://bucket/prefix`. A private bucket's link is a presigned
URL that lasts `ARTIFACTS_LINK_TTL_S`; `prune` removes reports older than the retention.
Credentials come from each SDK's own chain (AWS profile or environment, Google
application default credentials), never from the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from integrations.errors import SourceError


class ArtifactStore(Protocol):
    @property
    def where(self) -> str: ...

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def link(self, key: str) -> str:
        """A URL a person can open: a file URL, or a presigned one for a private bucket."""
        ...

    def prune(self, older_than: datetime) -> int:
        """Remove every object last written before `older_than`; how many went."""
        ...


@dataclass
class LocalStore:
    root: Path

    @property
    def where(self) -> str:
        return str(self.root)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(target.suffix + ".part")
        temporary.write_bytes(data)
        temporary.replace(target)

    def link(self, key: str) -> str:
        return (self.root / key).resolve().as_uri()

    def prune(self, older_than: datetime) -> int:
        gone = 0
        cutoff = older_than.timestamp()
        for path in self.root.rglob("*"):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                gone += 1
        return gone


class S3Store:
    def __init__(self, bucket: str, prefix: str, *, endpoint_url: str | None, link_ttl_s: int) -> None:
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix, self.link_ttl_s = bucket, prefix, link_ttl_s
        self.where = f"s3://{bucket}/{prefix}"
        self._s3 = boto3.client(
            "s3", endpoint_url=endpoint_url, config=Config(signature_version="s3v4", retries={"mode": "standard", "max_attempts": 3})
        )

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise SourceError(f"{self.where}: could not store {key}: {_aws_reason(exc)}") from None

    def link(self, key: str) -> str:
        url: str = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.prefix + key}, ExpiresIn=self.link_ttl_s
        )
        return url

    def prune(self, older_than: datetime) -> int:
        gone = 0
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            old = [{"Key": item["Key"]} for item in page.get("Contents", []) if item["LastModified"] < older_than]
            if old:
                self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": old, "Quiet": True})
                gone += len(old)
        return gone


class GcsStore:
    def __init__(self, bucket: str, prefix: str, *, endpoint_url: str | None, link_ttl_s: int) -> None:
        from google.cloud import storage

        self.prefix, self.link_ttl_s = prefix, link_ttl_s
        self.where = f"gs://{bucket}/{prefix}"
        if endpoint_url:
            from google.auth.credentials import AnonymousCredentials

            client = storage.Client(project="local", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint_url})
        else:
            client = storage.Client()
        self._bucket = client.bucket(bucket)
        self._signed = not endpoint_url

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from google.api_core.exceptions import GoogleAPIError

        try:
            self._bucket.blob(self.prefix + key).upload_from_string(data, content_type=content_type)
        except GoogleAPIError as exc:
            raise SourceError(f"{self.where}: could not store {key}: {type(exc).__name__}") from None

    def link(self, key: str) -> str:
        blob = self._bucket.blob(self.prefix + key)
        if not self._signed:
            # An emulator cannot sign; its public URL is what a test can open.
            return str(blob.public_url)
        return str(blob.generate_signed_url(version="v4", expiration=timedelta(seconds=self.link_ttl_s), method="GET"))

    def prune(self, older_than: datetime) -> int:
        gone = 0
        for blob in self._bucket.list_blobs(prefix=self.prefix):
            if blob.updated is not None and blob.updated < older_than:
                blob.delete()
                gone += 1
        return gone


def _aws_reason(exc: Exception) -> str:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Code") or type(exc).__name__)


def open_store(url: str, *, default_root: Path, endpoint_url: str | None = None, link_ttl_s: int = 7 * 86400) -> ArtifactStore:
    """The store `url` names (empty: a folder under DATA_DIR)."""
    if not url:
        return LocalStore(default_root)
    parsed = urlparse(url)
    prefix = parsed.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if parsed.scheme == "s3":
        return S3Store(parsed.netloc, prefix, endpoint_url=endpoint_url, link_ttl_s=link_ttl_s)
    if parsed.scheme == "gs":
        return GcsStore(parsed.netloc, prefix, endpoint_url=endpoint_url, link_ttl_s=link_ttl_s)
    if parsed.scheme in ("", "file"):
        return LocalStore(Path(parsed.path if parsed.scheme else url))
    raise SourceError(f"ARTIFACTS_URL: unknown scheme '{parsed.scheme}' (use a folder, s3://bucket/prefix or gs://bucket/prefix)")


def cutoff(retention_days: int, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(days=retention_days)
