from __future__ import annotations

from pathlib import Path

import pytest

from core.catalog import CatalogError, load_catalog, parse_duration

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(text)
    return path


def test_shipped_example_catalog_loads_and_resolves_aliases() -> None:
    catalog = load_catalog(REPO / "services.example.yaml")
    assert catalog.names() == ["checkout"]
    assert catalog.resolve("Checkout (prod)") == "checkout"
    assert catalog.resolve("P1CHK01") == "checkout"
    assert catalog.resolve("payments") is None
    assert catalog.path("x/y") == REPO / "x/y"


def test_shared_contract_example_catalog_loads() -> None:
    example = REPO.parent / "shared" / "contracts" / "services.example.yaml"
    if not example.exists():
        pytest.skip("shared contracts not present")
    catalog = load_catalog(example)
    assert set(catalog.names()) == {"checkout", "payments-api"}


def test_error_names_file_line_and_field_for_a_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  checkout:\n    aliases: [a]\n    logs: 12\n")
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    message = str(err.value)
    assert message.startswith(f"{path}:4: services.checkout.logs")


def test_error_names_the_line_of_an_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  checkout:\n    channel: '#x'\n    jira_projcet: CHK\n")
    with pytest.raises(CatalogError, match=r":4: services\.checkout\.jira_projcet"):
        load_catalog(path)


def test_source_without_kind_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  checkout:\n    logs:\n      - {paths: [a.log]}\n")
    with pytest.raises(CatalogError, match=r":4: services\.checkout\.logs\.0\.kind"):
        load_catalog(path)


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  checkout: [\n")
    with pytest.raises(CatalogError, match=r"services\.yaml:3: not valid YAML"):
        load_catalog(path)


def test_bad_default_duration_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults:\n  lookback: forever\nservices: {}\n")
    with pytest.raises(CatalogError, match=r":2: defaults\.lookback"):
        load_catalog(path)


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read the service catalog"):
        load_catalog(tmp_path / "nope.yaml")


def test_close_matches_suggest_catalog_names(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  checkout: {}\n  payments-api: {aliases: [payments]}\n")
    catalog = load_catalog(path)
    assert catalog.close_matches("chekout") == ["checkout"]
    assert catalog.close_matches("payment") == ["payments-api"]


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("2h", 7200), ("1d", 86400), (" 45s ", 45)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="30m, 2h, 1d"):
        parse_duration("2 hours")
