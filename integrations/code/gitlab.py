"""The `gitlab` kinds' options and descriptors: commits, diffs and merge requests (code), deployments (deploys).

The clients live in `gitlab_client` and are imported when a source is built, so that
listing kinds or checking a catalog never loads python-gitlab.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from integrations import roles
from integrations.code.host_common import CodeHostOptions, HostOptions
from integrations.plugin import EnvVarName, SourceKind

if TYPE_CHECKING:
    from integrations.code.gitlab_client import GitLabChangeSource, GitLabDeploySource

_PROJECT = r"^(\d+|[\w.-]+(/[\w.-]+)+)$"


class GitLabOptions(HostOptions):
    project: str = Field(pattern=_PROJECT, description="the project: its path (group/subgroup/name) or its numeric id")
    base_url: str = Field(
        "https://gitlab.com", description="the GitLab instance's root (https://gitlab.com, a self-managed host, or a stand-in)"
    )
    token_env: EnvVarName | None = Field(
        None,
        description="environment variable holding a read-only token (personal, project or group access token with read_api); "
        "none: anonymous, public projects only",
    )


class GitLabCodeOptions(GitLabOptions, CodeHostOptions):
    pass


class GitLabDeployOptions(GitLabOptions):
    environment: str = Field(
        "production",
        description="environment whose successful deployments are read; deployments to environments in its folder "
        "(production/checkout) are read too, each of the service its folder entry names",
    )
    service: str | None = Field(None, description="service a deployment to the environment itself is of (default: the project's name)")
    max_deployments: int = Field(200, ge=1, description="newest deployments looked at")


def _build_code(options: GitLabCodeOptions, _base_dir: Path) -> GitLabChangeSource:
    from integrations.code.gitlab_client import GitLabChangeSource

    return GitLabChangeSource(options, name=options.name or "gitlab")


def _build_deploys(options: GitLabDeployOptions, _base_dir: Path) -> GitLabDeploySource:
    from integrations.code.gitlab_client import GitLabDeploySource

    return GitLabDeploySource(options, name=options.name or "gitlab_deployments")


def _check_code(source: GitLabChangeSource) -> str:
    return source.describe()


def _check_deploys(source: GitLabDeploySource) -> str:
    return source.describe()


KIND = SourceKind(
    name="gitlab",
    role=roles.CODE,
    options=GitLabCodeOptions,
    build=_build_code,
    check=_check_code,
    summary="a GitLab (gitlab.com or self-managed) project: commits, changed files, diffs and merged merge requests",
)

DEPLOYS_KIND = SourceKind(
    name="gitlab_deployments",
    role=roles.DEPLOYS,
    options=GitLabDeployOptions,
    build=_build_deploys,
    check=_check_deploys,
    summary="successful GitLab deployments of one environment (and the environments in its folder)",
)
