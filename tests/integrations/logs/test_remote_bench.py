"""`make bench`'s remote part on a small scale: a served store read whole through the engine, memory flat with the event count."""

from __future__ import annotations

import pytest

from bench import remote


@pytest.mark.slow
def test_a_served_loki_window_is_read_whole_with_flat_memory() -> None:
    small = remote.run(count=10_000, only=["loki"])["loki"]
    large = remote.run(count=100_000, only=["loki"])["loki"]

    for served, row in ((10_000, small), (100_000, large)):
        assert row["events"] == served and row["truncated"] is None and row["degraded"] == []
        # One call per slice at least, then one per 5,000-entry page.
        assert 8 <= row["api_calls"] <= 8 + served // 5000 + 8
    # Ten times the events, about the same memory: pages stream through the engine, nothing is collected.
    assert large["peak_rss_mb"] - small["peak_rss_mb"] < 20
