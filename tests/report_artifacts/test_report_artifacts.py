"""Finished reports as files in the artifact store: a local folder, S3 (moto in server mode) and GCS (gcp-storage-emulator).

Each real client is pointed at a real server on loopback; links open, pruning keeps what is young.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents import artifacts
from agents.report import Report, RootCause
from core.models import Investigation, Status
from core.runtime import get_store
from core.settings import get_settings, reset_settings
from integrations.artifacts.stores import GcsStore, LocalStore, S3Store, open_store
from integrations.errors import SourceError
from tests.standins.loopback import free_port

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> str:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    import boto3

    boto3.client("s3", endpoint_url=moto_url).create_bucket(Bucket="ir-reports")
    return moto_url


@pytest.fixture(scope="module")
def gcs_url() -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="ir-reports")
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(50):
        try:
            httpx.get(url, timeout=0.5)
            break
        except httpx.HTTPError:
            threading.Event().wait(0.1)
    yield url
    server.stop()


def _row(report: dict[str, Any] | None = None) -> Investigation:
    store = get_store()
    row = store.create_investigation(
        Investigation(
            source="api", service="checkout", title="checkout 500s", window_start=NOW - timedelta(hours=1), window_end=NOW, at=NOW
        )
    )
    full = Report(root_cause=RootCause(category="bad_deploy", summary="Release 2.4 broke /pay", confidence=0.8)).to_json_dict()
    return store.save_report(row.id, report or full, Status.done)


def test_the_default_store_is_a_folder_under_data_dir(app_env: dict[str, str]) -> None:
    row = _row()
    assert artifacts.keep_report(row)
    folder = get_settings().data_dir / "reports" / row.id
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.json", "report.md"]
    assert "Release 2.4 broke /pay" in (folder / "report.md").read_text()
    assert artifacts.report_link(row).endswith(f"/investigations/{row.id}")


def test_report_links_can_point_at_the_stored_html(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORT_LINKS", "artifact")
    reset_settings()
    row = _row()
    artifacts.keep_report(row)
    link = artifacts.report_link(row)
    assert link.startswith("file://") and link.endswith(f"{row.id}/report.html")
    assert "<html" in Path(link.removeprefix("file://")).read_text().lower()


def test_s3_keeps_the_files_and_links_them_with_a_presigned_url(app_env: dict[str, str], aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTS_URL", "s3://ir-reports/prod")
    monkeypatch.setenv("ARTIFACTS_ENDPOINT_URL", aws)
    monkeypatch.setenv("REPORT_LINKS", "artifact")
    monkeypatch.setenv("ARTIFACTS_LINK_TTL_S", "600")
    reset_settings()
    row = _row()
    assert artifacts.keep_report(row)
    link = artifacts.report_link(row)
    assert f"/ir-reports/prod/{row.id}/report.html" in link and "X-Amz-Expires=600" in link and "X-Amz-Signature=" in link
    opened = httpx.get(link)
    assert opened.status_code == 200 and opened.headers["content-type"].startswith("text/html")
    assert "Release 2.4 broke /pay" in opened.text


def test_s3_pruning_removes_only_reports_past_the_retention(aws: str) -> None:
    store = open_store("s3://ir-reports/prune-test", default_root=Path("unused"), endpoint_url=aws)
    assert isinstance(store, S3Store)
    store.put("inv_old/report.json", b"{}", "application/json")
    assert store.prune(datetime.now(UTC) - timedelta(days=1)) == 0
    assert store.prune(datetime.now(UTC) + timedelta(seconds=5)) == 1


def test_a_missing_bucket_is_one_clear_error(aws: str) -> None:
    store = open_store("s3://no-such-bucket/x", default_root=Path("unused"), endpoint_url=aws)
    with pytest.raises(SourceError, match=re.escape("s3://no-such-bucket/x/: could not store inv_1/report.json: NoSuchBucket")):
        store.put("inv_1/report.json", b"{}", "application/json")


def test_gcs_keeps_the_files_in_the_emulator(gcs_url: str) -> None:
    store = open_store("gs://ir-reports/prod", default_root=Path("unused"), endpoint_url=gcs_url)
    assert isinstance(store, GcsStore)
    store.put("inv_1/report.md", b"# Report", "text/markdown")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="local", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_url})
    blob = client.bucket("ir-reports").blob("prod/inv_1/report.md")
    assert blob.download_as_bytes() == b"# Report"
    assert store.link("inv_1/report.md").endswith("/ir-reports/prod/inv_1/report.md")
    assert store.prune(datetime.now(UTC) - timedelta(days=1)) == 0
    assert store.prune(datetime.now(UTC) + timedelta(minutes=1)) == 1


def test_the_local_store_prunes_by_age(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("inv_1/report.json", b"{}", "application/json")
    assert store.prune(datetime.now(UTC) - timedelta(days=1)) == 0
    assert store.prune(datetime.now(UTC) + timedelta(seconds=5)) == 1
    assert not (tmp_path / "inv_1" / "report.json").exists()


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(SourceError, match="unknown scheme 'ftp'"):
        open_store("ftp://x/y", default_root=Path("unused"))
