"""Label-free estimates: expected error and cost from a binary classifier's probabilities, before labels.

The streams are seeded. A latent score ``z`` decides the truth, P(y=1 | z) = sigmoid(z); the model
reports sigmoid(1.5 z), an over-confident (miscalibrated) probability, so the estimate is right only
once the calibration learned from the first labels corrects it. A covariate shift narrows ``z``
(sd 3 -> 1): more predictions near 0.5, more wrong decisions. Labels arrive ``DELAY`` events after
their prediction, through the label topic. Run with ``pytest -s`` to see the figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from stream_monitor.core import state
from stream_monitor.core.estimate import Calibration, Realised
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec

T0 = 1_767_225_600_000
BATCH = 500
DELAY = 5000  # events between a prediction and its label
SLOPE = 1.5  # the model's over-confidence: it reports sigmoid(SLOPE * z) for a truth sigmoid(z)
WINDOW = 2000  # the estimate channel's window (twice the default window)


def stream(seed: int, segments: list[tuple[int, float]], slope: float = SLOPE) -> list[dict[str, Any]]:
    """Events of a binary classifier, each with its label (kept aside by :func:`records`): ``(n, sd of z)`` segments."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for n, sd in segments:
        z = rng.normal(0.0, sd, n)
        truth = 1.0 / (1.0 + np.exp(-z))
        score = 1.0 / (1.0 + np.exp(-slope * z))
        y = (rng.random(n) < truth).astype(int)
        for i in range(n):
            k = len(out)
            out.append({"event_id": f"e{k}", "model": "clf", "ts": T0 + 1000 * k, "features": {"z": float(z[i])},
                        "prediction": {"y_pred_proba": float(score[i])}, "label": int(y[i])})  # fmt: skip
    return out


def records(events: list[dict[str, Any]]) -> tuple[list[InputRecord], list[InputRecord]]:
    """Inference records (no label) and label-topic records of ``events``."""
    inference = [InputRecord(orjson.dumps({k: v for k, v in e.items() if k != "label"}), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]
    labels = [
        InputRecord(orjson.dumps({"event_id": e["event_id"], "model": e["model"], "label": e["label"]}), SourcePosition("labels", 0, i, e["ts"] + 1000 * DELAY))
        for i, e in enumerate(events)
    ]  # fmt: skip
    return inference, labels


def spec_of(slo: dict[str, Any] | None = None, **model: Any) -> MonitorSpec:
    """One model ``clf`` with estimates on, the given SLOs and further model settings; one page per channel (these
    tests read the estimate channels' own pages; ``tests/core/test_model_pages.py`` the model's performance page)."""
    model = {"task": "binary", "estimate": {"enabled": True}, "slo": slo or {}, "performance_pages": "channel", **model}
    return MonitorSpec.model_validate({"models": {"clf": model}})


def run_delayed(spec: MonitorSpec, events: list[dict[str, Any]], delay: int | None = DELAY) -> tuple[PartitionMonitor, list[tuple[int, dict[str, Any]]]]:
    """Every alert, with the number of labels processed before it; labels come ``delay`` events late (never when None)."""
    monitor = PartitionMonitor(spec, partition=0)
    inference, labels = records(events)
    out: list[tuple[int, dict[str, Any]]] = []
    done = 0
    for i in range(0, len(inference), BATCH):
        result = monitor.process(inference[i : i + BATCH])
        assert not result.dead_letters, result.dead_letters[:1]
        out.extend((done, orjson.loads(a.payload)) for a in result.alerts)
        due = i + BATCH - delay if delay is not None else 0
        if due > done:
            result = monitor.process_labels(labels[done:due])
            assert not result.dead_letters, result.dead_letters[:1]
            done = due
            out.extend((done, orjson.loads(a.payload)) for a in result.alerts)
    return monitor, out


def estimated(alerts: list[tuple[int, dict[str, Any]]], channel: str = "__estimated_error_rate__") -> list[tuple[int, dict[str, Any]]]:
    """The firing alerts on an estimate channel."""
    return [(n, a) for n, a in alerts if a["feature"] == channel and a["status"] == "firing" and not a["escalated"]]


def window_errors(monitor: PartitionMonitor, events: list[dict[str, Any]], start: int, calibrated: bool = True) -> tuple[list[float], list[float]]:
    """Per window of ``WINDOW`` events from ``start``: the monitor's estimated error rate and the realised one."""
    model = monitor.models["clf"]
    if not calibrated:
        model.calibration = Calibration(model.calibration.bins, model.calibration.size)
    est, real = [], []
    for w in range(start, len(events) - WINDOW + 1, WINDOW):
        chunk = events[w : w + WINDOW]
        est.append(float(np.mean([model.estimates(e["prediction"])[0][1] for e in chunk])))
        real.append(float(np.mean([int(e["prediction"]["y_pred_proba"] >= 0.5) != e["label"] for e in chunk])))
    return est, real


# ------------------------------------------------------------------ the label-free check
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_covariate_shift_is_flagged_by_the_estimate_before_the_first_delayed_label(seed: int) -> None:
    change = 12000
    events = stream(seed, [(change, 3.0), (8000, 1.0)])
    monitor, alerts = run_delayed(spec_of({"error_rate": {"max_relative_increase": 0.25}}), events)
    est = estimated(alerts)
    assert est, "the shift raised no estimate alert"
    labels_before, first = est[0]
    assert first["detector"] == "slo_error_rate" and first["kind"] == "performance"
    assert first["source"]["offset"] >= change  # nothing before the shift
    assert labels_before <= change, "the estimate alert came after labels of the shifted events"
    realised = [(n, a) for n, a in alerts if a["feature"] == "__error_rate__" and a["status"] == "firing"]
    lead = (realised[0][0] + DELAY - first["source"]["offset"]) if realised else None
    print(
        f"\nseed {seed}: shift at event {change}, labels {DELAY} events late; estimate alert at event "
        f"{first['source']['offset']} ({first['source']['offset'] - change} events after the shift, "
        f"{labels_before} labels read, none of the shifted events'); first realised __error_rate__ alert at event "
        f"{realised[0][1]['source']['offset'] if realised else None} of the label topic (read {lead} events of inference later)"
    )


def test_the_estimate_follows_the_realised_error_rate_once_calibrated() -> None:
    events = stream(4, [(12000, 3.0), (8000, 1.0), (8000, 2.0)])
    monitor, _ = run_delayed(spec_of(), events)
    assert monitor.models["clf"].calibration.learned
    est, real = window_errors(monitor, events, 0)
    mae = float(np.mean(np.abs(np.subtract(est, real))))
    raw, _ = window_errors(monitor, events, 0, calibrated=False)
    mae_raw = float(np.mean(np.abs(np.subtract(raw, real))))
    print(
        f"\nestimate vs realised error rate over {len(real)} windows of {WINDOW} events (seed 4): mean abs error "
        f"{mae:.4f} calibrated, {mae_raw:.4f} with the raw scores; max abs error {max(abs(a - b) for a, b in zip(est, real)):.4f}; "
        f"realised from {min(real):.3f} to {max(real):.3f}"
    )
    assert mae < 0.02  # the stated error of the estimate
    assert mae < mae_raw / 2  # the calibration is what makes it right


def test_no_estimate_alert_over_a_long_no_drift_control() -> None:
    events = stream(5, [(60000, 3.0)])
    _, alerts = run_delayed(spec_of({"error_rate": {"max_relative_increase": 0.25}, "accuracy": {"min": 0.78}}), events)
    est = [a for _, a in alerts if a["feature"].startswith("__estimated")]
    print(f"\nno-drift control, 60,000 events, SLOs error_rate +25 % and accuracy >= 0.78: {len(est)} estimate alerts")
    assert est == []


# ------------------------------------------------------------------ what the alert says
def test_before_any_label_the_alert_says_it_is_an_uncalibrated_estimate() -> None:
    events = stream(6, [(6000, 3.0), (6000, 1.0)], slope=1.0)
    _, alerts = run_delayed(spec_of({"error_rate": {"max": 0.22}}), events, delay=None)
    (_, a), *_ = estimated(alerts)
    summary = a["annotations"]["summary"]
    words = f"estimated error rate {a['statistic']:.3g} > 0.22 (SLO max), from probabilities (taken as calibrated"
    assert words in summary and "no labels yet" in summary, summary
    assert "Estimated without labels" in a["annotations"]["description"]
    assert a["evidence"]["estimate"] == {"source": "probabilities", "calibrated": False, "labels": False, "realised": None, "realised_count": 0}


def test_once_labels_came_the_alert_shows_the_realised_value_next_to_the_estimate() -> None:
    events = stream(7, [(12000, 3.0), (8000, 1.0)])
    _, alerts = run_delayed(spec_of({"error_rate": {"max": 0.2}}), events)
    (_, a), *_ = estimated(alerts)
    e = a["evidence"]["estimate"]
    assert e["calibrated"] and e["realised_count"] > 0 and 0.0 < e["realised"] < 1.0
    assert f"from calibrated probabilities; realised {e['realised']:.3g}" in a["annotations"]["summary"]


def test_the_expected_cost_is_estimated_in_the_cost_models_money() -> None:
    events = stream(8, [(12000, 3.0), (8000, 1.0)])
    cost = {"false_positive": 5, "false_negative": 100, "currency": "USD"}
    monitor, alerts = run_delayed(spec_of({"cost": {"max_per_1k": 9000}}, cost=cost), events)
    (_, a), *_ = estimated(alerts, "__estimated_cost__")
    assert a["detector"] == "slo_cost" and a["statistic"] > 9000 and a["source"]["offset"] >= 12000
    assert a["annotations"]["summary"].startswith("clf estimated cost: estimated cost per 1k predictions")
    assert " USD, from calibrated probabilities" in a["annotations"]["summary"]
    model = monitor.models["clf"]
    shifted = events[12000:]
    est = 1000 * np.mean([model.estimates(e["prediction"])[1][1] for e in shifted])
    real = 1000 * np.mean([(5 if e["label"] == 0 else 0) if e["prediction"]["y_pred_proba"] >= 0.5 else (100 if e["label"] else 0) for e in shifted])
    print(f"\nestimated vs realised cost per 1k predictions after the shift: {est:,.0f} vs {real:,.0f} USD")
    assert abs(est - real) < 0.1 * real


# ------------------------------------------------------------------ configuration and state
def test_estimates_are_off_unless_enabled() -> None:
    events = stream(9, [(3000, 3.0)])
    monitor, _ = run_delayed(MonitorSpec.model_validate({"models": {"clf": {"slo": {"error_rate": {"max": 0.01}}}}}), events)
    assert not any(name.startswith("__estimated") for name in monitor.models["clf"].channels)
    monitor, _ = run_delayed(spec_of(), events)
    assert "__estimated_error_rate__" in monitor.models["clf"].channels


def test_the_calibration_round_trips_through_the_model_state_item() -> None:
    cal = Calibration(bins=4, size=100)
    for p, y in ((0.1, 0), (0.3, 1), (0.9, 1), (0.95, 0)):
        cal.observe(p, y)
    record = state.decode_model(state.encode_model(["z"], ["z"], None, cal), "clf")
    assert record.calibration is not None and record.calibration.to_state() == cal.to_state()
    assert state.decode_model(state.encode_model(["z"], ["z"]), "clf").calibration is None


@pytest.mark.parametrize(
    "bad",
    [
        {"bins": 4, "size": 100, "n": [1, 0, 0], "pos": [0, 0, 0]},  # a count per bin missing
        {"bins": 4, "size": 100, "n": [1, 0, 0, 0], "pos": [2, 0, 0, 0]},  # more positives than labels
        {"bins": 4, "size": 100, "n": [1.0, 0, 0, 0], "pos": [0, 0, 0, 0]},  # not integers
        {"bins": 1, "size": 100, "n": [1], "pos": [0]},
        "calibration",
    ],
)
def test_a_malformed_calibration_is_refused(bad: Any) -> None:
    blob = state._pack({"format": state.FORMAT_VERSION, "kind": "model", "known_features": [], "channels": [], "calibration": bad})
    with pytest.raises(state.StateFormatError, match="calibration"):
        state.decode_model(blob, "clf")


def test_the_realised_blocks_round_trip_and_a_malformed_one_is_refused() -> None:
    r = Realised()
    r.begin_batch(False)
    for i in range(1500):
        r.add(i, "__error_rate__", float(i % 5 == 0), True)
    back = state.decode_model(state.encode_model([], [], None, None, r), "clf").realised
    assert back is not None and back.to_state() == r.to_state() and back.latest["__error_rate__"] == (0.2, 1000)
    bad = {**r.to_state(), "counts": [5000, 0]}  # beyond a block
    blob = state._pack({"format": state.FORMAT_VERSION, "kind": "model", "known_features": [], "channels": [], "realised": bad})
    with pytest.raises(state.StateFormatError, match="realised"):
        state.decode_model(blob, "clf")


def test_estimates_resume_from_a_checkpoint_as_if_uninterrupted() -> None:
    spec = spec_of({"error_rate": {"max_relative_increase": 0.25}})
    events = stream(10, [(12000, 3.0), (6000, 1.0)])
    inference, labels = records(events)

    def alerts_of(split: int | None) -> list[bytes]:
        monitor = PartitionMonitor(spec, partition=0)
        out: list[bytes] = []
        for i in range(0, len(inference), BATCH):
            if split is not None and i == split:
                monitor = PartitionMonitor.from_state_items(spec, 0, monitor.state_items(only_dirty=False))
            out.extend(a.payload for a in monitor.process(inference[i : i + BATCH]).alerts)
            due = i + BATCH - DELAY  # labels of the events up to here have come
            if due > 0:
                out.extend(a.payload for a in monitor.process_labels(labels[max(0, due - BATCH) : due]).alerts)
        return out

    uninterrupted = alerts_of(None)
    assert any(b'"__estimated_error_rate__"' in a for a in uninterrupted)
    assert alerts_of(6000) == uninterrupted  # mid-calibration: 1,000 of its 2,000 labels counted


def test_the_readme_example_is_what_the_code_produces() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    _, alerts = run_delayed(spec_of({"error_rate": {"max_relative_increase": 0.25}}), stream(1, [(12000, 3.0), (8000, 1.0)]))
    (_, a), *_ = estimated(alerts)
    assert orjson.dumps(a["annotations"]["summary"]).decode() in readme
    assert orjson.dumps(a["evidence"]["estimate"]).decode().replace(",", ", ").replace(":", ": ") in readme


def test_a_new_model_version_learns_its_calibration_again() -> None:
    events = stream(11, [(4500, 3.0)])
    for i, e in enumerate(events):
        e["model_version"] = "v1" if i < 3000 else "v2"
    monitor = PartitionMonitor(spec_of(), partition=0)
    inline = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]
    monitor.process(inline[:3000])
    assert monitor.models["clf"].calibration.learned
    monitor.process(inline[3000:])
    cal = monitor.models["clf"].calibration
    assert not cal.learned and cal.count == 1500  # the labels of v2 only


@pytest.mark.parametrize("batch", [7, 333])
def test_estimate_alerts_do_not_depend_on_batch_boundaries(batch: int) -> None:
    events = stream(12, [(9000, 3.0), (5000, 1.0)])  # labels inline: the calibration is learned inside a batch
    inline = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]
    spec = spec_of({"error_rate": {"max_relative_increase": 0.25}})

    def alerts(size: int) -> list[bytes]:
        monitor = PartitionMonitor(spec, partition=0)
        return [a.payload for i in range(0, len(inline), size) for a in monitor.process(inline[i : i + size]).alerts]

    reference = alerts(1000)
    assert any(b'"__estimated_error_rate__"' in a for a in reference)
    assert alerts(batch) == reference
