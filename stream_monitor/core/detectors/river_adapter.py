"""The River adapter: every use of River's private attributes lives in this module.

The change-point detectors wrap River's ``ADWIN`` and ``PageHinkley``, and the error-stream
detectors River's binary ``DDM``, ``HDDMA``, ``EDDM`` and ``HDDMW`` (built and read here, see :func:`river_ddm`). Two things need River's
internals: the fast update loops (the same arithmetic as River's ``update``, without its per-call
overhead; for HDDM_A and DDM the numbers their kernels read and write back, :func:`hddm_a_numbers`,
:func:`ddm_numbers`) and the detector state, which is read as plain numbers and lists and rebuilt from them
(never pickled). River does not promise these internals, so the range of River versions they were
verified against is pinned here and in ``pyproject.toml``; ``tests/core/test_river_adapter.py``
fails with a clear message when an installed River lacks an attribute or changes behaviour.

ADWIN's window lives in a compiled helper (``ADWIN._helper``) whose only state interface is a
binary snapshot (``__getstate__`` / ``__setstate__``, fixed-width little-endian fields); it is
decoded here into numbers and lists, validated, and encoded back only from validated values, so a
corrupt state can never reach the compiled code.

>>> from stream_monitor.core.settings import PageHinkleyParams
>>> d = PageHinkleyDetector(PageHinkleyParams())
>>> d.update_many([0.0] * 200 + [3.0] * 50)
[211]
"""

from __future__ import annotations

import math
import struct
from itertools import chain
from operator import indexOf
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from river import drift as river_drift
from river import stats as river_stats

from stream_monitor.core import kernels
from stream_monitor.core.detectors.base import PointDetector

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import AdwinParams, DdmParams, EddmParams, HddmAParams, HddmWParams, PageHinkleyParams

RIVER_VERIFIED = ("0.26.1", "0.27")
"""River versions whose internals this module was verified against: ``[first, second)``."""


class RiverStateError(ValueError):
    """A stored detector state that does not fit the River detector it should rebuild."""


# ------------------------------------------------------------------ ADWIN's compiled window
# The snapshot of ``ADWIN._helper``: fixed-width little-endian fields in declaration order, then
# the bucket list (a u64 count, each bucket: u64 max size, u64 fill, then u64-counted f64 totals
# and variances), then the constructor's parameters again (delta, clock, max_buckets,
# min_window_length, grace_period as given). Decoded into plain values and encoded back only after validation.
_ADWIN_HEAD = struct.Struct("<diQddddddiiiiQ")
_ADWIN_HEAD_FIELDS = (
    "delta", "clock", "max_buckets", "min_window_length", "grace_period",
    "total", "variance", "width", "total_width", "n_buckets", "max_n_buckets", "tick", "n_detections",
)  # fmt: skip
_ADWIN_TAIL = struct.Struct("<diQii")
_ADWIN_TAIL_FIELDS = ("init_delta", "init_clock", "init_max_buckets", "init_min_window_length", "init_grace_period")
_U64 = struct.Struct("<Q")
_BUCKET_HEAD = struct.Struct("<QQ")
_MAX_BUCKET_LEVELS = 62  # bucket i holds 2**i values: more levels than this cannot be a real window


def _adwin_snapshot_to_state(blob: bytes) -> dict[str, Any]:
    """ADWIN's helper snapshot as plain numbers and lists."""
    fields = _ADWIN_HEAD.unpack_from(blob, 0)
    state: dict[str, Any] = dict(zip(_ADWIN_HEAD_FIELDS, fields[:-1], strict=True))
    pos = _ADWIN_HEAD.size
    buckets = []
    for _ in range(fields[-1]):
        max_size, fill = _BUCKET_HEAD.unpack_from(blob, pos)
        pos += _BUCKET_HEAD.size
        arrays = []
        for _part in range(2):
            (count,) = _U64.unpack_from(blob, pos)
            pos += _U64.size
            arrays.append(list(struct.unpack_from(f"<{count}d", blob, pos)))
            pos += 8 * count
        buckets.append({"max_size": max_size, "fill": fill, "totals": arrays[0], "variances": arrays[1]})
    state.update(zip(_ADWIN_TAIL_FIELDS, _ADWIN_TAIL.unpack_from(blob, pos), strict=True))
    pos += _ADWIN_TAIL.size
    if pos != len(blob):
        raise RiverStateError(f"ADWIN snapshot has {len(blob) - pos} unread bytes: River's layout changed")
    state["buckets"] = buckets
    return state


def _adwin_state_to_snapshot(state: dict[str, Any]) -> bytes:
    """The snapshot bytes of a validated ADWIN state."""
    parts = [_ADWIN_HEAD.pack(*(state[f] for f in _ADWIN_HEAD_FIELDS), len(state["buckets"]))]
    for b in state["buckets"]:
        parts.append(_BUCKET_HEAD.pack(b["max_size"], b["fill"]))
        for name in ("totals", "variances"):
            parts.append(_U64.pack(len(b[name])) + struct.pack(f"<{len(b[name])}d", *b[name]))
    parts.append(_ADWIN_TAIL.pack(*(state[f] for f in _ADWIN_TAIL_FIELDS)))
    return b"".join(parts)


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise RiverStateError(what)


def _is_int(x: Any) -> bool:
    return type(x) is int


def _is_float(x: Any) -> bool:
    return type(x) is float


def _exact_float(x: Any) -> bool:
    """A float, or an int a float holds exactly (so float64 arithmetic and comparisons on it are Python's)."""
    return type(x) is float or (type(x) is int and -(2**53) <= x <= 2**53)


def _validate_adwin_state(state: Any, fresh: dict[str, Any]) -> dict[str, Any]:
    """``state`` checked field by field against the layout (and parameters) of a fresh ADWIN."""
    _check(isinstance(state, dict) and set(state) == set(fresh), "ADWIN state: wrong fields")
    for name in ("delta", "clock", "max_buckets", "min_window_length", "grace_period", *_ADWIN_TAIL_FIELDS):
        _check(type(state[name]) is type(fresh[name]) and state[name] == fresh[name], f"ADWIN state: {name} differs from the configured one")
    for name in ("total", "variance", "width", "total_width"):
        _check(_is_float(state[name]), f"ADWIN state: {name} is not a float")
    for name in ("n_buckets", "max_n_buckets", "tick", "n_detections"):
        _check(_is_int(state[name]) and -(2**31) <= state[name] < 2**31, f"ADWIN state: {name} is not a 32-bit integer")
    buckets = state["buckets"]
    cap = fresh["max_buckets"] + 1
    _check(isinstance(buckets, list) and 1 <= len(buckets) <= _MAX_BUCKET_LEVELS, "ADWIN state: bad bucket list")
    for b in buckets:
        _check(isinstance(b, dict) and set(b) == {"max_size", "fill", "totals", "variances"}, "ADWIN state: bad bucket")
        _check(b["max_size"] == fresh["max_buckets"] and _is_int(b["max_size"]), "ADWIN state: bucket size differs")
        _check(_is_int(b["fill"]) and 0 <= b["fill"] < cap, "ADWIN state: bucket fill out of range")
        for name in ("totals", "variances"):
            arr = b[name]
            _check(isinstance(arr, list) and len(arr) == cap and all(map(_is_float, arr)), f"ADWIN state: bad bucket {name}")
    # the window holds 2**i values per entry of bucket i, and its last bucket is never empty
    _check(sum(b["fill"] << i for i, b in enumerate(buckets)) == state["width"], "ADWIN state: width does not match the buckets")
    _check(len(buckets) == 1 or buckets[-1]["fill"] > 0, "ADWIN state: empty last bucket")
    return state


_NO_TRIP = (True,)  # the sentinel after the values: indexOf finds it when no value tripped


class AdwinDetector(PointDetector):
    """River ``ADWIN`` (adaptive windowing)."""

    name = "adwin"

    def __init__(self, params: AdwinParams) -> None:
        super().__init__(params)
        self.detector = river_drift.ADWIN(delta=params.delta)

    def get_state(self) -> dict[str, Any]:
        """The detector's state as plain numbers and lists (window buckets included)."""
        d = self.detector
        return {"drift": bool(d._drift_detected), "window": _adwin_snapshot_to_state(d._helper.__getstate__())}

    def set_state(self, state: Any) -> None:
        """Rebuild the River detector from :meth:`get_state`'s output; raise :class:`RiverStateError` if it does not fit."""
        _check(isinstance(state, dict) and set(state) == {"drift", "window"} and type(state["drift"]) is bool, "ADWIN state: wrong fields")
        d = self.detector
        fresh = _adwin_snapshot_to_state(d._helper.__getstate__())
        window = _validate_adwin_state(state["window"], fresh)
        d._helper.__setstate__(_adwin_state_to_snapshot(window))
        d._drift_detected = state["drift"]


    def update_many(self, z: Sequence[float]) -> list[int]:
        """``ADWIN.update`` per value, calling its (compiled) window directly.

        The same steps as River's ``update``: reset first when the previous value tripped, then
        add the value; ``tests/core/test_optimisation_equivalence.py`` checks it against River.
        The loop over the values runs in C (``map`` of the window's ``update``, stopped by
        ``indexOf`` at the first trip), so the Python overhead per value is gone; River's Rust
        window does all the work.
        """
        values = z.tolist() if isinstance(z, np.ndarray) else z  # River's window takes Python floats
        d = self.detector
        if type(d) is not river_drift.ADWIN:
            return self._update_many_river(values)
        drift = d._drift_detected
        trips: list[int] = []
        i, size = 0, len(values)
        while i < size:
            if drift:
                d._reset()
            part = values[i:] if i else values
            # the index of the first value that trips (len(part): none); map stops calling update there
            at = indexOf(chain(map(d._helper.update, part), _NO_TRIP), True)
            if at == len(part):
                drift = False
                break
            drift = True
            i += at + 1
            trips.append(i - 1)
        d._drift_detected = drift
        return trips


class PageHinkleyDetector(PointDetector):
    """River ``PageHinkley`` with ``alpha=1`` (the classic test; River's fading default drifts)."""

    name = "page_hinkley"
    takes_array = True

    def __init__(self, params: PageHinkleyParams) -> None:
        super().__init__(params)
        self.detector = d = river_drift.PageHinkley(
            min_instances=params.min_instances, delta=params.delta, threshold=params.ph_threshold, alpha=1.0
        )
        # the compiled kernel (None: numba missing or switched off), and River's parameters as floats
        # when every one of them is exactly a float (else the Python path, which uses them as they are)
        self._kernel = kernels.page_hinkley()
        numbers = (d.alpha, d.delta, d.threshold, d.min_instances)
        self._params = tuple(map(float, numbers)) if all(map(_exact_float, numbers)) else None
        self._trips = np.empty(256, dtype=np.int64)

    def get_state(self) -> dict[str, Any]:
        """The detector's state as plain numbers: running mean, cumulative sums, their extremes, trip flag."""
        d = self.detector
        return {
            "n": d._x_mean.n,
            "mean": d._x_mean._mean,
            "sum_increase": d._sum_increase,
            "sum_decrease": d._sum_decrease,
            "min_increase": d._min_increase,
            "max_decrease": d._max_decrease,
            "drift": bool(d._drift_detected),
        }

    def set_state(self, state: Any) -> None:
        """Restore :meth:`get_state`'s output; raise :class:`RiverStateError` if it does not fit."""
        numbers = ("n", "mean", "sum_increase", "sum_decrease", "min_increase", "max_decrease")
        _check(isinstance(state, dict) and set(state) == {*numbers, "drift"} and type(state["drift"]) is bool, "Page-Hinkley state: wrong fields")
        for name in numbers:  # any float: non-finite inputs leave non-finite sums, restored as they were
            _check(type(state[name]) in (int, float), f"Page-Hinkley state: {name} is not a number")
        _check(math.isfinite(state["n"]) and state["n"] >= 0, "Page-Hinkley state: bad count")
        d = self.detector
        d._x_mean.n, d._x_mean._mean = state["n"], state["mean"]
        d._sum_increase, d._sum_decrease = state["sum_increase"], state["sum_decrease"]
        d._min_increase, d._max_decrease = state["min_increase"], state["max_decrease"]
        d._drift_detected = state["drift"]


    def update_many(self, z: Sequence[float]) -> list[int]:
        """River's ``PageHinkley.update`` (mode "both") over the values: the compiled kernel, else inlined Python.

        Every arithmetic step is River's, in River's order (running mean as ``stats.Mean``, then
        the two cumulative sums, their extremes and the two-sided test), so the state and the trip
        indices are identical; the state is written back to the River object at the end.
        ``tests/core/test_optimisation_equivalence.py`` checks both paths against River's own ``update``.
        """
        d = self.detector
        if type(d) is river_drift.PageHinkley and d.mode == "both" and type(d._x_mean) is river_stats.Mean:
            if self._kernel is not None and self._params is not None:
                state = (d._x_mean.n, d._x_mean._mean, d._sum_increase, d._sum_decrease, d._min_increase, d._max_decrease)
                if all(map(_exact_float, state)):
                    return self._update_many_compiled(z, state)
            return self._update_many_python(z.tolist() if isinstance(z, np.ndarray) else z)
        return self._update_many_river(z.tolist() if isinstance(z, np.ndarray) else z)

    def _update_many_compiled(self, z: Sequence[float], state: tuple[Any, ...]) -> list[int]:
        """The kernel over ``z`` (see :func:`stream_monitor.core.kernels.page_hinkley_python`); state back into River's object."""
        ok = type(z) is np.ndarray and z.dtype == np.float64 and z.flags.c_contiguous and z.flags.writeable
        x = z if ok else np.array(z, dtype=np.float64)  # the kernel's one signature
        if x.size == 0:
            return []
        if self._trips.size < x.size:
            self._trips = np.empty(x.size, dtype=np.int64)
        numbers = np.array(state, dtype=np.float64)
        d = self.detector
        k, done, drift, reset, set_min, set_max = self._kernel(x, numbers, *self._params, bool(d._drift_detected), self._trips)
        trips = self._trips[:k].tolist() if k else []
        if done:
            n, mu, s_inc, s_dec, min_inc, max_dec = numbers.tolist()
            d._x_mean.n, d._x_mean._mean = n, mu
            d._sum_increase, d._sum_decrease = s_inc, s_dec
            # an extreme never assigned since River's reset keeps River's reset value (``-1`` is an int there)
            d._min_increase = min_inc if set_min else float("inf") if reset else d._min_increase
            d._max_decrease = max_dec if set_max else -1 if reset else d._max_decrease
            d._drift_detected = bool(drift)
        if done < x.size:  # a non-finite value or state: the rest in Python (see kernels' note on NaN)
            trips += [done + i for i in self._update_many_python(x[done:].tolist())]
        return trips

    def _update_many_python(self, z: list[float]) -> list[int]:
        """The Python path: River's update inlined on local variables (no numba, or an unusual state)."""
        d = self.detector
        mean = d._x_mean
        n, mu = mean.n, mean._mean
        s_inc, s_dec = d._sum_increase, d._sum_decrease
        min_inc, max_dec = d._min_increase, d._max_decrease
        alpha, delta, threshold, min_instances = d.alpha, d.delta, d.threshold, d.min_instances
        drift = d._drift_detected
        trips: list[int] = []
        unit = alpha == 1.0  # 1.0 * s == s exactly: skip the multiplications (alpha is 1 here)
        i, size = 0, len(z)
        while i < size:
            if drift:  # River resets at the start of the update after a trip
                n, mu = 0.0, 0.0
                s_inc = s_dec = 0.0
                min_inc, max_dec = float("inf"), -1
                drift = False
            if unit and n + 1.0 >= min_instances and n < 2.0**52:  # (below 2**52, n - n0 counts the values exactly)
                # steady state: every value is tested, until the next trip (index from n)
                n0 = n
                for x in z[i:] if i else z:
                    n += 1.0
                    mu += (1.0 / n) * (x - mu)
                    dev = x - mu
                    s_inc = s_inc + dev - delta
                    s_dec = s_dec + dev + delta
                    if s_inc < min_inc:
                        min_inc = s_inc
                    if s_dec > max_dec:
                        max_dec = s_dec
                    if s_inc - min_inc > threshold or max_dec - s_dec > threshold:
                        drift = True
                        break
                i += int(n - n0)
                if drift:
                    trips.append(i - 1)
                continue
            x = z[i]
            n += 1.0
            mu += (1.0 / n) * (x - mu)
            dev = x - mu
            s_inc = alpha * s_inc + dev - delta
            s_dec = alpha * s_dec + dev + delta
            if s_inc < min_inc:
                min_inc = s_inc
            if s_dec > max_dec:
                max_dec = s_dec
            if n >= min_instances:
                drift = s_inc - min_inc > threshold or max_dec - s_dec > threshold
                if drift:
                    trips.append(i)
            i += 1
        mean.n, mean._mean = n, mu
        d._sum_increase, d._sum_decrease = s_inc, s_dec
        d._min_increase, d._max_decrease = min_inc, max_dec
        d._drift_detected = drift
        return trips


def build_adwin(params: AdwinParams, reference: Reference) -> AdwinDetector:
    """Registry factory of ``adwin``."""
    return AdwinDetector(params)


def build_page_hinkley(params: PageHinkleyParams, reference: Reference) -> PageHinkleyDetector:
    """Registry factory of ``page_hinkley``."""
    return PageHinkleyDetector(params)


# ------------------------------------------------------------------ binary (0/1 error) detectors
def river_ddm(params: DdmParams) -> Any:
    """River's ``DDM`` for ``params`` (warnings are not used: the warning level is the drift level)."""
    return river_drift.binary.DDM(warm_start=params.warm_start, warning_threshold=params.drift_level, drift_threshold=params.drift_level)


def river_hddm_a(params: HddmAParams) -> Any:
    """River's ``HDDMA`` for ``params``, testing rises of the mean only."""
    return river_drift.binary.HDDMA(drift_confidence=params.drift_confidence, warning_confidence=params.drift_confidence, two_sided_test=False)


def river_eddm(params: EddmParams) -> Any:
    """River's ``EDDM`` for ``params`` (warnings are not used)."""
    return river_drift.binary.EDDM(warm_start=params.warm_start, alpha=params.beta, beta=params.beta)


def river_hddm_w(params: HddmWParams) -> Any:
    """River's ``HDDMW`` for ``params``, testing rises of the weighted mean only."""
    return river_drift.binary.HDDMW(
        drift_confidence=params.drift_confidence, warning_confidence=params.drift_confidence, lambda_val=params.lambda_val, two_sided_test=False
    )


_HDDMW_SAMPLES = ("total", "s1_decr", "s1_incr", "s2_decr", "s2_incr")


def _eddm_state(d: Any) -> dict[str, Any]:
    var = d._error_distances
    return {"n": d._n, "last_error": d._last_error, "n_errors": d._n_errors, "p2s_prime_max": float(d._p2s_prime_max),
            "distances": [float(var.mean.n), float(var.mean._mean), float(var._S)]}  # fmt: skip


def _set_eddm(d: Any, state: dict[str, Any]) -> None:
    ints = ("n", "last_error", "n_errors")
    _check(all(_is_int(state[k]) and 0 <= state[k] < 2**62 for k in ints), "EDDM state: bad counts")
    _check(type(state["p2s_prime_max"]) in (int, float) and math.isfinite(state["p2s_prime_max"]), "EDDM state: bad maximum")
    dist = state["distances"]
    _check(isinstance(dist, list) and len(dist) == 3 and all(type(v) in (int, float) and math.isfinite(v) for v in dist), "EDDM state: bad distances")
    _check(dist[0] >= 0 and dist[2] >= 0, "EDDM state: bad distances")
    var = river_stats.Var()
    var.mean.n, var.mean._mean, var._S = float(dist[0]), float(dist[1]), float(dist[2])
    d._error_distances = var
    d._n, d._last_error, d._n_errors = state["n"], state["last_error"], state["n_errors"]
    d._p2s_prime_max = float(state["p2s_prime_max"])


def _hddm_w_state(d: Any) -> dict[str, Any]:
    samples = {name: [bool(x._is_init), float(x._ewma.get()), float(x._ibc)] for name in _HDDMW_SAMPLES for x in (getattr(d, f"_{name}"),)}
    return {**samples, "incr_cutpoint": float(d._incr_cutpoint), "decr_cutpoint": float(d._decr_cutpoint)}


def _set_hddm_w(d: Any, state: dict[str, Any]) -> None:
    fresh = river_hddm_w_like(d)
    for name in _HDDMW_SAMPLES:
        value = state[name]
        _check(isinstance(value, list) and len(value) == 3 and type(value[0]) is bool, f"HDDMW state {name}: not [init, mean, ibc]")
        _check(all(type(v) in (int, float) and math.isfinite(v) for v in value[1:]) and value[2] >= 0, f"HDDMW state {name}: bad numbers")
        sample = getattr(fresh, f"_{name}")
        if value[0]:
            sample._ewma.update(float(value[1]))  # a fresh weighted mean takes its first value as it is
            sample._is_init = True
        sample._ibc = float(value[2])
        setattr(d, f"_{name}", sample)
    for name in ("incr_cutpoint", "decr_cutpoint"):
        _check(type(state[name]) in (int, float) and not math.isnan(state[name]), f"HDDMW state: bad {name}")
    d._incr_cutpoint, d._decr_cutpoint = float(state["incr_cutpoint"]), float(state["decr_cutpoint"])


def river_hddm_w_like(d: Any) -> Any:
    """A fresh River ``HDDMW`` with the parameters of ``d``."""
    return river_drift.binary.HDDMW(
        drift_confidence=d.drift_confidence, warning_confidence=d.warning_confidence, lambda_val=d.lambda_val, two_sided_test=d.two_sided_test
    )


def _mean_state(mean: Any) -> list[float]:
    return [float(mean.n), float(mean._mean)]


def _set_mean(mean: Any, value: Any, what: str) -> None:
    _check(isinstance(value, list) and len(value) == 2 and all(type(v) in (int, float) for v in value), f"{what}: not [n, mean]")
    _check(math.isfinite(value[0]) and value[0] >= 0 and math.isfinite(value[1]), f"{what}: bad count or mean")
    mean.n, mean._mean = float(value[0]), float(value[1])


def _optional_number(value: Any) -> bool:
    return value is None or type(value) in (int, float)


_BINARY_FIELDS = {
    "EDDM": {"n", "last_error", "n_errors", "p2s_prime_max", "distances"},
    "HDDMW": {*_HDDMW_SAMPLES, "incr_cutpoint", "decr_cutpoint"},
}


def binary_state(d: Any) -> dict[str, Any]:
    """The state of a River ``DDM``, ``HDDMA``, ``EDDM`` or ``HDDMW`` as plain numbers (``None`` where DDM has no minimum yet)."""
    flags = {"drift": bool(d._drift_detected), "warning": bool(d._warning_detected)}
    if type(d) is river_drift.binary.EDDM:
        return {**flags, **_eddm_state(d)}
    if type(d) is river_drift.binary.HDDMW:
        return {**flags, **_hddm_w_state(d)}
    if type(d) is river_drift.binary.DDM:
        return {**flags, "p": _mean_state(d._p), "p_min": d._p_min, "s_min": d._s_min, "ps_min": float(d._ps_min)}
    return {**flags, "z": _mean_state(d._z), "x_min": _mean_state(d._x_min), "x_max": _mean_state(d._x_max)}


def set_binary_state(d: Any, state: Any) -> None:
    """Restore :func:`binary_state`'s output into ``d``; raise :class:`RiverStateError` if it does not fit."""
    kind = type(d).__name__
    if type(d) in (river_drift.binary.EDDM, river_drift.binary.HDDMW):
        fields = _BINARY_FIELDS[kind]
        _check(isinstance(state, dict) and set(state) == {"drift", "warning", *fields}, f"{kind} state: wrong fields")
        _check(type(state["drift"]) is bool and type(state["warning"]) is bool, f"{kind} state: bad flags")
        (_set_eddm if kind == "EDDM" else _set_hddm_w)(d, state)
        d._drift_detected, d._warning_detected = state["drift"], state["warning"]
        return
    ddm = type(d) is river_drift.binary.DDM
    fields = {"p", "p_min", "s_min", "ps_min"} if ddm else {"z", "x_min", "x_max"}
    _check(isinstance(state, dict) and set(state) == {"drift", "warning", *fields}, f"{type(d).__name__} state: wrong fields")
    _check(type(state["drift"]) is bool and type(state["warning"]) is bool, f"{type(d).__name__} state: bad flags")
    if ddm:
        _check(_optional_number(state["p_min"]) and _optional_number(state["s_min"]), "DDM state: bad minimum")
        _check(type(state["ps_min"]) in (int, float), "DDM state: bad ps_min")
        _set_mean(d._p, state["p"], "DDM state p")
        d._p_min, d._s_min, d._ps_min = state["p_min"], state["s_min"], float(state["ps_min"])
    else:
        for name in ("z", "x_min", "x_max"):
            mean = river_stats.Mean()
            _set_mean(mean, state[name], f"HDDMA state {name}")
            setattr(d, f"_{name}", mean)
    d._drift_detected, d._warning_detected = state["drift"], state["warning"]


# the numbers the compiled error-stream kernels (core/kernels.py) read and write back
def hddm_a_numbers(d: Any) -> tuple[list[float], bool, bool] | None:
    """A one-sided River ``HDDMA``'s three means as ``[z.n, z.mean, x_min.n, x_min.mean, x_max.n, x_max.mean]``, its drift and warning flags; ``None`` if unusual."""
    if type(d) is not river_drift.binary.HDDMA or d.two_sided_test is not False:
        return None
    means = (d._z, d._x_min, d._x_max)
    numbers = [v for m in means for v in (m.n, m._mean)]
    ok = all(type(m) is river_stats.Mean for m in means) and all(map(_is_float, numbers))
    return (numbers, bool(d._drift_detected), bool(d._warning_detected)) if ok else None


def set_hddm_a_numbers(d: Any, numbers: list[float], drift: bool, warning: bool) -> None:
    """Write :func:`hddm_a_numbers`' layout back (three new means, as River's clones are) and the flags."""
    for name, i in (("_z", 0), ("_x_min", 2), ("_x_max", 4)):
        mean = river_stats.Mean()
        mean.n, mean._mean = numbers[i], numbers[i + 1]
        setattr(d, name, mean)
    d._drift_detected, d._warning_detected = drift, warning


def hddm_a_logs(d: Any) -> tuple[float, float, float] | None:
    """The logarithms HDDMA's bound and tests compute, as River computes them; ``None`` for confidences River could not use."""
    try:
        logs = (math.log(1.0 / d.drift_confidence), math.log(2.0 / d.drift_confidence), math.log(2.0 / d.warning_confidence))
    except (ValueError, ZeroDivisionError, TypeError, OverflowError):
        return None
    return logs if all(map(_is_float, logs)) else None


def ddm_parameters(d: Any) -> tuple[float, float, float] | None:
    """River ``DDM``'s warm start and two levels as floats when each is one exactly, else ``None``."""
    numbers = (d.warm_start, d.warning_threshold, d.drift_threshold)
    return tuple(map(float, numbers)) if all(map(_exact_float, numbers)) else None  # type: ignore[return-value]


def ddm_numbers(d: Any) -> tuple[list[float], bool, bool, bool] | None:
    """River ``DDM``'s ``[p.n, p.mean, p_min, s_min, ps_min]`` (0.0 for an unset minimum), whether the minimum is set, the drift and warning flags; ``None`` if unusual."""
    if type(d) is not river_drift.binary.DDM or type(d._p) is not river_stats.Mean:
        return None
    p_min, s_min = d._p_min, d._s_min
    has_min = p_min is not None
    if not (has_min and _is_float(p_min) and _is_float(s_min)) and not (p_min is None and s_min is None):
        return None
    numbers = [d._p.n, d._p._mean, p_min if has_min else 0.0, s_min if has_min else 0.0, d._ps_min]
    return (numbers, has_min, bool(d._drift_detected), bool(d._warning_detected)) if all(map(_is_float, numbers)) else None


def set_ddm_numbers(d: Any, numbers: list[float], has_min: bool, drift: bool, warning: bool) -> None:
    """Write :func:`ddm_numbers`' layout back (``None`` for an unset minimum) and the flags."""
    d._p.n, d._p._mean = numbers[0], numbers[1]
    d._p_min, d._s_min = (numbers[2], numbers[3]) if has_min else (None, None)
    d._ps_min = numbers[4]
    d._drift_detected, d._warning_detected = drift, warning
