"""The `deploys_file` kind: the deploy contract, then `DeploysFile` on real JSON files."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import SECRET_DIR, Broken, DeployRecord, DeploySourceContract, MakeDeploySource, Options
from integrations.code import deploys_file
from integrations.code.deploys_file import DeploysFile
from integrations.errors import SourceError

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class TestDeploysFileContract(DeploySourceContract):
    kind = deploys_file.KIND

    @pytest.fixture
    def make_source(self, tmp_path: Path) -> MakeDeploySource:
        counter = itertools.count()

        def make(records: Sequence[DeployRecord]) -> Options:
            path = tmp_path / f"deploys-{next(counter)}.json"
            entries = [{"at": r.at.isoformat(), "service": r.service, "version": r.version, "actor": r.actor} for r in records]
            path.write_text(json.dumps(entries))
            return {"path": path.name}

        return make

    @pytest.fixture(params=["missing file", "a folder", "not JSON", "an object without deploys"])
    def broken_source(self, request: pytest.FixtureRequest, tmp_path: Path) -> Broken:
        path = tmp_path / SECRET_DIR / "deploys.json"
        path.parent.mkdir()
        options = {"path": f"{SECRET_DIR}/deploys.json"}
        if request.param == "a folder":
            path.mkdir()
        elif request.param == "not JSON":
            path.write_text("{nope")
            return Broken(options, target=str(path))
        elif request.param == "an object without deploys":
            path.write_text(json.dumps({"releases": [{"at": "2026-03-10T11:30:00Z", "version": "v1"}]}))
            return Broken(
                options,
                target=str(path),
            )
        return Broken(options, target=str(path))


def test_deploys_file_filters_to_the_window(tmp_path: Path) -> None:
    path = tmp_path / "deploys.json"
    path.write_text(
        json.dumps(
            [
                {"at": "2026-03-10T11:00:00Z", "service": "checkout", "version": "v1.1.0", "actor": "argocd"},
                {"at": "2026-03-01T11:00:00Z", "service": "checkout", "version": "v1.0.0"},
                {"service": "broken"},
            ]
        )
    )
    deploys = DeploysFile(path).deploys(T0 - timedelta(hours=6), T0)
    assert [(d.service, d.version, d.actor) for d in deploys] == [("checkout", "v1.1.0", "argocd")]


def test_deploys_file_that_is_not_json_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "deploys.json"
    path.write_text("{nope")
    with pytest.raises(SourceError, match="not JSON"):
        DeploysFile(path).deploys(T0, T0)


def test_deploys_may_sit_under_a_deploys_key(tmp_path: Path) -> None:
    path = tmp_path / "deploys.json"
    path.write_text(json.dumps({"deploys": [{"at": "2026-03-10T11:00:00Z", "service": "checkout", "version": "v1.1.0"}]}))

    deploys = DeploysFile(path).deploys(T0 - timedelta(hours=6), T0)

    assert [(d.at, d.version, d.actor) for d in deploys] == [(T0 - timedelta(hours=1), "v1.1.0", "")]


def test_entries_with_an_unreadable_time_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "deploys.json"
    path.write_text(
        json.dumps(
            [
                {"at": "last tuesday", "service": "checkout", "version": "v0"},
                {"at": "2026-03-10T11:00:00Z", "service": "checkout", "version": "v1"},
                "not an object",
            ]
        )
    )

    assert [d.version for d in DeploysFile(path).deploys(T0 - timedelta(hours=6), T0)] == ["v1"]


def test_a_file_that_holds_no_list_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "deploys.json"
    path.write_text(json.dumps({"deploys": {"at": "2026-03-10T11:00:00Z", "version": "v1"}}))

    with pytest.raises(SourceError, match="must hold a list of deploys"):
        DeploysFile(path).deploys(T0 - timedelta(hours=6), T0)


def test_sources_check_reads_the_file_and_says_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "deploys.json"
    path.write_text("[]")
    assert deploys_file.KIND.check is not None
    assert deploys_file.KIND.check(DeploysFile(path)) == "no deploys recorded yet"

    path.write_text(json.dumps([{"at": "2026-03-10T11:30:00Z", "version": "v1"}, {"at": "2026-03-10T11:45:00Z", "version": "v2"}]))
    assert deploys_file.KIND.check(DeploysFile(path)) == "2 deploys, the latest 2026-03-10 11:45 UTC"
