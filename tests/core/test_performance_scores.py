"""F1 and ROC AUC: their channels, ``auc_drop`` and the ``f1`` / ``roc_auc`` SLOs (seeded streams).

A concept drift with unchanged scores (labels that stop following the score) must make the
window's ROC AUC fall and page; the same stream without the drift must stay silent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stream_monitor.core.detectors.auc import roc_auc
from stream_monitor.core.detectors.slo import f1_of_share
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_performance_channels import T0, confusion_events, fired, run


def _spec(model: dict[str, Any]) -> MonitorSpec:
    return MonitorSpec.model_validate({"models": {"clf": model}})


def concept_events(seed: int, segments: list[tuple[int, float]]) -> list[dict[str, Any]]:
    """A calibrated binary classifier's scores and labels: ``(n, share of labels that ignore the score)`` segments.

    The scores keep one distribution throughout (the inputs do not drift); in a segment with a
    share q > 0, that share of labels is drawn at the base rate, whatever the score (the concept moved).
    """
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for n, ignore in segments:
        score = rng.random(n)
        follows = rng.random(n) < np.where(rng.random(n) < ignore, 0.5, score)
        for i in range(n):
            out.append({"model": "clf", "ts": T0 + 1000 * len(out), "prediction": float(score[i]), "label": int(follows[i])})
    return out


def _pairs_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater) / (pos.size * neg.size)


def test_roc_auc_is_the_share_of_ordered_pairs_ties_counting_half() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(400), 2)  # many ties
    labels = (rng.random(400) < scores).astype(int)
    assert roc_auc(scores + 2.0 * labels) == pytest.approx(_pairs_auc(scores, labels), abs=1e-12)
    assert roc_auc(np.ones(3)) is None  # one class only


def test_a_concept_drift_makes_the_roc_auc_fall_and_the_slo_page() -> None:
    change = 10_000
    events = concept_events(21, [(change, 0.0), (10_000, 0.6)])
    alerts = run(_spec({"slo": {"roc_auc": {"min": 0.75}}}), events)
    slo = fired(alerts, "__roc_auc__", "slo_roc_auc")
    assert slo and slo[0]["source"]["offset"] >= change and slo[0]["statistic"] < 0.75
    assert slo[0]["kind"] == "performance"
    assert f"ROC AUC {slo[0]['statistic']:.3g} < 0.75 (SLO min)" in slo[0]["annotations"]["summary"]
    drop = fired(alerts, "__roc_auc__", "auc_drop")
    assert drop and drop[0]["source"]["offset"] >= change
    e = drop[0]["evidence"]["roc_auc"]
    assert e["current"] < e["reference"] - 0.05 and drop[0]["statistic"] == pytest.approx(e["current"], rel=1e-5)
    assert drop[0]["p_value"] <= 1e-3 and "ROC AUC fell from" in drop[0]["annotations"]["summary"]
    description = drop[0]["annotations"]["description"]
    assert f"auc_drop {drop[0]['statistic']:.3g} < threshold" in description  # a fall breaches: below its threshold
    assert f"ROC AUC: {e['reference']:.3g} in the reference, {e['current']:.3g} in the window." in description


def test_with_one_page_per_channel_the_auc_pages_once_in_its_own_words() -> None:
    alerts = run(_spec({"slo": {"roc_auc": {"min": 0.75}}, "performance_pages": "channel"}), concept_events(22, [(10_000, 0.0), (10_000, 0.6)]), pages="channel")
    pages = fired(alerts, "__roc_auc__")
    assert len(pages) == 1 and pages[0]["source"]["offset"] >= 10_000
    assert {d["name"] for d in pages[0]["evidence"]["detectors"]} <= {"auc_drop", "slo_roc_auc"}
    assert " > threshold" not in pages[0]["annotations"]["description"]  # both breach below their threshold
    assert "clf ROC AUC:" in pages[0]["annotations"]["summary"]


def test_without_the_concept_drift_the_auc_and_f1_stay_silent() -> None:
    alerts = run(_spec({"slo": {"roc_auc": {"min": 0.75}, "f1": {"min": 0.6}}}), concept_events(23, [(40_000, 0.0)]))
    assert alerts == [], [(a["feature"], a["detector"]) for a in alerts][:10]


def test_an_f1_that_falls_raises_f1_alerts_and_its_slo_in_f1_units() -> None:
    change = 10_000
    events = confusion_events(24, [(change, 0.10, 0.05), (10_000, 0.35, 0.10)])
    alerts = run(_spec({"slo": {"f1": {"min": 0.75}}}), events)
    assert fired(alerts, "__f1__", "two_proportion") and all(a["source"]["offset"] >= change for a in fired(alerts, "__f1__"))
    slo = fired(alerts, "__f1__", "slo_f1")
    assert slo and slo[0]["source"]["offset"] >= change and slo[0]["statistic"] < 0.75
    assert f"F1 {slo[0]['statistic']:.3g} < 0.75 (SLO min)" in slo[0]["annotations"]["summary"]
    e = slo[0]["evidence"]["f1"]
    assert e["reference"] > 0.75 > e["current"] and e["current"] == pytest.approx(slo[0]["statistic"], rel=1e-5)


def test_the_f1_channel_holds_true_positives_among_the_rows_that_count() -> None:
    # TP, FP, FN, TN: the F1 channel sees the first three; its share J gives F1 = 2J / (1 + J)
    pairs = [(1, 1)] * 6 + [(1, 0)] * 2 + [(0, 1)] * 2 + [(0, 0)] * 10
    events = [{"model": "clf", "ts": T0 + i, "prediction": p, "label": y} for i, (p, y) in enumerate(pairs)]
    from tests.core.test_performance_channels import _monitor

    channel = _monitor(MonitorSpec(), events).models["clf"].channels["__f1__"]
    assert channel.observations == 10
    precision = recall = 6 / 8
    assert f1_of_share(6 / 10) == pytest.approx(2 * precision * recall / (precision + recall))


def test_f1_and_roc_auc_slos_are_validated_and_absent_unless_configured() -> None:
    with pytest.raises(ValueError):
        _spec({"slo": {"roc_auc": {"min": 1.5}}})
    spec = MonitorSpec()
    assert "slo_f1" not in spec.channel_settings("clf", "__f1__", "numeric").numeric_detectors
    assert spec.channel_settings("clf", "__roc_auc__", "numeric").numeric_detectors == ("auc_drop",)
    with_slo = _spec({"slo": {"f1": {"min": 0.7}, "roc_auc": {"min": 0.7}}})
    assert "slo_f1" in with_slo.channel_settings("clf", "__f1__", "numeric").numeric_detectors
    assert "slo_roc_auc" in with_slo.channel_settings("clf", "__roc_auc__", "numeric").numeric_detectors
