"""Loading the compiled kernels: switched off, cached, and without any writable cache place.

Each case runs in a fresh interpreter (numba's choices are made once per process). Equality of
the kernels with River is in ``test_optimisation_equivalence.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import stream_monitor

ROOT = Path(stream_monitor.__file__).resolve().parent.parent

PROBE = """
import json, sys
from stream_monitor.core import kernels
from stream_monitor.core.detectors import PageHinkleyDetector
from stream_monitor.core.settings import PageHinkleyParams
d = PageHinkleyDetector(PageHinkleyParams(ph_threshold=3.0, min_instances=5))
trips = d.update_many([0.0] * 20 + [4.0] * 20)
k = d._kernel
stats = None if k is None else {"path": k.stats.cache_path, "hits": sum(k.stats.cache_hits.values()), "misses": sum(k.stats.cache_misses.values())}
print(json.dumps({"numba": "numba" in sys.modules, "compiled": k is not None, "trips": trips, "cache": stats}))
"""


def probe(**env: str) -> dict:
    """Run :data:`PROBE` in a fresh interpreter with ``env`` added; its JSON line."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "STREAM_MONITOR_NO_JIT"))}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env={**environ, **env}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_switched_off_keeps_python_and_never_imports_numba() -> None:
    out = probe(STREAM_MONITOR_NO_JIT="1")
    assert out == {"numba": False, "compiled": False, "trips": [20], "cache": None}


def test_compiled_once_then_loaded_from_the_cache(tmp_path: Path) -> None:
    first = probe(NUMBA_CACHE_DIR=str(tmp_path))
    second = probe(NUMBA_CACHE_DIR=str(tmp_path))
    assert first["compiled"] and first["trips"] == second["trips"] == [20]
    assert (first["cache"]["misses"], first["cache"]["hits"]) == (1, 0), first
    assert (second["cache"]["misses"], second["cache"]["hits"]) == (0, 1), second
    assert second["cache"]["path"].startswith(str(tmp_path)) and any(tmp_path.rglob("*.nbi"))


def test_no_writable_cache_place_compiles_without_a_cache() -> None:
    # a locator that never applies to a module file: numba finds no cache place, as for a read-only
    # site-packages with no home directory; the kernel is compiled for this process instead
    out = probe(NUMBA_CACHE_LOCATOR_CLASSES="IPythonCacheLocator")
    assert out["compiled"] and out["trips"] == [20]
    assert out["cache"]["hits"] == 0
