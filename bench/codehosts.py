"""Code hosts: API calls and seconds to read a 200-commit window from each host's stand-in, cold and from the cache.

One investigation's code reads: the window's commits with their files, then the diffs
of the newest few (what the suspect ranking reads). Cold: a repository name nobody has
read, so the source cache (Redis) is empty; cached: the same read again by a new source,
as a Re-run or a storm alert would. The hosts are the loopback stand-ins the tests use,
serving one generated repository through `git`: the seconds are the client's and the
stand-in's work on this machine, not a real host's latency.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from integrations.code.azure_devops import AzureDevOpsOptions
from integrations.code.bitbucket import BitbucketCodeOptions
from integrations.code.github import GitHubCodeOptions
from integrations.code.gitlab import GitLabCodeOptions

STANDINS: Final = Path(__file__).resolve().parents[1] / "tests" / "standins"

COMMITS: Final = 200
DIFFS: Final = 5
TOKEN_ENV: Final = "IR_BENCH_CODE_HOST_TOKEN"
END: Final = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
START: Final = END - timedelta(hours=6)


def _repository(path: Path) -> Path:
    """COMMITS commits in the window, each changing one of a few files, built with one fast-import stream."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    lines = []
    for i in range(COMMITS):
        when = int((START + timedelta(minutes=1 + i)).timestamp())
        content = "".join(f"setting_{j} = {i * j}\n" for j in range(20)).encode()
        message = f"Change {i}\n".encode()
        lines.append(b"commit refs/heads/main\n")
        lines.append(f"committer Ana <ana@example.com> {when} +0000\n".encode())
        lines.append(f"data {len(message)}\n".encode() + message)
        lines.append(f"M 100644 inline app/module_{i % 9}.py\ndata {len(content)}\n".encode() + content + b"\n")
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(lines), check=True)
    subprocess.run(["git", "-C", str(path), "checkout", "-q", "main"], check=True)
    return path


def _hosts(repo: Path) -> list[tuple[str, Any, Callable[[Any], Any]]]:
    # The hosts are the tests' stand-ins.
    if str(STANDINS) not in sys.path:
        sys.path.insert(0, str(STANDINS))
    from standin_azure_devops import AzureDevOpsStandin
    from standin_bitbucket import BitbucketStandin
    from standin_github import GitHubStandin
    from standin_gitlab import GitLabStandin

    from integrations.code.azure_devops_client import AzureDevOpsChangeSource
    from integrations.code.bitbucket_client import BitbucketChangeSource
    from integrations.code.github_client import GitHubChangeSource
    from integrations.code.gitlab_client import GitLabChangeSource

    name = uuid.uuid4().hex[:10]
    github = GitHubStandin(repo=repo, full_name=f"acme/bench-{name}", token="t")
    gitlab = GitLabStandin(repo=repo, path=f"acme/bench-{name}", token="t")
    bitbucket = BitbucketStandin(repo=repo, full_name=f"acme/bench-{name}", token="t")
    azure = AzureDevOpsStandin(repo=repo, repository=f"bench-{name}", token="t")
    return [
        (
            "github",
            github,
            lambda s: GitHubChangeSource(GitHubCodeOptions(repository=s.full_name, base_url=s.url, token_env=TOKEN_ENV)),
        ),
        ("gitlab", gitlab, lambda s: GitLabChangeSource(GitLabCodeOptions(project=s.path, base_url=s.url, token_env=TOKEN_ENV))),
        (
            "bitbucket",
            bitbucket,
            lambda s: BitbucketChangeSource(BitbucketCodeOptions(repository=s.full_name, base_url=s.url, token_env=TOKEN_ENV)),
        ),
        (
            "azure_devops",
            azure,
            lambda s: AzureDevOpsChangeSource(
                AzureDevOpsOptions(base_url=s.url, project=s.project, repository=s.repository, token_env=TOKEN_ENV)
            ),
        ),
    ]


def _investigation(source: Any) -> tuple[int, int, float]:
    began = time.perf_counter()
    commits = source.commits(START, END)
    for commit in commits[:DIFFS]:
        source.diff(commit.sha)
    return len(commits), int(source.api_calls), time.perf_counter() - began


def run() -> dict[str, Any]:
    os.environ[TOKEN_ENV] = "t"
    rows = []
    with tempfile.TemporaryDirectory(prefix="ir-codehosts-") as tmp:
        repo = _repository(Path(tmp) / "repo")
        for kind, standin, build in _hosts(repo):
            standin.start()
            try:
                listed, cold_calls, cold_s = _investigation(build(standin))
                _, warm_calls, warm_s = _investigation(build(standin))
            finally:
                standin.stop()
            rows.append(
                {
                    "kind": kind,
                    "commits": listed,
                    "cold_api_calls": cold_calls,
                    "cold_s": round(cold_s, 2),
                    "cached_api_calls": warm_calls,
                    "cached_s": round(warm_s, 2),
                }
            )
    return {"window_commits": COMMITS, "diffs_read": DIFFS, "hosts": rows}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
