"""The verdict checked against the evidence before anyone reads it.

A sha, file or metric the model names that the evidence does not hold is
dropped (from lists) or replaced (in prose) and noted, whatever put it there:
a hallucination, or an instruction planted in a log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents.crew.verdict import BlamedCommit, Verdict
from agents.evidence.model import Evidence

_SHA = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{7,40}(?![0-9A-Za-z])")
_SOURCE_EXT = "py|go|java|kt|scala|rb|js|ts|tsx|jsx|php|cs|rs|c|cc|cpp|h|sql|ya?ml|json|toml|ini|conf|cfg|properties|env|tf|sh"
_FILE = re.compile(rf"(?<![\w/.-])(?:[\w.-]+/)*[\w-]+\.(?:{_SOURCE_EXT})(?![\w/-])(?!\.\w)")
_COMMIT_WORD = re.compile(r"(?i)\b(?:commit|sha|revision|rev|version|deploy(?:ed)?|build)\b[\s:#=`'\"]*$")
UNVERIFIED_SHA = "[unverified commit]"
UNVERIFIED_FILE = "[unverified file]"
# Prose naming this many characters of a sha is specific enough to check.
MIN_SHA_PREFIX = 7


@dataclass
class Known:
    shas: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    metrics: set[str] = field(default_factory=set)
    runbooks: set[str] = field(default_factory=set)
    text: str = ""

    def sha(self, candidate: str) -> str | None:
        """The evidence's full sha that `candidate` abbreviates, if exactly one."""
        c = candidate.lower()
        if len(c) < MIN_SHA_PREFIX:
            return None
        hits = {s for s in self.shas if s.startswith(c)}
        return hits.pop() if len(hits) == 1 else None

    def file(self, candidate: str) -> bool:
        c = candidate.strip().lstrip("./")
        return any(f == c or f.endswith("/" + c) or c.endswith("/" + f) for f in self.files) or c in self.text

    def metric(self, candidate: str) -> bool:
        c = candidate.strip()
        return any(c == m or c.split("{")[0] == m for m in self.metrics)


def known_from(evidence: Evidence) -> Known:
    known = Known()
    for s in evidence.suspects:
        known.shas.add(s.sha.lower())
        known.files.update(f.lstrip("./") for f in s.files)
    for d in evidence.deploys:
        version = str(d.get("version") or d.get("sha") or "")
        if re.fullmatch(r"[0-9a-fA-F]{7,40}", version):
            known.shas.add(version.lower())
    known.metrics.update(m.metric for m in evidence.metric_shifts)
    known.runbooks.update(r.title for r in evidence.runbooks)
    known.runbooks.update(r.path for r in evidence.runbooks)
    # Frames and messages name files too ("at billing/charge.py:88"); prose may cite those.
    known.text = "\n".join(
        [
            *(s.template for s in evidence.signatures),
            *(s.sample for s in evidence.signatures),
            *(f for s in evidence.signatures for f in s.frames),
        ]
    )
    return known


def check(verdict: Verdict, evidence: Evidence) -> tuple[Verdict, list[str]]:
    known = known_from(evidence)
    notes: list[str] = []
    blamed: list[BlamedCommit] = []
    for item in verdict.blamed_commits:
        full = known.sha(item.sha.strip())
        if full is None:
            notes.append(f"commit {item.sha.strip()[:40]!r} is not in the evidence; dropped from the suspects")
            continue
        if full not in {b.sha for b in blamed}:
            blamed.append(item.model_copy(update={"sha": full}))
    files = [f for f in verdict.cited_files if known.file(f)]
    notes += [f"file {f[:120]!r} is not in the evidence; dropped" for f in verdict.cited_files if f not in files]
    metrics = [m for m in verdict.cited_metrics if known.metric(m)]
    notes += [f"metric {m[:120]!r} is not in the evidence; dropped" for m in verdict.cited_metrics if m not in metrics]
    summary = _scrub(verdict.summary, known, notes)
    component = _scrub(verdict.component, known, notes) if verdict.component else verdict.component
    actions = []
    for action in verdict.actions:
        runbook = action.runbook if action.runbook in known.runbooks else None
        if action.runbook and runbook is None:
            notes.append(f"runbook {action.runbook[:120]!r} is not in the evidence; dropped from an action")
        actions.append(
            action.model_copy(
                update={"title": _scrub(action.title, known, notes), "detail": _scrub(action.detail, known, notes), "runbook": runbook}
            )
        )
    clean = verdict.model_copy(
        update={
            "blamed_commits": blamed,
            "cited_files": files,
            "cited_metrics": metrics,
            "summary": summary,
            "component": component,
            "actions": actions,
        }
    )
    return clean, notes


def _scrub(text: str, known: Known, notes: list[str]) -> str:
    def sha(match: re.Match[str]) -> str:
        token = match.group(0)
        # Hex words without a digit ("defaced") are prose; a known sha is fine.
        if not re.search(r"\d", token) or known.sha(token):
            return token
        # Hex ids from the logs (pod hashes, request ids) may be quoted, unless the text calls them a commit.
        called_commit = _COMMIT_WORD.search(text[max(0, match.start() - 24) : match.start()])
        if token in known.text and not called_commit:
            return token
        notes.append(f"commit {token!r} named in the text is not in the evidence; removed")
        return UNVERIFIED_SHA

    def path(match: re.Match[str]) -> str:
        token = match.group(0)
        if known.file(token):
            return token
        notes.append(f"file {token!r} named in the text is not in the evidence; removed")
        return UNVERIFIED_FILE

    return _FILE.sub(path, _SHA.sub(sha, text))
