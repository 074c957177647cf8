"""The log-store examples `services.example.yaml` carries commented out (so the example catalog reads no remote store) stay valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from integrations.registry import find_kind

EXAMPLE = Path(__file__).resolve().parents[3] / "services.example.yaml"


def commented_entries() -> list[dict[str, object]]:
    found = []
    for line in EXAMPLE.read_text().splitlines():
        text = line.strip()
        if text.startswith("#   - {kind:"):
            found.append(yaml.safe_load(text.removeprefix("#   - ")))
    return found


@pytest.mark.parametrize("kind", ["loki", "elasticsearch", "opensearch"])
def test_each_log_store_kind_has_a_commented_example_its_options_accept(kind: str) -> None:
    entries = [entry for entry in commented_entries() if entry["kind"] == kind]
    descriptor = find_kind("logs", kind)

    assert entries and descriptor is not None, f"services.example.yaml has no commented '{kind}' example"
    options = {key: value for key, value in entries[0].items() if key != "kind"}
    assert descriptor.options.model_validate(options)
