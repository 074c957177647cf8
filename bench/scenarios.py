"""The scenario suite: run the real investigation path on every incident bundle and score it against truth.json."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.scoring import score_report
from core.alert import alert_from_payload

PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "scenarios" / "public"
# Our own incidents in the shape people paste them: kubectl describe/events, container logs without timestamps.
INCIDENTS = Path(__file__).resolve().parent / "incidents"
METRICS = ("category", "culprit_top1", "culprit_top3", "false_blame", "signature", "component", "onset")


def bundles(folders: list[Path]) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        if (folder / "truth.json").exists():
            found.append(folder)
        elif folder.is_dir():
            found += sorted(p for p in folder.iterdir() if (p / "truth.json").exists() and (p / "alert.json").exists())
    return found


def build_repo(bundle: Path, into: Path) -> Path | None:
    """The bundle's git history as a repository: `git fast-import` of repo.fi, main checked out."""
    stream = bundle / "repo.fi"
    if not stream.exists():
        return None
    repo = into / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    with stream.open("rb") as fh:
        subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], stdin=fh, check=True)
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "main"], check=True)
    return repo


def investigate_bundle(bundle: Path, work: Path) -> dict[str, Any]:
    from agents.pipeline import run_local

    alert = alert_from_payload(json.loads((bundle / "alert.json").read_text()), source="cli")
    repo = build_repo(bundle, work)

    def optional(name: str) -> Path | None:
        path = bundle / name
        return path if path.exists() else None

    report = run_local(
        alert=alert,
        logs=optional("logs"),
        repo=repo,
        deploys=optional("deploys.json"),
        metrics=optional("metrics.csv"),
        runbooks=optional("runbooks"),
        kubectl=optional("kubectl"),
        pod_logs=optional("pod-logs"),
    )
    return report.to_json_dict()


def run(folders: list[Path] | None = None) -> dict[str, Any]:
    """Per-bundle scores and totals; a bundle that crashes counts as wrong everywhere."""
    rows: list[dict[str, Any]] = []
    for bundle in bundles(folders or [PUBLIC]):
        truth = json.loads((bundle / "truth.json").read_text())
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="ir-bench-") as tmp:
            try:
                report = investigate_bundle(bundle, Path(tmp))
                scores = score_report(report, truth)
                got = report["root_cause"]
                top = report["suspect_commits"][0] if report["suspect_commits"] else None
                detail = {
                    "category_got": got["category"],
                    "component_got": got.get("component"),
                    "confidence": got.get("confidence"),
                    "onset_got": (report.get("window") or {}).get("onset"),
                    "top_suspect": f"{top['sha'][:8]} {top['score']:.2f}" if top else None,
                    "signature_top": [s["template"][:160] for s in report["signatures"][:3]],
                }
                error = None
            except Exception as exc:  # a crash is a result too
                scores = {m: m == "false_blame" for m in METRICS}
                if not truth.get("culprit_commit"):
                    scores["culprit_top1"] = scores["culprit_top3"] = None
                else:
                    scores["false_blame"] = None
                detail, error = {}, f"{type(exc).__name__}: {exc}"
        rows.append(
            {
                "bundle": bundle.name,
                "truth_category": truth["category"],
                "seconds": round(time.perf_counter() - started, 2),
                **scores,
                **detail,
                "error": error,
            }
        )
    return {"bundles": rows, "totals": totals(rows)}


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in METRICS:
        values = [r[metric] for r in rows if r.get(metric) is not None]
        hits = sum(1 for v in values if v)
        out[metric] = {"hits": hits, "of": len(values), "rate": round(hits / len(values), 3) if values else None}
    out["seconds_mean"] = round(sum(r["seconds"] for r in rows) / len(rows), 2) if rows else None
    return out
