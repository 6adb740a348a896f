"""Performance channels beyond the error rate: recall, precision, log loss, calibration, bias (seeded streams).

Each test builds a stream whose one performance metric changes at a known offset and checks that
its channel alerts after that offset, in the metric's own words; the untouched metrics serve as
their own controls where it matters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from stream_monitor.core.detectors.calibration import ece
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.exchange import Row, decode_rows, encode_rows
from stream_monitor.core.intake import read_inference
from stream_monitor.core.model_pages import page_fingerprint
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec

T0 = 1_767_225_600_000
BATCH = 500


def detector_pages(spec: MonitorSpec) -> MonitorSpec:
    """``spec`` with detector-level pages (these tests name the detector that fired)."""
    data = spec.model_dump(exclude_unset=True)
    data["defaults"] = {**data.get("defaults", {}), "alerting": {"group_by": "detector"}}
    return MonitorSpec.model_validate(data)


def run(spec: MonitorSpec, events: list[dict[str, Any]], pages: str = "detector") -> list[dict[str, Any]]:
    """Every alert of ``events`` through one partition monitor, one page per detector unless ``pages`` is "channel"."""
    monitor = PartitionMonitor(detector_pages(spec) if pages == "detector" else spec, partition=0)
    alerts: list[dict[str, Any]] = []
    records = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]
    for i in range(0, len(records), BATCH):
        result = monitor.process(records[i : i + BATCH])
        assert not result.dead_letters, result.dead_letters[:1]
        alerts.extend(orjson.loads(a.payload) for a in result.alerts)
    return alerts


def fired(alerts: list[dict[str, Any]], feature: str, detector: str | None = None) -> list[dict[str, Any]]:
    """The firing (not escalated) alerts on ``feature`` (by ``detector`` when given)."""
    return [
        a for a in alerts
        if a["feature"] == feature and a["status"] == "firing" and not a["escalated"] and detector in (None, a["detector"])
    ]  # fmt: skip


def confusion_events(seed: int, segments: list[tuple[int, float, float]], prevalence: float = 0.3, **extra: Any) -> list[dict[str, Any]]:
    """A binary classifier's events, labels inline: ``(n, false-negative rate, false-positive rate)`` segments."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for n, fnr, fpr in segments:
        label = rng.random(n) < prevalence
        flip = rng.random(n) < np.where(label, fnr, fpr)
        pred = label ^ flip
        for i in range(n):
            out.append({"model": "clf", "ts": T0 + 1000 * len(out), "prediction": int(pred[i]), "label": int(label[i]), **extra})
    return out


def _spec(model: dict[str, Any]) -> MonitorSpec:
    return MonitorSpec.model_validate({"models": {"clf": model}})


# ------------------------------------------------------------------ recall and precision
@pytest.mark.parametrize("seed", [1, 2])
def test_a_recall_that_falls_raises_recall_alerts_in_recall_points(seed: int) -> None:
    change = 10_000
    alerts = run(MonitorSpec(), confusion_events(seed, [(change, 0.10, 0.05), (20_000, 0.25, 0.05)]))
    recall = fired(alerts, "__recall__")
    assert recall and all(a["source"]["offset"] >= change and a["kind"] == "performance" for a in recall)
    two = fired(alerts, "__recall__", "two_proportion")
    assert two and 0.05 < two[0]["statistic"] < 0.3  # the fall of the recall, in points
    assert "recall fell from" in two[0]["annotations"]["summary"]


def test_a_precision_that_falls_raises_precision_alerts_and_not_recall_ones() -> None:
    change = 10_000
    alerts = run(MonitorSpec(), confusion_events(3, [(change, 0.10, 0.05), (20_000, 0.10, 0.15)]))
    precision = fired(alerts, "__precision__")
    assert precision and all(a["source"]["offset"] >= change for a in precision)
    assert fired(alerts, "__recall__") == []  # false positives leave the recall alone


def test_recall_and_precision_slos_fire_below_their_minimum() -> None:
    spec = _spec({"slo": {"recall": {"min": 0.8}, "precision": {"min": 0.8}}})
    alerts = run(spec, confusion_events(4, [(10_000, 0.10, 0.03), (10_000, 0.30, 0.12)]))
    for channel, detector, metric in (("__recall__", "slo_recall", "recall"), ("__precision__", "slo_precision", "precision")):
        slo = fired(alerts, channel, detector)
        assert slo and slo[0]["source"]["offset"] >= 10_000 and slo[0]["statistic"] < 0.8, channel
        assert f"{metric} {slo[0]['statistic']:.3g} < 0.8 (SLO min)" in slo[0]["annotations"]["summary"]


def test_with_one_page_per_channel_recall_and_precision_page_once_each_in_their_own_words() -> None:
    spec = _spec({"performance_pages": "channel"})
    alerts = run(spec, confusion_events(4, [(10_000, 0.10, 0.03), (10_000, 0.30, 0.12)]), pages="channel")
    for channel, metric in (("__recall__", "recall"), ("__precision__", "precision")):
        pages = fired(alerts, channel)
        assert len(pages) == 1 and pages[0]["source"]["offset"] >= 10_000, channel
        assert [d["name"] for d in pages[0]["evidence"]["detectors"]][0] == pages[0]["detector"]
        assert f"clf {metric}: {metric} fell from" in pages[0]["annotations"]["summary"]


def test_by_default_the_metrics_of_one_model_page_once_together() -> None:
    """The same change as above, default settings: one performance page for the model, naming what moved."""
    alerts = run(MonitorSpec(), confusion_events(4, [(10_000, 0.10, 0.03), (10_000, 0.30, 0.12)]), pages="channel")
    assert {a["fingerprint"] for a in alerts} == {page_fingerprint("clf")}
    firing = [a for a in alerts if a["status"] == "firing"]
    first = firing[0]
    assert not first["escalated"] and first["source"]["offset"] >= 10_000 and first["kind"] == "performance"
    assert all(a["escalated"] for a in firing[1:])  # re-emitted only when the severity rises
    assert len(firing) <= 2
    members = {c["channel"] for a in firing for c in a["evidence"]["channels"]}
    assert {"__recall__", "__precision__"} & members
    assert first["feature"] in members and first["evidence"]["channels"][0]["channel"] == first["feature"]
    assert "The model's performance metrics on this page:" in first["annotations"]["description"]


def test_a_constant_confusion_matrix_raises_nothing() -> None:
    spec = _spec({"slo": {"recall": {"min": 0.8}, "precision": {"min": 0.8}}})
    assert run(spec, confusion_events(5, [(40_000, 0.10, 0.05)])) == []


def _monitor(spec: MonitorSpec, events: list[dict[str, Any]]) -> PartitionMonitor:
    monitor = PartitionMonitor(spec, partition=0)
    monitor.process([InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)])
    return monitor


def test_a_multiclass_model_gets_recall_and_precision_only_for_a_configured_positive_class() -> None:
    classes = ["cat", "dog", "bird"]
    events = [{"model": "clf", "ts": T0 + i, "prediction": classes[i % 3], "label": classes[(i // 2) % 3]} for i in range(60)]
    assert not {"__recall__", "__precision__"} & set(_monitor(MonitorSpec(), events).models["clf"].channels)
    m = _monitor(_spec({"positive_class": "dog"}), events).models["clf"]
    recall, precision = m.channels["__recall__"], m.channels["__precision__"]
    # labels "dog" on 20 rows; predictions "dog" on 20 rows
    assert recall.observations == 20 and precision.observations == 20


def test_a_string_positive_class_names_the_binary_positive() -> None:
    events = [{"model": "clf", "ts": T0 + i, "prediction": "yes" if i % 4 else "no", "label": "yes" if i % 2 else "no"} for i in range(40)]
    spec = _spec({"task": "binary", "positive_class": "yes"})
    m = _monitor(spec, events).models["clf"]
    assert m.channels["__recall__"].observations == 20 and m.channels["__precision__"].observations == 30
    assert "__recall__" not in _monitor(_spec({"task": "binary"}), events).models["clf"].channels  # 1 / True is no class here


# ------------------------------------------------------------------ probabilities: log loss and calibration
def scored_events(seed: int, segments: list[tuple[int, float]]) -> list[dict[str, Any]]:
    """A binary classifier's scores and labels: ``(n, sharpness)``; labels follow 0.5 + (score - 0.5) x sharpness.

    Sharpness 1 is a calibrated model; below 1 the model is overconfident (its scores are more
    extreme than the labels bear out).
    """
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for n, sharpness in segments:
        score = rng.random(n)
        label = rng.random(n) < 0.5 + (score - 0.5) * sharpness
        for i in range(n):
            out.append({"model": "clf", "ts": T0 + 1000 * len(out), "prediction": float(score[i]), "label": int(label[i])})
    return out


def test_an_overconfident_model_raises_a_calibration_alert_with_the_ece() -> None:
    change = 10_000
    alerts = run(MonitorSpec(), scored_events(6, [(change, 1.0), (10_000, 0.5)]))
    cal = fired(alerts, "__calibration__", "ece")
    assert cal and cal[0]["source"]["offset"] >= change
    e = cal[0]["evidence"]["ece"]
    assert e["current"] > e["reference"] + 0.05 and cal[0]["statistic"] == pytest.approx(e["current"], rel=1e-5)
    assert "calibration error (ECE) rose to" in cal[0]["annotations"]["summary"]


def test_a_calibrated_model_raises_no_calibration_or_log_loss_alert() -> None:
    alerts = run(MonitorSpec(), scored_events(7, [(40_000, 1.0)]))
    assert fired(alerts, "__calibration__") == [] and fired(alerts, "__log_loss__") == []


def test_a_log_loss_slo_fires_in_log_loss_units() -> None:
    spec = _spec({"slo": {"log_loss": {"max": 0.6}}})
    alerts = run(spec, scored_events(8, [(10_000, 1.0), (10_000, 0.3)]))
    slo = fired(alerts, "__log_loss__", "slo_log_loss")
    # a calibrated uniform score has a mean log loss of 0.5; an overconfident one more
    assert slo and slo[0]["source"]["offset"] >= 10_000 and slo[0]["statistic"] > 0.6
    assert f"log loss {slo[0]['statistic']:.3g} > 0.6 (SLO max)" in slo[0]["annotations"]["summary"]
    assert fired(alerts, "__log_loss__", "adwin")  # the change-point detectors see the rise too


def test_ece_reads_scores_and_labels_back_from_the_residuals() -> None:
    rng = np.random.default_rng(9)
    score = rng.random(5000)
    label = (rng.random(5000) < score * 0.5).astype(float)  # positives half as often as scored
    bins = np.clip((score * 10).astype(int), 0, 9)
    expected = sum(abs(score[bins == b].mean() - label[bins == b].mean()) * (bins == b).mean() for b in range(10))
    assert ece(score - label) == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------ regression: bias, RMSE
def test_a_biased_regressor_raises_a_signed_error_alert_with_the_rmse() -> None:
    rng = np.random.default_rng(10)
    events = []
    for i, noise in enumerate(rng.normal(0.0, 10.0, 16_000)):
        target = float(rng.normal(100.0, 20.0))
        bias = 6.0 if i >= 8000 else 0.0
        events.append({"model": "reg", "ts": T0 + 1000 * i, "prediction": {"value": target + float(noise) + bias}, "label": target})
    alerts = run(MonitorSpec(), events)
    bias = fired(alerts, "__signed_error__")
    assert bias and all(a["source"]["offset"] >= 8000 for a in bias)
    e = bias[0]["evidence"]
    assert e["change"]["direction"] == "rose" and e["rmse"]["current"] > e["rmse"]["reference"]
    assert "RMSE" in bias[0]["annotations"]["summary"]


# ------------------------------------------------------------------ business cost
COST = {"false_positive": 5, "false_negative": 120, "currency": "EUR"}


def test_a_costlier_error_mix_raises_a_cost_alert_in_money() -> None:
    change = 10_000
    # the error rate barely moves (false positives turn into false negatives), the cost does
    events = confusion_events(11, [(change, 0.10, 0.08), (20_000, 0.25, 0.02)])
    alerts = run(_spec({"cost": COST}), events)
    cost = fired(alerts, "__cost__", "cost_increase")
    assert cost and cost[0]["source"]["offset"] >= change and cost[0]["kind"] == "performance"
    c = cost[0]["evidence"]["cost"]
    # reference: 0.3 x 0.10 x 120 + 0.7 x 0.08 x 5 = 3.88 per prediction; after: 0.3 x 0.25 x 120 + 0.7 x 0.02 x 5 = 9.07
    # (the window still holds predictions from before the change when the alert fires)
    assert 3500 < c["reference_per_1k"] < 4300 and 1.1 * c["reference_per_1k"] < c["current_per_1k"] < 10_500
    summary = cost[0]["annotations"]["summary"]
    assert f"+{c['change_per_1k']:,.0f} EUR per 1k predictions vs warm-up reference ({c['reference_per_1k']:,.0f} → {c['current_per_1k']:,.0f} EUR)" in summary
    assert cost[0]["statistic"] == pytest.approx(c["current_per_1k"] - c["reference_per_1k"], rel=1e-4)


def test_a_cost_slo_fires_above_its_money_limit() -> None:
    spec = _spec({"cost": COST, "slo": {"cost": {"max_per_1k": 6000}}})
    alerts = run(spec, confusion_events(12, [(10_000, 0.10, 0.08), (10_000, 0.25, 0.02)]))
    slo = fired(alerts, "__cost__", "slo_cost")
    assert slo and slo[0]["source"]["offset"] >= 10_000 and slo[0]["statistic"] > 6000 and slo[0]["threshold"] == 6000
    assert f"cost per 1k predictions {slo[0]['statistic']:,.0f} > 6,000 (SLO max) EUR" in slo[0]["annotations"]["summary"]


def test_a_constant_cost_raises_nothing() -> None:
    spec = _spec({"cost": COST, "slo": {"cost": {"max_per_1k": 6000}}})
    assert run(spec, confusion_events(13, [(40_000, 0.10, 0.08)])) == []


def test_each_cost_model_prices_each_labelled_prediction() -> None:
    def cost_channel(model: dict[str, Any], events: list[dict[str, Any]]) -> list[float]:
        spec = MonitorSpec.model_validate({"defaults": {"reference": {"size": 50}}, "models": {"m": model}})
        ch = _monitor(spec, events).models["m"].channels["__cost__"]
        assert ch.reference is not None
        return ch.reference.sorted_sample.tolist()

    # the cost channel's reference is twice the model's: its first 100 values
    classes = [("cat", "dog"), ("dog", "dog"), ("bird", "cat")]  # (label, predicted)
    events = [{"model": "m", "ts": T0 + i, "prediction": classes[i % 3][1], "label": classes[i % 3][0]} for i in range(120)]
    matrix = {"cat": {"dog": 3.0}, "bird": {"cat": 7.5}}
    assert cost_channel({"cost": {"matrix": matrix}}, events) == sorted([3.0, 0.0, 7.5][i % 3] for i in range(100))
    reg = [{"model": "m", "ts": T0 + i, "prediction": 10.0 + (2.0 if i % 2 else -1.0), "label": 10.0} for i in range(120)]
    assert sorted(set(cost_channel({"cost": {"over_per_unit": 1.5, "under_per_unit": 4.0}}, reg))) == [3.0, 4.0]  # 2 over, 1 under
    assert sorted(set(cost_channel({"cost": {"per_unit": 2.0}}, reg))) == [2.0, 4.0]


def test_a_cost_model_needs_exactly_one_family() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        MonitorSpec.model_validate({"models": {"m": {"cost": {"false_positive": 1, "per_unit": 2}}}})
    with pytest.raises(ValueError, match="exactly one of"):
        MonitorSpec.model_validate({"models": {"m": {"cost": {"currency": "USD"}}}})


# ------------------------------------------------------------------ model versions
def versioned_events(seed: int, segments: list[tuple[int, str | None, float, float]]) -> list[dict[str, Any]]:
    """A classifier's events: ``(n, model_version, mean score, error rate)`` segments, features unchanged."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for n, version, mean, rate in segments:
        score = np.clip(rng.normal(mean, 0.1, n), 0.0, 1.0)
        wrong = rng.random(n) < rate
        for i in range(n):
            pred = int(score[i] >= 0.5)
            e = {"model": "clf", "ts": T0 + 1000 * len(out), "features": {"x": float(rng.normal())},
                 "prediction": {"y_pred_proba": float(score[i]), "y_pred": pred}, "label": pred ^ int(wrong[i])}  # fmt: skip
            if version is not None:
                e["model_version"] = version
            out.append(e)
    return out


NEW_MODEL = [(8000, "v1", 0.3, 0.10), (12_000, "v2", 0.45, 0.25)]  # v2 scores higher and errs more


def test_a_new_model_version_starts_new_references_and_the_switch_raises_nothing() -> None:
    unversioned = run(MonitorSpec(), versioned_events(14, [(n, None, m, r) for n, _, m, r in NEW_MODEL]))
    assert fired(unversioned, "__prediction__.y_pred_proba") and fired(unversioned, "__error_rate__")  # as one model: drift
    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    events = versioned_events(14, NEW_MODEL)
    alerts: list[dict[str, Any]] = []
    for i in range(0, len(events), 777):  # batches that cut through the switch
        batch = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i + k, e["ts"])) for k, e in enumerate(events[i : i + 777])]
        alerts.extend(orjson.loads(a.payload) for a in monitor.process(batch).alerts)
    # the labels here follow the predictions, so the target's own channel (kept across versions) may move
    others = [a for a in alerts if a["feature"] != "__label__"]
    assert others == [], [(a["feature"], a["detector"], a["source"]["offset"]) for a in others][:5]
    assert all(a["model_version"] == "v2" for a in alerts)
    m = monitor.models["clf"]
    assert m.versions == ["v1", "v2"]
    ref = m.channels["__error_rate__"].reference
    assert ref is not None and 0.2 < ref.mean < 0.3  # v2's own error rate
    assert m.channels["x"].reference is not None and m.channels["x"].observations == len(events)  # features keep theirs


def test_a_version_seen_before_does_not_restart_the_references() -> None:
    split = versioned_events(15, [(4000, "v1", 0.3, 0.1), (200, "v2", 0.3, 0.1), (2000, "v1", 0.3, 0.1), (200, "v2", 0.3, 0.1)])
    m = _monitor(MonitorSpec(), split).models["clf"]
    assert m.versions == ["v1", "v2"]
    assert m.channels["__error_rate__"].observations == 2400  # reset once, when v2 first showed (at 4,000 of 6,400)


def test_a_version_switch_after_a_checkpoint_is_still_a_switch() -> None:
    events = versioned_events(16, NEW_MODEL)
    records = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]

    def alerts_of(split: int | None) -> tuple[list[bytes], list[str]]:
        monitor = PartitionMonitor(MonitorSpec(), partition=0)
        out: list[bytes] = []
        for i in range(0, len(records), BATCH):
            if split is not None and i == split:
                monitor = PartitionMonitor.from_state_items(MonitorSpec(), 0, monitor.state_items(only_dirty=False))
            out.extend(a.payload for a in monitor.process(records[i : i + BATCH]).alerts)
        return out, monitor.models["clf"].versions

    uninterrupted = alerts_of(None)
    assert uninterrupted[1] == ["v1", "v2"] and not [a for a in uninterrupted[0] if b'"__label__"' not in a]
    assert alerts_of(4000) == uninterrupted  # restored before the switch
    assert alerts_of(12_000) == uninterrupted  # and after it


def test_a_new_model_version_restarts_the_references_of_rows_judged_across_partitions() -> None:
    """``run``'s path: records of 3 input partitions cross as rows records, are taken and released in event-time order."""
    events = versioned_events(17, NEW_MODEL)
    parts: list[list[InputRecord]] = [[] for _ in range(3)]
    for i, e in enumerate(events):  # runs of events on each partition, as a sticky partitioner makes
        p = (i // 97) % 3
        parts[p].append(InputRecord(orjson.dumps(e), SourcePosition("in", p, len(parts[p]), e["ts"])))
    reference = PartitionMonitor(MonitorSpec(), partition=0)
    want = reference.process([InputRecord(orjson.dumps(e), SourcePosition("in", 0, i, e["ts"])) for i, e in enumerate(events)]).alerts

    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    got = []
    pos, sizes = [0, 0, 0], [1, 1, 1]  # every partition's first record first: none holds the order back unseen
    while any(pos[p] < len(parts[p]) for p in range(3)):
        for p in range(3):
            batch = parts[p][pos[p] : pos[p] + sizes[p]]
            pos[p] += len(batch)
            sizes[p] = 150 + 211 * p
            rows: list[Row] = []
            for model, model_rows in read_inference(MonitorSpec(), batch).rows.items():
                rows += decode_rows(encode_rows(model, model_rows))[1]
            assert monitor.take(rows) == []
            result = monitor.release()
            assert not result.dead_letters
            got += result.alerts
    got += monitor.release(final=True).alerts

    m = monitor.models["clf"]
    assert m.versions == ["v1", "v2"]
    ref = m.channels["__error_rate__"].reference
    assert ref is not None and 0.2 < ref.mean < 0.3  # v2's own error rate
    assert m.channels["x"].observations == len(events)  # features keep theirs
    assert not [a for a in got if a.event.feature != "__label__"]
    # alert_id and source name the input partition and offset, which differ from the one-partition reference
    view = lambda alerts: [(a.event.feature, a.event.detector, a.event.status, a.event.severity, a.event.event_time, a.event.statistic) for a in alerts]  # noqa: E731
    assert want and view(got) == view(want)
