"""The `bitbucket` kinds' options and descriptors: commits, diffs and pull requests (code), deployments (deploys).

Bitbucket Cloud's REST API 2.0 is read with httpx (`bitbucket_client`, imported when a
source is built).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from integrations import roles
from integrations.code.host_common import CodeHostOptions, HostOptions
from integrations.plugin import EnvVarName, SourceKind

if TYPE_CHECKING:
    from integrations.code.bitbucket_client import BitbucketChangeSource, BitbucketDeploySource


class BitbucketOptions(HostOptions):
    repository: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="the repository as workspace/repo_slug")
    base_url: str = Field("https://api.bitbucket.org/2.0", description="REST API root: https://api.bitbucket.org/2.0, or a stand-in")
    token_env: EnvVarName | None = Field(
        None,
        description="environment variable holding a read-only credential: a repository or workspace access token "
        "(sent as a bearer token), or with `username` an API token or app password; none: public repositories only",
    )
    username: str | None = Field(
        None, description="Bitbucket username (or Atlassian account email) that the credential in token_env belongs to, for basic auth"
    )


class BitbucketCodeOptions(BitbucketOptions, CodeHostOptions):
    pass


class BitbucketDeployOptions(BitbucketOptions):
    environment: str = Field(
        "Production",
        description="deployment environment (by name) whose successful deployments are read; environments named "
        "'<environment>/<service>' are read too, each of that service",
    )
    service: str | None = Field(None, description="service a deployment to the environment itself is of (default: the repository's slug)")
    max_deployments: int = Field(200, ge=1, description="newest deployments looked at")


def _build_code(options: BitbucketCodeOptions, _base_dir: Path) -> BitbucketChangeSource:
    from integrations.code.bitbucket_client import BitbucketChangeSource

    return BitbucketChangeSource(options, name=options.name or "bitbucket")


def _build_deploys(options: BitbucketDeployOptions, _base_dir: Path) -> BitbucketDeploySource:
    from integrations.code.bitbucket_client import BitbucketDeploySource

    return BitbucketDeploySource(options, name=options.name or "bitbucket_deployments")


def _check_code(source: BitbucketChangeSource) -> str:
    return source.describe()


def _check_deploys(source: BitbucketDeploySource) -> str:
    return source.describe()


KIND = SourceKind(
    name="bitbucket",
    role=roles.CODE,
    options=BitbucketCodeOptions,
    build=_build_code,
    check=_check_code,
    summary="a Bitbucket Cloud repository: commits, changed files, diffs and merged pull requests",
)

DEPLOYS_KIND = SourceKind(
    name="bitbucket_deployments",
    role=roles.DEPLOYS,
    options=BitbucketDeployOptions,
    build=_build_deploys,
    check=_check_deploys,
    summary="successful Bitbucket Pipelines deployments to one environment",
)
