"""State of the error-stream detectors across a code change: ``python -m bench.ab_error_state --ref main``.

The ``hddm_a`` and ``ddm`` detectors of ``--ref`` (``bench/ab_against_ref.extract``) and of the
working tree, on seeded 0/1 error streams whose rate rises: one side runs to a split, its state
goes through msgpack into the other side, which runs on; the trips after the split and the final
state (every float's 64 bits) must be those of ``--ref`` run without a break. Both directions
(old state into the new code, new state into the old), ``direction`` up and down, default and
trip-happy parameters. Prints the number of checks; fails (AssertionError) at the first difference.
"""

from __future__ import annotations

import argparse
import importlib
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from bench.ab_against_ref import OLD, extract


def bits(x: Any) -> Any:
    """A state with every float as its 64 bits."""
    if isinstance(x, dict):
        return {k: bits(v) for k, v in x.items()}
    if isinstance(x, list):
        return [bits(v) for v in x]
    return struct.pack("<d", x).hex() if type(x) is float else repr(x)


def make(pkg: str, name: str, trippy: bool, direction: str) -> Any:
    """An ``hddm_a`` or ``ddm`` detector of the package ``pkg`` (reference error rate 0.1)."""
    detectors = importlib.import_module(f"{pkg}.core.detectors.{'ddm' if name == 'ddm' else 'hddm'}")
    settings = importlib.import_module(f"{pkg}.core.settings")
    reference = importlib.import_module(f"{pkg}.core.reference")
    ref = reference.NumericReference.from_values(np.array([0.0] * 90 + [1.0] * 10), 0, 0, "warmup")
    if name == "ddm":
        params = {"warm_start": 30, "drift_level": 2.0} if trippy else {"warm_start": 500}
        return detectors.DdmDetector(settings.DdmParams(direction=direction, **params), ref)
    params = {"drift_confidence": 0.05} if trippy else {}
    return detectors.HddmADetector(settings.HddmAParams(direction=direction, **params), ref)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default="main")
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        extract(args.ref, Path(tmp))
        sys.path.insert(0, tmp)
        pkgs = {"old": OLD, "new": "stream_monitor"}
        checks = 0
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            rate = np.full(20_000, 0.1)
            for start in rng.integers(0, 20_000, 4):
                rate[start : start + 2000] = 0.35
            z = (((rng.random(20_000) < rate) - 0.1) / 0.3).tolist()
            split = int(rng.integers(100, 19_000))
            for name in ("hddm_a", "ddm"):
                for trippy in (False, True):
                    for direction in ("up", "down"):
                        for a, b in (("old", "new"), ("new", "old")):
                            first, then, whole = (make(pkgs[s], name, trippy, direction) for s in (a, b, "old"))
                            assert first.update_many(z[:split]) == whole.update_many(z[:split])
                            then.set_state(msgpack.unpackb(msgpack.packb(first.get_state())))
                            assert then.update_many(z[split:]) == whole.update_many(z[split:]), (name, trippy, direction, a, b)
                            assert bits(then.get_state()) == bits(whole.get_state()), (name, trippy, direction, a, b)
                            checks += 1
        print(f"{checks} checks ({args.ref} -> working tree and back; hddm_a, ddm; up, down; default, trippy): trips and state bits equal")


if __name__ == "__main__":
    main()
