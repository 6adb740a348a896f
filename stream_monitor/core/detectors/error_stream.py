"""What the change-point detectors of a 0/1 error stream share (``ddm``, ``hddm_a``).

The channel feeds point detectors reference-standardised values; an error-stream detector turns
them back into the 0/1 errors (a value of at least 0.5 counts as an error) before River sees
them (for ``direction: down``, a success stream such as a recall, a value below 0.5 is the
error fed), and speaks in error-rate points: ``threshold`` is the minimum rise of the error rate that
confirms a trip, and the statistic of an evaluation is the rise, in points.

>>> import numpy as np
>>> from stream_monitor.core.reference import NumericReference
>>> from stream_monitor.core.settings import DdmParams
>>> from stream_monitor.core.detectors.ddm import DdmDetector
>>> ref = NumericReference.from_values(np.array([0.0] * 87 + [1.0] * 13), 0, 0, "warmup")
>>> d = DdmDetector(DdmParams(), ref)
>>> round(d.min_shift * ref.scale, 6), d.evaluation(0.3).statistic == 0.3 * ref.scale
(0.02, True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stream_monitor.core.detectors.base import Evaluation, PointDetector, severity_of
from stream_monitor.core.detectors.river_adapter import binary_state, set_binary_state

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import BinaryRateParams


class ErrorStreamDetector(PointDetector):
    """Base class: a River binary detector on the 0/1 errors behind the standardised values."""

    def __init__(self, params: BinaryRateParams, reference: Reference, detector: Any) -> None:
        super().__init__(params)
        self.mean = float(getattr(reference, "mean", 0.0))
        self.scale = float(getattr(reference, "scale", 1.0))
        self.min_shift = (params.threshold or 0.0) / self.scale  # the channel confirms in standard deviations
        self.detector = detector
        self.down = params.direction == "down"  # a success stream: its failures (values below 0.5) are fed

    def update_many(self, z: list[float]) -> list[int]:
        """Feed the errors behind ``z`` in order; return the indices at which the detector tripped.

        An error is a value of at least 0.5, or below 0.5 for ``direction: down``.
        """
        mean, scale = self.mean, self.scale
        update, d = self.detector.update, self.detector
        hit, miss = (0, 1) if self.down else (1, 0)
        trips: list[int] = []
        for i, value in enumerate(z):
            update(hit if value * scale + mean >= 0.5 else miss)
            if d.drift_detected:
                trips.append(i)
        return trips

    def evaluation(self, shift: float | None) -> Evaluation:
        """A confirmed shift (in standard deviations) as an evaluation in error-rate points."""
        rise = None if shift is None else shift * self.scale
        severity = severity_of(self.params, rise) if rise is not None else self.params.severity
        return Evaluation(rise, self.params.threshold, None, rise is not None, severity)

    def get_state(self) -> dict[str, Any]:
        """The River detector's state as plain numbers."""
        return binary_state(self.detector)

    def set_state(self, state: Any) -> None:
        """Restore :meth:`get_state`'s output; raise ``RiverStateError`` if it does not fit."""
        set_binary_state(self.detector, state)
