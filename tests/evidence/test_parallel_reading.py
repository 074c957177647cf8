"""Large log sets read in worker processes give exactly the evidence of one in-process pass."""

from __future__ import annotations

import gzip
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.evidence import parallel, reading
from agents.evidence.engine import build_evidence
from agents.evidence.logstats import LogStats
from agents.evidence.model import EvidenceInputs
from agents.evidence.reading import read_logs
from core.alert import Alert
from core.degraded import Degradation
from integrations.logs import file_ranges
from integrations.logs.file_lines import open_lines, range_lines
from integrations.logs.files import FileLogSource
from integrations.logs.parsing import parse_stream
from integrations.registry import ServiceSources
from integrations.roles import LOGS

ALERT_AT = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
ONSET = ALERT_AT - timedelta(minutes=12)
START = ALERT_AT - timedelta(hours=2)
END = ALERT_AT + timedelta(minutes=15)


def _stamp(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S},{at.microsecond // 1000:03d}"


def _java_trace(rng: random.Random) -> list[str]:
    frames = [f"\tat com.acme.shop.{c}.{m}({c}.java:{rng.randint(10, 400)})" for c, m in (("Repo", "load"), ("Service", "get"))]
    frames += [f"\tat org.framework.Layer{i}.invoke(Layer{i}.java:{i + 10})" for i in range(rng.randint(20, 60))]
    head = "java.sql.SQLTransientConnectionException: pool exhausted after 30000ms"
    return [head, *frames, "Caused by: java.net.SocketTimeoutException: connect timed out"]


def _python_trace(rng: random.Random) -> list[str]:
    lines = ["Traceback (most recent call last):"]
    for i in range(rng.randint(3, 30)):
        lines += [f'  File "/app/shop/step{i}.py", line {rng.randint(1, 300)}, in run_{i}', f"    step_{i}(payload)"]
    return [*lines, f"KeyError: 'sku_{rng.randint(1, 9)}'"]


def write_logs(folder: Path, seed: int = 7) -> Path:
    """A few files in several formats: request traffic, a failure after the onset with stack traces, markers, pods."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    users = ["alice", "bob", "carol", "dave", "erin"]
    app: list[str] = []
    worker: list[str] = []
    gateway: list[str] = []
    notes: list[str] = []
    at = START - timedelta(minutes=30)
    app.append(f"{_stamp(START + timedelta(seconds=5))} INFO  [main] com.acme.shop.Boot - starting shop version 2.4.1 (a1b2c3d4e5)")
    while at < END + timedelta(minutes=5):
        at += timedelta(milliseconds=rng.randint(50, 400))
        failing = at >= ONSET
        user = rng.choice(users)
        status = 503 if failing and rng.random() < 0.3 else 200
        app.append(
            f"{_stamp(at)} INFO  [http-{rng.randint(1, 40)}] com.acme.shop.web.Filter - request completed "
            f"method=GET path=/v1/items/{rng.randint(1, 99999)} status={status} duration_ms={rng.uniform(5, 90):.1f} user={user}"
        )
        if failing and rng.random() < 0.05:
            app.append(f"{_stamp(at)} ERROR [http-{rng.randint(1, 40)}] com.acme.shop.Repo - stock lookup failed for {user}")
            app.extend(_java_trace(rng))
        if rng.random() < 0.3:
            level = "ERROR" if failing and rng.random() < 0.1 else "INFO"
            worker.append(f"{_stamp(at)} {level} shop.worker: task {rng.randint(1, 10**6)} done for {user} in {rng.randint(1, 900)}ms")
            if level == "ERROR":
                worker.extend(_python_trace(rng))
        if rng.random() < 0.4:
            pod = f"gateway-7d9f8b6c5-{rng.choice(['x2k4q', 'p9z8m', 'r4t5y'])}"
            gateway.append(
                f'{{"time": "{at.isoformat()}", "level": "info", "msg": "proxied", "hostname": "{pod}", '
                f'"dependency": "{rng.choice(["inventory", "pricing"])}", "status": {status}, "duration_ms": {rng.randint(1, 500)}}}'
            )
        if rng.random() < 0.002:
            notes.append(f"cache warm-up pass {rng.randint(1, 5)} finished")
    (folder / "app.log").write_text("\n".join(app) + "\n", encoding="utf-8")
    (folder / "worker.log").write_text("\n".join(worker) + "\n", encoding="utf-8")
    (folder / "notes.log").write_text("\n".join(notes) + "\n", encoding="utf-8")
    with gzip.open(folder / "gateway.log.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(gateway) + "\n")
    return folder


def _inputs(folder: Path, deadline_s: float = 60.0) -> EvidenceInputs:
    return EvidenceInputs(
        alert=Alert(title="errors", service="shop", created_at=ALERT_AT),
        service="shop",
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [FileLogSource([str(folder)], base_dir=folder)]}),
        log_deadline_s=deadline_s,
    )


def _canon(stats: LogStats) -> dict[str, Any]:
    groups = {
        gid: (
            stats.template(gid),
            g.count,
            sorted(g.minutes.items()),
            sorted(g.first_in_minute.items()),
            g.first_ts,
            g.last_ts,
            g.untimed,
            list(g.levels.items()),
            list(g.sources.items()),
            g.samples,
            g.texts,
            g.text,
            g.frames,
            sorted(g.frame_files),
            sorted(g.frame_functions),
            g.exception,
            list(g.names.items()),
            list(g.services.items()),
            g.server_errors,
            g.http,
        )
        for gid, g in stats.groups.items()
    }
    minutes = {
        m: (t.events, t.errors, t.warnings, t.server_errors, round(t.latency_sum_ms, 6), t.latency_n) for m, t in stats.minutes.items()
    }
    markers = [(k, m.version, m.sha, m.first_seen, m.service, sorted(m.pods)) for k, m in stats.markers.items()]
    return {
        "groups": list(groups.items()),
        "minutes": sorted(minutes.items()),
        "markers": markers,
        "pods": list(stats.pods.items()),
        "counts": (stats.events, stats.untimed, stats.read, stats.out_of_window),
    }


def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "PARALLEL_MIN_VOLUME", 1 << 60)


def _in_workers(monkeypatch: pytest.MonkeyPatch, unit_bytes: int = 24 * 1024) -> None:
    monkeypatch.setattr(reading, "PARALLEL_MIN_VOLUME", 0)
    monkeypatch.setattr(reading, "MIN_UNIT_VOLUME", unit_bytes)
    monkeypatch.setattr(parallel, "worker_count", lambda: 2)


def _evidence_dump(inputs: EvidenceInputs) -> dict[str, Any]:
    dumped = build_evidence(inputs).model_dump()
    dumped["stats"] = {k: v for k, v in dumped["stats"].items() if not k.endswith("_s")}
    return dumped


def test_workers_and_one_pass_give_the_same_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_logs(tmp_path / "logs")
    assert len(file_ranges.split(folder / "app.log", 24 * 1024)) > 10, "the input is cut into many units"

    _in_process(monkeypatch)
    one_pass = read_logs(_inputs(folder), lambda *_: None, [])
    expected = _evidence_dump(_inputs(folder))
    _in_workers(monkeypatch)
    workers = read_logs(_inputs(folder), lambda *_: None, [])
    got = _evidence_dump(_inputs(folder))

    assert one_pass.events > 20_000 and one_pass.untimed > 0 and one_pass.markers and one_pass.pods
    assert any(g.frames for g in one_pass.groups.values())
    assert _canon(workers) == _canon(one_pass)
    assert got == expected
    assert got["onset"] is not None and got["signatures"]


def test_a_cut_never_falls_inside_a_multi_line_event(tmp_path: Path) -> None:
    folder = write_logs(tmp_path / "logs", seed=11)
    for name in ("app.log", "worker.log"):
        path = folder / name
        units = file_ranges.split(path, 8 * 1024)
        assert len(units) > 10
        whole = list(parse_stream(open_lines(path), name))
        pieces = [event for unit in units for event in parse_stream(range_lines(unit.path, unit.start, unit.end), name)]
        assert pieces == whole
        assert sum(len(e.frames) for e in whole) > 100
        with path.open("rb") as fh:
            for unit in units[1:]:
                fh.seek(unit.start - 1)
                head = fh.read(40)
                assert head[:1] == b"\n" and head[1:5] == b"2025", head


def test_files_that_cannot_be_cut_cleanly_stay_whole(tmp_path: Path) -> None:
    interleaved = tmp_path / "pods.log"
    lines = [f"[pod/shop-{i % 3}/app] 2025-01-10 11:00:{i % 60:02d},000 INFO step {i}" for i in range(20_000)]
    interleaved.write_text("\n".join(lines) + "\n", encoding="utf-8")
    no_newline = tmp_path / "blob.log"
    no_newline.write_bytes(b"x" * 600_000)
    for path in (interleaved, no_newline):
        (unit,) = file_ranges.split(path, 16 * 1024)
        assert (unit.start, unit.end) == (0, None)


def test_a_lost_worker_leaves_its_units_to_the_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_logs(tmp_path / "logs", seed=3)
    _in_process(monkeypatch)
    expected = _canon(read_logs(_inputs(folder), lambda *_: None, []))
    _in_workers(monkeypatch)
    monkeypatch.setattr(parallel, "_WORKER_CODE", "raise SystemExit(3)")
    degraded: list[Degradation] = []
    assert _canon(read_logs(_inputs(folder), lambda *_: None, degraded)) == expected
    assert degraded == []


def test_a_file_that_never_ends_is_cut_off_at_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_logs(tmp_path / "logs", seed=5)
    # Sparse: no disk used, yet far more than can be read before the deadline.
    with (folder / "huge.log").open("wb") as huge:
        huge.truncate(64 * 1024**3)
    monkeypatch.setattr(parallel, "worker_count", lambda: 2)
    degraded: list[Degradation] = []

    started = time.monotonic()
    # Long enough for two reader processes to start on a busy 2-core machine (1.5 s was not, under the full suite),
    # far too short for 64 GiB.
    per_source = read_logs(_inputs(folder, deadline_s=4), lambda *_: None, degraded).read

    assert time.monotonic() - started < 12
    assert any("stopped reading after 4s" in d.reason for d in degraded), degraded
    assert per_source.get("app.log", 0) > 1000, "the files read in time still count"


def test_free_text_beyond_the_shape_cap_is_still_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_logs(tmp_path / "logs", seed=9)
    _in_process(monkeypatch)
    expected = read_logs(_inputs(folder), lambda *_: None, [])
    monkeypatch.setattr("agents.evidence.log_parts.MAX_SHAPES", 3)
    capped = read_logs(_inputs(folder), lambda *_: None, [])
    assert capped.events == expected.events
    assert sum(g.count for g in capped.groups.values()) == sum(g.count for g in expected.groups.values())


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_workers_end_with_a_killed_parent(tmp_path: Path) -> None:
    huge = tmp_path / "huge.log"
    with huge.open("wb") as fh:
        fh.truncate(64 * 1024**3)
    script = (
        "import sys, time\n"
        "from datetime import UTC, datetime\n"
        "from pathlib import Path\n"
        "from agents.evidence import parallel\n"
        "from integrations.logs.file_ranges import FileUnit\n"
        "now = datetime.now(UTC)\n"
        f"pool = parallel.Pool([FileUnit(Path({str(huge)!r}))], now, now, 1)\n"
        "print(*(p.pid for p in pool._processes), flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert workers and all(_running(pid) for pid in workers)

    parent.kill()
    parent.wait()

    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in workers)
