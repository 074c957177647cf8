"""Scale: a 2,000,000-line incident built from a bundle, investigated end to end; wall time and peak RSS.

Ordinary background lines are repeated with shifted timestamps; the incident's own
lines (anything that reads like a failure, and stack-trace continuations) stay as they are.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agents.evidence.lexicon import FAILURE
from bench.scenarios import PUBLIC, bundles

TARGET_LINES = 2_000_000
_ISO = re.compile(r"(\d{4}-\d{2}-\d{2})([T ])(\d{2}:\d{2}:\d{2})(?:([.,])(\d+))?")
_EPOCH = re.compile(r'("(?:ts|time|timestamp)":\s*)(\d{10}(?:\.\d+)?|\d{13})\b')
_CLF = re.compile(r"\[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}) ([+-]\d{4})\]")


def shift_line(line: str, seconds: float) -> str | None:
    """The line with its timestamp moved by `seconds`, in the same format; None when it has none we know."""
    if (m := _EPOCH.search(line)) is not None:
        raw = m.group(2)
        millis = len(raw) == 13 and "." not in raw
        value = str(int(raw) + int(seconds * 1000)) if millis else f"{float(raw) + seconds:.6f}"
        return line[: m.start(2)] + value + line[m.end(2) :]
    if (m := _ISO.search(line)) is not None:
        fraction = m.group(5) or ""
        stamp = datetime.fromisoformat(f"{m.group(1)}T{m.group(3)}" + (f".{fraction[:6].ljust(6, '0')}" if fraction else ""))
        moved = stamp + timedelta(seconds=seconds)
        text = f"{moved:%Y-%m-%d}{m.group(2)}{moved:%H:%M:%S}"
        if fraction:
            text += m.group(4) + f"{moved.microsecond:06d}"[: len(fraction)].ljust(len(fraction), "0")
        return line[: m.start()] + text + line[m.end() :]
    if (m := _CLF.search(line)) is not None:
        stamp = datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S").replace(tzinfo=UTC) + timedelta(seconds=seconds)
        return line[: m.start()] + f"[{stamp:%d/%b/%Y:%H:%M:%S} {m.group(2)}]" + line[m.end() :]
    return None


def _ordinary(line: str) -> bool:
    return bool(line.strip()) and not line[0].isspace() and FAILURE.search(line) is None


def multiply(bundle: Path, out: Path, target: int = TARGET_LINES) -> int:
    """Copy the bundle to `out` with its background multiplied to about `target` lines; returns the line count."""
    shutil.copytree(bundle, out, ignore=shutil.ignore_patterns("logs", "truth.json"))
    (out / "logs").mkdir()
    files = {p: p.read_text(encoding="utf-8", errors="replace").splitlines() for p in sorted((bundle / "logs").iterdir())}
    total = sum(len(lines) for lines in files.values())
    background = sum(1 for lines in files.values() for line in lines if _ordinary(line))
    copies = max(0, -(-(target - total) // max(background, 1)))
    written = 0
    for path, lines in files.items():
        with (out / "logs" / path.name).open("w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
                written += 1
                if copies and _ordinary(line):
                    for k in range(1, copies + 1):
                        moved = shift_line(line, k * 59.0 / (copies + 1))
                        if moved is None:
                            break
                        fh.write(moved + "\n")
                        written += 1
    return written


def _child(folder: Path) -> None:
    from bench.scenarios import investigate_bundle

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ir-scale-repo-") as tmp:
        report = investigate_bundle(folder, Path(tmp))
    summary = {"seconds": time.perf_counter() - started, "category": report["root_cause"]["category"], "timings": report["timings"]}
    print(json.dumps(summary))


def run(bundle: Path | None = None, target: int = TARGET_LINES) -> dict[str, Any]:
    source = bundle or max(bundles([PUBLIC]), key=lambda b: sum(p.stat().st_size for p in (b / "logs").iterdir()))
    with tempfile.TemporaryDirectory(prefix="ir-scale-") as tmp:
        folder = Path(tmp) / source.name
        lines = multiply(source, folder, target)
        truth = source / "truth.json"
        started = time.perf_counter()
        command = [sys.executable, "-m", "bench.scale", "--child", str(folder)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result: dict[str, Any] = {"bundle": source.name, "lines": lines, "wall_s": round(wall, 2), "peak_rss_mb": round(peak_kb / 1024, 1)}
    if done.returncode != 0:
        result["error"] = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        return result
    child = json.loads(done.stdout.strip().splitlines()[-1])
    result.update({"investigation_s": round(child["seconds"], 2), "category": child["category"], "timings": child["timings"]})
    if truth.exists():
        result["category_expected"] = json.loads(truth.read_text())["category"]
    return result


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(Path(sys.argv[2]))
    else:
        print(json.dumps(run(), indent=2))
