"""What the change-point detectors of a 0/1 error stream share (``ddm``, ``hddm_a``).

The channel feeds point detectors reference-standardised values; an error-stream detector turns
them back into the 0/1 errors (a value of at least 0.5 counts as an error) before River sees
them (for ``direction: down``, a success stream such as a recall, a value below 0.5 is the
error fed), and speaks in error-rate points: ``threshold`` is the minimum rise of the error rate that
confirms a trip, and the statistic of an evaluation is the rise, in points.

The errors of a call are found at once (numpy, the same arithmetic as per value). ``hddm_a`` and
``ddm`` (the defaults) then run River's update in a compiled kernel (``core/kernels.py``: River's
state read, the batch run, the state written back; the kernel's Python source when numba is off),
bitwise River's (``tests/core/test_error_stream_kernels.py``); ``eddm`` and ``hddm_w``, and any
detector in a state the kernel does not take, go through River's ``update`` per value.

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

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

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

    takes_array = True
    _trips: np.ndarray  # the kernel's trip buffer (detectors with a kernel make it)

    def errors(self, z: Sequence[float]) -> np.ndarray:
        """The errors behind ``z`` (a bool array): a value of at least 0.5 (below 0.5, or NaN, for ``direction: down``)."""
        values = np.asarray(z, dtype=np.float64) * self.scale  # value * scale + mean, as River was fed them
        values += self.mean
        high = values >= 0.5
        return np.logical_not(high, out=high) if self.down else high

    def update_many(self, z: Sequence[float]) -> list[int]:
        """Feed the errors behind ``z`` in order; return the indices at which the detector tripped."""
        errors = self.errors(z)
        return self._feed(errors) if errors.size else []

    def _feed(self, errors: np.ndarray) -> list[int]:
        """The errors to the detector (subclasses with a kernel override this)."""
        return self._feed_river(errors, 0)

    def _feed_river(self, errors: np.ndarray, offset: int) -> list[int]:
        """River's own ``update`` per error (ints 0 and 1); trip indices counted from ``offset``."""
        update, d = self.detector.update, self.detector
        trips: list[int] = []
        for i, error in enumerate(errors.astype(np.int64).tolist(), offset):
            update(error)
            if d.drift_detected:
                trips.append(i)
        return trips

    def _run(self, kernel: Any, python: Callable[..., Any], errors: np.ndarray, state: list[float], *args: Any) -> tuple[list[int], int, list[float], list[bool]]:
        """``kernel`` (compiled; ``None``: its Python source ``python``) over the errors: (trips, values done, state, flags)."""
        x = errors.astype(np.float64)
        if kernel is not None:
            if self._trips.size < x.size:
                self._trips = np.empty(x.size, dtype=np.int64)
            numbers = np.array(state, dtype=np.float64)
            k, done, *flags = kernel(x, numbers, *args, self._trips)
            return self._trips[:k].tolist(), done, numbers.tolist(), flags
        trips = [0] * x.size
        k, done, *flags = python(x.tolist(), state, *args, trips)
        return trips[:k], done, state, flags

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
