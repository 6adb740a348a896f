"""Rows (f) and (g-file) of ``bench.run`` side by side, alternating: ``python -m bench.replay_vs_file_loop --input FILE.jsonl``.

(f) is ``stream-monitor replay --input FILE --alerts-out ... --progress none`` as ``bench.run``
runs it: its rate as the CLI prints it (records over the engine's wall time, start-up excluded)
and its CPU as the subprocess's user + system time minus that of a replay of an empty file.
(g-file) is ``python -m bench.peers file`` (orjson + River ADWIN/Page-Hinkley per numeric feature):
its rate and CPU as it measures them around its loop. Each of ``--reps`` rounds runs both, in
alternating order; the ratios are per round (f over g-file), so a busy machine slows both sides
of one ratio alike more often than not.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench.markdown import _n

REPO_ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _replay(src: Path, alerts: Path) -> tuple[float, str]:
    env = {**os.environ, "STREAM_MONITOR_STATE_SECRET": "bench"}
    cmd = [sys.executable, "-m", "stream_monitor", "--log-level", "WARNING", "replay", "--input", str(src), "--alerts-out", str(alerts), "--progress", "none"]
    cpu0 = _cpu()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=3600, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"replay failed ({done.returncode}): {done.stderr[-2000:]}")
    return _cpu() - cpu0, done.stdout


def _file_loop(src: Path, alerts: Path) -> dict[str, float]:
    cmd = [sys.executable, "-W", "ignore", "-m", "bench.peers", "file", "--input", str(src), "--alerts-out", str(alerts)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=3600, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"bench.peers file failed ({done.returncode}): {done.stderr[-2000:]}")
    return orjson.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def side_by_side(src: Path, reps: int, say: Any = None) -> dict[str, Any]:
    """``reps`` rounds of (f) and (g-file) over ``src``, alternating which goes first; per-round figures and the median ratios.

    ``say`` (a print-like function) is given each round's line as it ends.
    """
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="f-vs-g-") as tmp:
        out = Path(tmp)
        empty = out / "empty.jsonl"
        empty.write_bytes(b"")
        _replay(empty, out / "a.jsonl")  # warm-up (numba cache, page cache)
        for rep in range(reps):
            results: dict[str, tuple[float, float | None]] = {}  # records/s, CPU µs per record
            for side in ("f", "g") if rep % 2 == 0 else ("g", "f"):
                if side == "f":
                    startup, _ = _replay(empty, out / "a.jsonl")
                    cpu, stdout = _replay(src, out / "a.jsonl")
                    m = re.search(r"([\d,]+) records in [\d.]+ s \(([\d,]+) records/s\)", stdout)
                    if not m:
                        raise SystemExit(f"replay printed no rate: {stdout[-2000:]}")
                    records, rate = int(m.group(1).replace(",", "")), float(m.group(2).replace(",", ""))
                    # CPU net of start-up; None when start-up's own spread hides it (a tiny file on a busy machine)
                    results["f"] = (rate, (cpu - startup) / records * 1e6 if cpu > startup else None)
                else:
                    g = _file_loop(src, out / "g.jsonl")
                    results["g"] = (g["records"] / g["seconds"], g["cpu_seconds"] / g["records"] * 1e6)
            r = {
                "first": "f" if rep % 2 == 0 else "g-file",
                "f_records_per_s": round(results["f"][0]), "f_cpu_us_per_record": _round(results["f"][1], 2),
                "g_file_records_per_s": round(results["g"][0]), "g_file_cpu_us_per_record": _round(results["g"][1], 2),
                "ratio_by_rate": round(results["f"][0] / results["g"][0], 3),
                "ratio_by_cpu": _round(results["g"][1] / results["f"][1], 3) if results["f"][1] and results["g"][1] else None,
                "load": round(os.getloadavg()[0], 2),
            }
            rounds.append(r)
            if say is not None:
                say(
                    f"round {rep}: (f) {r['f_records_per_s']:,} records/s, {_n(r['f_cpu_us_per_record'], 2)} µs CPU per record; "
                    f"(g-file) {r['g_file_records_per_s']:,} records/s, {_n(r['g_file_cpu_us_per_record'], 2)} µs CPU per record; "
                    f"f/g-file {r['ratio_by_rate']:.2f} by rate, {_n(r['ratio_by_cpu'], 2)} by CPU per record; load {r['load']:.1f}"
                )
    by_rate = [r["ratio_by_rate"] for r in rounds]
    by_cpu = [r["ratio_by_cpu"] for r in rounds if r["ratio_by_cpu"] is not None]
    return {
        "rounds": rounds,
        "median_ratio_by_rate": statistics.median(by_rate),
        "median_ratio_by_cpu": statistics.median(by_cpu) if by_cpu else None,
        "range_by_rate": [min(by_rate), max(by_rate)],
        "range_by_cpu": [min(by_cpu), max(by_cpu)] if by_cpu else None,
    }


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    got = side_by_side(Path(args.input).resolve(), args.reps, say=lambda line: print(line, flush=True))
    cpu = got["range_by_cpu"]
    print(
        f"f/g-file by rate: median {got['median_ratio_by_rate']:.2f} (range {got['range_by_rate'][0]:.2f}-{got['range_by_rate'][1]:.2f}); "
        + (f"by CPU per record: median {got['median_ratio_by_cpu']:.2f} (range {cpu[0]:.2f}-{cpu[1]:.2f})" if cpu else "by CPU per record: not measurable")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
