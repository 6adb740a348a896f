"""Model performance as a signal: task and output inference, the error channels, rate detectors, SLOs.

The streams are seeded: a binary classifier whose error rate moves, concept-drift streams from
River's synthetic generators scored by a model frozen on their first concept, and a no-drift
control. Labels are inline (the label-topic join feeds the same channels: ``test_label_topic_*``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import orjson
import pytest
from river.datasets import synth
from structlog.testing import capture_logs

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.model_monitor import infer_task, resolve_outputs
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec

T0 = 1_767_225_600_000
BATCH = 500


def detector_pages(spec: MonitorSpec) -> MonitorSpec:
    """``spec`` with detector-level pages (these tests name the detector that fired)."""
    data = spec.model_dump(exclude_unset=True)
    data["defaults"] = {**data.get("defaults", {}), "alerting": {"group_by": "detector"}}
    return MonitorSpec.model_validate(data)


def run(spec: MonitorSpec, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every alert of ``events`` (one second of event time apart) through one partition monitor, one page per detector."""
    monitor = PartitionMonitor(detector_pages(spec), partition=0)
    alerts: list[dict[str, Any]] = []
    records = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]
    for i in range(0, len(records), BATCH):
        result = monitor.process(records[i : i + BATCH])
        assert not result.dead_letters, result.dead_letters[:1]
        alerts.extend(orjson.loads(a.payload) for a in result.alerts)
    return alerts


def fired(alerts: list[dict[str, Any]], feature: str = "__error_rate__") -> list[dict[str, Any]]:
    """The firing (not escalated) alerts on ``feature``."""
    return [a for a in alerts if a["feature"] == feature and a["status"] == "firing" and not a["escalated"]]


def binary_events(seed: int, rates: list[tuple[int, float]], model: str = "clf") -> list[dict[str, Any]]:
    """A binary classifier's events, labels inline: ``(n, error rate)`` segments in order."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for n, rate in rates:
        x = rng.normal(0.0, 1.0, n)
        proba = 1.0 / (1.0 + np.exp(-2.0 * x))
        y_pred = (proba >= 0.5).astype(int)
        wrong = rng.random(n) < rate
        for i in range(n):
            label = int(y_pred[i]) ^ int(wrong[i])
            out.append(
                {"model": model, "ts": T0 + 1000 * len(out), "features": {"x": float(x[i])},
                 "prediction": {"y_pred_proba": float(proba[i]), "y_pred": int(y_pred[i])}, "label": label}
            )  # fmt: skip
    return out


# ------------------------------------------------------------------ the rise that used to pass unnoticed
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_error_rate_rising_from_13_to_17_percent_raises_a_performance_alert(seed: int) -> None:
    change = 8000
    alerts = run(MonitorSpec(), binary_events(seed, [(change, 0.13), (12000, 0.17)]))
    perf = [a for a in alerts if a["kind"] == "performance" and a["status"] == "firing"]
    assert perf, "no performance alert for an error rate rising from 13 % to 17 %"
    assert all(a["source"]["offset"] >= change for a in perf), [(a["detector"], a["source"]["offset"]) for a in perf]
    rate = [a for a in perf if a["feature"] == "__error_rate__"]
    assert rate, "the 0/1 error stream said nothing"
    two = [a for a in rate if a["detector"] == "two_proportion"]
    for a in two:  # the statistic is the rise in error-rate points
        assert 0.0 < a["statistic"] < 0.15 and a["threshold"] == 0.02


def test_a_constant_error_rate_raises_nothing_on_the_performance_channels() -> None:
    alerts = run(MonitorSpec(), binary_events(4, [(20000, 0.13)]))
    assert [a for a in alerts if a["kind"] == "performance"] == []


# ------------------------------------------------------------------ concept drift, River generators
def _sea(variant: int, seed: int) -> Iterator[tuple[dict[str, float], bool]]:
    return iter(synth.SEA(variant=variant, noise=0.05, seed=seed))


def _stagger(concept: int, seed: int) -> Iterator[tuple[dict[str, Any], bool]]:
    return iter(synth.STAGGER(classification_function=concept, seed=seed))


def _fit_sea(train: list[tuple[dict[str, float], bool]]) -> Callable[[dict[str, float]], bool]:
    """A threshold rule on x0 + x1, fitted on the first concept (threshold and direction by least error)."""
    s = np.array([x[0] + x[1] for x, _ in train])
    y = np.array([bool(t) for _, t in train])
    best = min(
        ((float(np.mean((s <= t) != y) if above else np.mean((s > t) != y)), float(t), above) for t in np.linspace(0, 20, 201) for above in (True, False))
    )
    _, t, below = best
    return (lambda x: x[0] + x[1] <= t) if below else (lambda x: x[0] + x[1] > t)


def _fit_stagger(train: list[tuple[dict[str, Any], bool]]) -> Callable[[dict[str, Any]], bool]:
    """A majority-vote table over (size, color, shape), fitted on the first concept."""
    votes: dict[tuple[int, int, int], list[int]] = {}
    for x, y in train:
        votes.setdefault((x["size"], x["color"], x["shape"]), [0, 0])[int(bool(y))] += 1
    table = {k: v[1] > v[0] for k, v in votes.items()}
    return lambda x: table.get((x["size"], x["color"], x["shape"]), False)


def _sine(concept: int, seed: int) -> Iterator[tuple[dict[str, Any], bool]]:
    return iter(synth.Sine(classification_function=concept, seed=seed))


def _mixed(concept: int, seed: int) -> Iterator[tuple[dict[str, Any], bool]]:
    return iter(synth.Mixed(classification_function=concept, seed=seed))


def _hyperplane(concept: int, seed: int) -> Iterator[tuple[dict[str, Any], bool]]:
    """A concept is a hyperplane (the generator's weights, drawn from its seed); ``seed`` picks where its stream starts."""
    it = iter(synth.Hyperplane(seed=100 + concept, n_features=10, n_drift_features=0, noise_percentage=0.05))
    _take(it, (seed % 50) * 1000)
    return it


def _fit_tree(train: list[tuple[dict[str, Any], bool]]) -> Callable[[dict[str, Any]], bool]:
    """River's Hoeffding tree, trained on the first concept, then frozen."""
    from river import tree

    model = tree.HoeffdingTreeClassifier(grace_period=100)
    for x, y in train:
        model.learn_one(x, bool(y))
    return lambda x: bool(model.predict_one(x))


def _fit_linear(train: list[tuple[dict[str, Any], bool]]) -> Callable[[dict[str, Any]], bool]:
    """River's logistic regression (scaled inputs), trained on the first concept, then frozen."""
    from river import linear_model, preprocessing

    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for x, y in train:
        model.learn_one(x, bool(y))
    return lambda x: bool(model.predict_one(x))


GENERATORS = {
    # name: (generator, fit, the concept sequence; concept 0 is the model's)
    "sea": (_sea, _fit_sea, [0, 1, 0, 2, 0, 3]),
    "stagger": (_stagger, _fit_stagger, [0, 1, 0, 2, 0, 1]),
    "sine": (_sine, _fit_tree, [0, 1, 0, 2, 0, 3]),
    "mixed": (_mixed, _fit_tree, [0, 1, 0, 1, 0, 1]),
    "hyperplane": (_hyperplane, _fit_linear, [0, 1, 0, 2, 0, 3]),
}
SEGMENT = 8000
TRAIN = 10_000


def concept_stream(name: str, seed: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Events of a model frozen on the first concept, labels inline; the offsets where a new concept starts."""
    make, fit, concepts = GENERATORS[name]
    model = fit(_take(make(concepts[0], seed + 1000), TRAIN))
    events: list[dict[str, Any]] = []
    changes: list[int] = []
    for k, concept in enumerate(concepts):
        if k and concept != 0:
            changes.append(len(events))
        for x, y in _take(make(concept, seed + k), SEGMENT):
            pred = bool(model(x))
            feats = {str(f): v for f, v in x.items()}
            events.append({"model": name, "ts": T0 + 1000 * len(events), "features": feats, "prediction": pred, "label": bool(y)})
    return events, changes


def _take(it: Iterator[Any], n: int) -> list[Any]:
    return [next(it) for _ in range(n)]


PERFORMANCE_ERRORS = ("__error__", "__error_rate__", "__recall__", "__precision__")
CONCEPT_SEEDS = (7, 8, 9)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_concept_changes_are_found_on_the_performance_channels(name: str) -> None:
    """Recall of concept changes on the performance channels (with default detectors), and the delay in events.

    A change counts as found when a performance channel fires within the concept's segment; the
    delay is the first such alert's offset after the change. Nothing may fire on the model's own
    concept before the first change.
    """
    delays: list[int | None] = []
    channels: dict[str, int] = {}
    for seed in CONCEPT_SEEDS:
        events, changes = concept_stream(name, seed=seed)
        alerts = [a for a in run(MonitorSpec(), events) if a["feature"] in PERFORMANCE_ERRORS and a["status"] == "firing" and not a["escalated"]]
        assert not [a for a in alerts if a["source"]["offset"] < changes[0]], f"{name} seed {seed}: alert before the first change"
        for change in changes:
            hits = sorted((a["source"]["offset"] - change, a["feature"]) for a in alerts if change <= a["source"]["offset"] < change + SEGMENT)
            delays.append(hits[0][0] if hits else None)
            if hits:
                channels[hits[0][1]] = channels.get(hits[0][1], 0) + 1
    found = [d for d in delays if d is not None]
    print(f"{name}: {len(found)}/{len(delays)} concept changes found; delays in events {delays}; first on {channels}")
    assert len(found) >= 0.95 * len(delays), delays


# ------------------------------------------------------------------ the no-drift control
@pytest.mark.slow
def test_no_alert_over_100k_events_without_drift_with_every_default_detector() -> None:
    events = binary_events(11, [(200_000, 0.13)])
    rng = np.random.default_rng(12)
    for e, noise in zip(events[::2], rng.normal(0.0, 2.0, len(events[::2])).tolist(), strict=True):  # every other one: a regressor
        target = 50.0 + 10.0 * e["features"]["x"]
        e.update(model="reg", prediction=target + noise, label=target)
    # 100k events of a classifier (error rate 13 %) and 100k of a regressor, interleaved; both priced
    # (so the cost channel and its detectors are on too)
    spec = MonitorSpec.model_validate({"models": {
        "clf": {"cost": {"false_positive": 5, "false_negative": 120}}, "reg": {"cost": {"over_per_unit": 1, "under_per_unit": 3}},
    }})  # fmt: skip
    assert {"__cost__", "__recall__", "__f1__", "__log_loss__", "__calibration__", "__roc_auc__"} <= set(_monitor_with(spec, events[:200]).models["clf"].channels)
    assert {"__cost__", "__signed_error__"} <= set(_monitor_with(spec, events[:200]).models["reg"].channels)
    alerts = run(spec, events)
    assert alerts == [], [(a["model"], a["feature"], a["detector"]) for a in alerts][:10]


# ------------------------------------------------------------------ SLOs in the metric's units
def _slo_spec(model: str, slo: dict[str, Any], **extra: Any) -> MonitorSpec:
    return MonitorSpec.model_validate({"models": {model: {"slo": slo, **extra}}})


def test_an_accuracy_slo_fires_in_accuracy_units() -> None:
    spec = _slo_spec("clf", {"accuracy": {"min": 0.85}})
    alerts = fired(run(spec, binary_events(5, [(6000, 0.10), (6000, 0.20)])))
    slo = [a for a in alerts if a["detector"] == "slo_accuracy"]
    assert slo and slo[0]["kind"] == "performance" and slo[0]["threshold"] == 0.85
    assert 0.75 < slo[0]["statistic"] < 0.85 and slo[0]["source"]["offset"] >= 6000
    words = f"accuracy {slo[0]['statistic']:.3g} < 0.85 (SLO min)"  # below the minimum, said that way round
    assert words in slo[0]["annotations"]["summary"] and words in slo[0]["annotations"]["description"]
    assert "> threshold" not in slo[0]["annotations"]["description"]


def test_an_error_rate_slo_compares_with_the_reference_rate() -> None:
    spec = _slo_spec("clf", {"error_rate": {"max_relative_increase": 0.2}})
    alerts = fired(run(spec, binary_events(6, [(6000, 0.10), (6000, 0.14)])))
    slo = [a for a in alerts if a["detector"] == "slo_error_rate"]
    assert slo and slo[0]["source"]["offset"] >= 6000
    assert slo[0]["statistic"] >= slo[0]["threshold"] and 0.10 < slo[0]["threshold"] < 0.14  # 1.2 x the reference rate


def _regression_events(seed: int, segments: list[tuple[int, float]]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for n, sd in segments:
        for noise in rng.normal(0.0, sd, n):
            target = float(rng.normal(100.0, 20.0))
            out.append({"model": "reg", "ts": T0 + 1000 * len(out), "prediction": {"value": target + float(noise)}, "label": target})
    return out


def test_a_mae_slo_fires_on_the_absolute_error_channel() -> None:
    spec = _slo_spec("reg", {"mae": {"max": 12.5}})
    alerts = fired(run(spec, _regression_events(8, [(4000, 10.0), (4000, 20.0)])), "__abs_error__")
    slo = [a for a in alerts if a["detector"] == "slo_mae"]
    assert slo and slo[0]["kind"] == "performance" and slo[0]["threshold"] == 12.5
    assert slo[0]["statistic"] > 12.5 and slo[0]["source"]["offset"] >= 4000  # |N(0, 20)| has mean 16


def test_an_unconfigured_slo_adds_no_detector() -> None:
    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    monitor.process([InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(binary_events(1, [(10, 0.1)]))])
    assert monitor.models["clf"].channels["__error_rate__"].detector_names == ("ddm", "hddm_a", "adwin", "two_proportion")


# ------------------------------------------------------------------ which output is which, and the task
def _monitor_with(spec: MonitorSpec, events: list[dict[str, Any]]) -> PartitionMonitor:
    monitor = PartitionMonitor(spec, partition=0)
    monitor.process([InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, T0 + i)) for i, e in enumerate(events)])
    return monitor


def test_an_ambiguous_prediction_dict_feeds_no_error_and_warns_once() -> None:
    events = [{"model": "m", "ts": T0 + i, "prediction": {"a": 0.2, "b": 1}, "label": 1} for i in range(5)]
    with capture_logs() as logs:
        monitor = _monitor_with(MonitorSpec(), events)
    warnings = [entry for entry in logs if entry["event"] == "prediction_outputs_ambiguous"]
    assert len(warnings) == 1 and warnings[0]["outputs"] == ["a", "b"]
    assert not {"__error__", "__error_rate__", "__abs_error__"} & set(monitor.models["m"].channels)


def test_the_class_output_is_used_for_the_error_not_the_first_key() -> None:
    events = [{"model": "m", "ts": T0 + i, "prediction": {"proba": 0.9, "label": 0}, "label": 1} for i in range(60)]
    spec = MonitorSpec.model_validate({"defaults": {"reference": {"size": 50}, "window": {"size": 50, "step": 10}}})
    ch = _monitor_with(spec, events).models["m"].channels["__error__"]
    assert ch.reference is not None and ch.reference.mean == 1.0  # class 0 against label 1; |0.9 - 1| would be 0.1


def test_configured_outputs_and_task_win() -> None:
    spec = MonitorSpec.model_validate({"models": {"m": {"task": "regression", "score_output": "b"}}})
    monitor = _monitor_with(spec, [{"model": "m", "ts": T0, "prediction": {"a": 1, "b": 3.0}, "label": 1}])
    m = monitor.models["m"]
    assert m.task == "regression" and "__abs_error__" in m.channels and "__error_rate__" not in m.channels


def test_the_task_is_inferred_from_the_first_labelled_prediction() -> None:
    assert infer_task(0.7, None, 0) == "binary"
    assert infer_task(None, "b", "a") == "multiclass"
    assert infer_task(None, 2, 1) == "multiclass"
    assert infer_task(13.2, None, 12.0) == "regression"
    assert resolve_outputs(["y_pred_proba", "y_pred", "y_class"]) == (
        "y_pred_proba", "y_pred", False
    )  # fmt: skip
    assert resolve_outputs(["proba", "score"]).ambiguous


# ------------------------------------------------------------------ labels from the label topic, and checkpoints
def _split_labels(events: list[dict[str, Any]]) -> tuple[list[InputRecord], list[InputRecord]]:
    """The events without their labels (with event ids), and the labels as label-topic records."""
    inference, labels = [], []
    for i, e in enumerate(events):
        e = {**e, "event_id": f"e-{i}"}
        label = e.pop("label")
        inference.append(InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])))
        labels.append(InputRecord(orjson.dumps({"event_id": f"e-{i}", "model": e["model"], "label": label}), SourcePosition("labels", 0, i, e["ts"])))
    return inference, labels


def _joined_alerts(monitor: PartitionMonitor, inference: list[InputRecord], labels: list[InputRecord]) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    for i in range(0, len(inference), BATCH):
        monitor.process(inference[i : i + BATCH])
        result = monitor.process_labels(labels[i : i + BATCH])
        assert not result.dead_letters, result.dead_letters[:1]
        alerts.extend(orjson.loads(a.payload) for a in result.alerts)
    return alerts


def test_labels_joined_from_the_label_topic_feed_the_error_stream() -> None:
    change = 8000
    inference, labels = _split_labels(binary_events(1, [(change, 0.13), (12000, 0.17)]))
    alerts = fired(_joined_alerts(PartitionMonitor(MonitorSpec(), partition=0), inference, labels))
    assert alerts and all(a["kind"] == "performance" and a["source"]["offset"] >= change for a in alerts)
    assert {a["source"]["topic"] for a in alerts} == {"labels"}


def payloads(spec: MonitorSpec, records: list[InputRecord], split: int | None = None) -> list[bytes]:
    """The alert payloads of ``records`` in batches of BATCH; at record ``split`` the monitor is rebuilt from its state."""
    monitor = PartitionMonitor(spec, partition=0)
    out: list[bytes] = []
    for i in range(0, len(records), BATCH):
        if split is not None and i == split:
            monitor = PartitionMonitor.from_state_items(spec, 0, monitor.state_items(only_dirty=False))
        out.extend(a.payload for a in monitor.process(records[i : i + BATCH]).alerts)
    return out


def test_error_stream_detectors_resume_from_a_checkpoint_as_if_uninterrupted() -> None:
    spec = MonitorSpec.model_validate({"models": {"clf": {"slo": {"accuracy": {"min": 0.85}}}}})
    records = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(binary_events(2, [(8000, 0.13), (10000, 0.2)]))]
    uninterrupted = payloads(spec, records)
    assert any(b'"__error_rate__"' in a for a in uninterrupted)
    assert payloads(spec, records, 9000) == uninterrupted  # mid-drift: ddm / hddm_a state, pending confirmations
