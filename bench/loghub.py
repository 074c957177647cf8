"""Loghub grouping accuracy and speed: our template miner against drain3's default.

Each system folder holds ``<System>_2k.log_structured_corrected.csv``; its ``Content``
column is fed to both miners in the same process and ``EventId`` is the truth. A line
counts as right when its predicted group has exactly the members of its true group.

``python -m bench.loghub [--loghub DIR]`` prints a table and writes
``bench/results/loghub.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from drain3 import TemplateMiner as DrainMiner
from rich.console import Console
from rich.table import Table

from agents.evidence.templates import TemplateMiner

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LOGHUB = REPO.parent / "shared" / "loghub"
RESULTS = Path(__file__).resolve().parent / "results"
# 2,000 lines take a few milliseconds: the best of a few fresh runs is a steadier speed.
RUNS = 3

Miner = Callable[[], Callable[[str], Hashable]]


def _ours() -> Callable[[str], Hashable]:
    return TemplateMiner().add


def _drain3() -> Callable[[str], Hashable]:
    miner = DrainMiner()

    def add(line: str) -> Hashable:
        return int(miner.add_log_message(line)["cluster_id"])

    return add


def load_system(folder: Path) -> tuple[list[str], list[str]]:
    """(Content, EventId) of every line of one Loghub system."""
    path = folder / f"{folder.name}_2k.log_structured_corrected.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [row["Content"] for row in rows], [row["EventId"] for row in rows]


def grouping_accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    """Share of lines whose predicted group has the same members as their true group."""
    by_predicted: dict[Hashable, set[int]] = defaultdict(set)
    by_truth: dict[Hashable, set[int]] = defaultdict(set)
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        by_predicted[p].add(i)
        by_truth[t].add(i)
    right = sum(by_predicted[p] == by_truth[t] for p, t in zip(predicted, truth, strict=True))
    return right / len(truth) if truth else 1.0


def _measure(make: Miner, lines: list[str], truth: list[str]) -> dict[str, float]:
    best = float("inf")
    predicted: list[Hashable] = []
    for _ in range(RUNS):
        add = make()
        start = time.perf_counter()
        predicted = [add(line) for line in lines]
        best = min(best, time.perf_counter() - start)
    return {
        "accuracy": round(grouping_accuracy(predicted, truth), 4),
        "lines_per_s": round(len(lines) / best) if best > 0 else 0,
        "groups": len(set(predicted)),
    }


def _systems(loghub_dir: Path) -> list[Path]:
    return sorted(p for p in loghub_dir.iterdir() if (p / f"{p.name}_2k.log_structured_corrected.csv").is_file())


def _mean(rows: list[dict[str, Any]], miner: str, metric: str) -> float:
    return round(sum(row[miner][metric] for row in rows) / len(rows), 4) if rows else 0.0


def run(loghub_dir: Path) -> dict[str, Any]:
    """Accuracy and lines/s of ours and drain3 for every system under ``loghub_dir``."""
    # drain3 logs its configuration loading at import and construction time.
    logging.getLogger("drain3").setLevel(logging.ERROR)
    rows: list[dict[str, Any]] = []
    for folder in _systems(loghub_dir):
        lines, truth = load_system(folder)
        rows.append(
            {
                "system": folder.name,
                "lines": len(lines),
                "templates": len(set(truth)),
                "ours": _measure(_ours, lines, truth),
                "drain3": _measure(_drain3, lines, truth),
            }
        )
    means = {miner: {metric: _mean(rows, miner, metric) for metric in ("accuracy", "lines_per_s")} for miner in ("ours", "drain3")}
    return {"loghub_dir": str(loghub_dir), "systems": rows, "mean": means}


def table(result: dict[str, Any]) -> Table:
    table = Table(title="Loghub grouping accuracy (2k lines per system)")
    for column in ("system", "templates", "ours acc", "drain3 acc", "ours lines/s", "drain3 lines/s"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for row in result["systems"]:
        ours, drain = row["ours"], row["drain3"]
        table.add_row(
            row["system"],
            str(row["templates"]),
            f"{ours['accuracy']:.4f}",
            f"{drain['accuracy']:.4f}",
            f"{ours['lines_per_s']:,}",
            f"{drain['lines_per_s']:,}",
        )
    mean = result["mean"]
    table.add_row(
        "mean",
        "",
        f"{mean['ours']['accuracy']:.4f}",
        f"{mean['drain3']['accuracy']:.4f}",
        f"{mean['ours']['lines_per_s']:,.0f}",
        f"{mean['drain3']['lines_per_s']:,.0f}",
        style="bold",
    )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loghub", description=__doc__.splitlines()[0])
    parser.add_argument("--loghub", type=Path, default=DEFAULT_LOGHUB, help="folder of Loghub systems")
    args = parser.parse_args()
    console = Console()
    if not args.loghub.is_dir():
        console.print(f"[red]{args.loghub} is not a folder[/]")
        raise SystemExit(2)
    result = run(args.loghub)
    console.print(table(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "loghub.json"
    out.write_text(json.dumps(result, indent=2))
    console.print(f"results written to {out}")


if __name__ == "__main__":
    main()
