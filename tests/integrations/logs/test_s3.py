"""The `s3` kind through boto3 against moto in server mode, and a front that slows down, refuses and stalls like S3."""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from bundle_logs import BUNDLES, findings, investigate
from standin_aws import REGION, AwsFront, MotoServer, use_loopback_credentials, xml_error
from standin_github import closed_port

from agents.evidence.model import EvidenceInputs
from agents.evidence.reading import read_logs
from contracts import SECRET_DIR, Broken, LogRecord, LogStoreContract, MakeLogSource, Options
from core.alert import Alert
from core.degraded import Degradation
from integrations.errors import SourceError
from integrations.logs import s3
from integrations.logs.objects import prefixes
from integrations.logs.s3 import S3Logs, S3Options
from integrations.registry import ServiceSources
from integrations.roles import LOGS

START = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
_BUCKETS = itertools.count()


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_loopback_credentials(monkeypatch, tmp_path, REGION)


@pytest.fixture
def front(moto: MotoServer) -> Iterator[AwsFront]:
    server = AwsFront(moto.url).start()
    yield server
    server.stop()


def new_bucket(moto: MotoServer) -> str:
    bucket = f"logs-{next(_BUCKETS)}"
    uploader(moto).create_bucket(Bucket=bucket)
    return bucket


def uploader(moto: MotoServer) -> Any:
    return boto3.client("s3", endpoint_url=moto.url, region_name=REGION)


def put(moto: MotoServer, bucket: str, key: str, lines: Sequence[str], *, gzipped: bool = True) -> None:
    body = "".join(f"{line}\n" for line in lines).encode()
    uploader(moto).put_object(Bucket=bucket, Key=key, Body=gzip.compress(body) if gzipped else body)


def json_line(record: LogRecord) -> str:
    return json.dumps({"time": record.ts.isoformat() if record.ts else None, "level": record.level, "msg": record.message})


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def store(url: str, bucket: str, **options: Any) -> S3Logs:
    return S3Logs(S3Options.model_validate({"endpoint_url": url, "region": REGION, "bucket": bucket, "cache_ttl_s": 0, **options}))


def engine_read(source: Any) -> tuple[int, list[Degradation], list[dict[str, Any]]]:
    inputs = EvidenceInputs(
        alert=Alert(title="errors", service="checkout", created_at=END),
        service="checkout",
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [source]}),
    )
    degraded: list[Degradation] = []
    reads: list[dict[str, Any]] = []
    stats = read_logs(inputs, lambda *_: None, degraded, reads)
    return stats.events, degraded, reads


class TestS3Contract(LogStoreContract):
    kind = s3.KIND

    @pytest.fixture
    def make_source(self, moto: MotoServer) -> MakeLogSource:
        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            bucket = new_bucket(moto)
            lines = [json_line(r) for r in records]
            if endless:
                # Written after the records, stamped inside the window: an object far larger than a test can read.
                flood = (
                    json.dumps({"time": (START + timedelta(microseconds=i + 1)).isoformat(), "msg": f"flood {i}"}) for i in range(300_000)
                )
                lines = [*lines, *flood]
            put(moto, bucket, "logs/checkout/app.log.gz", lines)
            return {"endpoint_url": moto.url, "region": REGION, "bucket": bucket, "prefix": "logs/checkout/"}

        return make

    @pytest.fixture(params=["unreachable", "credentials refused"])
    def broken_source(self, request: pytest.FixtureRequest, front: AwsFront) -> Broken:
        if request.param == "unreachable":
            url = f"http://127.0.0.1:{closed_port()}/{SECRET_DIR}"
            return Broken({"endpoint_url": url, "region": REGION, "bucket": "logs"}, target=url)
        front.script += [xml_error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")] * 3
        url = f"{front.url}/{SECRET_DIR}"
        return Broken({"endpoint_url": url, "region": REGION, "bucket": "logs"}, target=url)


def test_a_dated_prefix_is_filled_for_each_day_or_hour_of_the_window() -> None:
    night = (datetime(2026, 3, 9, 22, 30, tzinfo=UTC), datetime(2026, 3, 10, 1, 15, tzinfo=UTC))

    assert prefixes("logs/{date:%Y/%m/%d}/", *night) == ["logs/2026/03/09/", "logs/2026/03/10/"]
    assert prefixes("logs/{date:%Y-%m-%d/%H}/", *night) == [f"logs/2026-03-{d}/" for d in ("09/22", "09/23", "10/00", "10/01")]
    assert prefixes("logs/checkout/", *night) == ["logs/checkout/"]


@pytest.mark.parametrize(
    ("prefix", "said"),
    [("logs/{day}/", "not {day}"), ("logs/{date}/", "needs a strftime format"), ("logs/{date:%Y/%m/%d/%H%M}/", "not minutes")],
)
def test_a_prefix_template_with_other_fields_is_refused(prefix: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        S3Options.model_validate({"bucket": "logs", "prefix": prefix})


def test_keys_are_listed_across_pages_under_each_day_and_only_the_window_is_kept(moto: MotoServer, front: AwsFront) -> None:
    bucket = new_bucket(moto)
    first = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    for i in range(24):
        at = first + timedelta(hours=i)
        put(
            moto,
            bucket,
            f"logs/{at:%Y/%m/%d}/app-{i:02}.log.gz",
            [f"{stamp(at + timedelta(minutes=m))} ERROR failed part={i}.{m}" for m in (0, 30)],
        )
    put(moto, bucket, "logs/2026/03/08/old.log.gz", [f"{stamp(first + timedelta(hours=3))} ERROR from a day outside the window"])

    source = store(front.url, bucket, prefix="logs/{date:%Y/%m/%d}/", page_size=5)
    events = list(source.events(datetime(2026, 3, 9, 22, 45, tzinfo=UTC), datetime(2026, 3, 10, 1, 0, tzinfo=UTC)))

    assert [e.raw.rpartition("=")[2] for e in events] == ["3.0", "3.30", "4.0", "4.30", "5.0"]
    listed = [parse_qs(urlsplit(c.path).query) for c in front.calls("ListObjectsV2")]
    # The 4 objects of the 9th in one page, the 20 of the 10th in four, each after the first with its token.
    assert [q["prefix"] for q in listed] == [["logs/2026/03/09/"]] + [["logs/2026/03/10/"]] * 4
    assert ["continuation-token" in q for q in listed] == [False, False, True, True, True]
    assert len(front.calls("GetObject")) == 24


def test_gzip_is_told_by_its_bytes_and_a_stack_trace_stays_with_its_line(moto: MotoServer) -> None:
    bucket = new_bucket(moto)
    trace = [
        f"{stamp(START + timedelta(minutes=1))} ERROR unhandled exception in checkout",
        "Traceback (most recent call last):",
        '  File "/app/checkout/pay.py", line 42, in charge',
        "    raise PaymentDeclined(order)",
        "PaymentDeclined: order 7",
    ]
    put(moto, bucket, "logs/plain-named.gz", trace, gzipped=False)
    put(moto, bucket, "logs/zipped-named.log", [f"{stamp(START + timedelta(minutes=2))} WARN retrying payment"], gzipped=True)

    first, second = store(moto.url, bucket, prefix="logs/").events(START, END)

    assert first.level == "error" and "PaymentDeclined" in (first.exception or "") and first.frames
    assert first.attributes["object"] == f"s3://{bucket}/logs/plain-named.gz"
    assert (second.level, second.message) == ("warning", "retrying payment")


def test_an_object_begun_after_the_range_is_left_after_its_first_line(moto: MotoServer) -> None:
    bucket = new_bucket(moto)
    put(moto, bucket, "logs/a.gz", [f"{stamp(START + timedelta(minutes=i))} INFO in range {i}" for i in range(3)])
    put(moto, bucket, "logs/b.gz", [f"{stamp(END + timedelta(hours=1, minutes=i))} INFO later {i}" for i in range(50_000)])

    source = store(moto.url, bucket, prefix="logs/")
    events = list(source.events(START, END))

    assert [e.message for e in events] == ["in range 0", "in range 1", "in range 2"]
    assert source.account.bytes < 10_000


def test_slow_down_is_waited_out_and_then_read(moto: MotoServer, front: AwsFront) -> None:
    bucket = new_bucket(moto)
    put(moto, bucket, "logs/a.gz", [f"{stamp(START + timedelta(minutes=i))} INFO line {i}" for i in range(5)])
    front.script += [
        xml_error(503, "SlowDown", "Please reduce your request rate.", "ListObjectsV2"),
        xml_error(503, "SlowDown", "Slow", "GetObject"),
    ]

    source = store(front.url, bucket, prefix="logs/")

    assert len(list(source.events(START, END))) == 5
    assert len(front.seen) == 4 == source.account.api_calls


def test_a_missing_bucket_is_one_degraded_entry_naming_it(moto: MotoServer) -> None:
    events, degraded, _ = engine_read(store(moto.url, "no-such-bucket", prefix="logs/"))

    assert events == 0
    (entry,) = [d for d in degraded if "NoSuchBucket" in d.reason]
    assert entry.component == "logs:s3" and f"S3 at {moto.url} has no bucket no-such-bucket (NoSuchBucket)" in entry.reason


def test_access_denied_names_the_permissions_to_grant(moto: MotoServer, front: AwsFront) -> None:
    bucket = new_bucket(moto)
    front.script.append(xml_error(403, "AccessDenied", "Access Denied"))

    with pytest.raises(SourceError) as raised:
        list(store(front.url, bucket).events(START, END))

    assert "refused the credentials (AccessDenied: Access Denied); they need s3:ListBucket on the bucket and s3:GetObject" in str(
        raised.value
    )


def test_slow_answers_end_at_the_deadline_with_the_objects_read_marked_truncated(moto: MotoServer, front: AwsFront) -> None:
    bucket = new_bucket(moto)
    for i in range(6):
        put(moto, bucket, f"logs/{i}.gz", [f"{stamp(START + timedelta(minutes=i))} INFO object {i}"])
    front.slow_after, front.slow_s = 3, 1.5

    source = store(front.url, bucket, prefix="logs/", deadline_s=2.5, timeout_s=1.0, retries=3)
    events = list(source.events(START, END))

    assert [e.message for e in events] == ["object 0", "object 1"]
    assert source.account.truncated is not None and "did not answer in time" in source.account.truncated


# --- end to end: a public bundle's logs as gzip objects give the findings its files give --------------------------


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLES, reason="public scenario bundles are not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_bundle_in_s3_gives_the_findings_of_its_files(bundle: Path, moto: MotoServer, tmp_path: Path) -> None:
    bucket = new_bucket(moto)
    for path in sorted((bundle / "logs").iterdir()):
        uploader(moto).put_object(Bucket=bucket, Key=f"{bundle.name}/{path.name}.gz", Body=gzip.compress(path.read_bytes()))

    from_files = investigate(bundle, [{"kind": "files", "paths": [str(bundle / "logs")]}], tmp_path)
    objects = {"kind": "s3", "endpoint_url": moto.url, "region": REGION, "bucket": bucket, "prefix": f"{bundle.name}/", "cache_ttl_s": 0}
    from_s3 = investigate(bundle, [objects], tmp_path)

    assert findings(from_s3) == findings(from_files)
    (read,) = from_s3["log_reads"]
    assert read["truncated"] is None and read["events"] > 1000
