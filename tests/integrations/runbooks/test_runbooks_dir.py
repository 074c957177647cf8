"""The `runbooks_dir` kind: the runbook contract, then `RunbookFolder` on a real folder of Markdown."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest

from contracts import SECRET_DIR, Broken, MakeRunbookSource, Options, RunbookRecord, RunbookSourceContract
from integrations.runbooks import folder
from integrations.runbooks.folder import MAX_RUNBOOK_BYTES, RunbookFolder


class TestRunbooksDirContract(RunbookSourceContract):
    kind = folder.KIND

    @pytest.fixture
    def make_source(self, tmp_path: Path) -> MakeRunbookSource:
        counter = itertools.count()

        def make(records: Sequence[RunbookRecord]) -> Options:
            root = tmp_path / f"runbooks-{next(counter)}"
            for record in records:
                path = root / f"{record.path}.md"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"# {record.title}\n\n{record.body}")
            return {"path": root.name}

        return make

    @pytest.fixture(params=["missing folder", "a file, not a folder"])
    def broken_source(self, request: pytest.FixtureRequest, tmp_path: Path) -> Broken:
        path = tmp_path / SECRET_DIR / "runbooks"
        if request.param == "a file, not a folder":
            path.parent.mkdir()
            path.write_text("# Not a folder\n")
        return Broken({"path": f"{SECRET_DIR}/runbooks"}, target=str(path))


def test_runbook_titles_come_from_the_first_heading(tmp_path: Path) -> None:
    (tmp_path / "rollback.md").write_text("intro\n# Roll back a deploy\nsteps")
    (tmp_path / "no-heading.md").write_text("just text")
    books = RunbookFolder(tmp_path).runbooks()
    assert sorted(b.title for b in books) == ["Roll back a deploy", "no heading"]


def test_only_markdown_files_are_runbooks_and_subfolders_are_searched(tmp_path: Path) -> None:
    (tmp_path / "ops" / "db").mkdir(parents=True)
    (tmp_path / "ops" / "db" / "failover.md").write_text("# Fail the database over\n")
    (tmp_path / "notes.txt").write_text("# Not a runbook\n")

    books = RunbookFolder(tmp_path).runbooks()

    assert [(b.title, Path(b.path).relative_to(tmp_path).as_posix()) for b in books] == [("Fail the database over", "ops/db/failover.md")]


def test_a_runbook_keeps_its_first_max_runbook_bytes(tmp_path: Path) -> None:
    (tmp_path / "long.md").write_bytes(b"# Long\n" + b"a" * (2 * MAX_RUNBOOK_BYTES))

    [book] = RunbookFolder(tmp_path).runbooks()

    assert len(book.text) == MAX_RUNBOOK_BYTES


def test_sources_check_counts_the_runbooks(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n")
    (tmp_path / "b.md").write_text("# B\n")

    assert folder.KIND.check is not None
    assert folder.KIND.check(RunbookFolder(tmp_path)) == "2 runbooks"
