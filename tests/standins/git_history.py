"""A git repository on disk read the way the code-host stand-ins serve it: commits, files with patches, refs.

The stand-ins for GitHub, GitLab, Bitbucket and Azure DevOps all answer from one
real repository through this reader, so every host serves the same commits the
local git source reads, each in its own API's shapes.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIELD = "\x1f"
_RECORD = "\x1e"
_FORMAT = FIELD.join(["%H", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%P", "%B"]) + _RECORD
_STATUS = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied", "T": "changed"}


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class GitHistory:
    repo: Path

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.repo), "-c", "core.quotepath=off", *args], capture_output=True, check=False)
        return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else ""

    def rev(self, ref: str) -> str | None:
        """The full sha a ref names, as a host resolves it; None for anything but one commit."""
        if not ref or ref.startswith("-") or ".." in ref or re.search(r"[\s~^:?*\[\\]", ref):
            return None
        out = self.git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}").strip()
        return out or None

    def commits(self, *revs: str, count: int | None = None) -> list[dict[str, Any]]:
        """Commits as `git log` lists them (newest first): sha, author, committer, committed_at, parents, message."""
        limit = [f"--max-count={count}"] if count else []
        out = self.git("log", f"--format={_FORMAT}", *limit, "--end-of-options", *revs, "--")
        return [self._meta(block) for block in out.split(_RECORD) if block.strip()]

    def _meta(self, block: str) -> dict[str, Any]:
        sha, an, ae, ad, cn, ce, cd, parents, message = block.lstrip("\n").split(FIELD)
        return {
            "sha": sha,
            "author": (an, ae, ad),
            "committer": (cn, ce, cd),
            "committed_at": parse_time(cd),
            "parents": parents.split(),
            "message": message.rstrip("\n"),
        }

    def show(self, sha: str) -> dict[str, Any]:
        return self.commits(sha, count=1)[0]

    def between(self, old: str, new: str) -> list[str]:
        """Shas `new` has that `old` has not, oldest first."""
        return self.git("rev-list", "--reverse", f"{old}..{new}", "--").split()

    def refs(self, namespace: str) -> list[tuple[str, str]]:
        """(name, commit sha) of every branch (`refs/heads`) or tag (`refs/tags`), annotated tags peeled."""
        out = self.git("for-each-ref", f"--format=%(refname:strip=2){FIELD}%(objectname){FIELD}%(*objectname)", namespace)
        found = []
        for line in out.splitlines():
            name, target, peeled = line.split(FIELD)
            found.append((name, peeled or target))
        return found

    def files(self, sha: str) -> list[dict[str, Any]]:
        """The files a commit changed against its first parent, in GitHub's shape (status, filename, previous_filename,
        additions, deletions, changes, patch: the hunks without the diff header); other stand-ins reshape it."""
        common = ["show", "--format=", "-M", "--first-parent", "--end-of-options", sha]
        statuses = self.git(*common[:1], "--name-status", "-z", *common[1:]).split("\0")
        numstat = self.git(*common[:1], "--numstat", "-z", *common[1:]).split("\0")
        patches = re.split(r"^(?=diff --git )", self.git(*common[:1], "--patch", *common[1:]), flags=re.MULTILINE)
        blocks = [b for b in patches if b.startswith("diff --git ")]
        entries: list[dict[str, Any]] = []
        status_items = iter(s for s in statuses if s != "")
        for code in status_items:
            letter = code[0]
            if letter in "RC":
                old, new = next(status_items), next(status_items)
            else:
                old, new = None, next(status_items)
            entries.append({"status": _STATUS.get(letter, "modified"), "filename": new, "previous_filename": old})
        counts: list[tuple[int, int]] = []
        items = iter(numstat)
        for item in items:
            if not item:
                continue
            added, deleted, path = item.split("\t", 2)
            if path == "":
                next(items)
                next(items)
            counts.append((int(added) if added.isdigit() else 0, int(deleted) if deleted.isdigit() else 0))
        for index, entry in enumerate(entries):
            plus, minus = counts[index] if index < len(counts) else (0, 0)
            block = blocks[index] if index < len(blocks) else ""
            hunk = block.find("\n@@")
            entry.update(additions=plus, deletions=minus, changes=plus + minus)
            if hunk >= 0:
                entry["patch"] = block[hunk + 1 :].rstrip("\n")
            if entry["previous_filename"] is None:
                del entry["previous_filename"]
        return entries
