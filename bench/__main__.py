"""`python -m bench` (`make bench`): scenario suite, Loghub templates, scale, incident history; tables on screen, JSON in bench/results/."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import codehosts, history, loghub, remote, scale, scenarios

RESULTS = Path(__file__).resolve().parent / "results"
LOGHUB = Path(__file__).resolve().parents[2] / "shared" / "loghub"


def _mark(value: Any) -> str:
    if value is None:
        return "-"
    return "[green]✓[/]" if value else "[red]✗[/]"


def _scenario_table(result: dict[str, Any], title: str = "Scenario suite") -> Table:
    table = Table(title=title)
    for column in ("bundle", "truth", "got", "component", "cat", "top1", "top3", "false blame", "sig", "comp", "onset", "s"):
        table.add_column(column)
    for row in result["bundles"]:
        table.add_row(
            row["bundle"],
            row["truth_category"],
            str(row.get("category_got", row.get("error", ""))),
            str(row.get("component_got", "")),
            _mark(row["category"]),
            _mark(row["culprit_top1"]),
            _mark(row["culprit_top3"]),
            # False blame is bad when true: show it the other way round.
            _mark(None if row["false_blame"] is None else not row["false_blame"]),
            _mark(row["signature"]),
            _mark(row["component"]),
            _mark(row["onset"]),
            f"{row['seconds']:.2f}",
        )
    totals = result["totals"]
    cells = [f"{totals[m]['hits']}/{totals[m]['of']}" for m in scenarios.METRICS]
    table.add_row("total", "", "", "", *cells, f"{totals['seconds_mean']}")
    return table


def _loghub(console: Console) -> dict[str, Any]:
    if not LOGHUB.is_dir():
        console.print(f"[yellow]{LOGHUB} is missing: Loghub template accuracy skipped[/]")
        return {"skipped": f"{LOGHUB} missing"}
    result: dict[str, Any] = loghub.run(LOGHUB)
    console.print(loghub.table(result))
    return result


def _remote_table(result: dict[str, Any]) -> Table:
    table = Table(title="Remote log stores (served, read through the engine)")
    for column in ("store", "events", "s", "events/s", "API calls", "MB", "peak RSS MB", "truncated"):
        table.add_column(column)
    for name, row in result.items():
        if "error" in row:
            table.add_row(name, "", "", "", "", "", "", f"[red]{row['error']}[/]")
            continue
        table.add_row(
            name,
            f"{row['events']:,}",
            str(row["seconds"]),
            f"{row['events_per_s']:,}",
            str(row["api_calls"]),
            str(row["mb_read"]),
            str(row["peak_rss_mb"]),
            str(row["truncated"] or "no"),
        )
    return table


def _codehosts_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"Code hosts: {result['window_commits']}-commit window and {result['diffs_read']} diffs (stand-ins on loopback)")
    for column in ("kind", "commits", "cold API calls", "cold s", "cached API calls", "cached s"):
        table.add_column(column)
    for row in result["hosts"]:
        cells = [row["commits"], row["cold_api_calls"], row["cold_s"], row["cached_api_calls"], row["cached_s"]]
        table.add_row(row["kind"], *(str(cell) for cell in cells))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scenarios", type=Path, action="append", default=[], help="another folder of incident bundles (repeatable)")
    parser.add_argument("--skip-scale", action="store_true", help="leave out the 2,000,000-line run")
    parser.add_argument("--skip-loghub", action="store_true")
    parser.add_argument("--skip-history", action="store_true", help="leave out the incident-history run (index and search)")
    parser.add_argument("--history-size", type=int, default=history.SIZE, help="incidents stored for the history run")
    parser.add_argument("--skip-remote", action="store_true", help="leave out the 1,000,000-event reads from served log stores")
    parser.add_argument("--remote", action="append", default=[], help="only this served log store (loki, ...; repeatable)")
    parser.add_argument("--skip-codehosts", action="store_true", help="leave out the code hosts' API calls for a 200-commit window")
    args = parser.parse_args()
    console = Console(width=220)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out: dict[str, Any] = {}

    folders = [scenarios.PUBLIC, *args.scenarios] if scenarios.PUBLIC.is_dir() else list(args.scenarios)
    out["scenarios"] = scenarios.run(folders)
    console.print(_scenario_table(out["scenarios"]))
    if scenarios.INCIDENTS.is_dir():
        out["incidents"] = scenarios.run([scenarios.INCIDENTS])
        console.print(_scenario_table(out["incidents"], "Kubernetes incidents (bench/incidents)"))
    if not args.skip_loghub:
        out["loghub"] = _loghub(console)
    if not args.skip_scale:
        out["scale"] = scale.run()
        table = Table(title="Scale")
        for key in ("bundle", "lines", "wall_s", "peak_rss_mb", "category"):
            table.add_column(key)
        s = out["scale"]
        table.add_row(s["bundle"], f"{s['lines']:,}", str(s["wall_s"]), str(s["peak_rss_mb"]), str(s.get("category", s.get("error"))))
        console.print(table)
    if not args.skip_remote:
        out["remote"] = remote.run(only=args.remote or None)
        console.print(_remote_table(out["remote"]))
    if not args.skip_codehosts:
        out["codehosts"] = codehosts.run()
        console.print(_codehosts_table(out["codehosts"]))
    # Last: it loads the embedding model into this process, and a child forked after that starts with its memory
    # counted in its own peak RSS (the remote and scale parts measure their children's).
    if not args.skip_history:
        out["history"] = history.run(args.history_size)
        table = Table(title="Incident history (qdrant-client local mode)")
        for key in out["history"]:
            table.add_column(key)
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in out["history"].values()))
        console.print(table)
    path = RESULTS / f"bench-{stamp}.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    (RESULTS / "latest.json").write_text(json.dumps(out, indent=2, default=str))
    console.print(f"results written to {path}")


if __name__ == "__main__":
    main()
