"""``ece``: the expected calibration error of a window of (score - label) residuals, against the reference's.

A binary classifier's ``__calibration__`` channel holds score - label per labelled prediction
(score: the predicted probability of the positive class; label: 1 for the positive class, else
0). Each residual tells its pair apart: r > 0 is a negative with score r, r < 0 a positive with
score 1 + r, and r = 0 a pair whose score equals its label (which adds nothing to any bin's gap).
The expected calibration error over ``bins`` equal-width score bins is

    ECE = sum over bins b of (n_b / N) * |mean score in b - share of positives in b|
        = (1 / N) * sum over bins of |sum of the residuals in b|.

The detector breaches when the window's ECE exceeds the reference's by more than ``threshold``
(the statistic is the window's ECE, the threshold the reference's plus that excess): ECE is
biased upwards by sampling noise, about equally for a window and a reference of the same size.

>>> import numpy as np
>>> round(ece(np.array([0.25, -0.15, 0.25, -0.75]), bins=10), 6)  # scores 0.25, 0.85, 0.25, 0.25; labels 0, 1, 0, 1
0.1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from stream_monitor.core.detectors.base import Evaluation, WindowDetector, WindowView, severity_of

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import EceParams


def ece(residuals: np.ndarray, bins: int = 10) -> float:
    """The expected calibration error of score - label residuals over ``bins`` equal-width score bins."""
    r = np.asarray(residuals, dtype=np.float64)
    n = r.size
    if n == 0:
        return 0.0
    score = np.where(r < 0.0, 1.0 + r, r)
    idx = np.clip((score * bins).astype(np.int64), 0, bins - 1)
    sums = np.bincount(idx, weights=r, minlength=bins)
    return float(np.abs(sums).sum() / n)


class EceDetector(WindowDetector):
    """Window ECE against the reference ECE plus ``threshold``."""

    name = "ece"

    def __init__(self, params: EceParams, reference: Reference) -> None:
        super().__init__(params)
        sample = getattr(reference, "sorted_sample", np.empty(0))
        self.bins = params.bins
        self.reference_ece = ece(sample, params.bins)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The window's ECE; a breach above the reference's ECE plus ``threshold``."""
        if window.values.size == 0:
            return None
        value = ece(window.values, self.bins)
        limit = self.reference_ece + (self.params.threshold or 0.0)
        excess = value - self.reference_ece
        return Evaluation(value, limit, None, value > limit, severity_of(self.params, excess))


def build_ece(params: EceParams, reference: Reference) -> EceDetector:
    """Registry factory of ``ece``."""
    return EceDetector(params, reference)
