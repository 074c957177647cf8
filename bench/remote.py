"""Remote log stores at scale: a 1,000,000-event window read from a served store through the engine; events/s, peak RSS, API calls.

Each remote part is one entry of `SERVERS`: a context manager that serves `count`
events spread over [start, end] (a stand-in or an emulator, started here, in the
bench's own process) and yields the catalog entry of a log source that reads them,
e.g. `{"kind": "loki", "url": ..., "query": ...}`. `measure` then builds that source
through the registry in a child process, reads the window as an investigation does
(`read_logs`: slices newest first, caps, the read account) and reports what the
child read, how fast, with how many API calls, and its peak RSS alone (the server's
memory stays in this process). A new store kind adds its server to `SERVERS`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = 1_000_000
# An hour of a busy service: 1,000,000 events is about 280 a second.
WINDOW_END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WINDOW_START = WINDOW_END - timedelta(hours=1)
# Every bound of the read set above what the run needs: the bench measures a whole read, not a cut one.
BOUNDS = {"max_events": 2_000_000, "max_bytes": 1024**3, "deadline_s": 900.0, "timeout_s": 60.0, "cache_ttl_s": 0}

Served = Callable[[int, datetime, datetime], AbstractContextManager[dict[str, Any]]]


def event_line(k: int, ns: int) -> str:
    """The k-th served event: a request log line stamped at `ns`, one in 50 an error with a stack frame's worth of text."""
    moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=(ns // 1000) % 1_000_000)
    stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if k % 50 == 0:
        return f"{stamp} ERROR [payments] charge failed for order {k}: upstream timed out after 5000 ms (PaymentClient.java:88)"
    return f"{stamp} INFO [http] GET /api/cart/{k % 997} status=200 duration_ms={k % 250} pod=checkout-{k % 5}"


@contextmanager
def loki_served(count: int, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """The Loki stand-in generating `count` entries evenly over the window, through its real HTTP API."""
    if str(ROOT / "tests" / "standins") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests" / "standins"))
    from standin_loki import Flood, LokiStandin

    from integrations.logs.loki import _ns

    first, last = _ns(start), _ns(end)
    server = LokiStandin()
    server.floods.append(
        Flood({"app": "checkout", "namespace": "shop"}, from_ns=first, step_ns=(last - first) // count, count=count, line=event_line)
    )
    server.start()
    try:
        yield {"kind": "loki", "url": server.url, "query": '{app="checkout"}', **BOUNDS}
    finally:
        server.stop()


@contextmanager
def cloudwatch_served(count: int, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """moto in server mode holding `count` events in one log group, read through boto3's `filter_log_events`.

    Events go in through moto's in-process backend (as the kind's tests seed them: CloudWatch refuses events older
    than 14 days), in batches, across 10 streams as pods would write them.
    """
    if str(ROOT / "tests" / "standins") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests" / "standins"))
    from standin_aws import REGION, MotoServer, seed_events

    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION}.items():
        os.environ.setdefault(name, value)
    first = int(start.timestamp() * 1000)
    step = max(1, (int(end.timestamp() * 1000) - first) // count)
    server = MotoServer().start()
    try:
        batch = 10_000
        for offset in range(0, count, batch):
            for stream in range(10):
                ks = range(offset + stream, min(offset + batch, count), 10)
                seed_events(
                    "/bench/checkout", f"checkout-{stream}", ((first + k * step, event_line(k, (first + k * step) * 1_000_000)) for k in ks)
                )
        yield {"kind": "cloudwatch", "log_group": "/bench/checkout", "region": REGION, "endpoint_url": server.url, **BOUNDS}
    finally:
        server.stop()


SERVERS: dict[str, Served] = {"loki": loki_served, "cloudwatch": cloudwatch_served}


def measure(spec: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    """Read [start, end] of the source `spec` describes in a child process: events, seconds, events/s, API calls, peak RSS."""
    command = [sys.executable, "-m", "bench.remote", "--child", json.dumps(spec), start.isoformat(), end.isoformat()]
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert child.stdout is not None
        out = child.stdout.read()
        status = os.waitpid(child.pid, 0)[1]
        child.returncode = os.waitstatus_to_exitcode(status)
        child.stdout.close()
        errors.seek(0)
        err = errors.read()
    if child.returncode != 0:
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {child.returncode}"}
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run(count: int = EVENTS, only: list[str] | None = None) -> dict[str, Any]:
    """Every server in `SERVERS` (or those named in `only`) serving `count` events, each read once."""
    results: dict[str, Any] = {}
    for name, served in SERVERS.items():
        if only and name not in only:
            continue
        with served(count, WINDOW_START, WINDOW_END) as spec:
            results[name] = {"served": count, **measure(spec, WINDOW_START, WINDOW_END)}
    return results


def _own_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _child(spec: dict[str, Any], start: datetime, end: datetime) -> None:
    import time

    from agents.evidence.model import EvidenceInputs
    from agents.evidence.reading import read_logs
    from core.alert import Alert
    from core.catalog import SourceSpec
    from core.degraded import Degradation
    from integrations.registry import build_specs

    built = build_specs({"logs": [SourceSpec.model_validate(spec)]}, ROOT)
    if built.errors:
        raise SystemExit(f"{built.errors[0].component}: {built.errors[0].reason}")
    inputs = EvidenceInputs(
        alert=Alert(title="bench", service="checkout", created_at=end),
        service="checkout",
        window_start=start,
        window_end=end,
        sources=built,
    )
    inputs.log_deadline_s = float(spec.get("deadline_s", 900.0))
    degraded: list[Degradation] = []
    reads: list[dict[str, Any]] = []
    began = time.perf_counter()
    stats = read_logs(inputs, lambda *_: None, degraded, reads)
    seconds = time.perf_counter() - began
    (read,) = reads
    summary = {
        "events": stats.events,
        "seconds": round(seconds, 2),
        "events_per_s": round(stats.events / seconds) if seconds else None,
        "api_calls": read["api_calls"],
        "mb_read": round(read["bytes"] / 1e6, 1),
        "truncated": read["truncated"],
        "degraded": [d.reason for d in degraded],
        # VmHWM, not ru_maxrss: the latter keeps the high-water mark of the forked parent's memory across exec.
        "peak_rss_mb": _own_peak_mb(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(json.loads(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), datetime.fromisoformat(sys.argv[4]))
    else:
        print(json.dumps(run(), indent=2))
