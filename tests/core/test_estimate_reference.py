"""The label-free estimate's reference from the baseline: a shift present from the first prediction is flagged.

The model of ``test_estimates`` (over-confident, calibrated by a profile of 20,000 labelled training
rows where z has sd 3) serves traffic that differs from its training data from the first
prediction on (z's sd 1: more predictions near 0.5, more wrong decisions), and no label ever comes.
A warm-up reference would be learned on that traffic and take it for normal; the reference derived
from the baseline (the expected error of the profile's probabilities under its calibration) is the
training data's, so ``__estimated_error_rate__`` alerts within its first window. Run with
``pytest -s`` to see the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from stream_monitor.baseline import load_baselines
from stream_monitor.core.estimate import expected_error
from stream_monitor.core.spec import ESTIMATED_ERROR_RATE, MonitorSpec
from tests.core.test_estimates import spec_of, stream
from tests.core.test_estimates_from_baseline import training_profile, unlabelled_run

N = 12_000
SLO = {"error_rate": {"max_relative_increase": 0.25}}


def estimate_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["feature"] == ESTIMATED_ERROR_RATE and a["status"] == "firing"]


def without_probabilities(profile: Path) -> Path:
    """The same profile (same calibration) without its probability channel: the estimate cannot derive a reference."""
    doc = orjson.loads(profile.read_bytes())
    doc["channels"].pop("__prediction__")
    out = profile.with_name("no-proba.json")
    out.write_bytes(orjson.dumps(doc))
    return out


def run(tmp_path: Path, events: list[dict[str, Any]], profile: Path | None) -> tuple[Any, list[dict[str, Any]], MonitorSpec]:
    spec = spec_of(SLO, **({"baseline": str(profile)} if profile is not None else {}))
    monitor, alerts = unlabelled_run(spec, events, load_baselines(spec, warn=False))
    return monitor, alerts, spec


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_shift_from_the_first_prediction_alerts_within_the_first_window(tmp_path: Path, seed: int) -> None:
    events = stream(seed, [(N, 1.0)])  # serving differs from training (sd 3) from the start
    profile = training_profile(tmp_path)
    monitor, alerts, spec = run(tmp_path, events, profile)
    ch = monitor.models["clf"].channels[ESTIMATED_ERROR_RATE]
    ref = ch.reference
    assert ref is not None and ref.kind == "baseline" and ref.count == 20_000
    # the reference is the training data's expected error rate: its probabilities under its calibration
    baseline = load_baselines(spec, warn=False)["clf"]
    train = orjson.loads(profile.read_bytes())["channels"]["__prediction__"]["sample"]
    assert ref.mean == pytest.approx(np.mean([expected_error(p, p >= 0.5, baseline.calibration) for p in train]))
    warmup, window = ch.settings.reference.size, ch.settings.window.size
    found = estimate_alerts(alerts)
    assert found, "the shift raised no estimate alert"
    first = found[0]["source"]["offset"]
    assert first < warmup + window, f"first estimate alert at {first}, not within the first window after a {warmup}-event warm-up"
    # the control: the same calibration, but the reference is a warm-up of the shifted traffic: it takes it for normal
    _, control, _ = run(tmp_path, events, without_probabilities(profile))
    assert estimate_alerts(control) == [], [a["source"]["offset"] for a in estimate_alerts(control)][:3]
    rate = float(np.mean([a["statistic"] for a in found[:1]]))
    print(f"\nseed {seed}: reference error rate {ref.mean:.3f} (baseline); estimate alert at event {first} (window {window}, "
          f"statistic {rate:.3f}); with a warm-up reference instead: no alert over {N} events")  # fmt: skip


def test_no_alert_on_traffic_like_the_training_data(tmp_path: Path) -> None:
    events = stream(4, [(20_000, 3.0)])
    monitor, alerts, _ = run(tmp_path, events, training_profile(tmp_path))
    assert monitor.models["clf"].channels[ESTIMATED_ERROR_RATE].reference.kind == "baseline"
    assert estimate_alerts(alerts) == []
    assert [a for a in alerts if a["feature"].startswith("__estimated")] == []


def test_without_a_calibration_the_estimate_warms_up_as_before(tmp_path: Path) -> None:
    events = stream(5, [(3000, 1.0)])
    monitor, _, _ = run(tmp_path, events, training_profile(tmp_path, with_labels=False))
    assert monitor.models["clf"].channels[ESTIMATED_ERROR_RATE].reference.kind == "warmup"


@pytest.mark.parametrize("restore_at", [1000, 5500])
def test_the_derived_reference_survives_a_restore(tmp_path: Path, restore_at: int) -> None:
    """A monitor restored from its state keeps the reference (it is the baseline's again, so no reset) and alerts as uninterrupted."""
    from stream_monitor.core.events import SourcePosition
    from stream_monitor.core.monitor import InputRecord, PartitionMonitor

    events = stream(6, [(N, 1.0)])
    spec = spec_of(SLO, baseline=str(training_profile(tmp_path)))
    baselines = load_baselines(spec, warn=False)
    recs = [InputRecord(orjson.dumps({k: v for k, v in e.items() if k != "label"}), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]

    def alerts(restore: int | None) -> list[bytes]:
        monitor, out = PartitionMonitor(spec, 0, baselines), []
        for i in range(0, len(recs), 500):
            if i == restore:
                monitor = PartitionMonitor.from_state_items(spec, 0, monitor.state_items(only_dirty=False), baselines)
            out += [a.payload for a in monitor.process(recs[i : i + 500]).alerts]
        return out

    want = alerts(None)
    assert estimate_alerts([orjson.loads(a) for a in want])
    assert alerts(restore_at) == want


def test_the_estimated_cost_takes_its_reference_from_the_baseline_too(tmp_path: Path) -> None:
    from stream_monitor.core.estimate import expected_cost
    from stream_monitor.core.spec import ESTIMATED_COST

    profile = training_profile(tmp_path)
    spec = spec_of({"cost": {"max_per_1k": 20_000}}, baseline=str(profile), cost={"false_positive": 5, "false_negative": 100})
    monitor, _ = unlabelled_run(spec, stream(7, [(2500, 3.0)]), load_baselines(spec, warn=False))
    ref = monitor.models["clf"].channels[ESTIMATED_COST].reference
    cal = load_baselines(spec, warn=False)["clf"].calibration
    train = orjson.loads(profile.read_bytes())["channels"]["__prediction__"]["sample"]
    assert ref.kind == "baseline" and ref.mean == pytest.approx(np.mean([expected_cost(p, p >= 0.5, cal, 5.0, 100.0) for p in train]))
