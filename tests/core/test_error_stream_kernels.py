"""The compiled HDDM_A and DDM kernels (``core/kernels.py``) against River's own ``update``, value for value.

River is the reference: :func:`river_trips` is the loop the error-stream detectors ran before the
kernels (each standardised value turned back into a 0/1 error, fed to River's ``update``). Both of
our paths — the compiled kernel and its Python source (numba off) — must trip at the same values
and leave the same state, bit for bit, through random calls, checkpoints (msgpack round trips,
in both directions between River's path and ours) and states River itself refuses.
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from river import drift as river_drift

from stream_monitor.core.detectors.ddm import DdmDetector
from stream_monitor.core.detectors.error_stream import ErrorStreamDetector
from stream_monitor.core.detectors.hddm import HddmADetector
from stream_monitor.core.reference import NumericReference
from stream_monitor.core.settings import DdmParams, HddmAParams

PATHS = ("compiled", "python")
REF = NumericReference.from_values(np.array([0.0] * 90 + [1.0] * 10), 0, 0, "warmup")  # mean 0.1, sd 0.3


def river_trips(d: ErrorStreamDetector, z: list[float]) -> list[int]:
    """The detector's River object fed as before the kernels: per value, ``update(error)``, trips collected."""
    mean, scale = d.mean, d.scale
    hit, miss = (0, 1) if d.down else (1, 0)
    r = d.detector
    trips = []
    for i, value in enumerate(z):
        r.update(hit if value * scale + mean >= 0.5 else miss)
        if r.drift_detected:
            trips.append(i)
    return trips


def detector(name: str, path: str, direction: str = "up", **params: Any) -> ErrorStreamDetector:
    """An ``hddm_a`` or ``ddm`` detector on the compiled kernel (which must have loaded) or on its Python source."""
    d: ErrorStreamDetector
    if name == "ddm":
        d = DdmDetector(DdmParams(direction=direction, **params), REF)
    else:
        d = HddmADetector(HddmAParams(direction=direction, **params), REF)
    if path == "python":
        d._kernel = None
    assert (d._kernel is not None) == (path == "compiled"), "the numba kernel did not load"
    return d


def bits(x: Any) -> Any:
    """``x`` (a state) with every float as its type and 64 bits, so -0.0, NaN and ints differ from their look-alikes."""
    if isinstance(x, dict):
        return {k: bits(v) for k, v in x.items()}
    if isinstance(x, list):
        return [bits(v) for v in x]
    return ("float", struct.pack("<d", x).hex()) if type(x) is float else (type(x).__name__, repr(x))


def _errors(seed: int, n: int = 12_000) -> list[float]:
    """Standardised 0/1 errors (reference rate 0.1) whose rate rises and falls in places."""
    rng = np.random.default_rng(seed)
    rate = np.full(n, 0.1)
    for start in rng.integers(0, n, 4):
        rate[start : start + int(rng.integers(300, 2000))] = rng.choice([0.02, 0.3, 0.5])
    return (((rng.random(n) < rate) - 0.1) / 0.3).tolist()


TRIPPY = {"hddm_a": {"drift_confidence": 0.05}, "ddm": {"warm_start": 30, "drift_level": 2.0}}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("trippy", [False, True], ids=["default", "trippy"])
@pytest.mark.parametrize("name", ["hddm_a", "ddm"])
@pytest.mark.parametrize("seed", range(3))
def test_kernel_equals_river_over_random_calls(seed: int, name: str, trippy: bool, direction: str, path: str) -> None:
    z = _errors(seed)
    params = TRIPPY[name] if trippy else {"warm_start": 1000} if name == "ddm" else {}
    ours, ref = detector(name, path, direction, **params), detector(name, path, direction, **params)
    trips_ours, trips_ref = [], []
    lo = 0
    for size in np.random.default_rng(seed).integers(1, 600, size=len(z)):  # calls of 1..599 values, arrays and lists
        if lo >= len(z):
            break
        part = z[lo : lo + int(size)]
        trips_ours += [lo + i for i in ours.update_many(np.array(part) if size % 2 else part)]
        trips_ref += [lo + i for i in river_trips(ref, part)]
        lo += len(part)
    assert trips_ours == trips_ref and trips_ours, "both must trip, at the same values"
    assert bits(ours.get_state()) == bits(ref.get_state())


_ODD = st.sampled_from([math.nan, -math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -0.0, 4 / 3, (0.5 - 0.1) / 0.3, 1.3333333333333333])
_ERROR = st.sampled_from([(0.0 - 0.1) / 0.3, (1.0 - 0.1) / 0.3])
_VALUES = st.lists(st.one_of(_ERROR, _ERROR, _ERROR, st.floats(-4, 4), _ODD), max_size=400)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", ["hddm_a", "ddm"])
@given(
    values=_VALUES,
    cuts=st.lists(st.integers(0, 400), max_size=5),
    knob=st.sampled_from([0, 1, 2, 3]),
    direction=st.sampled_from(["up", "down"]),
    restore_at=st.one_of(st.none(), st.integers(0, 5)),
    river_side=st.booleans(),
)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_kernel_paths_are_bitwise_river(
    name: str, path: str, values: list[float], cuts: list[int], knob: int, direction: str, restore_at: int | None, river_side: bool
) -> None:
    """Random streams (NaN, infinities, values at the 0.5 boundary), random calls, a checkpoint from either side: River's trips and bits."""
    params = {"hddm_a": [{}, {"drift_confidence": 0.5}, {"drift_confidence": 0.05}, {"drift_confidence": 0.9}],
              "ddm": [{}, {"warm_start": 1}, {"warm_start": 5, "drift_level": 0.5}, {"warm_start": 20, "drift_level": 1.0}]}[name][knob]  # fmt: skip
    ours, ref = detector(name, path, direction, **params), detector(name, path, direction, **params)
    bounds = [0, *sorted(c for c in cuts if c < len(values)), len(values)]
    for k, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
        if k == restore_at:  # a checkpoint through msgpack: ours restored from River's state, or River's from ours
            if river_side:
                ours = detector(name, path, direction, **params)
                ours.set_state(msgpack.unpackb(msgpack.packb(ref.get_state())))
            else:
                ref = detector(name, path, direction, **params)
                ref.set_state(msgpack.unpackb(msgpack.packb(ours.get_state())))
        part = values[lo:hi]
        assert ours.update_many(np.array(part) if k % 2 else part) == river_trips(ref, part)
        assert bits(ours.get_state()) == bits(ref.get_state())


@pytest.mark.parametrize("path", PATHS)
def test_warning_flags_and_unset_minimum_are_rivers(path: str) -> None:
    """A warning confidence apart from the drift one (HDDM_A) and levels apart (DDM): the warning flag is River's at every value."""
    for name, river in (
        ("hddm_a", river_drift.binary.HDDMA(drift_confidence=0.001, warning_confidence=0.2)),
        ("ddm", river_drift.binary.DDM(warm_start=20, warning_threshold=0.5, drift_threshold=2.5)),
    ):
        ours, ref = detector(name, path), detector(name, path)
        ours.detector, ref.detector = river.clone(), river.clone()
        flags_ours, flags_ref = [], []
        for v in _errors(7, 4000):
            assert ours.update_many([v]) == river_trips(ref, [v])
            flags_ours.append((ours.detector.warning_detected, ours.detector.drift_detected))
            flags_ref.append((ref.detector.warning_detected, ref.detector.drift_detected))
        assert flags_ours == flags_ref and any(w for w, _ in flags_ref), name
        assert bits(ours.get_state()) == bits(ref.get_state())
    d = detector("ddm", path, warm_start=50)
    d.update_many([3.0] * 10)  # before the warm start: no minimum yet, River's None
    assert d.get_state()["p_min"] is None and d.get_state()["s_min"] is None


@pytest.mark.parametrize("path", PATHS)
def test_states_river_refuses_raise_what_river_raises(path: str) -> None:
    """A restored state whose arithmetic River cannot do stops the kernel there; River's update then raises as it always did."""
    z = [3.0] * 10
    for name, patch, error in (
        ("hddm_a", {"x_min": [50.0, 0.0], "z": [10.0, 0.5]}, ValueError),  # x_min longer than z: a negative square root
        ("ddm", {"p_min": None, "s_min": None, "ps_min": 0.0, "p": [40.0, 0.5]}, TypeError),  # a test against River's None
    ):
        params = {"warm_start": 5} if name == "ddm" else {}
        ours, ref = detector(name, path, **params), detector(name, path, **params)
        ours.update_many(z)
        state = {**ours.get_state(), **patch}
        ours.set_state(state)
        ref.set_state(state)
        with pytest.raises(error) as raised_ours:
            ours.update_many(z)
        with pytest.raises(error) as raised_ref:
            river_trips(ref, z)
        assert str(raised_ours.value) == str(raised_ref.value)
        assert bits(ours.get_state()) == bits(ref.get_state())


@pytest.mark.parametrize("name", ["hddm_a", "ddm"])
def test_unusual_river_objects_take_rivers_own_update(name: str) -> None:
    """A two-sided HDDM_A, or a DDM whose warm start no float holds: no kernel, River's update, the same trips."""
    ours, ref = detector(name, "compiled"), detector(name, "compiled")
    if name == "hddm_a":
        ours.detector = river_drift.binary.HDDMA(drift_confidence=0.05, two_sided_test=True)
    else:
        ours.detector = river_drift.binary.DDM(warm_start=2**60 + 1)
    ref.detector = ours.detector.clone()
    z = _errors(2, 5000)
    assert ours.update_many(z) == river_trips(ref, z)
    assert bits(ours.get_state()) == bits(ref.get_state())


PROBE = """
import json, sys
import numpy as np
from stream_monitor.core.reference import NumericReference
from stream_monitor.core.detectors.ddm import DdmDetector
from stream_monitor.core.detectors.hddm import HddmADetector
from stream_monitor.core.settings import DdmParams, HddmAParams
REF = NumericReference.from_values(np.array([0.0] * 90 + [1.0] * 10), 0, 0, "warmup")
z = [-1 / 3] * 300 + [3.0] * 100
ds = [HddmADetector(HddmAParams(drift_confidence=0.05), REF), DdmDetector(DdmParams(warm_start=30), REF)]
print(json.dumps({"numba": "numba" in sys.modules, "compiled": [d._kernel is not None for d in ds], "trips": [d.update_many(z) for d in ds]}))
"""


def test_switched_off_runs_the_python_source_without_numba() -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "STREAM_MONITOR_NO_JIT"))}
    runs = {}
    for switch in ("1", "0"):
        env = {**environ, "STREAM_MONITOR_NO_JIT": switch, "PYTHONPATH": os.pathsep.join([root, environ.get("PYTHONPATH", "")])}
        proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=root, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[switch] = proc.stdout.strip().splitlines()[-1]
    import json

    off, on = json.loads(runs["1"]), json.loads(runs["0"])
    assert off["numba"] is False and off["compiled"] == [False, False]
    assert on["compiled"] == [True, True] and off["trips"] == on["trips"] and all(on["trips"])
