"""Label-free estimates calibrated from a baseline's label column: right from the first prediction, before any label.

The model of ``test_estimates`` (over-confident: it reports sigmoid(1.5 z) for a truth sigmoid(z))
is profiled on labelled training data (``stream-monitor baseline --prediction-column
--label-column``); the profile's calibration histogram is what the estimator starts from. Serving
traffic then shifts (z's sd 3 -> 1) and NO label ever reaches the monitor. Run with ``pytest -s``
to see the figures.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from stream_monitor.baseline import build_profile, load_baselines, write_profile
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_estimates import WINDOW, spec_of, stream

CHANGE = 12_000
MAX_MAE = 0.02
"""The stated error: mean absolute error of the window's estimated error rate against the realised one."""


def training_profile(tmp_path: Path, with_labels: bool = True) -> Path:
    """A baseline of 20,000 labelled training rows (z, the model's probability, the label), written to a file."""
    rows = stream(100, [(20_000, 3.0)])
    src = tmp_path / "train.csv"
    with open(src, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["z", "proba", "label"])
        w.writerows([[e["features"]["z"], e["prediction"]["y_pred_proba"], e["label"]] for e in rows])
    out = tmp_path / "baseline.json"
    write_profile(build_profile(src, "clf", prediction_column="proba", label_column="label" if with_labels else None), out)
    return out


def unlabelled_run(spec: MonitorSpec, events: list[dict[str, Any]], baselines: dict[str, Any]) -> tuple[PartitionMonitor, list[dict[str, Any]]]:
    """Every alert of ``events`` without their labels (none ever arrives)."""
    monitor = PartitionMonitor(spec, 0, baselines)
    alerts: list[dict[str, Any]] = []
    for i in range(0, len(events), 500):
        recs = [InputRecord(orjson.dumps({k: v for k, v in e.items() if k != "label"}), SourcePosition("t", 0, i + k, e["ts"])) for k, e in enumerate(events[i : i + 500])]
        result = monitor.process(recs)
        assert not result.dead_letters, result.dead_letters[:1]
        alerts.extend(orjson.loads(a.payload) for a in result.alerts)
    return monitor, alerts


def window_mae(monitor: PartitionMonitor, events: list[dict[str, Any]]) -> tuple[float, float, list[float]]:
    """Mean and max absolute error of the windows' estimated error rate against the realised one, and the realised rates."""
    model = monitor.models["clf"]
    errs, real = [], []
    for w in range(0, len(events) - WINDOW + 1, WINDOW):
        chunk = events[w : w + WINDOW]
        est = float(np.mean([model.estimates(e["prediction"])[0][1] for e in chunk]))
        realised = float(np.mean([int(e["prediction"]["y_pred_proba"] >= 0.5) != e["label"] for e in chunk]))
        errs.append(abs(est - realised))
        real.append(realised)
    return float(np.mean(errs)), max(errs), real


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_shift_is_flagged_by_a_calibrated_estimate_before_any_label(tmp_path: Path, seed: int) -> None:
    events = stream(seed, [(CHANGE, 3.0), (8000, 1.0)])
    spec = spec_of({"error_rate": {"max_relative_increase": 0.25}}, baseline=str(training_profile(tmp_path)))
    monitor, alerts = unlabelled_run(spec, events, load_baselines(spec))
    model = monitor.models["clf"]
    assert model.calibration.learned and model.calibration.count == 20_000  # from the baseline, no label read
    found = [a for a in alerts if a["feature"] == "__estimated_error_rate__" and a["status"] == "firing"]
    assert found, "the shift raised no estimate alert"
    first = found[0]
    assert first["source"]["offset"] >= CHANGE and first["detector"] == "slo_error_rate"
    assert first["evidence"]["estimate"]["calibrated"] is True and first["evidence"]["estimate"]["labels"] is False
    assert "from calibrated probabilities" in first["annotations"]["summary"]
    mae, worst, real = window_mae(monitor, events)
    print(
        f"\nseed {seed}: estimate alert {first['source']['offset'] - CHANGE} events after the shift, no label read; "
        f"estimated vs realised error rate over {len(real)} windows of {WINDOW} (realised {min(real):.3f}-{max(real):.3f}): "
        f"mean abs error {mae:.4f}, max {worst:.4f}"
    )
    assert mae < MAX_MAE


def test_without_the_label_column_the_estimate_stays_uncalibrated_until_labels_come(tmp_path: Path) -> None:
    """The control: the same stream with a baseline that has no label column (the live-label fallback, and no label comes)."""
    events = stream(1, [(CHANGE, 3.0), (8000, 1.0)])
    spec = spec_of({"error_rate": {"max_relative_increase": 0.25}}, baseline=str(training_profile(tmp_path, with_labels=False)))
    monitor, alerts = unlabelled_run(spec, events, load_baselines(spec))
    model = monitor.models["clf"]
    assert not model.calibration.learned and model.calibration.size == 2000
    assert all(a["evidence"]["estimate"]["calibrated"] is False for a in alerts if a["feature"] == "__estimated_error_rate__")
    mae, _, _ = window_mae(monitor, events)
    print(f"\nraw scores (no calibration): mean abs error {mae:.4f}")
    assert mae > 2 * MAX_MAE  # the baseline's calibration is what makes the estimate right


def test_a_version_baseline_with_labels_calibrates_that_version(tmp_path: Path) -> None:
    """``baselines: {v2: ...}``: v1 learns from live labels (none come), v2 starts calibrated from its profile."""
    spec = spec_of(baselines={"v2": str(training_profile(tmp_path))})
    events = [{**e, "model_version": "v1" if i < 3000 else "v2"} for i, e in enumerate(stream(9, [(6000, 3.0)]))]
    monitor = PartitionMonitor(spec, 0, load_baselines(spec))
    recs = [InputRecord(orjson.dumps({k: v for k, v in e.items() if k != "label"}), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]
    monitor.process(recs[:3000])
    assert not monitor.models["clf"].calibration.learned
    monitor.process(recs[3000:])
    cal = monitor.models["clf"].calibration
    assert cal.learned and cal.count == 20_000
    restored = PartitionMonitor.from_state_items(spec, 0, monitor.state_items(only_dirty=False), load_baselines(spec))
    assert restored.models["clf"].calibration.to_state() == cal.to_state()
