"""Markdown tables of a benchmark report: ``python -m bench.markdown bench/results/latest.json``.

BENCHMARKS.md pastes its output (the figures of one run) next to the analysis.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _n(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _share(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _cell(x: float | str | None) -> str:
    return x if isinstance(x, str) else _n(x, 2)


def _rounds_table(caption: str, columns: list[str], rows: list[list[str]], medians: dict[str, float | str | None]) -> list[str]:
    """A side-by-side section: its caption, one row per round (round number, which went first, ``columns``), then a
    row of the ``medians`` (by column name) in bold."""
    out = ["", caption, "", "| round | first | " + " | ".join(columns) + " |", "|---:|---|" + "---:|" * len(columns)]
    out += [f"| {i} | " + " | ".join(cells) + " |" for i, cells in enumerate(rows)]
    out.append("| median | |" + "".join(f" **{_cell(medians[c])}** |" if c in medians else " |" for c in columns))
    return out


def render(report: dict[str, Any], soak: dict[str, Any] | None = None) -> str:
    m = report["machine"]
    w = report["workload"]
    out = [
        f"Run of {report['started_at']} (`{report['command'].strip()}`), commit `{m['git_commit']}`"
        + (" (with uncommitted changes)" if m.get("git_dirty") else "")
        + f"; {report['total_seconds']:.0f} s in all.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} vCPUs, {m['memory']} RAM; Python {m['python']}, kafka-python {m['kafka_python']}, "
        f"numpy {m['numpy']}, river {m['river']}; broker: {report['broker']} on the same machine. "
        f"Load average (1/5/15 min) at the start {report['load_average_start']}, at the end {report['load_average_end']}.",
        "",
        f"Workload: {w['events']:,} events of {w['channels_per_record']} channel values each (20 numeric + 5 categorical features + a "
        f"prediction; {w['mean_record_bytes']:.0f} bytes on average), {w['partitions']} partitions, produced before timing.",
        "",
        "| | mode | records/s | records per CPU-second | alerts | changelog bytes per input byte | stored (compressed) | checkpoints, share of the run | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for k, r in report["throughput"].items():
        if "skipped" in r:
            out.append(f"| ({k}) | {r['label']} | - | - | - | - | - | - | {r['skipped']} |")
            continue
        note = r.get("note", "")
        alerts = r.get("alerts", r.get("alerts_produced"))
        changelog = r.get("changelog_per_input_byte")
        share = r.get("checkpoint_share")
        if k in ("d", "e", "e0", "e+labels"):
            note = (
                f"{r['alerts']} alerts, {r['checkpoints']} checkpoints ({r['checkpoint_seconds']:.2f} s), "
                f"processing {r['process_seconds']:.2f} s of {r['seconds']:.2f} s, changelog {r['changelog_bytes'] / 2**20:.1f} MiB"
                f" for {r['input_bytes'] / 2**20:.1f} MiB of input"
            ) + (f"; {r['note']}" if k == "e+labels" else "")
        elif k == "c":
            note = f"{r['records']:,} records timed (after its reference filled)"
        elif k == "f":
            note = "`stream-monitor replay --input` (CLI's own rate)" if r.get("how") == "cli" else "PartitionMonitor.process over the file"
        out.append(
            f"| ({k}) | {r['label']} | {_n(r['records_per_s'])} | {_n(r.get('records_per_cpu_s'))} | {_n(alerts)} | "
            f"{_n(changelog, 2)} | {_n(r.get('changelog_stored_per_input_stored_byte'), 2)} | {'-' if share is None else f'{share:.0%}'} | {note} |"
        )
    out += ["", "| ratio | value |", "|---|---:|"]
    for k, v in report["ratios"].items():
        out.append(f"| {k} | {_n(v, 2)} |")
    side = report.get("e_vs_h_eos")
    if side:
        rows = []
        for r in side["rounds"]:
            keys = ("a", "e", "e0", "h-eos") if "a_records_per_s" in r else ("e", "e0", "h-eos")  # (a) joined the rounds on 2026-12-03
            cells = [f"{_n(r[k + '_records_per_s'])} ({_n(r.get(k + '_records_per_cpu_s'))})" for k in keys]
            if "a_records_per_s" not in r:
                cells.insert(0, "-")
            rows.append([r["first"], *cells, _n(r["e/h-eos"], 2), _n(r["e0/h-eos"], 2), _n(r.get("e/a"), 2), _share(r.get("e_checkpoint_share")), _n(r["load"], 1)])
        out += _rounds_table(
            "(a), (e), (e0) and (h-eos) again, side by side on the same topic (even rounds (a) then (e) first, odd ones (h-eos) first and (a) last): "
            "the e/h-eos, e/a and (e) checkpoint-share targets read the medians.",
            ["(a) records/s (per CPU-s)", "(e) records/s (per CPU-s)", "(e0) records/s (per CPU-s)", "(h-eos) records/s (per CPU-s)", "e/h-eos", "e0/h-eos", "e/a",
             "(e) checkpoints, share", "load"],
            rows, {"e/h-eos": side["median_e/h-eos"], "e0/h-eos": side["median_e0/h-eos"], "e/a": side.get("median_e/a"), "(e) checkpoints, share": _share(side.get("median_e_checkpoint_share"))},
        )
    side = report.get("f_vs_g_file")
    if side:
        rows = [
            [r["first"], _n(r["f_records_per_s"]), _n(r["f_cpu_us_per_record"], 2), _n(r["g_file_records_per_s"]),
             _n(r["g_file_cpu_us_per_record"], 2), _n(r["ratio_by_rate"], 2), _n(r["ratio_by_cpu"], 2), _n(r["load"], 1)]
            for r in side["rounds"]
        ]  # fmt: skip
        out += _rounds_table(
            "(f) and (g-file) again, side by side (`bench/replay_vs_file_loop.py`, alternating which goes first): the f/g-file target reads the median.",
            ["(f) records/s", "(f) µs CPU per record", "(g-file) records/s", "(g-file) µs CPU per record", "f/g-file by rate", "by CPU per record", "load"],
            rows, {"f/g-file by rate": side["median_ratio_by_rate"], "by CPU per record": side["median_ratio_by_cpu"]},
        )
    curve = report.get("latency_curve") or ([report["latency"]] if "latency" in report else [])
    curve = [*curve, *(report[k] for k in ("latency_tuned", "latency_fast") if k in report)]
    if curve:
        out += [
            "",
            "| load | settings | records/s | alerts measured | p50 ms | p90 ms | p99 ms | max ms | judged: p50 / p99 ms (events sampled) | monitor CPU | machine CPU | load generator (its CPU) | changelog / input bytes | stored (compressed) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for lat in curve:
            settings = f"max_lateness_seconds {lat.get('max_lateness_seconds')}" + (
                f", fetch_max_wait_ms {lat['fetch_max_wait_ms']}" if "fetch_max_wait_ms" in lat else "")
            out.append(
                f"| {lat.get('fraction_of_e', 0):.0%} of (e) | {settings} | {_n(lat['achieved_rate'])} | {lat['samples']} | {_n(lat['p50_ms'])} | "
                f"{_n(lat['p90_ms'])} | {_n(lat['p99_ms'])} | {_n(lat['max_ms'])} | {_judged(lat)} | {lat['monitor_cpu_share_while_producing']:.0%} | "
                f"{lat['machine_cpu_busy_while_producing']:.0%} | {_generator(lat)} | {_n(lat.get('changelog_per_input_byte'), 2)} | "
                f"{_n(lat.get('changelog_stored_per_input_stored_byte'), 2)} |"
            )
    if report.get("memory"):
        out += [
            "",
            "| channels | state per channel | largest channel | numeric / categorical | RSS per channel | C heap per channel | build time |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n, mm in report["memory"].items():
            t = mm["state_bytes_per_channel_by_type"]
            out.append(
                f"| {int(n):,} | {mm['state_bytes_per_channel'] / 1024:.1f} KiB | {mm['state_bytes_max_channel'] / 1024:.1f} KiB | "
                f"{t.get('numeric', 0) / 1024:.1f} / {t.get('categorical', 0) / 1024:.1f} KiB | {mm['rss_per_channel_bytes'] / 1024:.1f} KiB | "
                f"{(mm.get('heap_in_use_per_channel_bytes') or 0) / 1024:.1f} KiB | {mm['build_seconds']:.1f} s |"
            )
    if report.get("scaling"):
        out += ["", "| channels | records/s | channel values/s |", "|---:|---:|---:|"]
        for n, s in report["scaling"].items():
            out.append(f"| {s['channels']} | {_n(s['records_per_s'])} | {_n(s['channel_values_per_s'])} |")
    if soak:
        out += [
            "",
            f"Soak: {soak['seconds'] / 60:.0f} min at {soak['rate']:,.0f} records/s ({soak['records']:,} records, {soak['channels']} channels): "
            f"RSS {soak['rss_after_warmup_bytes'] / 2**20:.1f} MiB after the warm-up, {soak['rss_end_bytes'] / 2**20:.1f} MiB at the end, "
            f"max {soak['rss_max_bytes'] / 2**20:.1f} MiB; slope {soak['slope_bytes_per_minute'] / 1024:+.1f} KiB/min "
            f"({soak['growth_after_warmup']:+.2%} over the run after the warm-up).",
        ]
    out += ["", "| target | value | met |", "|---|---:|---|"]
    for name, t in report["targets"].items():
        v = t["value"]
        shown = f"{v:,.3g}" if isinstance(v, float) else str(v)
        out.append(f"| {name} | {shown} | {({True: 'met', False: '**not met**', None: 'not measured'})[t['met']]} |")
    return "\n".join(out) + "\n"


def _generator(lat: dict[str, Any]) -> str:
    """The latency run's load generator and its CPU share while producing (runs before 2026-12-03 14:00: kafka-python, not measured)."""
    name = lat.get("generator", "kafka-python")
    share = lat.get("generator_cpu_share_while_producing")
    return name if share is None else f"{name} ({share:.0%})"


def _judged(lat: dict[str, Any]) -> str:
    """The monitor's own judge-delay histogram while producing (``judge_delay``; runs before 2026-12-04 18:00: none)."""
    jd = lat.get("judge_delay")
    if not jd or not jd.get("samples"):
        return "-"
    return f"{_n(jd['p50_ms'])} / {_n(jd['p99_ms'])} ({jd['samples']:,})"


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if not args:
        sys.exit("usage: python -m bench.markdown REPORT.json [SOAK.json]")
    report = json.loads(Path(args[0]).read_text())
    soak = json.loads(Path(args[1]).read_text()) if len(args) > 1 else None
    sys.stdout.write(render(report, soak))
    return 0


if __name__ == "__main__":
    sys.exit(main())
