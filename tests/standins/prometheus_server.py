"""A real Prometheus (Debian's `prometheus` package) on a loopback port, its TSDB backfilled from a bundle's metrics.csv.

Not a stand-in: the real server, so the `prometheus` kind is tested against the
API it will meet. `csv_to_openmetrics` writes the samples as OpenMetrics text,
`promtool tsdb create-blocks-from openmetrics` turns them into blocks, and
`PrometheusServer` starts the binary over them with a retention wide enough for old dates.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from integrations.metrics.csv_file import MetricsCsv


def binaries_missing() -> str | None:
    """Why the real server cannot run here (None when it can)."""
    missing = [name for name in ("prometheus", "promtool") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (Debian package 'prometheus'; .ci/run installs it)"
    return None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_name(metric: str) -> str:
    """A CSV metric name as Prometheus spells it (Datadog-style `a.b.c` becomes `a_b_c`)."""
    return re.sub(r"[^a-zA-Z0-9_:]", "_", metric)


def csv_to_openmetrics(source: Path, target: Path) -> dict[str, str]:
    """OpenMetrics text of every row of a `timestamp,metric,labels,value` CSV; returns {CSV metric: Prometheus name}."""
    # Read through MetricsCsv itself: the server then holds exactly the series the CSV kind sees.
    every = MetricsCsv(source).series(datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    families: dict[str, list[str]] = {}
    for series in sorted(every, key=lambda s: s.key):
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(series.labels.items()))
        name = prometheus_name(series.metric)
        selector = f"{name}{{{inner}}}" if inner else name
        # OpenMetrics wants each family's samples together, and each series in time order.
        family = families.setdefault(series.metric, [f"# TYPE {name} gauge"])
        family.extend(f"{selector} {value!r} {at.timestamp():.3f}" for at, value in series.points)
    lines = [line for metric in sorted(families) for line in families[metric]]
    lines.append("# EOF")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {metric: prometheus_name(metric) for metric in sorted(families)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrometheusServer:
    """`prometheus` over a backfilled TSDB in `workdir`, on a free 127.0.0.1 port, until `stop()`."""

    def __init__(self, metrics_csv: Path, workdir: Path) -> None:
        self.workdir = workdir
        self.data = workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.metrics = csv_to_openmetrics(metrics_csv, workdir / "metrics.om")
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(workdir / "metrics.om"), str(self.data)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        (workdir / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n", encoding="utf-8")
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, ready_within_s: float = 60.0) -> PrometheusServer:
        log = (self.workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.data}",
                # The bundles are from the past: a default 15-day retention would delete the backfilled blocks.
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        ends = time.monotonic() + ready_within_s
        while time.monotonic() < ends:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus not ready within {ready_within_s:.0f}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
