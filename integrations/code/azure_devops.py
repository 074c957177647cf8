"""The `azure_devops` kind's options and descriptor: commits, changed files, diffs and pull requests of an Azure Repos repository.

The client lives in `azure_devops_client` (the `azure-devops` package) and is imported when a source is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from integrations import roles
from integrations.code.host_common import CodeHostOptions
from integrations.plugin import EnvVarName, SourceKind

if TYPE_CHECKING:
    from integrations.code.azure_devops_client import AzureDevOpsChangeSource


class AzureDevOpsOptions(CodeHostOptions):
    base_url: str = Field(
        description="the organization's URL: https://dev.azure.com/ORG, an Azure DevOps Server collection URL, or a stand-in"
    )
    project: str = Field(min_length=1, description="the project holding the repository")
    repository: str = Field(min_length=1, description="the Git repository, by name or id")
    token_env: EnvVarName | None = Field(
        None, description="environment variable holding a personal access token with the Code (Read) scope; none: anonymous"
    )
    max_files_with_patch: int = Field(
        50, ge=0, description="files of one commit whose old and new content are fetched (one or two calls each) to show its diff"
    )


def _build(options: AzureDevOpsOptions, _base_dir: Path) -> AzureDevOpsChangeSource:
    from integrations.code.azure_devops_client import AzureDevOpsChangeSource

    return AzureDevOpsChangeSource(options, name=options.name or "azure_devops")


def _check(source: AzureDevOpsChangeSource) -> str:
    return source.describe()


KIND = SourceKind(
    name="azure_devops",
    role=roles.CODE,
    options=AzureDevOpsOptions,
    build=_build,
    check=_check,
    summary="an Azure Repos Git repository (Azure DevOps Services or Server): commits, changed files, diffs and pull requests",
)
