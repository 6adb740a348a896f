"""Detector evaluations as a batch's result lists them: every one (reports), or each detector's latest (the live status page).

A channel evaluates its detectors every ``window.step`` observations: with the default step, about
half an evaluation per record over the bench's 26 channels. The HTML report plots every one
(:class:`EvaluationLog`); the live status page shows each detector's latest, and ``run`` used to
hand it every evaluation too, as a record each — 4 % of its CPU for what the page then threw away.
:class:`LatestEvaluations` keeps the batch's last evaluation per (model, channel, detector) and makes
records of those only, when the batch is judged (:meth:`EvaluationLog.finish`).

>>> from types import SimpleNamespace as E
>>> log = LatestEvaluations()
>>> for t in (1, 2, 3):
...     log.add("m", "x", "psi", t, E(statistic=t / 10, threshold=0.25, breached=t > 2))
>>> log.finish()
[EvaluationRecord(model='m', channel='x', detector='psi', event_time_ms=3, statistic=0.3, threshold=0.25, breached=True)]
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["EvaluationLog", "EvaluationRecord", "LatestEvaluations", "evaluation_log"]


class EvaluationRecord(NamedTuple):
    """One detector evaluation, for reports (``statistic`` over event time against ``threshold``)."""

    model: str
    channel: str
    detector: str
    event_time_ms: int
    statistic: float | None
    threshold: float | None
    breached: bool


class EvaluationLog(list):  # type: ignore[type-arg]
    """Every evaluation, in the order made (a list of :class:`EvaluationRecord`)."""

    def add(self, model: str, channel: str, detector: str, event_time_ms: int, evaluation: Any) -> None:
        """One evaluation (a ``detectors.Evaluation``) of ``detector`` on ``channel`` at ``event_time_ms``."""
        self.append(EvaluationRecord(model, channel, detector, event_time_ms, evaluation.statistic, evaluation.threshold, evaluation.breached))

    def finish(self) -> EvaluationLog:
        """The records, once the batch is judged."""
        return self


class LatestEvaluations(EvaluationLog):
    """Each (model, channel, detector)'s last evaluation of the batch (rows are judged in event-time order: its latest)."""

    def __init__(self) -> None:
        super().__init__()
        self._latest: dict[tuple[str, str, str], tuple[int, Any]] = {}

    def add(self, model: str, channel: str, detector: str, event_time_ms: int, evaluation: Any) -> None:
        """Keep it, in place of the detector's earlier one."""
        self._latest[(model, channel, detector)] = (event_time_ms, evaluation)

    def expect(self, model: str, channel: str, detectors: list[str]) -> None:
        """Hold places for these detectors' evaluations, in this order, where an evaluation of each comes later
        (a channel that skips quiet steps: the order of the records stays that of their first evaluations)."""
        for d in detectors:
            self._latest.setdefault((model, channel, d), None)  # type: ignore[arg-type]

    def finish(self) -> EvaluationLog:
        """The latest evaluations as records (added after the batch's earlier ones, if any)."""
        got = [(key, te) for key, te in self._latest.items() if te is not None]  # (a place held by expect and never filled: none)
        self.extend(EvaluationRecord(m, c, d, t, e.statistic, e.threshold, e.breached) for (m, c, d), (t, e) in got)
        self._latest.clear()
        return self


def evaluation_log(mode: bool | str) -> EvaluationLog | None:
    """What ``PartitionMonitor.judge(record_evaluations=mode)`` collects: None (False), every evaluation (True), or ``"latest"``."""
    if not mode:
        return None
    if mode == "latest":
        return LatestEvaluations()
    return EvaluationLog()
