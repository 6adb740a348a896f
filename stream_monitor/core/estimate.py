"""Label-free performance estimates of a binary classifier: expected error and cost from its probabilities.

A prediction with a probability ``p`` of the positive class and a decision (its class output,
else ``p`` cut at 0.5) is wrong with probability ``1 - q`` when it decided positive and ``q``
when it decided negative, ``q`` being the calibrated probability of the positive class. The mean
of these expected errors over a window estimates the window's error rate without a single label
(confidence-based performance estimation); the expected cost (``(1 - q)`` x the cost of a false
positive, ``q`` x that of a false negative) estimates its cost.

``q`` comes from :class:`Calibration`: histogram binning learned from the first labelled
predictions (the share of positives among the labels of each score bin). Until it has learned,
the scores are taken as calibrated (``q = p``).

>>> cal = Calibration(bins=2, size=40)
>>> for i in range(20):
...     _ = cal.observe(0.2, i % 2), cal.observe(0.9, 1)
>>> cal.learned, cal.calibrated(0.25), cal.calibrated(0.7)
(True, 0.5, 1.0)
>>> expected_error(0.25, False, cal), expected_error(0.7, True, cal)
(0.5, 0.0)
>>> expected_cost(0.1, False, Calibration(), false_positive=5.0, false_negative=100.0)
10.0
"""

from __future__ import annotations

from typing import Any

MIN_BIN = 10
"""Labelled predictions a score bin needs before its share of positives replaces the score."""


class Calibration:
    """Histogram-binning calibration of binary scores, learned from the first ``size`` labelled predictions.

    ``bins`` equal-width score bins over [0, 1] count their labelled predictions (``n``) and
    positives (``pos``); once ``size`` were counted the calibration is ``learned`` and frozen. A
    bin with fewer than :data:`MIN_BIN` labels keeps the raw score. The state is plain integers
    (:meth:`to_state`, :meth:`from_state`).
    """

    __slots__ = ("bins", "size", "n", "pos")

    def __init__(self, bins: int = 10, size: int = 2000) -> None:
        self.bins = bins
        self.size = size
        self.n = [0] * bins
        self.pos = [0] * bins

    @property
    def count(self) -> int:
        """Labelled predictions counted so far."""
        return sum(self.n)

    @property
    def learned(self) -> bool:
        """Whether ``size`` labelled predictions were counted (the calibration no longer changes)."""
        return self.count >= self.size

    def _bin(self, p: float) -> int:
        return min(int(p * self.bins), self.bins - 1)

    def observe(self, p: float, positive: bool | int) -> bool:
        """Count one labelled prediction (score ``p`` in [0, 1]); True when this one completed the learning."""
        if self.learned:
            return False
        b = self._bin(p)
        self.n[b] += 1
        self.pos[b] += 1 if positive else 0
        return self.learned

    def calibrated(self, p: float) -> float:
        """The calibrated probability of the positive class for score ``p`` (``p`` itself until learned)."""
        if not self.learned:
            return p
        b = self._bin(p)
        return self.pos[b] / self.n[b] if self.n[b] >= MIN_BIN else p

    def to_state(self) -> dict[str, Any]:
        """The calibration as plain numbers: ``{bins, size, n, pos}``."""
        return {"bins": self.bins, "size": self.size, "n": list(self.n), "pos": list(self.pos)}

    @classmethod
    def from_state(cls, obj: Any) -> Calibration:
        """Rebuild from :meth:`to_state`'s map; ``ValueError`` when it is not a consistent one.

        >>> Calibration.from_state({"bins": 2, "size": 4, "n": [1, 0], "pos": [2, 0]})
        Traceback (most recent call last):
        ...
        ValueError: calibration: a bin has more positives than labels
        """
        if not isinstance(obj, dict) or set(obj) != {"bins", "size", "n", "pos"}:
            raise ValueError("calibration: not a {bins, size, n, pos} map")
        bins, size, n, pos = obj["bins"], obj["size"], obj["n"], obj["pos"]
        if type(bins) is not int or type(size) is not int or not 2 <= bins <= 100 or size < 1:
            raise ValueError("calibration: bins or size out of range")
        for counts in (n, pos):
            if not isinstance(counts, list) or len(counts) != bins or not all(type(c) is int and c >= 0 for c in counts):
                raise ValueError("calibration: counts are not one non-negative integer per bin")
        if any(p > k for p, k in zip(pos, n, strict=True)):
            raise ValueError("calibration: a bin has more positives than labels")
        cal = cls(bins, size)
        cal.n, cal.pos = list(n), list(pos)
        return cal


def expected_error(p: float, decided_positive: bool, cal: Calibration) -> float:
    """The probability that a decision is wrong: ``1 - q`` when it decided positive, else ``q`` (``q`` calibrated)."""
    q = cal.calibrated(p)
    return 1.0 - q if decided_positive else q


def expected_cost(p: float, decided_positive: bool, cal: Calibration, false_positive: float, false_negative: float) -> float:
    """The expected cost of a decision: ``(1 - q)`` x a false positive's cost when positive, else ``q`` x a false negative's."""
    q = cal.calibrated(p)
    return (1.0 - q) * false_positive if decided_positive else q * false_negative


def estimate_evidence(channel: str, cal: Calibration | None, realised: Any) -> dict[str, Any]:
    """What an alert on an estimate channel adds to its evidence: how the estimate was made, and the realised metric.

    ``realised`` holds the window of the realised channel (``__error_rate__``'s 0/1 errors or
    ``__cost__``'s costs, as an array; empty when no label has arrived): its mean is shown next to
    the estimate (per 1,000 predictions for a cost).

    >>> import numpy as np
    >>> estimate_evidence("__estimated_error_rate__", Calibration(), np.array([]))
    {'source': 'probabilities', 'calibrated': False, 'calibration_labels': 0, 'realised': None, 'realised_count': 0}
    >>> estimate_evidence("__estimated_cost__", None, np.array([0.0, 10.0]))["realised"]
    5000.0
    """
    n = int(getattr(realised, "size", 0))
    value = None
    if n:
        value = float(realised.mean()) * (1000.0 if channel == "__estimated_cost__" else 1.0)
    return {
        "source": "probabilities",
        "calibrated": bool(cal is not None and cal.learned),
        "calibration_labels": cal.count if cal is not None else 0,
        "realised": value,
        "realised_count": n,
    }
