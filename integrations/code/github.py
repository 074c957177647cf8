"""The `github` kinds' options and descriptors: commits, files, patches and pull requests (code), deployments (deploys).

The clients live in `github_client` and `github_deploys_client` (over `github_api`) and are imported when a source is built, so that
listing kinds or checking a catalog never loads PyGithub.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from integrations import roles
from integrations.plugin import EnvVarName, SourceKind, SourceOptions

if TYPE_CHECKING:
    from integrations.code.github_client import GitHubChangeSource
    from integrations.code.github_deploys_client import GitHubDeploySource


class GitHubOptions(SourceOptions):
    repository: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="the repository as owner/name")
    base_url: str = Field(
        "https://api.github.com",
        description="REST API root: https://api.github.com, https://HOST/api/v3 for GitHub Enterprise Server, or a stand-in",
    )
    token_env: EnvVarName | None = Field(
        None,
        description="environment variable holding a read-only token (fine-grained: Contents, Pull requests, Deployments: read); "
        "none: anonymous, public repositories only and a low rate limit",
    )
    deadline_s: float = Field(60.0, gt=0, description="longest one read (commits, a diff, deploys) may take, rate-limit waits included")
    timeout_s: float = Field(20.0, gt=0, description="longest wait for one HTTP request")
    max_api_calls: int = Field(600, ge=1, description="API calls one source (one investigation) may make in all")
    parallel: int = Field(8, ge=1, le=32, description="commits whose files are fetched at the same time")


class GitHubCodeOptions(GitHubOptions):
    branch: str | None = Field(None, description="branch whose history is read (default: the repository's default branch)")
    max_commits_with_files: int = Field(
        200, ge=0, description="newest commits of a window whose files and patches are fetched (one call each); older ones list no files"
    )
    max_files_per_commit: int = Field(300, ge=1, le=3000, description="files kept of one commit")
    max_patch_bytes: int = Field(200_000, ge=1000, description="patch text kept of one commit")
    max_pull_requests: int = Field(
        30,
        ge=0,
        description="newest commits of a read whose merged pull request is asked for (one more call each, cached); "
        "others link one only when their message names it ('Merge pull request #12', '(#12)')",
    )


class GitHubDeployOptions(GitHubOptions):
    environment: str = Field("production", description="the deployment environment whose deployments are read")
    service: str | None = Field(
        None, description="service each deployment is of, unless its payload names one (default: the repository's name)"
    )
    max_deployments: int = Field(200, ge=1, description="newest deployments of the environment looked at")


def _build_code(options: GitHubCodeOptions, _base_dir: Path) -> GitHubChangeSource:
    from integrations.code.github_client import GitHubChangeSource

    return GitHubChangeSource(options, name=options.name or "github")


def _build_deploys(options: GitHubDeployOptions, _base_dir: Path) -> GitHubDeploySource:
    from integrations.code.github_deploys_client import GitHubDeploySource

    return GitHubDeploySource(options, name=options.name or "github_deployments")


def _check_code(source: GitHubChangeSource) -> str:
    return source.describe()


def _check_deploys(source: GitHubDeploySource) -> str:
    return source.describe()


KIND = SourceKind(
    name="github",
    role=roles.CODE,
    options=GitHubCodeOptions,
    build=_build_code,
    check=_check_code,
    summary="a GitHub (or GitHub Enterprise) repository: commits, changed files, patches and merged pull requests",
)

# Its own name: a kind's name is its key in the catalog schema, whatever its role.
DEPLOYS_KIND = SourceKind(
    name="github_deployments",
    role=roles.DEPLOYS,
    options=GitHubDeployOptions,
    build=_build_deploys,
    check=_check_deploys,
    summary="GitHub deployments of one environment, each at its first successful status",
)
