"""The incident history at size: index time per incident, search p50/p99 and memory with 10,000 stored incidents.

Incidents are the public bundles' reports varied (service, title, words of the summary)
so that the index holds many near neighbours, as a real history does. The store is
qdrant-client's local mode in a temporary folder, opened once, as a worker holds it.
"""

from __future__ import annotations

import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agents.history import report_text
from bench.scenarios import PUBLIC, bundles, investigate_bundle
from core.settings import get_settings
from integrations.history.qdrant_index import Entry, IncidentIndex

SIZE = 10_000
QUERIES = 200
BATCH = 64
_WORDS = ("after a deploy", "during the batch window", "on two pods", "at peak traffic", "in eu-west-1", "behind the gateway")


def _incidents(reports: list[dict[str, Any]], size: int, rng: random.Random) -> list[Entry]:
    entries = []
    for i in range(size):
        report = reports[i % len(reports)]
        service = f"{(report.get('alert') or {}).get('service', 'svc')}-{rng.randrange(40)}"
        title = f"{(report.get('alert') or {}).get('title', 'incident')} {rng.choice(_WORDS)}"
        text = report_text(report, title=title, service=service)
        root = report.get("root_cause") or {}
        payload = {"service": service, "category": root.get("category"), "title": title, "created_ts": 1.7e9 + i * 3600, "doc_hash": str(i)}
        entries.append(Entry(f"inv_{i:08d}", text, payload))
    return entries


def run(size: int = SIZE) -> dict[str, Any]:
    from agents.history import _embedder

    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as work:
        reports = [investigate_bundle(bundle, Path(tempfile.mkdtemp(dir=work))) for bundle in bundles([PUBLIC])]
        entries = _incidents(reports, size, rng)
        embedder = _embedder(get_settings())
        index = IncidentIndex(embedder, path=Path(work) / "qdrant")
        started = time.perf_counter()
        # As `index rebuild` does it: one open, batches of BATCH.
        with index.held():
            for offset in range(0, len(entries), BATCH):
                index.upsert(entries[offset : offset + BATCH])
        index_s = time.perf_counter() - started
        opened = time.perf_counter()
        assert index.count() == size
        open_s = time.perf_counter() - opened
        queries = [report_text(rng.choice(reports), title="paged again", service="svc") for _ in range(QUERIES)]
        latencies = []
        # One open for all searches: the worker's view. A web process on local mode pays `open_s` per search on top.
        with index.held():
            for query in queries:
                t0 = time.perf_counter()
                index.search(query, limit=3, threshold=embedder.threshold)
                latencies.append((time.perf_counter() - t0) * 1000)
        latencies.sort()
    return {
        "embedder": embedder.name,
        "incidents": size,
        "index_ms_per_incident": round(index_s / size * 1000, 2),
        "search_p50_ms": round(statistics.median(latencies), 1),
        "search_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "open_s": round(open_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
