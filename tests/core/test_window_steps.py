"""A batch's window statistics computed together (detectors.steps) equal the step-by-step evaluations, float for float.

Two ways in: each batched detector's ``evaluate_steps`` against its ``evaluate`` on every step's
window (values with ties among themselves and with the reference, flags of every kind), and whole
channels fed the same observations in random batches, one evaluating in batches and one step by
step (``evaluate_steps`` switched off), compared on every evaluation record and trigger.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import detectors as det
from stream_monitor.core import channel as channel_module
from stream_monitor.core import stats
from stream_monitor.core.channel import ChannelMonitor, EvaluationRecord
from stream_monitor.core.evaluations import EvaluationLog
from stream_monitor.core.detectors.steps import WindowSteps, ks_rows, window_counts
from stream_monitor.core.reference import CategoricalReference, NumericReference
from stream_monitor.core.settings import DetectionSettings, ReferenceSettings, WindowSettings

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# a few repeated numbers (ties within a window and with the reference) among continuous ones
GRID = [-2.0, -0.5, 0.0, 0.25, 1.0, 3.0]


def _numbers(draw: Any, n: int, tied: float) -> np.ndarray:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    out = rng.normal(draw(st.sampled_from([0.0, 0.7])), 1.0, n)
    pick = rng.random(n) < tied
    out[pick] = rng.choice(GRID, int(pick.sum()))
    return out


@st.composite
def numeric_history(draw: Any) -> tuple[NumericReference, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    size = draw(st.integers(5, 60))
    reference = NumericReference.from_values(_numbers(draw, draw(st.integers(1, 80)), draw(st.sampled_from([0.0, 0.3, 0.9]))).tolist(), 0, 0, "warmup")
    n_obs = draw(st.integers(size, 4 * size + 40))
    flags = np.array(draw(st.lists(st.sampled_from([0, 0, 0, 0, 1, 2, 3]), min_size=n_obs, max_size=n_obs)), dtype=np.uint8)
    n_values = draw(st.integers(0, n_obs))
    values = _numbers(draw, n_values, draw(st.sampled_from([0.0, 0.3, 0.9])))
    # evaluation points: ascending observation ends with a full window, value ends not above the values
    k = draw(st.integers(1, min(8, n_obs - size + 1)))
    obs_ends = np.sort(np.array(draw(st.lists(st.integers(size, n_obs), min_size=k, max_size=k, unique=True)), dtype=np.int64))
    value_ends = np.sort(np.array(draw(st.lists(st.integers(0, n_values), min_size=k, max_size=k)), dtype=np.int64))
    return reference, flags, values, obs_ends, value_ends, size


def _views(flags: np.ndarray, values: np.ndarray, obs_ends: np.ndarray, value_ends: np.ndarray, size: int) -> list[det.WindowView]:
    return [
        det.WindowView(values=values[max(0, v - size) : v].copy(), flags=flags[o - size : o].copy())
        for o, v in zip(obs_ends.tolist(), value_ends.tolist(), strict=True)
    ]


def _per_step(detector: det.WindowDetector, views: list[det.WindowView], size: int) -> list[det.Evaluation | None]:
    """What the channel did at each step: skip a values detector without a full window, else evaluate."""
    return [None if (detector.needs_values and view.values.size < size) else detector.evaluate(view) for view in views]


def _same(a: list[det.Evaluation | None], b: list[det.Evaluation | None]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert (x is None) == (y is None)
        if x is not None and y is not None:
            assert type(x.statistic) is type(y.statistic)
            assert x == y  # floats compared exactly


@PROPS
@given(numeric_history())
def test_numeric_detectors_equal_their_per_step_evaluations(case: tuple) -> None:
    reference, flags, values, obs_ends, value_ends, size = case
    steps = WindowSteps(flags, values, obs_ends, value_ends, size)
    views = _views(flags, values, obs_ends, value_ends, size)
    settings_ = DetectionSettings()
    for name in ("psi", "js", "ks", "missing_rate", "out_of_range_rate"):
        detector = det.REGISTRY[name].build(settings_.params(name), reference)
        batched = detector.evaluate_steps(steps)
        assert batched is not None
        _same(batched, _per_step(detector, views, size))


@PROPS
@given(st.data())
def test_categorical_detectors_equal_their_per_step_evaluations(data: st.DataObject) -> None:
    size = data.draw(st.integers(5, 60))
    counts = data.draw(st.dictionaries(st.sampled_from("abcdefgh"), st.integers(1, 50), min_size=1))
    reference = CategoricalReference.from_counts(counts, 0, 0, "warmup")
    unseen = len(reference.categories)
    n_obs = data.draw(st.integers(size, 4 * size + 40))
    flags = np.array(data.draw(st.lists(st.sampled_from([0, 0, 0, 1, 2, 3]), min_size=n_obs, max_size=n_obs)), dtype=np.uint8)
    values = np.array(data.draw(st.lists(st.integers(0, unseen), min_size=0, max_size=n_obs)), dtype=np.int32)
    k = data.draw(st.integers(1, min(8, n_obs - size + 1)))
    obs_ends = np.sort(np.array(data.draw(st.lists(st.integers(size, n_obs), min_size=k, max_size=k, unique=True)), dtype=np.int64))
    value_ends = np.sort(np.array(data.draw(st.lists(st.integers(0, values.size), min_size=k, max_size=k)), dtype=np.int64))
    steps = WindowSteps(flags, values, obs_ends, value_ends, size)
    views = _views(flags, values, obs_ends, value_ends, size)
    settings_ = DetectionSettings()
    for name in ("chi2", "js", "psi", "unseen_category_rate", "missing_rate", "out_of_range_rate"):
        detector = det.REGISTRY[name].build(settings_.params(name), reference)
        batched = detector.evaluate_steps(steps)
        assert batched is not None
        _same(batched, _per_step(detector, views, size))


@PROPS
@given(numeric_history())
def test_ks_rows_equal_ks_sorted_and_scipy(case: tuple) -> None:
    reference, flags, values, obs_ends, value_ends, size = case
    steps = WindowSteps(flags, values, obs_ends, value_ends, size)
    prepared = stats.KsReference.of(reference.sorted_sample)
    assert prepared is not None
    hi, lo = steps.ks_extremes(prepared.data1)
    windows = [values[v - size : v] for v in value_ends.tolist() if v >= size]
    assert len(hi) == len(windows)
    for h, low, window in zip(hi, lo, windows, strict=True):
        got = stats.ks_of_extremes(prepared.n1, size, h, low)
        assert got == stats.ks_sorted(prepared, np.sort(window))
        assert got == stats._ks_scipy(reference.sorted_sample, window)


def test_ks_rows_of_sorted_ranks_with_ties() -> None:
    """Runs of equal values, some equal to reference values: ks_rows from sorted R and L equals ks_sorted."""
    reference = np.array([0.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0])
    prepared = stats.KsReference.of(reference)
    assert prepared is not None
    window = np.sort(np.array([1.0, 1.0, 1.0, 0.5, 3.0, 4.0, 2.5, 2.5]))
    right = np.sort(reference.searchsorted(window, "right"))[None, :]
    left = np.sort(reference.searchsorted(window, "left"))[None, :]
    hi, lo = ks_rows(prepared.n1, right, left)
    assert stats.ks_of_extremes(prepared.n1, window.size, hi[0], lo[0]) == stats.ks_sorted(prepared, window)


def test_ks_steps_are_done_in_chunks_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large windows with many steps are sorted a few at a time (memory), with the same result."""
    from stream_monitor.core.detectors import steps as steps_module

    rng = np.random.default_rng(5)
    reference = np.sort(rng.normal(size=300))
    values = np.round(rng.normal(0.3, 1, 400), 1)
    ends = np.arange(100, 401, 20)
    whole = WindowSteps(np.zeros(400, np.uint8), values, ends, ends, 100).ks_extremes(reference)
    monkeypatch.setattr(steps_module, "ROWS_BUDGET", 250)  # two windows at a time
    chunked = WindowSteps(np.zeros(400, np.uint8), values, ends, ends, 100).ks_extremes(reference)
    assert chunked == whole and len(whole[0]) == ends.size


@pytest.mark.parametrize("budget", [1 << 20, 24, 1])  # all steps at once, two at a time, one at a time
def test_window_counts_are_bincounts_of_each_window(budget: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from stream_monitor.core.detectors import steps as steps_module

    monkeypatch.setattr(steps_module, "ROWS_BUDGET", budget)
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 6, 500)
    ends = np.array([40, 41, 90, 200, 333, 500])
    got = window_counts(codes, 6, ends, 40)
    assert got.tolist() == [np.bincount(codes[e - 40 : e], minlength=6).tolist() for e in ends.tolist()]


def test_a_nan_in_a_window_leaves_ks_to_the_step_by_step_path() -> None:
    reference = NumericReference.from_values(list(np.linspace(-1, 1, 50)), 0, 0, "warmup")
    ks = det.REGISTRY["ks"].build(DetectionSettings().params("ks"), reference)
    values = np.linspace(-1, 1, 30)
    values[7] = np.nan
    steps = WindowSteps(np.zeros(30, np.uint8), values, np.array([20, 30]), np.array([20, 30]), 20)
    assert ks.evaluate_steps(steps) is None


# ------------------------------------------------------------------------------- whole channels
def _channel(ctype: str, size: int, step: int, ref_size: int, batched: bool) -> ChannelMonitor:
    detectors = ("adwin", "page_hinkley", "psi", "ks", "js", "wasserstein", "missing_rate", "out_of_range_rate")
    if ctype == "categorical":
        detectors = ("chi2", "js", "psi", "unseen_category_rate", "missing_rate", "out_of_range_rate")
    key = "numeric_detectors" if ctype == "numeric" else "categorical_detectors"
    s = DetectionSettings(window=WindowSettings(size=size, step=step), reference=ReferenceSettings(size=ref_size), **{key: detectors})
    return (ChannelMonitor if batched else _StepByStep)("m", "x", ctype, s, partition=0, ordinal=0)  # type: ignore[arg-type]


class _StepByStep(ChannelMonitor):
    """A channel whose window detectors decline every batch: each step is evaluated on the ring, as before."""

    def _activate(self, reference: Any) -> None:
        super()._activate(reference)
        for _, wdet in self.window_detectors:
            wdet.evaluate_steps = lambda steps: None  # type: ignore[method-assign]


def _feed(ch: ChannelMonitor, values: list[Any], cuts: list[int]) -> tuple[list[EvaluationRecord], list[Any]]:
    records = EvaluationLog()
    triggers: list[Any] = []
    n = len(values)
    bounds = sorted({0, n, *(c for c in cuts if 0 < c < n)})
    times = [1_000 * i for i in range(n)]
    offsets = list(range(n))
    for a, b in zip(bounds, bounds[1:]):
        flags, payload, _ = ch.classify(values[a:b])
        new = ch.ingest_classified(flags, payload, offsets[a:b], times, offsets, evaluations=records)
        triggers += [(t.row, t.detector, t.transition, t.evaluation, t.severity, t.episode_start_ms) for t in new]
    return records, triggers


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_channel_evaluating_in_batches_equals_one_evaluating_step_by_step(data: st.DataObject) -> None:
    ctype = data.draw(st.sampled_from(["numeric", "categorical"]))
    size = data.draw(st.integers(50, 150))
    step = data.draw(st.integers(10, size))
    ref_size = data.draw(st.integers(50, 120))
    n = data.draw(st.integers(ref_size, ref_size + 6 * size))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shift = int(rng.integers(ref_size, n + 1))
    if ctype == "numeric":
        raw: list[Any] = np.round(rng.normal(0, 1, n) + 2.0 * (np.arange(n) >= shift), data.draw(st.sampled_from([1, 8]))).tolist()
        bad: list[Any] = [None, float("nan"), "x", 50.0]
    else:
        alphabet = ["a", "b", "c", "d"]
        raw = [alphabet[i] for i in rng.integers(0, 4, n)]
        raw = [v if i < shift else ("zz" if rng.random() < 0.5 else v) for i, v in enumerate(raw)]
        bad = [None, 3, "zz"]
    for i in np.flatnonzero(rng.random(n) < data.draw(st.sampled_from([0.0, 0.05, 0.3]))).tolist():
        raw[i] = bad[int(rng.integers(0, len(bad)))]
    cuts = data.draw(st.lists(st.integers(1, n), max_size=12))
    # from how many full steps a slice's windows are computed together: every slice, or (the default) slices of many steps
    batched_steps = data.draw(st.sampled_from([1, 2, channel_module.BATCHED_STEPS[ctype]]))
    saved = channel_module.BATCHED_STEPS[ctype]
    channel_module.BATCHED_STEPS[ctype] = batched_steps
    try:
        batched = _feed(_channel(ctype, size, step, ref_size, True), raw, cuts)
    finally:
        channel_module.BATCHED_STEPS[ctype] = saved
    stepwise = _feed(_channel(ctype, size, step, ref_size, False), raw, cuts)
    assert batched[0] == stepwise[0]
    assert [type(r.statistic) for r in batched[0]] == [type(r.statistic) for r in stepwise[0]]
    assert batched[1] == stepwise[1]


@pytest.mark.parametrize("ctype", ["numeric", "categorical"])
def test_the_batched_path_is_taken(ctype: str) -> None:
    """The equality above is not vacuous: the batched channel's window detectors do evaluate in batches."""
    ch = _channel(ctype, 100, 25, 100, True)
    calls: list[int] = []
    raw: list[Any] = np.random.default_rng(1).normal(size=600).tolist() if ctype == "numeric" else ["a", "b"] * 300
    flags, payload, _ = ch.classify(raw[:100])
    ch.ingest_classified(flags, payload, list(range(100)), [0] * 600, list(range(600)))
    batched = [w for _, w in ch.window_detectors if type(w).evaluate_steps is not det.WindowDetector.evaluate_steps]
    assert {w.name for w in batched} >= ({"psi", "ks", "js"} if ctype == "numeric" else {"chi2", "js", "psi"})
    for wdet in batched:
        original = wdet.evaluate_steps
        wdet.evaluate_steps = lambda steps, f=original: calls.append(len(steps)) or f(steps)  # type: ignore[method-assign]
        wdet.evaluate = None  # type: ignore[method-assign, assignment]  # would raise if called
    records = EvaluationLog()
    flags, payload, _ = ch.classify(raw[100:])
    ch.ingest_classified(flags, payload, list(range(100, 600)), [0] * 600, list(range(600)), evaluations=records)
    assert calls and all(c == 17 for c in calls)  # steps 100, 125, ..., 500: a full window
    assert {r.detector for r in records} >= {w.name for w in batched}


@pytest.mark.parametrize("level", [1.0, 0.3, 9.0])  # a reference value, between two, above all
def test_ks_of_constant_windows(level: float) -> None:
    """Consecutive windows whose values all fall in one class: every row is its own run."""
    reference = NumericReference.from_values([-1.0, 0.0, 1.0, 1.0, 2.0], 0, 0, "warmup")
    prepared = stats.KsReference.of(reference.sorted_sample)
    assert prepared is not None
    values = np.full(40, level)
    steps = WindowSteps(np.zeros(40, np.uint8), values, np.array([20, 30, 40]), np.array([20, 30, 40]), 20)
    hi, lo = steps.ks_extremes(prepared.data1)
    expected = stats.ks_sorted(prepared, values[:20])
    assert [stats.ks_of_extremes(prepared.n1, 20, h, low) for h, low in zip(hi, lo, strict=True)] == [expected] * 3


@pytest.mark.parametrize("ctype", ["numeric", "categorical"])
def test_a_slice_of_few_steps_is_evaluated_on_the_ring(ctype: str) -> None:
    """Below BATCHED_STEPS full steps a slice builds no WindowSteps: each step is evaluated on the ring (cheaper for a few)."""
    ch = _channel(ctype, 100, 25, 100, True)
    raw: list[Any] = np.random.default_rng(2).normal(size=400).tolist() if ctype == "numeric" else ["a", "b", "c"] * 134
    flags, payload, _ = ch.classify(raw[:200])
    ch.ingest_classified(flags, payload, list(range(200)), [0] * 402, list(range(402)))
    built: list[int] = []
    original = ch._window_steps
    ch._window_steps = lambda *a: built.append(1) or original(*a)  # type: ignore[method-assign]
    records = EvaluationLog()
    per_call = 25 * (channel_module.BATCHED_STEPS[ctype] - 1)  # the most steps a slice may reach and still be evaluated on the ring
    for start in range(200, 400, per_call):
        flags, payload, _ = ch.classify(raw[start : start + per_call])
        ch.ingest_classified(flags, payload, list(range(start, start + per_call)), [0] * 402, list(range(402)), evaluations=records)
    assert not built and records
    flags, payload, _ = ch.classify(raw[: 25 * channel_module.BATCHED_STEPS[ctype]])  # enough steps: computed together
    ch.ingest_classified(flags, payload, list(range(len(payload))), [0] * 402, list(range(402)))
    assert built == [1]
