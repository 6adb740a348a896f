"""Point detectors fed a whole slice at once (core/point_feed.py) decide as when fed step chunk by step chunk.

The reference is the per-chunk feeding the channel did before: each step chunk's values
standardised, clipped and given to every detector on their own (a :class:`SliceFeed` per chunk).
Both channels get the same random slices (shifts that trip the detectors, missing, invalid and
absurd values that need clipping) and must give the same evaluation records — the point
detectors' confirmed shifts are float sums printed in alerts — and triggers.

(Slicing itself is not free of rounding: a chunk ends at a slice's end as at a step, and the
pending sums add chunk totals, so one observation per call and one slice of many can differ in a
shift's last bits, before this module as after; the comparison is therefore at equal slices.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import channel as channel_module
from stream_monitor.core.channel import ChannelMonitor, EvaluationRecord
from stream_monitor.core.point_feed import SliceFeed
from stream_monitor.core.settings import DetectionSettings, ReferenceSettings, WindowSettings
from tests.core.test_window_steps import _feed as feed_slices


class _PerChunk:
    """The feeding before point_feed: nothing at the slice, each chunk's values fed when the chunk is observed."""

    def __init__(self, detectors: Any, vals: np.ndarray, ref: Any, inside: bool) -> None:
        self.args = (detectors, vals, ref)

    def chunk(self, a: int, b: int, level: list[float], pending: dict[str, list[float]]) -> None:
        detectors, vals, ref = self.args
        SliceFeed(detectors, vals[a:b], ref, False).chunk(0, b - a, level, pending)


def _feed(values: list[Any], cuts: list[int], size: int, step: int, per_chunk: bool) -> tuple[list[EvaluationRecord], list[Any]]:
    s = DetectionSettings(
        window=WindowSettings(size=size, step=step), reference=ReferenceSettings(size=60),
        numeric_detectors=("adwin", "page_hinkley", "ks", "missing_rate"),
    )  # fmt: skip
    ch = ChannelMonitor("m", "x", "numeric", s, partition=0, ordinal=0)
    saved = channel_module.SliceFeed
    channel_module.SliceFeed = _PerChunk if per_chunk else SliceFeed  # type: ignore[misc]
    try:
        return feed_slices(ch, values, cuts)
    finally:
        channel_module.SliceFeed = saved  # type: ignore[misc]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_slice_fed_at_once_gives_the_per_chunk_decisions(data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    size = data.draw(st.integers(50, 120))
    step = data.draw(st.integers(10, size))
    n = data.draw(st.integers(200, 900))
    shift_at = int(rng.integers(60, n))
    raw: list[Any] = (rng.normal(0, 1, n) + data.draw(st.sampled_from([0.5, 2.0, 6.0])) * (np.arange(n) >= shift_at)).tolist()
    for i in np.flatnonzero(rng.random(n) < data.draw(st.sampled_from([0.0, 0.05, 0.2]))).tolist():
        raw[i] = [None, float("nan"), "x", 1e300, -1e200][int(rng.integers(0, 5))]
    cuts = data.draw(st.lists(st.integers(1, n), max_size=6))
    at_once = _feed(raw, cuts, size, step, per_chunk=False)
    per_chunk = _feed(raw, cuts, size, step, per_chunk=True)
    assert at_once[0] == per_chunk[0]
    assert [type(r.statistic) for r in at_once[0]] == [type(r.statistic) for r in per_chunk[0]]
    assert at_once[1] == per_chunk[1]


def test_the_comparison_sees_the_point_detectors_decide() -> None:
    """Not vacuous: on a 2-sd shift the point detectors' shifts are confirmed (breaches with a float statistic)."""
    rng = np.random.default_rng(7)
    raw = (rng.normal(0, 1, 800) + 2.0 * (np.arange(800) >= 400)).tolist()
    records, triggers = _feed(raw, [150, 333, 610], 100, 25, per_chunk=False)
    assert {r.detector for r in records if r.breached} >= {"adwin", "page_hinkley"}
    assert triggers  # a page opened
    assert records == _feed(raw, [150, 333, 610], 100, 25, per_chunk=True)[0]
