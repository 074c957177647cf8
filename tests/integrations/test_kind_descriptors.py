"""The descriptor contract: every kind in the registry declares itself the same way, whatever its role."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import contracts
from contracts import CONTRACTS, assert_meets_protocol
from core.catalog import SourceSpec
from integrations.catalog import load_checked_catalog
from integrations.describe import catalog_schema
from integrations.plugin import SourceKind
from integrations.registry import KINDS, check_source, parse_options
from integrations.roles import BY_NAME

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# Parts of an option's name that say it holds a credential; such an option may only name an environment variable.
SECRET_WORDS = {"token", "password", "passwd", "pwd", "secret", "key", "apikey", "credential", "credentials", "auth"}
ENV_VAR_PATTERN = r"^[A-Z_][A-Z0-9_]*$"


def kind_id(kind: SourceKind[Any, Any]) -> str:
    return f"{kind.role.name}:{kind.name}"


every_kind = pytest.mark.parametrize("kind", KINDS, ids=kind_id)


@pytest.fixture(scope="module")
def listed() -> dict[tuple[str, str], dict[str, Any]]:
    """`python app.py sources --json`, by role and kind (one name may serve two roles: `github` code and deploys)."""
    env = {**os.environ, "APP_ENV": "test", "OPENAI_API_KEY": "", "LOG_FORMAT": "console"}
    env.pop("SERVICES_FILE", None)
    done = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "sources", "--json"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return {(row["role"], row["kind"]): row for row in json.loads(done.stdout)}


def test_kind_names_are_unique_within_a_role() -> None:
    # The catalog names a kind under its role's key, so a name may serve two roles but only once in each.
    names = [(kind.role.name, kind.name) for kind in KINDS]

    assert len(names) == len(set(names))


@every_kind
def test_the_descriptor_names_a_known_role_and_summarises_itself_in_one_line(kind: SourceKind[Any, Any]) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", kind.name)
    assert BY_NAME[kind.role.name] is kind.role
    assert kind.summary.strip() and "\n" not in kind.summary


@every_kind
def test_the_options_model_forbids_keys_it_does_not_know(kind: SourceKind[Any, Any]) -> None:
    problems = dict(check_source(kind.role.name, _spec(kind, surely_not_an_option=1)))

    assert kind.options.model_config.get("extra") == "forbid"
    assert problems[("surely_not_an_option",)].startswith(f"unknown option 'surely_not_an_option' for a '{kind.name}' source")


@every_kind
def test_every_option_has_a_description(kind: SourceKind[Any, Any]) -> None:
    undocumented = [name for name, info in kind.options.model_fields.items() if not (info.description or "").strip()]

    assert undocumented == []


@every_kind
def test_no_option_takes_a_literal_secret_only_the_name_of_an_environment_variable(kind: SourceKind[Any, Any]) -> None:
    properties = kind.options.model_json_schema().get("properties", {})
    for name, info in kind.options.model_fields.items():
        parts = set(name.lower().split("_"))
        assert "SecretStr" not in repr(info.annotation), f"'{name}' would hold a secret in the catalog"
        if parts & SECRET_WORDS:
            assert name.endswith("_env"), f"'{name}' names a credential: make it '{name}_env', the variable that holds it"
        if name.endswith("_env"):
            assert _pattern_of(properties[name]) == ENV_VAR_PATTERN, f"'{name}' must be typed EnvVarName"


@every_kind
def test_a_source_built_from_the_example_catalog_meets_the_role_protocol(kind: SourceKind[Any, Any], app_env: dict[str, str]) -> None:
    catalog = load_checked_catalog(REPO / "services.example.yaml")
    specs = [spec for service in catalog.services.values() for spec in service.specs(kind.role.name) if spec.kind == kind.name]
    if not specs:
        pytest.skip(f"services.example.yaml has no '{kind.name}' source; its contract module builds one")

    found, options = parse_options(specs[0], kind.role.name)
    source = kind.build(options, catalog.base_dir)

    assert found is kind
    assert_meets_protocol(source, kind.role.protocol)


@every_kind
def test_the_kind_is_listed_by_sources_json_with_typed_options(
    kind: SourceKind[Any, Any], listed: dict[tuple[str, str], dict[str, Any]]
) -> None:
    row = listed[(kind.role.name, kind.name)]

    assert row["summary"] == kind.summary
    options = {option["name"]: option for option in row["options"]}
    assert set(options) == set(kind.options.model_fields)
    for name, info in kind.options.model_fields.items():
        assert options[name]["type"] and "any" not in options[name]["type"]
        assert options[name]["required"] == info.is_required()
        assert options[name]["description"] == info.description


@every_kind
def test_the_kind_has_its_options_in_the_catalog_schema_under_its_role(kind: SourceKind[Any, Any]) -> None:
    schema = catalog_schema()
    service = schema["properties"]["services"]["additionalProperties"]["properties"]

    key = f"{kind.role.name}.{kind.name}"
    definition = schema["$defs"][key]

    assert definition["properties"]["kind"] == {"const": kind.name, "description": kind.summary}
    assert set(definition["properties"]) == {"kind", *kind.options.model_fields}
    assert {"$ref": f"#/$defs/{key}"} in service[kind.role.name]["items"]["oneOf"]


@every_kind
def test_the_kind_has_a_test_module_that_runs_its_role_contract(kind: SourceKind[Any, Any]) -> None:
    package = kind.options.__module__.split(".")[1]
    module = HERE / package / f"test_{kind.name}.py"
    contract = CONTRACTS[kind.role.name].__name__

    assert module.is_file(), f"add {module.relative_to(REPO)} with a subclass of {contract}"
    tree = ast.parse(module.read_text(encoding="utf-8"))
    bases = {base.id for node in ast.walk(tree) if isinstance(node, ast.ClassDef) for base in node.bases if isinstance(base, ast.Name)}
    # A narrower contract of the role (LogStoreContract for log stores) runs the role's contract too.
    narrower = {
        name for name in bases if isinstance(found := getattr(contracts, name, None), type) and issubclass(found, CONTRACTS[kind.role.name])
    }
    assert narrower, f"{module.relative_to(REPO)} has no subclass of {contract}"


def _spec(kind: SourceKind[Any, Any], **options: Any) -> SourceSpec:
    return SourceSpec.model_validate({"kind": kind.name, **options})


def _pattern_of(prop: dict[str, Any]) -> str | None:
    if "pattern" in prop:
        return str(prop["pattern"])
    return next((str(option["pattern"]) for option in prop.get("anyOf", []) if "pattern" in option), None)
