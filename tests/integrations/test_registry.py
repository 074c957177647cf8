"""The registry and the catalog check: mistakes caught with their line, sources built or degraded, secrets from the environment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import Field, SecretStr

from core.catalog import CatalogError, SourceSpec, load_catalog
from core.degraded import Degradation
from integrations import registry, roles
from integrations.catalog import get_catalog, load_checked_catalog
from integrations.describe import catalog_schema
from integrations.errors import SourceError
from integrations.plugin import EnvVarName, SourceKind, SourceOptions, resolve_path, secret_from_env
from integrations.registry import build_sources, build_specs, check_source, parse_options
from integrations.runbooks.base import Runbook

REPO = Path(__file__).resolve().parents[2]
SHARED_CONTRACTS = REPO.parent / "shared" / "contracts"
COMMITTED_SCHEMA = REPO / "contracts" / "services.schema.json"
EXAMPLES = [REPO / "services.example.yaml", SHARED_CONTRACTS / "services.example.yaml"]

# One mistake per line that the check must point at; the line numbers are the file's own.
EVERY_MISTAKE = """\
defaults:
  lookback: 6h
services:
  checkout:
    logs:
      - kind: files
        pathz: ["logs/*.log"]
    code:
      - {kind: files, path: repo}
      - kind: git
        path: repo
        timeout_s: soon
    deploys:
      - {kind: deploy_file, path: deploys.json}
    metrics:
      - {kind: metrics_csv}
  payments:
    chanel: "#payments"
    runbooks:
      - {kind: runbooks_dir, path: runbooks, name: 7}
      - {kind: runbooks_dir, path: runbooks, brnach: main}
      - {kind: wiki}
"""


def spec(kind: str, **options: Any) -> SourceSpec:
    return SourceSpec.model_validate({"kind": kind, **options})


def problems(role: str, source: SourceSpec) -> dict[str, str]:
    """The registry's problems with one source, keyed by the dotted location inside it."""
    return {".".join(map(str, loc)): message for loc, message in check_source(role, source)}


# --- One source's kind and options ---------------------------------------------------------------


def test_a_valid_source_has_no_problems() -> None:
    assert check_source("code", spec("git", path="repo", branch="release", timeout_s=5)) == []


def test_an_unknown_kind_is_reported_with_the_closest_known_kind() -> None:
    assert problems("logs", spec("filez", paths=["a.log"])) == {"kind": "unknown logs source kind 'filez' (did you mean 'files'?)"}


def test_an_unknown_kind_with_nothing_close_lists_the_kinds_of_its_role() -> None:
    assert problems("runbooks", spec("confluence")) == {"kind": "unknown runbooks source kind 'confluence' (known: runbooks_dir)"}


def test_a_kind_of_another_role_says_which_role_it_serves() -> None:
    assert problems("code", spec("files", path="repo")) == {"kind": "'files' is a logs source, not a code source"}
    assert problems("logs", spec("git", path="repo")) == {"kind": "'git' is a code source, not a logs source"}


def test_a_misspelled_option_is_reported_with_a_suggestion() -> None:
    assert problems("code", spec("git", path="repo", brnach="main")) == {
        "brnach": "unknown option 'brnach' for a 'git' source (did you mean 'branch'?)"
    }
    assert problems("logs", spec("files", pathz=["a.log"])) == {
        "pathz": "unknown option 'pathz' for a 'files' source (did you mean 'path'?)"
    }


def test_an_option_of_the_wrong_type_is_reported_at_that_option() -> None:
    assert problems("code", spec("git", path="repo", timeout_s="soon")) == {
        "timeout_s": "Input should be a valid number, unable to parse string as a number"
    }
    assert problems("code", spec("git", path="repo", timeout_s=0)) == {"timeout_s": "Input should be greater than 0"}
    assert problems("logs", spec("files", paths="a.log")) == {"paths": "Input should be a valid list"}


def test_a_missing_required_option_is_named() -> None:
    assert problems("deploys", spec("deploys_file")) == {"path": "'path' is required for a 'deploys_file' source"}
    assert problems("code", spec("git", branch="main")) == {"path": "'path' is required for a 'git' source"}


def test_a_source_that_needs_one_of_two_options_says_so() -> None:
    assert problems("logs", spec("files")) == {"": "give 'paths' (a list of globs, folders or files)"}


def test_parse_options_returns_the_kind_and_its_typed_options() -> None:
    kind, options = parse_options(spec("git", path="repo", timeout_s="5"), "code")

    assert kind.name == "git"
    assert options.model_dump() == {"name": None, "path": "repo", "branch": "main", "url_template": None, "timeout_s": 5.0}


def test_parse_options_raises_one_source_error_naming_every_problem() -> None:
    with pytest.raises(SourceError) as raised:
        parse_options(spec("git", brnach="main", timeout_s="soon"), "code")

    message = str(raised.value)
    assert "\n" not in message
    assert "brnach: unknown option 'brnach' for a 'git' source (did you mean 'branch'?)" in message
    assert "timeout_s: Input should be a valid number" in message
    assert "path: 'path' is required for a 'git' source" in message


# --- A whole catalog -----------------------------------------------------------------------------


def test_every_problem_in_a_catalog_is_reported_at_once_with_its_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(EVERY_MISTAKE)

    with pytest.raises(CatalogError) as raised:
        load_checked_catalog(path)

    assert raised.value.problems == [
        f"{path}:7: services.checkout.logs.0.pathz: unknown option 'pathz' for a 'files' source (did you mean 'path'?)",
        f"{path}:9: services.checkout.code.0.kind: 'files' is a logs source, not a code source",
        f"{path}:12: services.checkout.code.1.timeout_s: Input should be a valid number, unable to parse string as a number",
        f"{path}:14: services.checkout.deploys.0.kind: unknown deploys source kind 'deploy_file' (did you mean 'deploys_file'?)",
        f"{path}:16: services.checkout.metrics.0.path: 'path' is required for a 'metrics_csv' source",
        f"{path}:18: services.payments.chanel: unknown key 'chanel' (did you mean 'channel'?)",
        f"{path}:20: services.payments.runbooks.0.name: Input should be a valid string",
        f"{path}:21: services.payments.runbooks.1.brnach: unknown option 'brnach' for a 'runbooks_dir' source (known: kind, name, path)",
        f"{path}:22: services.payments.runbooks.2.kind: unknown runbooks source kind 'wiki' (known: runbooks_dir)",
    ]
    assert str(raised.value) == "\n".join(raised.value.problems)


def test_a_checked_catalog_resolves_relative_paths_against_its_folder(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    path = tmp_path / "team" / "services.yaml"
    path.write_text("services:\n  checkout:\n    runbooks:\n      - {kind: runbooks_dir, path: runbooks}\n")

    catalog = load_checked_catalog(path)

    assert catalog.base_dir == path.parent.resolve()
    [source] = build_sources(catalog, catalog.services["checkout"]).of(roles.RUNBOOKS)
    assert source.path == path.parent.resolve() / "runbooks"  # type: ignore[attr-defined]


def test_get_catalog_reads_services_file_and_sees_an_edit_without_a_restart(
    tmp_path: Path, app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import reset_settings

    path = tmp_path / "services.yaml"
    path.write_text("services:\n  checkout:\n    runbooks:\n      - {kind: runbooks_dir, path: runbooks}\n")
    monkeypatch.setenv("SERVICES_FILE", str(path))
    reset_settings()

    assert get_catalog().names() == ["checkout"]

    path.write_text("services:\n  checkout:\n    runbooks:\n      - {kind: runbooks_dir, pth: runbooks}\n")
    with pytest.raises(CatalogError, match=rf"{path}:4: services\.checkout\.runbooks\.0\.pth: unknown option 'pth'"):
        get_catalog()


def test_build_sources_turns_a_bad_source_into_a_degradation_and_builds_the_rest(tmp_path: Path) -> None:
    (tmp_path / "runbooks").mkdir()
    path = tmp_path / "services.yaml"
    path.write_text(
        "services:\n  checkout:\n"
        "    code:\n      - {kind: git, path: nowhere}\n"
        "    metrics:\n      - {kind: metrics_csv, pth: m.csv}\n"
        "    runbooks:\n      - {kind: runbooks_dir, path: runbooks, name: team}\n"
    )
    # The shape alone: a catalog checked by core but not by the registry still builds without raising.
    catalog = load_catalog(path)

    built = build_sources(catalog, catalog.services["checkout"])

    assert [entry.label for entry in built.entries(roles.RUNBOOKS)] == ["runbooks:team"]
    assert built.of(roles.CODE) == [] and built.of(roles.METRICS) == []
    assert built.errors == [
        Degradation("code:git", f"git repository {tmp_path / 'nowhere'} does not exist"),
        Degradation(
            "metrics:metrics_csv",
            "path: 'path' is required for a 'metrics_csv' source; "
            "pth: unknown option 'pth' for a 'metrics_csv' source (did you mean 'path'?)",
        ),
    ]


def test_registry_turns_unknown_kinds_and_bad_paths_into_errors_not_exceptions(tmp_path: Path) -> None:
    catalog_path = tmp_path / "services.yaml"
    catalog_path.write_text(
        "services:\n  checkout:\n"
        "    code:\n      - {kind: git, path: nowhere}\n"
        "    metrics:\n      - {kind: graphite, url: x}\n"
        "    runbooks:\n      - {kind: runbooks_dir, path: .}\n"
    )
    catalog = load_catalog(catalog_path)
    built = build_sources(catalog, catalog.services["checkout"])
    assert len(built.of(roles.RUNBOOKS)) == 1
    reasons = {error.component: error.reason for error in built.errors}
    assert "does not exist" in reasons["code:git"]
    assert "unknown metrics source kind 'graphite'" in reasons["metrics:graphite"]


def test_sources_of_each_role_are_built_in_catalog_order(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    specs = {"runbooks": [spec("runbooks_dir", path="b", name="second"), spec("runbooks_dir", path="a", name="first")]}

    built = build_specs(specs, tmp_path)

    assert [entry.label for entry in built.entries(roles.RUNBOOKS)] == ["runbooks:second", "runbooks:first"]


# --- Secrets -------------------------------------------------------------------------------------


class WikiOptions(SourceOptions):
    url: str = Field(description="wiki root")
    token_env: EnvVarName = Field(description="environment variable holding the wiki's API token")


@dataclass
class Wiki:
    name: str
    url: str
    token: SecretStr

    def runbooks(self) -> list[Runbook]:
        return []


def _build_wiki(options: WikiOptions, _base_dir: Path) -> Wiki:
    return Wiki(options.name or "wiki", options.url, secret_from_env(options.token_env, purpose=f"wiki {options.url}"))


WIKI: SourceKind[WikiOptions, Wiki] = SourceKind(
    name="wiki", role=roles.RUNBOOKS, options=WikiOptions, build=_build_wiki, summary="runbooks in a wiki (a test kind)"
)


@pytest.fixture
def wiki_registered(monkeypatch: pytest.MonkeyPatch) -> SourceKind[WikiOptions, Wiki]:
    """The test kind registered for this test only, as a line in KINDS would."""
    monkeypatch.setitem(registry._BY_ROLE[roles.RUNBOOKS.name], WIKI.name, WIKI)
    return WIKI


def test_an_env_option_reads_its_secret_from_that_environment_variable(
    wiki_registered: SourceKind[WikiOptions, Wiki], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WIKI_TOKEN", "wk-live-9f8e7d6c5b4a")

    built = build_specs({"runbooks": [spec("wiki", url="https://wiki.example", token_env="WIKI_TOKEN")]}, tmp_path)

    assert built.errors == []
    [wiki] = built.of(roles.RUNBOOKS)
    assert wiki.token.get_secret_value() == "wk-live-9f8e7d6c5b4a"  # type: ignore[attr-defined]
    assert "wk-live" not in repr(wiki)


def test_a_missing_secret_variable_degrades_the_source_naming_the_variable_never_a_value(
    wiki_registered: SourceKind[WikiOptions, Wiki], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WIKI_TOKEN", raising=False)
    monkeypatch.setenv("WIKI_TOKEN_OLD", "wk-live-stale-value")

    built = build_specs({"runbooks": [spec("wiki", url="https://wiki.example", token_env="WIKI_TOKEN")]}, tmp_path)

    assert built.errors == [Degradation("runbooks:wiki", "wiki https://wiki.example: environment variable WIKI_TOKEN is not set")]


def test_an_env_option_takes_a_variable_name_not_a_secret(wiki_registered: SourceKind[WikiOptions, Wiki]) -> None:
    found = problems("runbooks", spec("wiki", url="https://wiki.example", token_env="s3cr3t token!"))

    assert list(found) == ["token_env"]
    assert "should match pattern" in found["token_env"]


@pytest.mark.parametrize("value", [None, ""])
def test_secret_from_env_refuses_an_unset_or_empty_variable(value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("IR_TEST_SECRET", raising=False)
    else:
        monkeypatch.setenv("IR_TEST_SECRET", value)

    with pytest.raises(SourceError) as raised:
        secret_from_env("IR_TEST_SECRET", purpose="jira token")

    assert str(raised.value) == "jira token: environment variable IR_TEST_SECRET is not set"


def test_secret_from_env_keeps_the_value_out_of_its_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IR_TEST_SECRET", "xoxb-not-for-logs")

    secret = secret_from_env("IR_TEST_SECRET", purpose="slack")

    assert secret.get_secret_value() == "xoxb-not-for-logs"
    assert "xoxb" not in repr(secret) and "xoxb" not in str(secret)


def test_resolve_path_reads_relative_paths_from_the_catalog_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    assert resolve_path("logs/app.log", tmp_path) == tmp_path / "logs" / "app.log"
    assert resolve_path("/var/log/app.log", tmp_path) == Path("/var/log/app.log")
    assert resolve_path("~/logs", tmp_path) == tmp_path / "home" / "logs"


# --- Example catalogs and the schema -------------------------------------------------------------


def _present(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared is checked out beside the repo)")
    return path


@pytest.mark.parametrize("example", EXAMPLES, ids=["repo", "shared"])
def test_an_example_catalog_passes_the_catalog_check(example: Path) -> None:
    catalog = load_checked_catalog(_present(example))

    assert catalog.names()


@pytest.mark.parametrize("example", EXAMPLES, ids=["repo", "shared"])
def test_an_example_catalog_validates_under_the_generated_schema(example: Path) -> None:
    data = yaml.safe_load(_present(example).read_text())

    jsonschema.Draft202012Validator.check_schema(catalog_schema())
    jsonschema.validate(data, catalog_schema(), cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("example", EXAMPLES, ids=["repo", "shared"])
def test_an_example_catalog_validates_under_the_shared_schema(example: Path) -> None:
    schema = json.loads(_present(SHARED_CONTRACTS / "services.schema.json").read_text())
    data = yaml.safe_load(_present(example).read_text())

    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    "source",
    [
        {"kind": "files", "pathz": ["a.log"]},
        {"kind": "files", "path": "repo", "branch": "main"},
        {"kind": "git"},
        {"kind": "git", "path": "repo", "timeout_s": "soon"},
        {"kind": "graphite", "url": "x"},
    ],
    ids=["unknown option", "option of another kind", "missing option", "wrong type", "unknown kind"],
)
def test_the_generated_schema_rejects_what_the_catalog_check_rejects(source: dict[str, Any]) -> None:
    role = "code" if source["kind"] == "git" else "logs"
    catalog = {"services": {"checkout": {role: [source]}}}

    assert check_source(role, SourceSpec.model_validate(source)) != []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(catalog, catalog_schema(), cls=jsonschema.Draft202012Validator)


def test_the_committed_schema_is_the_generated_one() -> None:
    # contracts/services.schema.json is what `python app.py catalog schema` prints; regenerate it when a kind changes.
    assert COMMITTED_SCHEMA.is_file(), (
        f"{COMMITTED_SCHEMA.relative_to(REPO)} is missing: run `python app.py catalog schema > {COMMITTED_SCHEMA.relative_to(REPO)}`"
    )

    assert json.loads(COMMITTED_SCHEMA.read_text()) == catalog_schema()
