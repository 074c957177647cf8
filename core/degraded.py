"""A part of an investigation that could not do its whole job, and why: shown to the responder, never hidden."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Degradation:
    """`component` names the part (`logs:files`, `code:github`, `onset`, `llm`); `reason` is one line a responder can act on."""

    component: str
    reason: str
