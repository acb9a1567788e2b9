"""Progress: log lines with the time left when not on a terminal, a bar on one."""

from __future__ import annotations

import logging

import pytest

from xrf_sr_kedro.progress import Progress, format_time_left, progress


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_time_left_is_rounded_for_people():
    assert format_time_left(12.4) == "about 12 s"
    assert format_time_left(240.0) == "about 4 min"
    assert format_time_left(3 * 3600.0) == "about 3.0 h"
    assert format_time_left(float("inf")) == "unknown"


def test_log_lines_with_eta_at_most_every_interval(caplog):
    caplog.set_level(logging.INFO, logger="xrf_sr_kedro.progress")
    clock = FakeClock()
    with Progress(12, "slab", log_every_s=30.0, bar=False, clock=clock) as p:
        for _ in range(12):
            clock.t += 20.0  # 20 s a slab
            p.update()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "slab: 0/12 started"
    # Logged at 40 s, 80 s, 120 s, ... (every second slab), not after every slab.
    assert lines[1] == "slab: 2/12 (17 %), 0:00:40 elapsed, about 3 min left"
    assert "slab: 3/12 (25 %), 0:01:00 elapsed, about 3 min left" not in lines
    assert lines[-1] == "slab: 12/12 (100 %), 0:04:00 elapsed, done"
    assert len(lines) == 1 + 5 + 1


def test_progress_iterates_everything_and_bar_writes_no_log(caplog):
    caplog.set_level(logging.INFO, logger="xrf_sr_kedro.progress")
    assert list(progress(range(4), "tiles", bar=True)) == [0, 1, 2, 3]
    assert caplog.records == []
    assert list(progress(iter("ab"), "x", total=2, enabled=False)) == ["a", "b"]
    assert caplog.records == []


def test_total_must_be_a_count():
    with pytest.raises(ValueError, match="total"):
        Progress(-1, "x")
