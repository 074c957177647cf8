"""The crew path measured against the local OpenAI stand-in, on the public bundles and on one bundle grown to 50k and 2M lines.

For each run: LLM calls and input/output tokens (from the API responses), the
analyst that wrote the report, and the wall time the crew path adds over the
offline path with the stand-in's own time taken out (the union of the intervals
during which at least one request was in flight). crewai's one-off import is
timed separately: a worker pays it once, not per investigation.

`python -m bench.crew` prints a table and writes bench/results/crew.json.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.scale import multiply
from bench.scenarios import PUBLIC, bundles, investigate_bundle
from core.settings import reset_settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SCALE_LINES = (50_000, 2_000_000)
sys.path.insert(0, str(ROOT / "tests" / "standins"))

from standin_openai import Call, Reply, StandinOpenAI  # noqa: E402

_SHA = re.compile(r"commit ([0-9a-f]{7,40}) score=([0-9.]+)")
_CATEGORY = re.compile(r"engine finding: category=(\w+)")
_SIG = re.compile(r"sig#(\d+)")


def _role(call: Call) -> str:
    match = re.search(r"You are ([A-Za-z ]+?)\.", call.system)
    return match.group(1).lower() if match else "other"


def script(call: Call) -> Reply:
    """A well-behaved model: each specialist uses one tool and reports; the commander agrees with the engine."""
    role = _role(call)
    prompt = json.dumps(call.messages)
    if role == "incident commander":
        category = _CATEGORY.search(prompt)
        suspects = [(sha, float(score)) for sha, score in _SHA.findall(prompt)]
        blamed = [{"sha": sha, "likelihood": score, "reason": "timing and files match"} for sha, score in suspects[:1] if score >= 0.5]
        return Reply.json(
            {
                "category": category.group(1) if category else "unknown",
                "component": None,
                "confidence": 0.7,
                "summary": "The failure began at the onset shown by the key signature; see the suspects and metrics.",
                "blamed_commits": blamed,
                "cited_files": [],
                "cited_metrics": [],
                "actions": [{"title": "Mitigate", "detail": "Follow the runbook.", "kind": "mitigate", "runbook": None}],
            }
        )
    if call.tool_names and call.last_role != "tool":
        if "list_suspects" in call.tool_names:
            return Reply.tool("list_suspects", {})
        sig = _SIG.search(prompt)
        return Reply.tool("search_logs", {"query": "", "signature": int(sig.group(1)) if sig else 1})
    return Reply.text(f"{role}: the key signature starts at the onset; nothing else stands out.")


def _busy_s(calls: list[Call]) -> float:
    """Seconds during which at least one request was in flight."""
    total, end = 0.0, float("-inf")
    for call in sorted(calls, key=lambda c: c.arrived):
        start, stop = max(call.arrived, end), call.finished
        if stop > start:
            total += stop - start
        end = max(end, stop)
    return total


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    reset_settings()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()


def _investigate(bundle: Path, env: dict[str, str]) -> dict[str, Any]:
    with _env(env), tempfile.TemporaryDirectory(prefix="ir-bench-crew-") as tmp:
        return investigate_bundle(bundle, Path(tmp))


def measure(bundle: Path, standin: StandinOpenAI, data_dir: str) -> dict[str, Any]:
    offline = _investigate(bundle, {"OPENAI_API_KEY": "", "DATA_DIR": data_dir})
    first = len(standin.calls)
    crew = _investigate(bundle, {"OPENAI_API_KEY": "sk-bench-standin", "OPENAI_BASE_URL": standin.base_url, "DATA_DIR": data_dir})
    calls = standin.calls[first:]
    busy = _busy_s(calls)
    offline_s, crew_s = offline["timings"]["analyse_s"], crew["timings"]["analyse_s"]
    return {
        "bundle": bundle.name,
        "analyst": crew["analyst"],
        "llm_calls": crew["usage"]["llm_calls"],
        "input_tokens": crew["usage"]["input_tokens"],
        "output_tokens": crew["usage"]["output_tokens"],
        "largest_call_tokens": max((len(json.dumps(c.body)) // 4 for c in calls), default=0),
        "offline_analyse_s": offline_s,
        "crew_analyse_s": crew_s,
        "standin_busy_s": round(busy, 3),
        "added_s": round(crew_s - offline_s - busy, 3),
        "evidence_s": crew["timings"].get("evidence_s"),
        "degraded": [d["reason"] for d in crew["degraded"] if d["component"] == "llm"],
    }


def run(scale_lines: tuple[int, ...] = SCALE_LINES) -> dict[str, Any]:
    for key, value in {
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_DISABLE_TRACKING": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_DISABLE_VERSION_CHECK": "true",
    }.items():
        os.environ.setdefault(key, value)
    started = time.perf_counter()
    import crewai  # noqa: F401  (timed here: the one-off cost of the first crew run in a worker)

    import_s = round(time.perf_counter() - started, 2)
    rows: list[dict[str, Any]] = []
    scale: list[dict[str, Any]] = []
    with StandinOpenAI(script) as standin, tempfile.TemporaryDirectory(prefix="ir-bench-crew-data-") as data_dir:
        # The first kickoff in a process loads the rest of crewai lazily; measured apart, like the import.
        cold = measure(bundles([PUBLIC])[0], standin, data_dir)
        for bundle in bundles([PUBLIC]):
            rows.append(measure(bundle, standin, data_dir))
        source = max(bundles([PUBLIC]), key=lambda b: sum(p.stat().st_size for p in (b / "logs").iterdir()))
        for target in scale_lines:
            with tempfile.TemporaryDirectory(prefix="ir-bench-crew-scale-") as tmp:
                folder = Path(tmp) / source.name
                lines = multiply(source, folder, target)
                (folder / "truth.json").write_text((source / "truth.json").read_text())
                scale.append({"lines": lines, **measure(folder, standin, data_dir)})
    n = len(rows) or 1
    return {
        "crewai_import_s": import_s,
        "first_run_added_s": cold["added_s"],
        "bundles": rows,
        "mean": {
            "llm_calls": round(sum(r["llm_calls"] for r in rows) / n, 2),
            "input_tokens": round(sum(r["input_tokens"] for r in rows) / n),
            "added_s": round(sum(r["added_s"] for r in rows) / n, 3),
        },
        "max_input_tokens": max((r["input_tokens"] for r in rows), default=0),
        "scale": scale,
    }


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (
        f"Crew path vs offline, stand-in LLM (once per worker: crewai import {result['crewai_import_s']} s, "
        f"first run +{result['first_run_added_s']} s)"
    )
    table = Table(title=title)
    for column in ("bundle", "lines", "analyst", "calls", "input tok", "output tok", "offline s", "crew s", "stand-in s", "added s"):
        table.add_column(column)
    for row in [*result["bundles"], *result["scale"]]:
        table.add_row(
            row["bundle"],
            str(row.get("lines", "")),
            row["analyst"],
            str(row["llm_calls"]),
            str(row["input_tokens"]),
            str(row["output_tokens"]),
            f"{row['offline_analyse_s']:.3f}",
            f"{row['crew_analyse_s']:.3f}",
            f"{row['standin_busy_s']:.3f}",
            f"{row['added_s']:.3f}",
        )
    mean = result["mean"]
    table.add_row("mean (bundles)", "", "", str(mean["llm_calls"]), str(mean["input_tokens"]), "", "", "", "", f"{mean['added_s']:.3f}")
    Console().print(table)


if __name__ == "__main__":
    outcome = run()
    _print(outcome)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "crew.json").write_text(json.dumps(outcome, indent=2, default=str))
