"""The code role: commits and deploys, the changes an incident may be blamed on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    additions: int = 0
    deletions: int = 0
    old_path: str | None = None


@dataclass(slots=True)
class Commit:
    sha: str
    author: str
    committed_at: datetime
    message: str
    files: list[FileChange] = field(default_factory=list)
    url: str | None = None
    is_merge: bool = False
    # The merged pull/merge request that brought the commit in, when the code host says (links in reports).
    pr_url: str | None = None
    pr_title: str | None = None

    @property
    def short(self) -> str:
        return self.sha[:8]

    @property
    def title(self) -> str:
        return self.message.strip().splitlines()[0] if self.message.strip() else ""


@dataclass(frozen=True, slots=True)
class Deploy:
    at: datetime
    service: str
    version: str
    actor: str = ""
    sha: str | None = None


class ChangeSource(Protocol):
    """A code host: which commits landed, and what each one changed."""

    name: str

    def commits(self, start: datetime, end: datetime, *, limit: int = 2000) -> list[Commit]:
        """Commits reachable from the configured branch committed in [start, end], newest first."""
        ...

    def diff(self, sha: str, *, paths: list[str] | None = None, max_bytes: int = 200_000) -> str:
        """The unified diff a commit introduced, optionally only for some paths."""
        ...

    def resolve(self, ref: str) -> str | None:
        """A full sha for a sha prefix, tag or branch; None when unknown."""
        ...

    def commits_between(self, old: str | None, new: str, *, limit: int = 500) -> list[str]:
        """Shas reachable from `new` but not from `old` (what a deploy shipped), newest first."""
        ...


class DeploySource(Protocol):
    """Where deploy events are recorded (a CD system, a JSON file)."""

    name: str

    def deploys(self, start: datetime, end: datetime) -> list[Deploy]: ...
