"""The crew table (config.yaml) and the choice of specialists for one alert."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from agents.evidence.model import Evidence
from core.alert import Alert

HERE = Path(__file__).resolve().parent
PROMPTS = HERE / "prompts"


class When(BaseModel):
    has_signatures: bool | None = None
    has_changes: bool | None = None
    has_metrics: bool | None = None
    alert_mentions: list[str] = Field(default_factory=list)


class AgentSpec(BaseModel):
    name: str
    role: str
    goal: str
    tools: list[str] = Field(default_factory=list)
    when: When = Field(default_factory=When)
    priority: int = 0
    progress: str = ""


class Limits(BaseModel):
    specialist_max_iter: int = 2
    commander_max_iter: int = 1
    specialist_max_tokens: int = 400
    commander_max_tokens: int = 900
    followup_max_tokens: int = 450
    commander_reserve: float = 0.2


class CrewConfig(BaseModel):
    limits: Limits = Field(default_factory=Limits)
    specialists: list[AgentSpec]
    commander: AgentSpec


@lru_cache(maxsize=1)
def load_config(path: str = str(HERE / "config.yaml")) -> CrewConfig:
    raw: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return CrewConfig.model_validate(raw)


@lru_cache(maxsize=16)
def prompt(name: str) -> str:
    return (PROMPTS / f"{name}.md").read_text(encoding="utf-8").strip()


@dataclass(frozen=True, slots=True)
class Facts:
    has_signatures: bool
    has_changes: bool
    has_metrics: bool
    alert_text: str


def facts_of(evidence: Evidence, alert: Alert, *, has_metrics: bool) -> Facts:
    return Facts(
        has_signatures=bool(evidence.signatures),
        has_changes=bool(evidence.suspects or evidence.deploys),
        has_metrics=has_metrics,
        alert_text=f"{alert.text} {evidence.finding.category}".lower(),
    )


def applies(spec: AgentSpec, facts: Facts) -> bool:
    when = spec.when
    for flag in ("has_signatures", "has_changes", "has_metrics"):
        wanted = getattr(when, flag)
        if wanted is not None and getattr(facts, flag) is not wanted:
            return False
    return not when.alert_mentions or any(word.lower() in facts.alert_text for word in when.alert_mentions)


def choose_specialists(config: CrewConfig, facts: Facts) -> list[AgentSpec]:
    return [spec for spec in config.specialists if applies(spec, facts)]
