"""A slice's quiet steps observed at once (core/step_batch.py) leave a channel exactly as evaluating each of them does.

Two channels fed the same values in the same random slices, both computing their window statistics in
batches, one skipping the evaluation of the quiet steps (``quiet_steps``) and one evaluating every
step (``quiet_steps`` switched off): after every slice, the same triggers, the same latest
evaluations, and the same state, field by field (the encoded channel item, its rings and positions,
its lifecycles, point detectors, level and pending sums, and the last evaluation round). Drifts that
fire and resolve, trips of the point detectors, missing and invalid values, and categorical channels
with unseen categories are among the draws, so slices begin with lifecycles open and quiet runs end
at breaches and trips. ``test_the_quiet_steps_are_skipped`` shows the path is taken.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import channel as channel_module
from stream_monitor.core import state
from stream_monitor.core.channel import ChannelMonitor
from stream_monitor.core.evaluations import EvaluationLog, LatestEvaluations
from stream_monitor.core.lifecycle import AlertLifecycle
from stream_monitor.core.settings import DetectionSettings, ReferenceSettings, WindowSettings

PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _channel(ctype: str, size: int, step: int, ref_size: int) -> ChannelMonitor:
    detectors = ("adwin", "page_hinkley", "psi", "ks", "js", "missing_rate", "out_of_range_rate")
    if ctype == "categorical":
        detectors = ("chi2", "js", "psi", "unseen_category_rate", "missing_rate", "out_of_range_rate")
    key = "numeric_detectors" if ctype == "numeric" else "categorical_detectors"
    s = DetectionSettings(window=WindowSettings(size=size, step=step), reference=ReferenceSettings(size=ref_size), **{key: detectors})
    return ChannelMonitor("m", "x", ctype, s, partition=0, ordinal=0)


def _snapshot(ch: ChannelMonitor) -> dict[str, Any]:
    """Everything an evaluation could have changed, comparable with ==."""
    lifecycles = {n: [getattr(life, a) for a in AlertLifecycle.__slots__ if a != "settings"] for n, life in ch.lifecycles.items()}
    rnd = {d: (o, (e.statistic, e.threshold, e.p_value, e.breached, e.severity), b) for d, (o, e, b) in ch._round.items()}
    return {
        "item": state.encode_channel(ch, channel_module.WINDOW_CHUNK),
        "rings": [ch.flags.tolist(), ch.values.tolist(), ch.times.tolist()] if ch.reference is not None else None,
        "positions": (ch.obs_pos, ch.obs_filled, ch.val_pos, ch.val_filled) if ch.reference is not None else None,
        "counts": (ch.observations, ch.since_eval),
        "dirty": sorted(ch.dirty_chunks),
        "lifecycles": lifecycles,
        "round": rnd,
        "basis": ch.point_basis,
        "level": list(ch._level),
        "pending": {k: list(v) for k, v in ch._pending.items()},
    }


def _feed(ch: ChannelMonitor, values: list[Any], cuts: list[int]) -> list[Any]:
    n = len(values)
    bounds = sorted({0, n, *(c for c in cuts if 0 < c < n)})
    times = [1_000 * i for i in range(n)]
    offsets = list(range(n))
    out = []
    for a, b in zip(bounds, bounds[1:]):
        log = LatestEvaluations()
        flags, payload, _ = ch.classify(values[a:b])
        new = ch.ingest_classified(flags, payload, offsets[a:b], times, offsets, evaluations=log)
        triggers = [(t.row, t.detector, t.transition, t.evaluation, t.severity, t.episode_start_ms) for t in new]
        out.append((triggers, log.finish(), _snapshot(ch)))
    return out


@PROPS
@given(data=st.data())
def test_skipping_quiet_steps_leaves_the_channel_as_evaluating_each(data: st.DataObject, monkeypatch: pytest.MonkeyPatch) -> None:
    ctype = data.draw(st.sampled_from(["numeric", "categorical"]))
    size = data.draw(st.integers(50, 120))
    step = data.draw(st.integers(10, size // 2))
    ref_size = data.draw(st.integers(50, 100))
    n = data.draw(st.integers(ref_size + 2 * size, ref_size + 12 * size))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    # a shift that starts and (often) ends: pages fire, escalate and resolve within and across slices
    start = int(rng.integers(ref_size, n))
    stop = int(rng.integers(start, n + 1))
    on = (np.arange(n) >= start) & (np.arange(n) < stop)
    if ctype == "numeric":
        amount = data.draw(st.sampled_from([0.3, 1.0, 3.0]))
        raw: list[Any] = np.round(rng.normal(0, 1, n) + amount * on, data.draw(st.sampled_from([1, 8]))).tolist()
        bad: list[Any] = [None, float("nan"), "x", 60.0]
    else:
        raw = [["a", "b", "c", "d"][i] for i in rng.integers(0, 4, n)]
        raw = [("zz" if rng.random() < 0.6 else v) if on[i] else v for i, v in enumerate(raw)]
        bad = [None, 3, "zz"]
    for i in np.flatnonzero(rng.random(n) < data.draw(st.sampled_from([0.0, 0.05]))).tolist():
        raw[i] = bad[int(rng.integers(0, len(bad)))]
    cuts = data.draw(st.lists(st.integers(1, n), max_size=8))
    batched = data.draw(st.sampled_from([1, 2, 4]))
    with monkeypatch.context() as m:  # (per example: hypothesis runs them all in one call of the test)
        m.setitem(channel_module.BATCHED_STEPS, ctype, batched)
        skipping = _feed(_channel(ctype, size, step, ref_size), raw, cuts)
        m.setattr(channel_module, "quiet_steps", lambda *args: 0)
        each = _feed(_channel(ctype, size, step, ref_size), raw, cuts)
    assert len(skipping) == len(each)
    for got, want in zip(skipping, each, strict=True):
        assert got[0] == want[0]  # triggers
        assert got[1] == want[1]  # latest evaluations
        assert got[2] == want[2]  # state


def test_the_quiet_steps_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality above is not vacuous: a quiet slice evaluates its last quiet step only; a full log evaluates each."""
    rng = np.random.default_rng(3)
    calls: list[int] = []
    evaluate = ChannelMonitor._evaluate
    monkeypatch.setattr(ChannelMonitor, "_evaluate", lambda self, row, *a: calls.append(row) or evaluate(self, row, *a))
    for log, expected in ((LatestEvaluations(), 1), (None, 1), (EvaluationLog(), 40)):
        ch = _channel("numeric", 1000, 250, 1000)
        warm = rng.normal(size=2000).tolist()
        flags, payload, _ = ch.classify(warm)
        ch.ingest_classified(flags, payload, np.arange(2000), np.arange(12_000) * 1000, np.arange(12_000))
        calls.clear()
        flags, payload, _ = ch.classify(rng.normal(size=10_000).tolist())  # 40 steps, nothing moves
        triggers = ch.ingest_classified(flags, payload, np.arange(2000, 12_000), np.arange(12_000) * 1000, np.arange(12_000), evaluations=log)
        assert triggers == [] and len(calls) == expected, (type(log).__name__, len(calls))
        assert ch.observations == 12_000 and ch.since_eval == 0
