"""The evidence as the model reads it: compact, redacted, log text quoted as data.

Each specialist gets only the part of the evidence it works on, so parallel
calls do not each pay for everything. Every string that came from a log, a
commit or a runbook is JSON-quoted (a log line cannot close its quotes or start
a new line of instructions) and the whole block sits between markers carrying a
per-run nonce that the evidence cannot guess.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from agents.evidence.model import Evidence, SignatureEvidence, SuspectEvidence
from core.alert import Alert
from core.redaction import redact_text

MAX_SIGNATURES = 8
MAX_SUSPECTS = 5
MAX_SHIFTS = 8
MAX_DEPLOYS = 6
MAX_TIMELINE = 10
TEXT_CHARS = 200
FRAMES = 2
FILES = 5


def quoted(text: str | None, limit: int = TEXT_CHARS) -> str:
    """Redacted, cut to `limit` characters, JSON-quoted."""
    clean = redact_text(text or "")
    if len(clean) > limit:
        clean = clean[: limit - 1] + "…"
    return json.dumps(clean, ensure_ascii=False)


def _at(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


@dataclass
class Digest:
    evidence: Evidence
    alert: Alert
    nonce: str = field(default_factory=lambda: secrets.token_hex(4))

    def wrap(self, lines: list[str]) -> str:
        body = "\n".join(lines)
        return f"<evidence-{self.nonce}>\n{body}\n</evidence-{self.nonce}>"

    @property
    def open_tag(self) -> str:
        return f"<evidence-{self.nonce}>"

    def alert_lines(self) -> list[str]:
        ev = self.evidence
        return [
            f"alert: title={quoted(self.alert.title)} summary={quoted(self.alert.summary)} service={quoted(ev.service)}",
            f"alert at: {_at(ev.alert_at)}",
            f"window: {_at(ev.window_start)} .. {_at(ev.window_end)}; onset: {_at(ev.onset)}",
        ]

    def signature_lines(self, limit: int = MAX_SIGNATURES, *, samples: bool = True) -> list[str]:
        lines = []
        for sig in self.evidence.signatures[:limit]:
            lines.append(self.signature_line(sig, samples=samples))
        return lines or ["signatures: none"]

    def signature_line(self, sig: SignatureEvidence, *, samples: bool = True) -> str:
        parts = [
            f"sig#{sig.group_id} {sig.trend} level={sig.level or '-'} count={sig.count} before={sig.count_before} after={sig.count_after}",
            f"first={_at(sig.first_seen)} source={quoted(sig.source, 60)}",
            f"template={quoted(sig.template)}",
        ]
        if sig.exception:
            parts.append(f"exception={quoted(sig.exception, 160)}")
        if sig.frames:
            parts.append(f"frames={json.dumps([redact_text(f)[:120] for f in sig.frames[:FRAMES]])}")
        if samples and sig.sample:
            parts.append(f"sample={quoted(sig.sample)}")
        return " ".join(parts)

    def fact_lines(self, limit: int = 8) -> list[str]:
        """What the platform states (OOM kills, crash loops, node conditions): observed, so it outranks a statistic."""
        lines = []
        for fact in [f for f in self.evidence.facts if f.failing or f.kind == "rollout"][:limit]:
            code = f" exit_code={fact.exit_code}" if fact.exit_code is not None else ""
            lines.append(
                f"fact {fact.kind} reason={fact.reason or '-'} subject={quoted(fact.subject, 80)} count={fact.count}{code} "
                f"at={_at(fact.at)} ours={str(fact.about_service).lower()} detail={quoted(fact.detail, 240)}"
            )
        return lines

    def suspect_lines(self, limit: int = MAX_SUSPECTS) -> list[str]:
        return [self.suspect_line(s) for s in self.evidence.suspects[:limit]] or ["suspects: none"]

    def suspect_line(self, s: SuspectEvidence) -> str:
        title = s.message.strip().splitlines()[0] if s.message.strip() else ""
        files = json.dumps([redact_text(f) for f in s.files[:FILES]] + ([f"+{len(s.files) - FILES} more"] if len(s.files) > FILES else []))
        return (
            f"commit {s.sha[:12]} score={s.score:.2f} committed={_at(s.committed_at)} deployed={_at(s.deployed_at)} "
            f"message={quoted(title, 120)} files={files} reason={quoted(s.reason, 200)}"
        )

    def shift_lines(self, limit: int = MAX_SHIFTS) -> list[str]:
        lines = []
        for m in self.evidence.metric_shifts[:limit]:
            labels = ",".join(f"{k}={v}" for k, v in sorted(m.labels.items()))
            lines.append(
                f"metric {quoted(m.metric, 100)} {{{redact_text(labels)[:80]}}} {m.direction} at {_at(m.change_at)}: "
                f"{m.before:.4g} -> {m.after:.4g}"
            )
        return lines or ["metric shifts: none"]

    def deploy_lines(self, limit: int = MAX_DEPLOYS) -> list[str]:
        lines = []
        for d in self.evidence.deploys[:limit]:
            lines.append(
                f"deploy at={d.get('at', '-')} service={quoted(str(d.get('service', '')), 60)} "
                f"version={quoted(str(d.get('version', '')), 60)}"
            )
        return lines or ["deploys: none"]

    def runbook_lines(self) -> list[str]:
        return [f"runbook {quoted(r.title, 100)} path={quoted(r.path, 120)} score={r.score:.2f}" for r in self.evidence.runbooks[:3]] or [
            "runbooks: none"
        ]

    def timeline_lines(self, limit: int = MAX_TIMELINE) -> list[str]:
        return [f"{_at(t.at)} {quoted(t.event, 160)}" for t in self.evidence.timeline[:limit]]

    def finding_lines(self) -> list[str]:
        f = self.evidence.finding
        rationale = "; ".join(f.rationale[:4])
        return [
            f"engine finding: category={f.category} confidence={f.confidence:.2f} component={quoted(f.component or '', 80)} "
            f"rationale={quoted(rationale, 400)}"
        ]

    def similar_lines(self) -> list[str]:
        return [
            f"similar past incident {quoted(s.get('date', ''), 25)} service={quoted(s.get('service', ''), 60)} "
            f"category={s.get('category', '')} score={float(s.get('score', 0)):.2f} cause={quoted(s.get('root_cause', ''), 200)} "
            f"resolved={quoted(s.get('resolution') or 'not recorded', 160)}"
            for s in self.evidence.similar_incidents[:3]
        ]

    def for_specialist(self, name: str) -> str:
        lines = self.alert_lines()
        if name == "logs":
            lines += self.fact_lines() + self.signature_lines() + self.timeline_lines(6)
        elif name == "changes":
            lines += self.suspect_lines() + self.deploy_lines() + self.signature_lines(3, samples=False)
        elif name == "metrics":
            lines += self.shift_lines() + self.deploy_lines(3) + self.signature_lines(3, samples=False)
        elif name == "dependencies":
            lines += self.signature_lines(5) + self.shift_lines(4) + self.runbook_lines()
        else:
            lines += (
                self.finding_lines()
                + self.signature_lines(3, samples=False)
                + self.suspect_lines(4)
                + self.shift_lines(4)
                + self.runbook_lines()
            )
        return self.wrap(lines)

    def for_commander(self) -> str:
        return self.wrap(
            self.alert_lines()
            + self.finding_lines()
            + self.fact_lines()
            + self.signature_lines(4, samples=True)
            + self.suspect_lines(5)
            + self.shift_lines(5)
            + self.deploy_lines(4)
            + self.runbook_lines()
            + self.similar_lines()
        )

    def counts(self) -> dict[str, int]:
        ev = self.evidence
        return {
            "signatures": len(ev.signatures),
            "new_signatures": sum(1 for s in ev.signatures if s.trend in ("new", "spiking")),
            "suspects": len(ev.suspects),
            "metric_shifts": len(ev.metric_shifts),
            "deploys": len(ev.deploys),
            "runbooks": len(ev.runbooks),
        }
