"""The contract every source kind meets: one `SourceKind` descriptor, declared in the kind's own module.

A descriptor names the kind and its role, carries a typed options model (unknown
keys are errors, so a misspelling is caught when the catalog is loaded, with its
line), builds the role's Protocol from those options, and may check that the
source answers. Secrets never sit in the catalog: an option names the
environment variable that holds one, and `secret_from_env` reads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from integrations.errors import SourceError
from integrations.roles import Role

# The name of an environment variable, never its value: a catalog is checked in and shared.
# Upper case only: a token pasted by mistake (`ghp_...`, `xoxb-...`) is refused here instead of quoted in an error later.
EnvVarName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$", description="name of the environment variable that holds it")]


class SourceOptions(BaseModel):
    """Options every kind accepts; each kind's model adds its own typed, documented fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = Field(None, description="label in reports and degraded entries (default: the kind)")


OptionsT = TypeVar("OptionsT", bound=SourceOptions)
SourceT = TypeVar("SourceT")


@dataclass(frozen=True)
class SourceKind(Generic[OptionsT, SourceT]):
    """One kind of source: `build(options, base_dir)` returns the role's Protocol or raises SourceError.

    `check(source)` asks the built source whether it answers (reachable, credentials
    accepted, data there) and returns one line saying what it found; it raises
    SourceError when not. Relative paths in options resolve against `base_dir`,
    the catalog file's folder.
    """

    name: str
    # Any: a kind builds a concrete class; that it meets the role's Protocol is what the role's contract tests check.
    role: Role[Any, Any]
    options: type[OptionsT]
    build: Callable[[OptionsT, Path], SourceT]
    summary: str
    check: Callable[[SourceT], str] | None = None

    def label(self, options: SourceOptions) -> str:
        return options.name or self.name


def secret_from_env(variable: str, *, purpose: str) -> SecretStr:
    """The secret an option names by its environment variable; SourceError when it is unset or empty."""
    value = os.environ.get(variable, "")
    if not value:
        raise SourceError(f"{purpose}: environment variable {variable} is not set")
    return SecretStr(value)


def resolve_path(raw: str | Path, base_dir: Path) -> Path:
    """A path from the catalog: relative ones resolve against the catalog's folder, `~` expands."""
    path = Path(raw).expanduser()
    return path if path.is_absolute() else base_dir / path
