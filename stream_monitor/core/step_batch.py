"""A slice's evaluation steps taken together: the window detectors' evaluations of all of them, and the quiet ones.

A channel evaluates its detectors every ``window.step`` observations; a backlog's slice carries it across
dozens of steps at once (~160 per channel and slice in the benchmark). When a slice reaches enough steps
(``channel.BATCHED_STEPS``), :class:`StepBatch` holds the window statistics of all of them
(:class:`~stream_monitor.core.detectors.steps.WindowSteps`) and each window detector's evaluations.

Most steps change nothing: no detector's lifecycle is open, no window evaluation breaches, no point
detector trips. Such a step's observation only overwrites what the next one overwrites again (each
lifecycle's last statistic, a zero count of consecutive breaches, the latest evaluation per detector,
the step's evaluation round, the level since the last step). :func:`quiet_steps` tells how many of a
slice's first steps are quiet, from what is known before they are observed: the window detectors'
evaluations of every step (computed now rather than at the first full step; they depend on the
slice's history only), the point detectors' trips over the slice's values (``point_feed.SliceFeed``),
and the lifecycles' state. The channel then observes the values of all but the last quiet step at
once (its rings, the point detectors' sums) and evaluates from the last quiet step on as before: the
same state, triggers and latest evaluations (``tests/core/test_quiet_steps.py``). Only when every
evaluation is kept (``EvaluationLog``: the HTML report's plots) is each step evaluated.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Sequence

from stream_monitor.core import detectors as det
from stream_monitor.core.detectors.steps import WindowSteps
from stream_monitor.core.evaluations import LatestEvaluations

__all__ = ["StepBatch", "first_observed", "quiet_steps"]


class StepBatch:
    """A slice's :class:`WindowSteps` (its steps from ``first`` on have a full window) and, once computed, every window detector's evaluations of them."""

    __slots__ = ("evaluations", "first", "steps")

    def __init__(self, first: int, steps: WindowSteps) -> None:
        self.first = first
        self.steps = steps
        self.evaluations: list[list[det.Evaluation | None] | None] | None = None

    def evaluate(self, window_detectors: Sequence[tuple[int, Any]]) -> list[list[det.Evaluation | None] | None]:
        """Every window detector's evaluations of the steps (None for a detector that declines the batch: each step on the ring)."""
        if self.evaluations is None:
            self.evaluations = [wdet.evaluate_steps(self.steps) for _, wdet in window_detectors]
        return self.evaluations


def quiet_steps(
    batch: StepBatch,
    window_detectors: Sequence[tuple[int, Any]],
    lifecycles: dict[str, Any],
    open_elsewhere: bool,
    evaluations: Any,
    feed: Any,
    value_cuts: Sequence[int],
    steps: int,
) -> int:
    """How many of the slice's first ``steps`` evaluation steps are quiet (0: observe each step).

    ``open_elsewhere``: an orphaned lifecycle or a point detector's trip awaiting confirmation (the channel's
    ``_orphans``, ``_pending``); ``evaluations``: where the channel writes its evaluations (None, or each detector's
    latest only); ``feed``: the slice's ``SliceFeed`` (None: no point detector values); ``value_cuts[t]``: the
    slice's values observed by the end of step t. Step t is quiet when no lifecycle is firing, nothing is open
    elsewhere, no window evaluation of steps 0..t breaches and no point detector trips on the values of steps 0..t.
    """
    if open_elsewhere or steps < 2 or (evaluations is not None and type(evaluations) is not LatestEvaluations):
        return 0
    if any(life.firing for life in lifecycles.values()):
        return 0
    quiet = steps
    for evs in batch.evaluate(window_detectors):
        if evs is None:  # (declined: evaluated step by step on the ring, its outcomes not known before)
            return 0
        for j, e in enumerate(evs[: max(0, quiet - batch.first)]):
            if e is not None and e.breached:
                quiet = batch.first + j
                break
    if feed is not None:
        for trips in feed.trips:
            if trips:  # the step whose values hold the first trip opens a confirmation
                quiet = min(quiet, bisect_right(value_cuts, trips[0]))
    return quiet


def first_observed(batch: StepBatch, point_names: list[str], window_detectors: Sequence[tuple[int, Any]], skipped: int) -> list[str]:
    """The detectors the first ``skipped`` steps would have observed, in the order of their first observation: each step's
    point detectors, then, from the first step with a full window (``batch.first``), its window detectors with an evaluation."""
    names: dict[str, None] = {}
    evaluations = batch.evaluate(window_detectors)
    for t in range(skipped):
        names.update(dict.fromkeys(point_names))
        if t >= batch.first:
            names.update((wdet.name, None) for k, (_, wdet) in enumerate(window_detectors) if evaluations[k][t - batch.first] is not None)  # type: ignore[index]
        if len(names) == len(point_names) + len(window_detectors):
            break
    return list(names)
