"""Alert evidence: what moved, which way and how far, in the channel's own terms; plain-word texts; kinds."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pytest

from stream_monitor.core.alert import AlertEvent, kind_of
from stream_monitor.core.events import SourcePosition, format_event_time
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec

T0 = 1_767_225_600_000
# detector-level pages: each detector's evidence on its own (a channel's page leads with one of them)
SPEC = MonitorSpec.model_validate(
    {"defaults": {"alerting": {"group_by": "detector"}}, "models": {"credit-v2": {"labels": {"team": "risk-ml", "owner": "credit-oncall"}}}}
)


def _run(events: list[dict[str, Any]], batch: int = 500, spec: MonitorSpec = SPEC) -> list[AlertEvent]:
    recs = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]
    monitor = PartitionMonitor(spec, partition=0)
    out: list[AlertEvent] = []
    for i in range(0, len(recs), batch):
        out.extend(a.event for a in monitor.process(recs[i : i + batch]).alerts)
    return out


def _stream(n: int, shift_at: int, value, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"model": "credit-v2", "ts": T0 + 10 * i, "features": {"f": value(rng, i >= shift_at)}} for i in range(n)]


def _numeric_values(events: list[dict[str, Any]]) -> np.ndarray:
    return np.array([e["features"]["f"] for e in events if e["features"]["f"] is not None], dtype=np.float64)


def _first(alerts: list[AlertEvent], detector: str, status: str = "firing") -> AlertEvent:
    return next(a for a in alerts if a.detector == detector and a.status == status and not a.escalated)


@pytest.mark.parametrize("sign", [1, -1])
def test_a_mean_shift_says_which_way_how_far_in_units_and_sd_since_when_and_who_owns_it(sign: int) -> None:
    shift = sign * 0.2
    events = _stream(8000, 4000, lambda rng, after: 0.35 + rng.gauss(0, 0.1) + (shift if after else 0.0))
    alerts = _run(events)
    ks = _first(alerts, "ks")
    ev = ks.evidence
    assert ev is not None and ev["type"] == "numeric" and ev["basis"] == "window"
    # the reference is the warm-up (first 1000 values); current is the window the test judged
    values = _numeric_values(events)
    ref = values[:1000]
    assert ev["reference"]["mean"] == pytest.approx(ref.mean(), rel=1e-5)
    assert ev["reference"]["p50"] == pytest.approx(np.quantile(ref, 0.5), rel=1e-5)
    end = ks.source.offset + 1  # the record at which the alert was raised closes the window
    window = values[end - ks.window.count : end]
    assert ev["current"]["mean"] == pytest.approx(window.mean(), rel=1e-5)
    assert ev["current"]["p95"] == pytest.approx(np.quantile(window, 0.95), rel=1e-5)
    assert ev["change"]["direction"] == ("rose" if sign > 0 else "fell")
    assert ev["change"]["mean"] == pytest.approx(window.mean() - ref.mean(), rel=1e-4)
    assert ev["change"]["mean_sd"] == pytest.approx((window.mean() - ref.mean()) / ref.std(), rel=1e-4)
    assert ev["detector"]["statistic"] == ks.statistic and ev["detector"]["threshold"] == ks.threshold
    summary = ks.annotations["summary"]
    assert summary.startswith(f"credit-v2 f: mean {'rose' if sign > 0 else 'fell'} from ")
    assert f"since {ks.starts_at}" in summary and "owner: credit-oncall" in summary and "team: risk-ml" in summary
    assert " sd)" in summary and "ks" not in summary  # the detector's statistic is in the description, not the headline
    assert "Kolmogorov-Smirnov" in ks.annotations["description"] and "Reference (warmup" in ks.annotations["description"]


def test_a_change_point_alert_describes_the_values_it_judged() -> None:
    events = _stream(8000, 4000, lambda rng, after: rng.gauss(10.0, 2.0) + (3.0 if after else 0.0))
    adwin = _first(_run(events), "adwin")
    ev = adwin.evidence
    assert ev["basis"] == "since_change" and 0 < ev["current"]["count"] <= adwin.window.count
    # its statistic is the shift in reference sd of exactly the values the evidence describes
    assert ev["change"]["mean_sd"] == pytest.approx(adwin.statistic, rel=1e-4)
    assert "since the change was detected" in adwin.annotations["description"]


def test_resolved_alerts_say_what_came_back() -> None:
    events = _stream(14000, 4000, lambda rng, after: rng.gauss(5.0, 1.0) + (2.0 if after else 0.0))
    events += _stream(8000, 10**9, lambda rng, after: rng.gauss(5.0, 1.0), seed=4)
    for i, e in enumerate(events):
        e["ts"] = T0 + 10 * i
    resolved = _first(_run(events), "ks", "resolved")
    ev = resolved.evidence
    assert abs(ev["change"]["mean_sd"]) < 0.5
    assert resolved.annotations["summary"].startswith("resolved: credit-v2 f: mean back to ")
    assert f"at {resolved.ends_at}" in resolved.annotations["summary"]


def test_categorical_evidence_lists_top_categories_and_the_unseen_share() -> None:
    cats = ["a", "b", "c"]

    def value(rng: random.Random, after: bool) -> str:
        return "XX" if after and rng.random() < 0.3 else rng.choice(cats)

    events = _stream(8000, 4000, value)
    alerts = _run(events)
    unseen = _first(alerts, "unseen_category_rate")
    ev = unseen.evidence
    assert ev["type"] == "categorical" and {c["category"] for c in ev["categories"]} == set(cats)
    end = unseen.source.offset + 1
    window = [e["features"]["f"] for e in events[end - unseen.window.count : end]]
    assert ev["unseen"]["count"] == window.count("XX")
    assert ev["unseen"]["current_share"] == pytest.approx(window.count("XX") / len(window), rel=1e-5)
    shares = {c["category"]: c for c in ev["categories"]}
    ref = [e["features"]["f"] for e in events[:1000]]
    assert shares["a"]["reference_share"] == pytest.approx(ref.count("a") / 1000, rel=1e-5)
    assert shares["a"]["current_share"] == pytest.approx(window.count("a") / len(window), rel=1e-5)
    rate = ev["rate"]
    assert rate["current"] == pytest.approx(unseen.statistic, rel=1e-5) and rate["reference"] == 0.0
    assert "unseen categories" in unseen.annotations["summary"] and "up from 0 % in the reference" in unseen.annotations["summary"]
    assert "excess over the reference" in unseen.annotations["description"]
    chi2 = _first(alerts, "chi2")
    assert "category mix changed: unseen categories 0 % → " in chi2.annotations["summary"]


def test_rate_evidence_is_the_excess_over_the_reference_rate() -> None:
    def value(rng: random.Random, after: bool) -> float | None:
        return None if rng.random() < (0.3 if after else 0.05) else rng.gauss(0, 1)

    events = _stream(8000, 4000, value)
    alert = _first(_run(events), "missing_rate")
    rate = alert.evidence["rate"]
    end = alert.source.offset + 1
    window = [e["features"]["f"] for e in events[end - alert.window.count : end]]
    ref = [e["features"]["f"] for e in events[:1000]]
    assert rate["current"] == pytest.approx(window.count(None) / len(window), rel=1e-5)
    assert rate["reference"] == pytest.approx(ref.count(None) / 1000, rel=1e-5)
    assert rate["excess"] == pytest.approx(alert.statistic, rel=1e-5)
    assert alert.annotations["summary"].startswith("credit-v2 f: missing ")
    assert "up from" in alert.annotations["summary"]


def test_evidence_does_not_depend_on_batching() -> None:
    events = _stream(8000, 4000, lambda rng, after: rng.gauss(0.0, 1.0) + (1.0 if after else 0.0))
    a = [x.model_dump() for x in _run(events, batch=1000)]
    b = [x.model_dump() for x in _run(events, batch=37)]
    assert a and a == b


def test_reserved_channels_have_their_kind() -> None:
    assert kind_of("__label__", False) == "performance"
    assert kind_of("__error__", False) == "performance"
    assert kind_of("__latency__", False) == "performance"
    assert kind_of("__prediction__", False) == "prediction_drift"
    assert kind_of("__prediction__.y", False) == "prediction_drift"
    assert kind_of("__label__", True) == "data_quality"
    rng = random.Random(1)
    events = [
        {"model": "credit-v2", "ts": T0 + 10 * i, "label": int(rng.random() < (0.1 if i < 4000 else 0.6)), "prediction": 0.5}
        for i in range(8000)
    ]
    label_alerts = [a for a in _run(events) if a.feature == "__label__"]
    assert label_alerts and {a.kind for a in label_alerts} == {"performance"}
    assert label_alerts[0].annotations["summary"].startswith("credit-v2 label: ")


def test_event_times_in_texts_are_the_alerts_own() -> None:
    events = _stream(8000, 4000, lambda rng, after: rng.gauss(0.0, 1.0) + (1.0 if after else 0.0))
    for a in _run(events):
        if a.status == "firing":
            assert format_event_time(T0) < a.starts_at <= a.event_time
            assert a.starts_at in a.annotations["summary"]


def test_the_readme_example_alert_is_what_the_demo_stream_produces() -> None:
    from pathlib import Path

    from stream_monitor.synthetic import demo_streams, generate_events

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("A real firing alert of the demo stream") :]
    documented = orjson.loads(section[section.index("```json") + len("```json") : section.index("\n```\n")])
    spec = MonitorSpec.model_validate({
        "instance": "demo", "labels": {"env": "demo"},
        "models": {"fraud-v3": {"labels": {"team": "risk-ml", "owner": "fraud-oncall"},
                                "annotations": {"runbook_url": "https://runbooks.example/fraud-v3"}}},
    })  # fmt: skip
    fraud, _ = demo_streams(60000, 42)
    recs = [InputRecord(orjson.dumps(e), SourcePosition("inference-events", 0, i, 0)) for i, e in enumerate(generate_events(fraud))]
    monitor = PartitionMonitor(spec, partition=0)
    for i in range(0, documented["source"]["offset"] + 1, 2000):
        alerts = [a.event for a in monitor.process(recs[i : i + 2000]).alerts]
        if alerts:
            assert alerts[0].model_dump() == documented
            return
    raise AssertionError("the demo stream raised no alert by the documented offset")


def test_an_orphaned_change_point_episode_resolves_with_window_evidence_whatever_came_before() -> None:
    """A config change that removes a firing change-point detector: its resolve describes the window,
    the same after a state round trip as without one."""
    from stream_monitor.core.channel import ChannelMonitor
    from stream_monitor.core.settings import AlertingSettings, DetectionSettings, ReferenceSettings, WindowSettings

    rng = random.Random(8)
    values = [rng.gauss(0, 1) + (3.0 if 2000 <= i < 3000 else 0.0) for i in range(9000)]
    rows = list(range(len(values)))
    times = [T0 + 1000 * i for i in rows]
    full = DetectionSettings(
        window=WindowSettings(size=500, step=100), reference=ReferenceSettings(size=1000), alerting=AlertingSettings(group_by="detector")
    )
    fewer = full.model_copy(update={"numeric_detectors": ("ks",)})
    resolves = []
    for restart in (False, True):
        old = ChannelMonitor("m", "x", "numeric", full, partition=0, ordinal=0)
        old.ingest(values[:2600], rows[:2600], times, rows)
        assert "adwin" in old.firing
        new = ChannelMonitor("m", "x", "numeric", fewer, partition=0, ordinal=0, baseline=old.reference)
        new.adopt_open_episodes(old)
        out = new.ingest(values[2600:2650], rows[2600:2650], times, rows)
        if restart:
            new.point_basis = 12345  # whatever a previous evaluation left behind
        out += new.ingest(values[2650:], rows[2650:], times, rows)
        resolves.append(next(t.evidence for t in out if t.detector == "adwin" and t.transition == "resolved"))
    assert resolves[0] == resolves[1] and resolves[0]["basis"] == "window"


def test_a_class_label_or_mismatch_reads_as_a_share_not_a_mean() -> None:
    rng = random.Random(2)
    events = []
    for i in range(8000):
        label = "yes" if rng.random() < (0.1 if i < 4000 else 0.5) else "no"
        events.append({"model": "credit-v2", "ts": T0 + 10 * i, "prediction": 0, "label": 1 if label == "yes" else 0})
    alerts = _run(events)
    err = _first([a for a in alerts if a.feature == "__error__"], "ks")
    assert err.evidence["binary"] is True and err.kind == "performance"
    window_rate = err.evidence["current"]["mean"]
    assert err.annotations["summary"].startswith("credit-v2 prediction error: error rate rose from ")
    assert f"to {window_rate * 100:.3g} %" in err.annotations["summary"] and "p50" not in err.annotations["summary"]
    label = _first([a for a in alerts if a.feature == "__label__"], "ks")
    assert "label: share of 1s rose from " in label.annotations["summary"]


def test_evidence_that_cannot_be_computed_never_stops_the_alert() -> None:
    from stream_monitor.core import detectors as det
    from stream_monitor.core.evidence import channel_evidence

    class Broken:
        reference = object()  # neither numeric nor categorical
        point_basis = 0

        def window_values(self, last: int | None = None) -> np.ndarray:
            raise RuntimeError("ring gone")

        def window_flags(self) -> np.ndarray:
            raise RuntimeError("ring gone")

    assert channel_evidence(Broken(), "ks", det.Evaluation(0.3, 0.1, None, True, "warning")) is None  # type: ignore[arg-type]


def test_every_registered_detector_says_what_its_statistic_means() -> None:
    """An alert's evidence carries ``meaning`` from MEANINGS; a detector without one would say only its name."""
    from stream_monitor.core import detectors as det
    from stream_monitor.core.meanings import MEANINGS

    missing = sorted(name for name in det.REGISTRY if name not in MEANINGS)
    assert missing == [], f"detectors without a meaning: {missing}"
    assert all(len(MEANINGS[name]) > len(name) + 20 for name in det.REGISTRY)
