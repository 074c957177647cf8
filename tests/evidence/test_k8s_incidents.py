"""Our Kubernetes incident set (bench/incidents) through the real investigation path, scored as `make bench` scores it.

Each bundle is what an engineer would paste: kubectl describe / get events output, container logs
without timestamps, a gateway's logs; several have no commit to blame. A miss names the bundle and
what the report said, so a regression reads as a sentence.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import scenarios

BUNDLES = scenarios.bundles([scenarios.INCIDENTS])


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return scenarios.run([scenarios.INCIDENTS])


def test_the_set_holds_at_least_fifteen_incidents_several_without_a_commit_to_blame() -> None:
    truths = [json.loads((b / "truth.json").read_text()) for b in BUNDLES]
    assert len(truths) >= 15
    assert sum(1 for t in truths if not t["culprit_commit"]) >= 5
    assert len({t["category"] for t in truths}) >= 7


@pytest.mark.parametrize("metric", scenarios.METRICS)
def test_every_incident_is_explained(results: dict[str, Any], metric: str) -> None:
    misses = [
        f"{row['bundle']}: got {row.get('category_got')} in {row.get('component_got')}, onset {row.get('onset_got')}, "
        f"top suspect {row.get('top_suspect')}, signatures {row.get('signature_top')} {row.get('error') or ''}"
        for row in results["bundles"]
        if row[metric] is not None and bool(row[metric]) == (metric == "false_blame")
    ]
    assert misses == []
