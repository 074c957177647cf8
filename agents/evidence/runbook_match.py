"""Which runbooks fit the finding: words the runbook shares with the evidence, weighted by rarity."""

from __future__ import annotations

import math
import re

from agents.evidence.model import RunbookMatch
from integrations.runbooks.base import Runbook

_WORD = re.compile(r"[a-z][a-z0-9]{2,}")
_STOP_WORDS = (
    "the and for with that this from are was were has have not but you your all any can will when then than "
    "into out our its use used using check first steps step see also how what why who which where there their "
    "them they been being each more most other some such only own same just should would could may might must "
    "per via about over under after before again service services minutes minute five ten"
)
_STOP = frozenset(_STOP_WORDS.split(" "))
MIN_SCORE = 0.12


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def match_runbooks(runbooks: list[Runbook], finding_text: str, *, limit: int = 3) -> list[RunbookMatch]:
    """Score = share of the runbook's distinctive words found in the finding, rare words counting more."""
    if not runbooks:
        return []
    finding = words(finding_text)
    docs = [words(f"{rb.title} {rb.title} {rb.text}") for rb in runbooks]
    frequency: dict[str, int] = {}
    for doc in docs:
        for word in doc:
            frequency[word] = frequency.get(word, 0) + 1
    scored: list[RunbookMatch] = []
    for runbook, doc in zip(runbooks, docs, strict=True):
        if not doc:
            continue
        weight = {w: math.log(1 + len(runbooks) / frequency[w]) + 0.5 for w in doc}
        shared = sum(weight[w] for w in doc & finding)
        title_words = words(runbook.title)
        title_shared = len(title_words & finding) / max(len(title_words), 1)
        score = shared / math.sqrt(sum(weight.values())) / 3.0 + 0.3 * title_shared
        if score >= MIN_SCORE:
            scored.append(RunbookMatch(title=runbook.title, path=runbook.path, score=round(min(score, 1.0), 3)))
    scored.sort(key=lambda m: m.score, reverse=True)
    return scored[:limit]
