"""How the benchmark counts, exactly as the scenario README states it."""

from __future__ import annotations

import re
from typing import Any

from core.timeparse import parse_iso

ONSET_TOLERANCE_S = 120
_TOKEN = re.compile(r"[a-z0-9_]+")
_PLACEHOLDER = re.compile(r"<[^<>\s]*>")


def culprit_rank(suspects: list[dict[str, Any]], truth_sha: str) -> int | None:
    """1-based rank of the first suspect whose sha (>= 7 hex chars) prefixes the truth, by score."""
    ranked = sorted(suspects, key=lambda s: -float(s.get("score", 0)))
    for index, suspect in enumerate(ranked, start=1):
        sha = str(suspect.get("sha", "")).lower()
        if len(sha) >= 7 and re.fullmatch(r"[0-9a-f]+", sha) and truth_sha.lower().startswith(sha):
            return index
    return None


def signature_hit(templates: list[str], truth: str) -> bool:
    """Truth is a substring of one of the first three templates, or shares >= 60 % of its distinct word tokens with one."""
    wanted = truth.lower()
    words = set(_TOKEN.findall(wanted))
    for template in templates[:3]:
        text = template.lower()
        if wanted in text:
            return True
        if not words:
            continue
        have = set(_TOKEN.findall(_PLACEHOLDER.sub(" ", text)))
        placeholder = _PLACEHOLDER.search(text) is not None
        shared = sum(1 for w in words if w in have or (placeholder and w.isdigit()))
        if shared / len(words) >= 0.6:
            return True
    return False


def component_hit(reported: str | None, truth: str) -> bool:
    if not reported:
        return False
    a, b = reported.lower(), truth.lower()
    return a in b or b in a


def onset_hit(reported: str | None, truth: str) -> bool:
    if not reported:
        return False
    delta = parse_iso(reported) - parse_iso(truth)
    return abs(delta.total_seconds()) <= ONSET_TOLERANCE_S


def score_report(report: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    culprit = truth.get("culprit_commit")
    suspects = report.get("suspect_commits", [])
    rank = culprit_rank(suspects, culprit) if culprit else None
    top = max((float(s.get("score", 0)) for s in suspects), default=0.0)
    window = report.get("window") or {}
    return {
        "category": report["root_cause"]["category"] == truth["category"],
        "culprit_top1": None if not culprit else rank == 1,
        "culprit_top3": None if not culprit else rank is not None and rank <= 3,
        "false_blame": None if culprit else top >= 0.5,
        "signature": signature_hit([s["template"] for s in report.get("signatures", [])], truth["signature"]),
        "component": component_hit(report["root_cause"].get("component"), truth["component"]),
        "onset": onset_hit(window.get("onset"), truth["onset"]),
    }
