"""Local git repositories, read with the git command line (streamed, bounded)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field, TypeAdapter

from core.settings import get_settings
from integrations import roles
from integrations.code.base import Commit, FileChange
from integrations.errors import SourceError
from integrations.plugin import SourceKind, SourceOptions, resolve_path

_SEP = "\x1e"
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_FIELD = "\x1f"
_FORMAT = _FIELD.join(["%H", "%an", "%cI", "%P", "%B"])
_COMMITS = TypeAdapter(list[Commit])


class GitChangeSource:
    """Commits of one branch of a local clone; `url_template` (e.g. https://github.com/o/r/commit/{sha}) adds links."""

    def __init__(
        self, path: Path, branch: str = "main", *, name: str = "git", url_template: str | None = None, timeout_s: float = 30.0
    ) -> None:
        self.path = path
        self.branch = branch
        self.name = name
        self.url_template = url_template
        self.timeout_s = timeout_s
        if not path.is_dir():
            raise SourceError(f"git repository {path} does not exist")
        if self._git("rev-parse", "--is-inside-work-tree", check=False).strip() != "true" and not (path / "HEAD").exists():
            raise SourceError(f"{path} is not a git repository")

    def _git(self, *args: str, check: bool = True, max_bytes: int | None = None) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(self.path), "-c", "core.quotepath=off", *args],
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SourceError(f"git {args[0]} in {self.path} took longer than {self.timeout_s:g}s") from exc
        if check and done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SourceError(f"git {args[0]} failed in {self.path}: {message[-1] if message else done.returncode}")
        out = done.stdout if max_bytes is None else done.stdout[:max_bytes]
        return out.decode("utf-8", "replace")

    def _url(self, sha: str) -> str | None:
        return self.url_template.format(sha=sha) if self.url_template else None

    def _ref(self) -> str:
        return self.branch if self._git("rev-parse", "--verify", "--quiet", self.branch, check=False).strip() else "HEAD"

    def commits(self, start: datetime, end: datetime, *, limit: int = 2000) -> list[Commit]:
        # Imported here: the cache brings Redis, which listing kinds has no use for.
        from integrations.cache import cache_key, cached
        from integrations.code.host_common import IMMUTABLE_TTL_S

        head = self.resolve(self._ref())
        if head is None:
            return self._log(start, end, limit)
        # What a window holds never changes for a given head: a Re-run or a storm of alerts reads it from the cache.
        where = {"path": str(self.path.resolve()), "url_template": self.url_template or ""}
        key = cache_key("git", where, head, start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat(), limit)
        return cached(key, IMMUTABLE_TTL_S, _COMMITS, lambda: self._log(start, end, limit))

    def _log(self, start: datetime, end: datetime, limit: int) -> list[Commit]:
        out = self._git(
            "log",
            self._ref(),
            f"--since={start.astimezone(UTC).isoformat()}",
            f"--until={end.astimezone(UTC).isoformat()}",
            f"--max-count={limit}",
            "--numstat",
            "-M",
            f"--format={_SEP}{_FORMAT}{_FIELD}",
        )
        return [c for c in (self._parse_commit(block) for block in out.split(_SEP) if block.strip()) if c is not None]

    def _parse_commit(self, block: str) -> Commit | None:
        parts = block.split(_FIELD)
        if len(parts) < 6:
            return None
        sha, author, committed, parents, message, stats = parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]
        files: list[FileChange] = []
        for line in stats.strip().splitlines():
            cols = line.split("\t")
            if len(cols) != 3:
                continue
            added, deleted, path = cols
            old_path = None
            if " => " in path:
                old_path, path = _rename_paths(path)
            files.append(
                FileChange(
                    path=path,
                    additions=int(added) if added.isdigit() else 0,
                    deletions=int(deleted) if deleted.isdigit() else 0,
                    old_path=old_path,
                )
            )
        return Commit(
            sha=sha.strip(),
            author=author,
            committed_at=datetime.fromisoformat(committed).astimezone(UTC),
            message=message.strip(),
            files=files,
            url=self._url(sha.strip()),
            is_merge=len(parents.split()) > 1,
        )

    def diff(self, sha: str, *, paths: list[str] | None = None, max_bytes: int = 200_000) -> str:
        # --end-of-options: a ref from a report or a question is never read as an option (`--output=...`).
        args = ["show", "--format=", "--patch", "-M", "--first-parent", "--end-of-options", sha]
        if paths:
            args += ["--", *paths]
        return self._git(*args, max_bytes=max_bytes)

    def resolve(self, ref: str) -> str | None:
        out = self._git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False).strip()
        # A range (`a..b`) answers two lines: it names no single commit.
        return out if _FULL_SHA.fullmatch(out) else None

    def commits_between(self, old: str | None, new: str, *, limit: int = 500) -> list[str]:
        spec = f"{old}..{new}" if old else new
        out = self._git("rev-list", f"--max-count={limit}", "--end-of-options", spec, check=False)
        return [line.strip() for line in out.splitlines() if line.strip()]


def _rename_paths(path: str) -> tuple[str, str]:
    """`src/{a => b}/x.py` or `a.py => b.py` as (old, new)."""
    if "{" in path and "}" in path:
        head, rest = path.split("{", 1)
        inner, tail = rest.split("}", 1)
        old, new = inner.split(" => ", 1)
        return (head + old + tail).replace("//", "/"), (head + new + tail).replace("//", "/")
    old, new = path.split(" => ", 1)
    return old, new


def import_fast_export(stream: Path, cache_dir: Path) -> Path:
    """A repository built from a fast-import stream, cached by the stream's content so it is built once."""
    digest = hashlib.sha256(stream.read_bytes()).hexdigest()[:16]
    repo = cache_dir / f"{stream.stem}-{digest}"
    if (repo / ".git").is_dir():
        return repo
    building = cache_dir / f".{repo.name}.building"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        subprocess.run(["git", "init", "-q", str(building)], check=True, capture_output=True)
        with stream.open("rb") as fh:
            subprocess.run(["git", "-C", str(building), "fast-import", "--quiet"], stdin=fh, check=True, capture_output=True)
        branches = subprocess.run(
            ["git", "-C", str(building), "branch", "--format=%(refname:short)"], capture_output=True, text=True, check=True
        )
        names = branches.stdout.split()
        if names:
            subprocess.run(
                ["git", "-C", str(building), "checkout", "-q", "main" if "main" in names else names[0]], check=True, capture_output=True
            )
        # Rename last: another worker racing on the same stream either finds the finished repo or loses the rename.
        building.rename(repo)
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(building, ignore_errors=True)
        if (repo / ".git").is_dir():
            return repo
        raise SourceError(f"cannot import git history from {stream}: {exc}") from exc
    return repo


class GitOptions(SourceOptions):
    path: str = Field(description="a local clone (relative to the catalog's folder), or a `git fast-export` stream imported once")
    branch: str = Field("main", description="branch whose history is read; HEAD when it does not exist")
    url_template: str | None = Field(None, description="link for a commit, e.g. https://github.com/org/repo/commit/{sha}")
    timeout_s: float = Field(30.0, gt=0, description="longest wait for one git command")


def _build(options: GitOptions, base_dir: Path) -> GitChangeSource:
    path = resolve_path(options.path, base_dir)
    if path.is_file():
        # A history shipped as a `git fast-export` stream (incident bundles, fixtures) is imported once and reused.
        path = import_fast_export(path, get_settings().data_dir / "repos")
    return GitChangeSource(
        path, branch=options.branch, name=options.name or "git", url_template=options.url_template, timeout_s=options.timeout_s
    )


def _check(source: GitChangeSource) -> str:
    head = source.resolve(source.branch) or source.resolve("HEAD")
    if head is None:
        raise SourceError(f"{source.path} has no commits on {source.branch}")
    return f"{source.branch} at {head[:12]}"


KIND = SourceKind(
    name="git",
    role=roles.CODE,
    options=GitOptions,
    build=_build,
    check=_check,
    summary="a local git clone (or fast-export stream): commits, changed files and diffs",
)
