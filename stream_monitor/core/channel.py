"""One monitored channel (a feature, or a reserved channel such as ``__prediction__``) of one model.

A channel first builds its reference (warm-up) unless a baseline profile was given, then keeps a
sliding window of the last ``window.size`` observations in ring buffers, feeds change-point
detectors value by value and evaluates window detectors every ``window.step`` observations.
Work is done per batch with numpy; evaluation points fall on exact observation counts, so results
do not depend on how records were batched.

>>> from stream_monitor.core.settings import DetectionSettings, WindowSettings, ReferenceSettings
>>> settings = DetectionSettings(window=WindowSettings(size=100, step=50), reference=ReferenceSettings(size=100))
>>> ch = ChannelMonitor("m", "x", "numeric", settings, partition=0, ordinal=0)
>>> rows = list(range(400))
>>> values = [0.0 + (i % 10) / 10 for i in rows[:200]] + [5.0 + (i % 10) / 10 for i in rows[200:]]
>>> triggers = ch.ingest(values, rows, row_times=[1000 * i for i in rows], row_offsets=rows)
>>> [(t.detector, t.transition, t.grouped) for t in triggers]  # one page, led by the first detector to fire
[('adwin', 'firing', True)]
>>> ch.series.agreed  # every detector that has agreed since
['adwin', 'page_hinkley', 'psi', 'ks', 'out_of_range_rate']
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, Iterable, Protocol, Sequence

import numpy as np
import structlog

from stream_monitor.core import detectors as det
from stream_monitor.core import series as ser
from stream_monitor.core.alert import kind_of
from stream_monitor.core.classify import classify
from stream_monitor.core.detectors.steps import WindowSteps
from stream_monitor.core.evaluations import EvaluationLog, EvaluationRecord
from stream_monitor.core.lifecycle import AlertLifecycle, fingerprint
from stream_monitor.core.packed import CodedColumn
from stream_monitor.core.point_feed import Z_MAX, SliceFeed
from stream_monitor.core.reference import CategoricalReference, NumericReference, Reference, bounded_category
from stream_monitor.core.series import ChannelTrigger, OpenEpisode, open_pages
from stream_monitor.core.settings import OVERFLOW_CATEGORY, ChannelType, DetectionSettings, OutOfRangeParams
from stream_monitor.core.step_batch import StepBatch, first_observed, quiet_steps

__all__ = ["ChannelMonitor", "ChannelTrigger", "EpisodeSource", "EvaluationRecord", "OpenEpisode", "drifting_features", "open_pages"]

log = structlog.get_logger("stream_monitor.core")
CONFIRM_MIN_VALUES = 50  # values after a change-point trip used to confirm the size of the shift
LEVEL_NOISE = 3.0  # a firing change-point page judges the level on enough values that noise is a third of its gate
# a slice reaching at least this many full-window steps has their statistics computed together (WindowSteps); fewer are
# evaluated one by one on the ring: ~200 us per slice batched against ~27 (numeric) / ~37 us (categorical) per step on
# the ring, even near 11 / 6 steps (docs/architecture.md; the same floats: tests/core/test_window_steps.py)
BATCHED_STEPS: dict[str, int] = {"numeric": 11, "categorical": 6}
WINDOW_CHUNK = 128  # ring positions per window state item: a checkpoint rewrites only the chunks written since (core/state_window.py)
_count_nonzero = np.count_nonzero  # per slice, instead of ndarray.any (its Python wrapper): 0.2 against 1.0-1.2 us a call


def level_values(min_shift: float) -> int:
    """How many values a firing change-point page's level needs: the mean of that many is off by ``min_shift / 3`` sd (1 sd).

    One evaluation step's values (``window.step``, 250) suffice for a gate of 0.25 sd (144 values); a 0/1 error stream
    gated at 0.05 sd needs 3,600, so its level is judged on the window's newest values (up to all of them) — on one step
    its noise alone (0.06 sd) crossed the gate every other evaluation, and the page never resolved.

    >>> level_values(0.25), level_values(0.05), level_values(0.0)
    (144, 3600, 1000000000)
    """
    return int(min(1e9, round((LEVEL_NOISE / min_shift) ** 2))) if min_shift > 0 else 1_000_000_000


class EpisodeSource(Protocol):
    """What :meth:`ChannelMonitor.adopt_open_episodes` reads: the channel's page and firing detectors."""

    series: ser.AlertSeries

    def firing_lifecycles(self) -> list[tuple[str, str, AlertLifecycle]]:
        """(detector, detector-level fingerprint, lifecycle) of every firing detector, current or orphaned."""
        ...


def drifting_features(channels: Iterable[ChannelMonitor], event_time_ms: int, window_start_ms: int | None) -> list[dict[str, Any]]:
    """The feature channels among ``channels`` with a drift episode at ``event_time_ms`` or since ``window_start_ms``."""
    horizon = window_start_ms if window_start_ms is not None else event_time_ms
    entries = (ch.drift_entry(event_time_ms, horizon) for ch in channels if kind_of(ch.name, False) == "data_drift")
    return [e for e in entries if e is not None]


def _unroll(ring: np.ndarray, pos: int, filled: int) -> np.ndarray:
    """A ring buffer's entries oldest first (a copy)."""
    if filled < ring.size:
        return ring[:filled].copy()
    return np.concatenate((ring[pos:], ring[:pos]))


class ChannelMonitor:
    """Reference, window, detectors, alert lifecycles and the page of one (model, channel).

    ``partition`` is kept for logging only: no alert depends on it.
    """

    def __init__(
        self,
        model: str,
        name: str,
        channel_type: ChannelType,
        settings: DetectionSettings,
        partition: int,
        ordinal: int,
        baseline: Reference | None = None,
    ) -> None:
        self.model = model
        self.name = name
        self.channel_type: ChannelType = channel_type
        self.settings = settings
        self.partition = partition
        self.ordinal = ordinal
        self.size = settings.window.size
        self.step = settings.window.step
        self.observations = 0
        self.since_eval = 0
        self.dirty = True  # changed since the last state checkpoint
        # ... and which of its separate state items: the reference's, the window chunks' (core/state_window.py)
        self.reference_dirty, self.reference_digest, self.dirty_chunks, self.chunk_stamps = False, "", set[int](), list[int]()
        self._evaluations: EvaluationLog | None = None
        self.high_cardinality = False
        # warm-up builder
        self._warm_values: list[float] = []  # numeric channels
        self.warm_counts: dict[str, int] = {}  # categorical channels: at most categories.max_distinct + 1 entries
        self.max_category_length = settings.categories.max_length
        # values cut to the length bound, and warm-up values folded into the overflow category
        self.truncated_categories = 0
        self.folded_categories = 0
        self._warm_missing = 0
        self._warm_invalid = 0
        self.reference: Reference | None = None
        self.detector_names: tuple[str, ...] = settings.detectors_for(channel_type)
        self.lifecycles: dict[str, AlertLifecycle] = {
            name_: AlertLifecycle(settings.lifecycle_for(name_)) for name_ in self.detector_names
        }
        self.fingerprints = {name_: fingerprint(model, name, name_) for name_ in self.detector_names}
        self.series = ser.AlertSeries()
        self.series_fingerprint = fingerprint(model, name)
        self.order = {name_: i for i, name_ in enumerate(self.detector_names)}
        # this evaluation's outcome per detector: (ordinal, evaluation, values judged)
        self._round: dict[str, tuple[int, det.Evaluation, int]] = {}
        # point detectors that tripped and await confirmation: name -> [sum of z since trip, count]
        self._pending: dict[str, list[float]] = {}
        # sum and count of standardised values since the last evaluation: while a change-point
        # alert fires, it stays firing as long as this level is still shifted, then resolves
        self._level: list[float] = [0.0, 0]
        # values the point detector being observed judged (since its trip, or since the last
        # evaluation); set by _evaluate just before _observe, read only when an alert is built
        self.point_basis = 0
        # firing episodes of detectors a config change removed: they resolve, then disappear
        self._orphans: dict[str, AlertLifecycle] = {}
        self.window_detectors: list[tuple[int, det.WindowDetector]] = []
        # the window statistics of the slice being ingested, and the index of its current step
        self._batch: StepBatch | None = None
        self._step = 0
        self.point_detectors: list[tuple[int, det.PointDetector]] = []
        if baseline is not None:
            self._activate(baseline)

    # ------------------------------------------------------------------ setup
    def _activate(self, reference: Reference) -> None:
        """Reference is known: allocate windows and build detectors."""
        self.reference = reference
        n = self.size
        self.flags = np.zeros(n, dtype=np.uint8)
        self.times = np.zeros(n, dtype=np.int64)
        self.obs_filled = 0
        self.obs_pos = 0
        dtype = np.float64 if isinstance(reference, NumericReference) else np.int32
        self.values = np.zeros(n, dtype=dtype)
        self.val_filled = 0
        self.val_pos = 0
        self.chunk_stamps = [0] * -(-n // WINDOW_CHUNK)
        self.reference_dirty, self.dirty_chunks = True, set(range(len(self.chunk_stamps)))
        s = self.settings
        if isinstance(reference, NumericReference):
            oor: OutOfRangeParams = s.params("out_of_range_rate")  # type: ignore[assignment]
            if oor.range is not None:
                self.lo, self.hi = oor.range
            else:
                span = reference.maximum - reference.minimum
                self.lo = reference.minimum - oor.margin * span
                self.hi = reference.maximum + oor.margin * span
        else:
            # a baseline's categories are bounded like the values they are compared with
            self.codes = {bounded_category(c, self.max_category_length): i for i, c in enumerate(reference.categories)}
            self.unseen_code = len(reference.categories)
            self.high_cardinality = reference.distinct > s.reference.max_categories
        for ordinal, name in enumerate(self.detector_names):
            built = self._build_detector(name, reference)
            if isinstance(built, det.PointDetector):
                self.point_detectors.append((ordinal, built))
            elif built is not None:
                self.window_detectors.append((ordinal, built))

    def _build_detector(self, name: str, ref: Reference) -> det.Detector | None:
        kind = det.REGISTRY[name]
        if self.channel_type not in kind.channel_types:
            raise ValueError(f"detector {name!r} does not apply to a {self.channel_type} channel")
        if self.high_cardinality and not kind.on_high_cardinality:
            return None  # distribution tests over thousands of categories say nothing useful
        return kind.build(self.settings.params(name), ref)

    # ---------------------------------------------------------------- ingest
    def classify(self, values: Sequence[Any]) -> tuple[np.ndarray, list[Any] | np.ndarray, list[int]]:
        """Flags per observation, payloads (float or str, None when not usable), wrong-type indices.

        See :func:`stream_monitor.core.classify.classify`; categories longer than the length bound
        come back cut to it, and are counted.
        """
        flags, payload, wrong, truncated = classify(values, self.channel_type, self.max_category_length)
        if truncated:
            self._truncated(truncated)
        return flags, payload, wrong

    def classify_coded(self, column: CodedColumn) -> tuple[np.ndarray, CodedColumn, list[int]]:
        """:meth:`classify` of a categorical channel's coded column (:class:`~stream_monitor.core.packed.CodedColumn`), by its distinct texts."""
        flags, payload, truncated = column.classified(self.max_category_length)
        if truncated:
            self._truncated(truncated)
        return flags, payload, []

    def _truncated(self, n: int) -> None:
        if not self.truncated_categories:
            log.warning("category_bound_reached", model=self.model, channel=self.name, bound="max_length", limit=self.max_category_length)
        self.truncated_categories += n

    def ingest(
        self,
        values: Sequence[Any],
        rows: Sequence[int],
        row_times: Sequence[int],
        row_offsets: Sequence[int],
    ) -> list[ChannelTrigger]:
        """Observe one value (``None`` = missing) per row; return lifecycle transitions."""
        flags, payload, _ = self.classify(values)
        return self.ingest_classified(flags, payload, rows, row_times, row_offsets)

    def ingest_classified(
        self,
        flags: np.ndarray,
        payload: list[Any] | np.ndarray,
        rows: Sequence[int],
        row_times: Sequence[int],
        row_offsets: Sequence[int],
        evaluations: EvaluationLog | None = None,
        row_times_array: np.ndarray | None = None,
    ) -> list[ChannelTrigger]:
        """Like :meth:`ingest` for pre-classified values; ``evaluations`` collects the evaluations (every one, or each detector's latest).

        ``row_times_array`` is ``row_times`` as an int64 array (pass it when ingesting several
        channels of one batch, so it is built once).
        """
        self._evaluations = evaluations
        times = np.asarray(row_times, dtype=np.int64) if row_times_array is None else row_times_array
        rows = rows if isinstance(rows, np.ndarray) else np.asarray(rows, dtype=np.intp)
        triggers: list[ChannelTrigger] = []
        n = len(payload)
        self.dirty = n > 0 or self.dirty
        i = 0
        while i < n:
            if self.reference is None:
                take = min(n - i, self.settings.reference.size - self.observations)
                self._warm_up(flags[i : i + take], payload[i : i + take])
                self.observations += take
                i += take
                if self.observations >= self.settings.reference.size:
                    self._activate(self._reference_from_warmup())
                continue
            self._ingest_active(flags[i:], payload[i:], rows[i:], times, row_times, row_offsets, triggers)
            break
        self._evaluations = None
        return triggers

    def _ingest_active(
        self,
        flags: np.ndarray,
        payload: list[Any] | np.ndarray,
        rows: np.ndarray,
        times: np.ndarray,
        row_times: Sequence[int],
        row_offsets: Sequence[int],
        triggers: list[ChannelTrigger],
    ) -> None:
        """Observe a slice with the reference built: detection per step chunk, and an evaluation at every step.

        When the slice reaches at least :data:`BATCHED_STEPS` full-window steps, the window detectors'
        statistics of all of them are computed together (:class:`WindowSteps`, on first use) from the
        ring's content and the slice's values; fewer are evaluated one by one on the ring.
        """
        self._z_inside = False  # set by _judge_values when no value of the slice needs clipping (see SliceFeed)
        flags, vals, present = self._judge_values(flags, payload)
        n = flags.shape[0]
        ends = list(range(self.step - self.since_eval, n + 1, self.step))  # observations before each evaluation
        cuts = ends if ends and ends[-1] == n else [*ends, n]
        value_cuts = cuts if present is None else np.searchsorted(present, cuts).tolist()
        # steps with a full window: computed together when there are many, else each on the ring (see BATCHED_STEPS)
        full = self.window_detectors and sum(1 for e in ends if self.obs_filled + e >= self.size) >= BATCHED_STEPS[self.channel_type]
        self._batch = self._window_steps(flags, vals, ends, value_cuts) if full else None
        # the point detectors take the slice's values at once (point_feed), their sums are kept per chunk
        ref: NumericReference = self.reference  # type: ignore[assignment]
        feed = SliceFeed(self.point_detectors, vals, ref, self._z_inside) if self.point_detectors and vals.size else None
        i = v = start = 0
        quiet = 0 if self._batch is None else quiet_steps(self._batch, self.window_detectors, self.lifecycles, bool(self._orphans or self._pending),
                                                          self._evaluations, feed, value_cuts, len(ends))  # fmt: skip
        if quiet > 1:  # the quiet steps before the last one change nothing it does not set again: their values observed at once
            i, v, start = cuts[quiet - 2], value_cuts[quiet - 2], quiet - 1
            if self._evaluations is not None:  # (each detector's latest: listed in the order of their first evaluations)
                self._evaluations.expect(self.model, self.name, first_observed(self._batch, [p.name for _, p in self.point_detectors], self.window_detectors, start))
            self._detect(flags[:i], vals[:v], rows[:i], times, feed, 0)
            self.observations += i
            self.since_eval, self._level = 0, [0.0, 0]
        for t in range(start, len(cuts)):
            end, ve = cuts[t], value_cuts[t]
            self._detect(flags[i:end], vals[v:ve], rows[i:end], times, feed, v)
            self.observations += end - i
            self.since_eval += end - i
            i, v = end, ve
            if self.since_eval >= self.step:
                self.since_eval = 0
                self._step = t
                self._evaluate(int(rows[end - 1]), row_times, row_offsets, triggers)
        self._batch = None

    def _window_steps(self, flags: np.ndarray, vals: np.ndarray, ends: list[int], value_cuts: list[int]) -> StepBatch:
        """The history the slice's evaluations will read: the ring's content (a copy, oldest first), then the slice's."""
        history = np.concatenate((_unroll(self.flags, self.obs_pos, self.obs_filled), flags))
        values = np.concatenate((_unroll(self.values, self.val_pos, self.val_filled), vals))
        first = max(0, len(ends) - sum(1 for e in ends if self.obs_filled + e >= self.size))  # steps with a full window
        obs_ends = np.array(ends[first:], dtype=np.int64) + self.obs_filled
        value_ends = np.array(value_cuts[first : len(ends)], dtype=np.int64) + self.val_filled
        return StepBatch(first, WindowSteps(history, values, obs_ends, value_ends, self.size))

    def _warm_up(self, flags: np.ndarray, payload: list[Any] | np.ndarray) -> None:
        if isinstance(payload, np.ndarray):
            ok = flags == det.FLAG_OK
            self._warm_values.extend(payload[ok].tolist())
            missing = int(np.count_nonzero(flags == det.FLAG_MISSING))
            self._warm_missing += missing
            self._warm_invalid += flags.size - missing - int(np.count_nonzero(ok))
            return
        numeric = self.channel_type == "numeric"
        counts, cap = self.warm_counts, self.settings.categories.max_distinct
        for f, p in zip(flags.tolist(), payload, strict=True):
            if f == det.FLAG_OK:
                if numeric:
                    self._warm_values.append(p)
                elif p in counts:
                    counts[p] += 1
                elif len(counts) < cap:
                    counts[p] = 1
                else:  # beyond the distinct-category bound: one overflow bucket
                    counts[OVERFLOW_CATEGORY] = counts.get(OVERFLOW_CATEGORY, 0) + 1
                    if not self.folded_categories:
                        log.warning("category_bound_reached", model=self.model, channel=self.name, bound="max_distinct", limit=cap)
                    self.folded_categories += 1
            elif f == det.FLAG_MISSING:
                self._warm_missing += 1
            else:
                self._warm_invalid += 1

    def _reference_from_warmup(self) -> Reference:
        if self.channel_type == "numeric":
            values, self._warm_values = self._warm_values, []
            return NumericReference.from_values(values, self._warm_missing, self._warm_invalid, "warmup")
        counts, self.warm_counts = self.warm_counts, {}
        return CategoricalReference.from_counts(counts, self._warm_missing, self._warm_invalid, "warmup")

    def _push(self, ring: np.ndarray, pos: int, filled: int, data: np.ndarray) -> tuple[int, int]:
        n = ring.size
        k = data.size
        if k >= n:  # the newest n, where writing them one chunk at a time would leave them (the layout is the state's)
            end = (pos + k) % n
            ring[end:], ring[:end] = data[k - n : k - end], data[k - end :]
            return end, n
        end = pos + k
        if end <= n:
            ring[pos:end] = data
        else:
            first = n - pos
            ring[pos:] = data[:first]
            ring[: k - first] = data[first:]
        return end % n, min(n, filled + k)

    def _judge_values(self, flags: np.ndarray, payload: list[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Flags with values outside the reference marked ``FLAG_OUTSIDE``, the present values (numbers or codes), their indices (``None``: all)."""
        all_present = not _count_nonzero(flags)  # FLAG_OK is 0
        present_idx = None if all_present else np.flatnonzero(flags == det.FLAG_OK)
        outside: np.ndarray | None = None
        if self.channel_type == "numeric":
            if isinstance(payload, np.ndarray):
                vals = payload if present_idx is None else payload[present_idx]
            else:
                idx = range(len(payload)) if present_idx is None else present_idx.tolist()
                vals = np.fromiter((payload[j] for j in idx), dtype=np.float64, count=len(idx))
            # two reductions decide the usual case (every value inside); else the per-value test
            if vals.size:
                low, high = vals.min(), vals.max()
                if not (low >= self.lo and high <= self.hi):
                    outside = (vals < self.lo) | (vals > self.hi)
                if self.point_detectors:  # standardising is monotone: the extreme z are those of the extreme values
                    ref: NumericReference = self.reference  # type: ignore[assignment]
                    self._z_inside = bool((low - ref.mean) / ref.scale >= -Z_MAX and (high - ref.mean) / ref.scale <= Z_MAX)
        elif payload.__class__ is CodedColumn:  # each distinct text looked up once (core/packed.py)
            texts = payload.categories  # type: ignore[union-attr]
            mapped = np.fromiter(map(self.codes.get, texts, repeat(self.unseen_code, len(texts))), dtype=np.int32, count=len(texts))
            vals = mapped[payload.codes if present_idx is None else payload.codes[present_idx]]  # type: ignore[union-attr]
            outside = vals == self.unseen_code
        else:
            present = payload if present_idx is None else [payload[j] for j in present_idx.tolist()]
            vals = np.fromiter(map(self.codes.get, present, repeat(self.unseen_code, len(present))), dtype=np.int32, count=len(present))
            outside = vals == self.unseen_code
        if outside is not None and _count_nonzero(outside):
            flags = flags.copy()
            flags[outside if present_idx is None else present_idx[outside]] = det.FLAG_OUTSIDE
        return flags, vals, present_idx

    def _detect(self, flags: np.ndarray, vals: np.ndarray, rows: np.ndarray, row_times: np.ndarray, feed: SliceFeed | None, v: int) -> None:
        """Observe one step chunk: its present values (the slice's ``v`` onwards) for the point detectors, and into the rings."""
        if feed is not None and vals.size:
            feed.chunk(v, v + vals.size, self._level, self._pending)
        times = row_times[rows]
        start = self.obs_pos
        self.obs_pos, self.obs_filled = self._push(self.flags, start, self.obs_filled, flags)
        self._push(self.times, start, 0, times)
        self._touch(start, flags.size)
        if vals.size:
            self._touch(self.val_pos, vals.size)
            self.val_pos, self.val_filled = self._push(self.values, self.val_pos, self.val_filled, vals)

    def _touch(self, pos: int, k: int) -> None:
        """Ring positions ``pos`` to ``pos + k - 1`` (wrapping) are written: their window chunks are dirty."""
        last = pos + min(k, self.size) - 1
        if k <= 0:
            return
        if last < self.size:
            self.dirty_chunks.update(range(pos // WINDOW_CHUNK, last // WINDOW_CHUNK + 1))
        else:
            self.dirty_chunks.update(range(pos // WINDOW_CHUNK, len(self.chunk_stamps)))
            self.dirty_chunks.update(range((last - self.size) // WINDOW_CHUNK + 1))

    def _evaluate(self, row: int, row_times: Sequence[int], row_offsets: Sequence[int], triggers: list[ChannelTrigger]) -> None:
        """Evaluate every detector at ``row``, then turn their lifecycle transitions into pages."""
        changes: list[ser.Change] = []
        self._round.clear()
        self._evaluate_detectors(row, row_times, row_offsets, changes)
        if changes:
            ser.page(self, row, int(row_times[row]), int(row_offsets[row]), changes, triggers)

    def _evaluate_detectors(self, row: int, row_times: Sequence[int], row_offsets: Sequence[int], changes: list[ser.Change]) -> None:
        self.point_basis = 0  # orphans' evidence (below) describes the window
        for i, (name, life) in enumerate(list(self._orphans.items())):
            clear = det.Evaluation(None, None, None, False, life.severity)
            self.lifecycles[name] = life  # _observe looks the lifecycle up by name
            self._observe(name, len(self.detector_names) + i, clear, row, row_times, row_offsets, changes)
            del self.lifecycles[name]
            if not life.firing:
                del self._orphans[name]
        level_sum, level_n = self._level
        self._level = [0.0, 0]
        for ordinal, pdet in self.point_detectors:
            pending = self._pending.get(pdet.name)
            if pending is not None and pending[1] < CONFIRM_MIN_VALUES:
                continue  # too few values since the trip to judge the shift; decide next step
            shift = None
            self.point_basis = int(pending[1]) if pending is not None else int(level_n)
            if pending is not None:
                del self._pending[pdet.name]
                mean_shift = abs(pending[0] / pending[1])
                shift = mean_shift if mean_shift >= pdet.min_shift else None
            elif level_n and self.lifecycles[pdet.name].firing:
                # the detector has adapted to the new level; the alert holds while the level
                # stays shifted from the reference, and resolves once it is back
                level = abs(level_sum / level_n)
                need = level_values(pdet.min_shift)
                if level_n < need and need > self.settings.window.step:
                    level = self._window_level(need)
                shift = level if level >= pdet.min_shift else None
            self._observe(pdet.name, ordinal, pdet.evaluation(shift), row, row_times, row_offsets, changes)
        if self.obs_filled < self.size:
            return
        batch, view = self._batch, None
        if batch is not None and batch.evaluations is None:  # the batch's first full step: every step at once
            batch.evaluate(self.window_detectors)
        values_full = self.val_filled >= self.size
        for k, (ordinal, wdet) in enumerate(self.window_detectors):
            evaluations = batch.evaluations[k] if batch is not None else None  # type: ignore[index]
            if evaluations is not None:
                evaluation = evaluations[self._step - batch.first]  # type: ignore[union-attr]
            elif wdet.needs_values and not values_full:
                continue
            else:
                if view is None:
                    view = det.WindowView(values=self.values[: self.val_filled], flags=self.flags)
                evaluation = wdet.evaluate(view)
            if evaluation is not None:
                self._observe(wdet.name, ordinal, evaluation, row, row_times, row_offsets, changes)

    def _observe(
        self,
        detector: str,
        ordinal: int,
        evaluation: det.Evaluation,
        row: int,
        row_times: Sequence[int],
        row_offsets: Sequence[int],
        changes: list[ser.Change],
    ) -> None:
        if self._evaluations is not None:
            self._evaluations.add(self.model, self.name, detector, row_times[row], evaluation)
        life = self.lifecycles[detector]
        self._round[detector] = (ordinal, evaluation, self.point_basis)
        e = evaluation
        transition = life.observe(e.breached, row_times[row], e.severity, row_offsets[row], e.statistic, e.threshold, e.p_value)
        if transition is not None:
            changes.append(ser.Change(detector, ordinal, transition, evaluation, self.point_basis, life))

    def all_lifecycles(self) -> list[tuple[str, AlertLifecycle]]:
        """(detector, lifecycle) of every detector, current then orphaned."""
        return [*self.lifecycles.items(), *self._orphans.items()]

    # --------------------------------------------------- read-only accessors
    def _window_level(self, last: int) -> float:
        """The mean of the newest ``last`` window values (fewer when it has fewer), in reference standard deviations, unsigned."""
        ref: NumericReference = self.reference  # type: ignore[assignment]
        values = self.window_values(last)
        return abs(float((values.mean() - ref.mean) / ref.scale)) if values.size else 0.0

    def window_values(self, last: int | None = None) -> np.ndarray:
        """A copy of the window's present values (numbers, or category codes), oldest first.

        ``last`` keeps only the newest ``last`` of them. Empty before the reference is built.
        """
        if self.reference is None:
            return np.zeros(0)
        ordered = _unroll(self.values, self.val_pos, self.val_filled)
        return ordered if last is None else ordered[max(0, ordered.size - last) :]

    def window_flags(self) -> np.ndarray:
        """A copy of the window's observation flags (``FLAG_*``), oldest first."""
        if self.reference is None:
            return np.zeros(0, dtype=np.uint8)
        return _unroll(self.flags, self.obs_pos, self.obs_filled)

    def adopt_open_episodes(self, old: EpisodeSource) -> None:
        """Carry ``old``'s open page and firing episodes over (after a config change rebuilt this channel).

        An episode of a detector that still exists continues under the new settings; one of a
        detector the config removed is kept as an orphan that resolves after its clear span.
        """
        for name, fingerprint_, life in old.firing_lifecycles():
            target = self.lifecycles.get(name)
            if target is None:
                self._orphans[name] = life
                self.fingerprints.setdefault(name, fingerprint_)
                continue
            for attr in AlertLifecycle.__slots__:
                if attr != "settings":
                    setattr(target, attr, getattr(life, attr))
        if old.series.firing:
            self.series = old.series.copy()

    @property
    def firing(self) -> list[str]:
        """Names of the detectors whose lifecycle is firing."""
        return [name for name, life in self.lifecycles.items() if life.firing]

    def firing_lifecycles(self) -> list[tuple[str, str, AlertLifecycle]]:
        """(detector, detector-level fingerprint, lifecycle) of every firing detector, current or orphaned."""
        return [(name, self.fingerprints[name], life) for name, life in self.all_lifecycles() if life.firing]

    def open_episodes(self) -> list[OpenEpisode]:
        """The open pages of this channel: its series, then detector-level pages (see :func:`open_pages`).

        >>> from stream_monitor.core.settings import DetectionSettings
        >>> ChannelMonitor("m", "x", "numeric", DetectionSettings(), partition=0, ordinal=0).open_episodes()
        []
        """
        return open_pages(self.series, self.series_fingerprint, self.firing_lifecycles())

    def drift_entry(self, event_time_ms: int, horizon_ms: int) -> dict[str, Any] | None:
        """How this channel drifted at ``event_time_ms`` (or since ``horizon_ms``): see ``series.drift_entry``."""
        return ser.drift_entry(self.name, self.all_lifecycles(), self.series, event_time_ms, horizon_ms)
