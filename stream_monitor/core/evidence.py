"""Evidence for an alert: what moved on a channel, which way and how far, in the channel's own terms.

Computed only when a lifecycle transition is about to become an alert (rarely), from the channel's
reference and the window ring buffers at that evaluation, so it depends on event time and on the
observation count alone, never on batching. :func:`channel_evidence` gives plain data (the
alert's ``evidence`` field); :func:`evidence_texts` gives the plain-words summary and description.

>>> import numpy as np
>>> from stream_monitor.core.reference import NumericReference
>>> ref = NumericReference.from_values(np.linspace(0.0, 1.0, 101), 0, 0, "warmup")
>>> ev = numeric_evidence(ref, np.linspace(0.0, 1.0, 101) + 0.5)
>>> ev["change"]
{'direction': 'rose', 'mean': 0.5, 'mean_sd': 1.71499}
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import structlog

from stream_monitor.core import detectors as det
from stream_monitor.core.meanings import meaning
from stream_monitor.core.reference import CategoricalReference, NumericReference, Reference
from stream_monitor.core.spec import split_per_class

log = structlog.get_logger("stream_monitor.core")

TOP_CATEGORIES = 5  # categories listed in the evidence of a categorical channel
HISTOGRAM_BINS = 20  # equal-width bins over the reference's range, for reports
QUANTILES = (("p5", 0.05), ("p50", 0.5), ("p95", 0.95))



def num(x: float | None) -> float | None:
    """A figure as published: 6 significant digits, ``None`` when missing or not finite.

    >>> num(0.123456789), num(12345678.9), num(float("inf"))
    (0.123457, 12345700.0, None)
    """
    if x is None or not np.isfinite(x):
        return None
    return float(f"{float(x):.6g}")


def _summary(values: np.ndarray) -> dict[str, Any]:
    if values.size == 0:
        return {"count": 0}
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: a non-finite spread is published as null
        qs = np.quantile(values, [q for _, q in QUANTILES])
        out: dict[str, Any] = {"count": int(values.size), "mean": num(values.mean()), "sd": num(values.std())}
    out.update((name, num(v)) for (name, _), v in zip(QUANTILES, qs, strict=True))
    return out


def numeric_evidence(ref: NumericReference, current: np.ndarray) -> dict[str, Any]:
    """Reference vs current mean, sd and quantiles of a numeric channel, and the change of the mean."""
    # mean and sd over every reference value (the sample may be a quantile sketch of them)
    reference = {"kind": ref.kind} | _summary(ref.sorted_sample) | {"count": ref.count, "mean": num(ref.mean), "sd": num(ref.std)}
    reference.update(missing_rate=num(ref.missing_rate), invalid_rate=num(ref.invalid_rate))
    out: dict[str, Any] = {"type": "numeric", "reference": reference, "current": _summary(current)}
    if ref.sorted_sample.size and current.size:
        out["histogram"] = histogram(ref.sorted_sample, current)
    if _binary(ref.sorted_sample) and _binary(current):
        out["binary"] = True  # 0/1 values (a class label, a mismatch): the mean is the share of 1s
    if current.size:
        with np.errstate(over="ignore", invalid="ignore"):
            delta = float(current.mean()) - ref.mean
        direction = "rose" if delta > 0 else "fell" if delta < 0 else "unchanged"
        out["change"] = {"direction": direction, "mean": num(delta), "mean_sd": num(delta / ref.scale)}
    return out


def _binary(values: np.ndarray) -> bool:
    return bool(values.size) and bool(np.all((values == 0.0) | (values == 1.0)))


def histogram(reference: np.ndarray, current: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """Shares of reference and current values in equal-width bins over the reference's range.

    Current values below or above that range are counted apart (``current_below``, ``current_above``).

    >>> h = histogram(np.array([0.0, 1.0, 2.0, 3.0]), np.array([2.5, 3.0, 9.0]), bins=3)
    >>> h["edges"], h["reference"], h["current"], h["current_above"]
    ([0.0, 1.0, 2.0, 3.0], [0.25, 0.25, 0.5], [0.0, 0.0, 0.666667], 0.333333)
    """
    lo, hi = float(reference[0]), float(reference[-1])
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0 if np.isfinite(lo) else 1.0
        lo = hi - 1.0
    edges = np.linspace(lo, hi, bins + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        ref_counts = np.histogram(np.clip(reference, lo, hi), edges)[0]
        inside = current[(current >= lo) & (current <= hi)]
        cur_counts = np.histogram(inside, edges)[0]
    n = current.size
    return {
        "edges": [num(e) for e in edges],
        "reference": [num(c / reference.size) for c in ref_counts],
        "current": [num(c / n) for c in cur_counts],
        "current_below": num(int(np.count_nonzero(current < lo)) / n),
        "current_above": num(int(np.count_nonzero(current > hi)) / n),
    }


def categorical_evidence(ref: CategoricalReference, codes: np.ndarray) -> dict[str, Any]:
    """Top categories with reference and current shares, and the share of unseen categories."""
    unseen = len(ref.categories)
    ref_total = int(ref.counts.sum())
    cur = np.bincount(codes, minlength=unseen + 1) if codes.size else np.zeros(unseen + 1, dtype=np.int64)
    cur_total = int(codes.size)
    ref_share = ref.counts / ref_total if ref_total else np.zeros(unseen)
    cur_share = cur / cur_total if cur_total else np.zeros(unseen + 1)
    order = sorted(range(unseen), key=lambda i: (-max(ref_share[i], cur_share[i]), ref.categories[i]))[:TOP_CATEGORIES]
    return {
        "type": "categorical",
        "reference": {"kind": ref.kind, "count": ref.count, "categories": ref.distinct,
                      "missing_rate": num(ref.missing_rate), "invalid_rate": num(ref.invalid_rate)},  # fmt: skip
        "current": {"count": cur_total},
        "categories": [
            {"category": ref.categories[i], "reference_share": num(ref_share[i]), "current_share": num(cur_share[i])}
            for i in order
        ],
        "unseen": {"reference_share": 0.0, "current_share": num(cur_share[unseen]), "count": int(cur[unseen])},
    }


def rate_evidence(detector: str, flags: np.ndarray, ref_rate: float, threshold: float | None) -> dict[str, Any] | None:
    """The window's rate of a quality detector against the reference's; ``None`` when nothing counts."""
    counts = np.bincount(flags, minlength=det.FLAG_OUTSIDE + 1)
    total = int(counts.sum())
    if detector == "missing_rate":
        hit = int(counts[det.FLAG_MISSING])
    else:
        total -= int(counts[det.FLAG_MISSING])
        hit = int(counts[det.FLAG_OUTSIDE]) if detector == "unseen_category_rate" else int(counts[det.FLAG_INVALID] + counts[det.FLAG_OUTSIDE])
    if total <= 0:
        return None
    rate = hit / total
    return {"name": detector, "current": num(rate), "reference": num(ref_rate), "excess": num(rate - ref_rate),
            "threshold_excess": num(threshold), "count": hit, "of": total}  # fmt: skip


class EvidenceSource(Protocol):
    """What :func:`channel_evidence` reads of a channel (``ChannelMonitor`` provides it)."""

    reference: Reference | None
    point_basis: int

    def window_values(self, last: int | None = None) -> np.ndarray:
        """The window's present values, oldest first (the newest ``last`` when given)."""

    def window_flags(self) -> np.ndarray:
        """The window's observation flags, oldest first."""


def channel_evidence(ch: EvidenceSource, detector: str, evaluation: det.Evaluation) -> dict[str, Any] | None:
    """The evidence of ``detector``'s evaluation on channel ``ch``, read from its reference and window.

    For a change-point detector "current" is the values it judged (those since its trip, or since
    the last evaluation once it fires); for the others, the whole window. Evidence never stops an
    alert: should computing it fail, the alert goes out without it (and the failure is logged).
    """
    try:
        return _channel_evidence(ch, detector, evaluation)
    except Exception as exc:  # the alert matters more than its evidence
        log.warning("alert_evidence_failed", detector=detector, error=f"{type(exc).__name__}: {exc}"[:200])
        return None


def _channel_evidence(ch: EvidenceSource, detector: str, evaluation: det.Evaluation) -> dict[str, Any] | None:
    ref = ch.reference
    if ref is None:
        return None
    kind = det.REGISTRY.get(detector)
    point = kind is not None and kind.family == "point" and ch.point_basis > 0
    values = ch.window_values(last=max(1, ch.point_basis) if point else None)
    if isinstance(ref, NumericReference):
        out = numeric_evidence(ref, values)
        out["range"] = {"low": num(getattr(ch, "lo", None)), "high": num(getattr(ch, "hi", None))}
    else:
        out = categorical_evidence(ref, values)
    out["basis"] = "since_change" if point else "window"
    out["detector"] = {
        "name": detector,
        "statistic": num(evaluation.statistic),
        "threshold": num(evaluation.threshold),
        "p_value": num(evaluation.p_value),
        "meaning": meaning(detector, getattr(ch, "name", "")),
    }
    if kind is not None and kind.quality:
        ref_rate = {"missing_rate": ref.missing_rate, "out_of_range_rate": ref.invalid_rate}.get(detector, 0.0)
        out["rate"] = rate_evidence(detector, ch.window_flags(), ref_rate, evaluation.threshold)
    elif isinstance(ref, NumericReference):
        out.update(performance_evidence(getattr(ch, "name", ""), ref, values, getattr(ch, "settings", None)))
    return out


def performance_evidence(channel: str, ref: NumericReference, values: np.ndarray, settings: Any = None) -> dict[str, Any]:
    """What a performance channel's evidence adds: RMSE of an error channel, ECE of the calibration
    channel, F1 and ROC AUC of theirs (reference and window), the cost per 1,000 predictions (in the currency of ``settings``' cost detectors).

    >>> ref = NumericReference.from_values(np.array([-1.0, 1.0]), 0, 0, "warmup")
    >>> performance_evidence("__signed_error__", ref, np.array([3.0, -3.0]))
    {'rmse': {'reference': 1.0, 'current': 3.0}}
    """
    if channel in ("__abs_error__", "__signed_error__"):
        current = float(np.sqrt(np.mean(np.square(values)))) if values.size else None
        return {"rmse": {"reference": num(float(np.hypot(ref.mean, ref.std))), "current": num(current)}}
    if channel == "__calibration__":
        from stream_monitor.core.detectors.calibration import ece

        return {"ece": {"reference": num(ece(ref.sorted_sample)), "current": num(ece(values)) if values.size else None}}
    if split_per_class(channel) is not None:  # a per-class channel's evidence is its metric's
        channel = channel.partition(".")[0]
    if channel == "__f1__":
        from stream_monitor.core.detectors.slo import f1_of_share

        current = f1_of_share(float(values.mean())) if values.size else None
        return {"f1": {"reference": num(f1_of_share(ref.mean)), "current": num(current)}}
    if channel == "__roc_auc__":
        from stream_monitor.core.detectors.auc import roc_auc

        return {"roc_auc": {"reference": num(roc_auc(ref.sorted_sample)), "current": num(roc_auc(values)) if values.size else None}}
    if channel in ("__cost__", "__estimated_cost__"):
        which = "cost_increase" if channel == "__cost__" else "slo_cost"
        currency = getattr(settings.params(which), "currency", "EUR") if settings is not None else "EUR"
        current = float(values.mean()) * 1000.0 if values.size else None
        change = None if current is None else current - ref.mean * 1000.0
        return {"cost": {"currency": currency, "reference_per_1k": num(ref.mean * 1000.0), "current_per_1k": num(current),
                         "change_per_1k": num(change)}}  # fmt: skip
    return {}


def cost_headline(e: dict[str, Any], firing: bool) -> str:
    """The change of the cost per 1,000 predictions, in money.

    >>> e = {"reference": {"kind": "baseline"}, "cost": {"currency": "EUR", "reference_per_1k": 1203.2,
    ...      "current_per_1k": 1615.4, "change_per_1k": 412.2}}
    >>> cost_headline(e, True)
    '+412 EUR per 1k predictions vs baseline (1,203 → 1,615 EUR)'
    """
    c = e["cost"]
    vs = "baseline" if e["reference"].get("kind") == "baseline" else "warm-up reference"
    cur = c["currency"]
    if not firing:
        return f"cost back to {fmt(c['current_per_1k'])} {cur} per 1k predictions ({vs} {fmt(c['reference_per_1k'])} {cur})"
    return f"{_signed(c['change_per_1k'])} {cur} per 1k predictions vs {vs} ({fmt(c['reference_per_1k'])} → {fmt(c['current_per_1k'])} {cur})"


# ------------------------------------------------------------------------------ plain words
_CHANNEL_WORDS = {
    "__prediction__": "prediction", "__latency__": "latency_ms", "__error__": "prediction error", "__label__": "label",
    "__recall__": "recall", "__precision__": "precision", "__log_loss__": "log loss", "__calibration__": "calibration",
    "__f1__": "F1", "__roc_auc__": "ROC AUC", "__error_rate__": "error rate", "__abs_error__": "absolute error",
    "__signed_error__": "signed error", "__cost__": "cost",
    "__estimated_error_rate__": "estimated error rate", "__estimated_cost__": "estimated cost",
    "__estimated_precision__": "estimated precision",
}  # fmt: skip
_SHARE_WORDS = {"__error__": "error rate", "__error_rate__": "error rate", "__recall__": "recall", "__precision__": "precision"}
"""What the share of 1s of a 0/1 channel is called."""


def channel_words(channel: str) -> str:
    """A reserved channel's name in plain words (others as they are).

    >>> channel_words("__prediction__.y_proba"), channel_words("__latency__"), channel_words("debt_ratio")
    ('prediction y_proba', 'latency_ms', 'debt_ratio')
    >>> channel_words("__recall__.fraud")
    'recall of class `fraud`'
    """
    if channel.startswith("__prediction__."):
        return "prediction " + channel[len("__prediction__.") :]
    split = split_per_class(channel)
    if split is not None:
        return of_class(_CHANNEL_WORDS[split[0]], channel)
    return _CHANNEL_WORDS.get(channel, channel)


def of_class(words: str, channel: str) -> str:
    """A metric's words, about the class of a per-class channel when ``channel`` is one.

    >>> of_class("F1", "__f1__.3"), of_class("F1", "__f1__")
    ('F1 of class `3`', 'F1')
    """
    split = split_per_class(channel)
    return f"{words} of class `{split[1]}`" if split is not None else words


def fmt(x: float | None) -> str:
    """A figure in prose: 3 significant digits (whole numbers from 1,000 to a million), ``n/a`` when missing.

    >>> fmt(0.097366), fmt(1234.5), fmt(2.5e7), fmt(None)
    ('0.0974', '1,234', '2.5e+07', 'n/a')
    """
    if x is None:
        return "n/a"
    if 1e3 <= abs(x) < 1e6:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _sd(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f} sd"


def pct(x: float | None) -> str:
    """A share in prose, as a percentage.

    >>> pct(0.1234), pct(0.0), pct(None)
    ('12.3 %', '0 %', 'n/a')
    """
    if x is None:
        return "n/a"
    return "0 %" if x == 0 else f"{100 * x:.3g} %"


def _signed(x: float | None) -> str:
    return "n/a" if x is None else ("+" if x >= 0 else "") + fmt(x)


def _numeric_headline(e: dict[str, Any], firing: bool, channel: str) -> tuple[str, str]:
    ref, cur, change = e["reference"], e["current"], e.get("change")
    if change is None:
        return "no values in the window", ""
    p50 = f"p50 {fmt(ref.get('p50'))} → {fmt(cur.get('p50'))}"
    if e.get("binary"):
        what = _SHARE_WORDS.get(channel, "share of 1s")
        points = f"{_signed(100 * (change['mean'] or 0.0))} points"
        if split_per_class(channel) is not None:  # a class's recall or precision, in its own units
            what = channel_words(channel)
            if not firing:
                return f"{what} back to {fmt(cur['mean'])} (reference {fmt(ref['mean'])})", ""
            return f"{what} {fmt(ref['mean'])} → {fmt(cur['mean'])} ({points}, {_sd(change['mean_sd'])})", ""
        if not firing:
            return f"{what} back to {pct(cur['mean'])} (reference {pct(ref['mean'])})", ""
        return f"{what} {change['direction']} from {pct(ref['mean'])} to {pct(cur['mean'])} ({points}, {_sd(change['mean_sd'])})", ""
    if not firing:
        return f"mean back to {fmt(cur['mean'])} (reference {fmt(ref['mean'])}, {_sd(change['mean_sd'])})", p50
    sd_ratio = (cur["sd"] / ref["sd"]) if ref.get("sd") and cur.get("sd") is not None else 1.0
    if abs(change["mean_sd"] or 0.0) < 0.1 and not 0.8 <= sd_ratio <= 1.25:
        way = "rose" if sd_ratio > 1 else "fell"
        spread = f"p5–p95 {fmt(ref.get('p5'))}…{fmt(ref.get('p95'))} → {fmt(cur.get('p5'))}…{fmt(cur.get('p95'))}"
        return f"spread {way}: sd {fmt(ref['sd'])} → {fmt(cur['sd'])} (×{sd_ratio:.2g}), mean {fmt(cur['mean'])}", spread
    moved = f"({_signed(change['mean'])}, {_sd(change['mean_sd'])})"
    return f"mean {change['direction']} from {fmt(ref['mean'])} to {fmt(cur['mean'])} {moved}", p50


def _movers(e: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    rows = [(repr(c["category"]), c["reference_share"], c["current_share"]) for c in e["categories"]]
    unseen = e["unseen"]
    if unseen["current_share"]:
        rows.append(("unseen categories", 0.0, unseen["current_share"]))
    return sorted(rows, key=lambda r: -abs((r[2] or 0.0) - (r[1] or 0.0)))


def _categorical_headline(e: dict[str, Any], firing: bool) -> tuple[str, str]:
    movers = _movers(e)
    if not movers:
        return "no values in the window", ""
    name, a, b = movers[0]
    first = f"{name} {pct(a)} → {pct(b)}"
    rest = ", ".join(f"{n} {pct(x)} → {pct(y)}" for n, x, y in movers[1:3])
    return (f"category mix changed: {first}" if firing else f"category mix back: {first}"), rest


_RATE_WORDS = {"missing_rate": "missing", "unseen_category_rate": "unseen categories", "out_of_range_rate": "invalid or out of range"}


def _rate_headline(e: dict[str, Any], firing: bool) -> tuple[str, str]:
    r = e.get("rate")
    if r is None:
        return "no observations in the window", ""
    what = _RATE_WORDS.get(r["name"], r["name"])
    if r["name"] == "out_of_range_rate" and e["type"] == "numeric":
        what = f"invalid or outside [{fmt(e['range']['low'])}, {fmt(e['range']['high'])}]"
    counted = f"{r['count']:,} of {r['of']:,} observations"
    if not firing:
        return f"{what} back to {pct(r['current'])} (reference {pct(r['reference'])})", counted
    return f"{what} {pct(r['current'])} of values, up from {pct(r['reference'])} in the reference", counted


def headline(e: dict[str, Any], firing: bool, channel: str = "") -> tuple[str, str]:
    """What moved, which way and how far (and a detail: quantiles, more categories), from an evidence dict.

    ``channel`` words a 0/1 channel: ``__error__`` as an error rate, any other as a share of 1s.
    """
    if "rate" in e:
        return _rate_headline(e, firing)
    slo = slo_test(e["detector"], firing, channel) if "detector" in e else None
    if slo is not None and "estimate" in e:
        slo = f"estimated {slo}{' ' + e['cost']['currency'] if 'cost' in e else ''}, {estimate_words(e['estimate'])}"
        return slo, ""
    if slo is not None:
        if "cost" in e:
            return f"{slo} {e['cost']['currency']}", cost_headline(e, firing)
        main, _ = _numeric_headline(e, firing, channel) if e["type"] == "numeric" else ("", "")
        return slo, _score_headline(e, firing, channel) or main
    if e["type"] == "numeric":
        main, detail = _numeric_headline(e, firing, channel)
        if "cost" in e:
            return cost_headline(e, firing), ""
        if _score_headline(e, firing, channel):
            return _score_headline(e, firing, channel), ""
        if "ece" in e:
            ece = e["ece"]
            moved = "back to" if not firing else "rose to" if (ece["current"] or 0) > (ece["reference"] or 0) else "is"
            return f"calibration error (ECE) {moved} {fmt(ece['current'])} (reference {fmt(ece['reference'])})", main
        if "rmse" in e:
            detail = ", ".join(p for p in (detail, f"RMSE {fmt(e['rmse']['reference'])} → {fmt(e['rmse']['current'])}") if p)
        return main, detail
    return _categorical_headline(e, firing)


def _score_headline(e: dict[str, Any], firing: bool, channel: str = "") -> str:
    """How F1 or ROC AUC (read from the window, not from the channel's mean) moved; empty for other evidence.

    >>> _score_headline({"roc_auc": {"reference": 0.812, "current": 0.664}}, True)
    'ROC AUC fell from 0.812 to 0.664 (-0.148)'
    """
    for key, words in (("f1", "F1"), ("roc_auc", "ROC AUC")):
        if key in e:
            words = of_class(words, channel)
            ref, cur = e[key]["reference"], e[key]["current"]
            if not firing or ref is None or cur is None:
                return f"{words} back to {fmt(cur)} (reference {fmt(ref)})" if not firing else f"{words} {fmt(cur)} (reference {fmt(ref)})"
            return f"{words} {'fell' if cur < ref else 'rose'} from {fmt(ref)} to {fmt(cur)} ({_signed(cur - ref)})"
    return ""


def estimate_words(est: dict[str, Any]) -> str:
    """How an estimate was made and what the labels say so far, in words.

    >>> estimate_words({"calibrated": False, "labels": False, "realised": None, "realised_count": 0})
    'from probabilities (taken as calibrated: too few labels yet to calibrate them), no labels yet'
    >>> estimate_words({"calibrated": True, "labels": True, "realised": 0.19, "realised_count": 1000})
    'from calibrated probabilities; realised 0.19 over the latest 1,000 labels'
    """
    how = "from calibrated probabilities" if est["calibrated"] else "from probabilities (taken as calibrated: too few labels yet to calibrate them)"
    if est["realised"] is None:
        return f"{how}, {'too few labels yet for a realised figure' if est['labels'] else 'no labels yet'}"
    return f"{how}; realised {fmt(est['realised'])} over the latest {est['realised_count']:,} labels"


def _side(e: dict[str, Any], which: str) -> str:
    s = e[which]
    if e["type"] == "numeric":
        if not s.get("count"):
            return "no values"
        return ", ".join(f"{k} {fmt(s.get(k))}" for k in ("mean", "sd", "p5", "p50", "p95"))
    if which == "reference":
        return ", ".join(f"{c['category']!r} {pct(c['reference_share'])}" for c in e["categories"])
    shares = [f"{c['category']!r} {pct(c['current_share'])}" for c in e["categories"]]
    return ", ".join(shares + [f"unseen {pct(e['unseen']['current_share'])} ({e['unseen']['count']:,} values)"])


SLO_WORDS: dict[str, tuple[str, str]] = {
    "slo_accuracy": ("accuracy", "min"),
    "slo_error_rate": ("error rate", "max"),
    "slo_mae": ("mean absolute error", "max"),
    "slo_recall": ("recall", "min"),
    "slo_precision": ("precision", "min"),
    "slo_f1": ("F1", "min"),
    "slo_roc_auc": ("ROC AUC", "min"),
    "slo_log_loss": ("log loss", "max"),
    "slo_cost": ("cost per 1k predictions", "max"),
}
"""Service-level detectors: the metric in words and which side of the level is a breach (``min``: below)."""


def slo_test(d: dict[str, Any], firing: bool, channel: str = "") -> str | None:
    """A service-level check in the metric's words (about its class on a per-class ``channel``), the comparison pointing the way it breached.

    >>> slo_test({"name": "slo_accuracy", "statistic": 0.839, "threshold": 0.85}, True)
    'accuracy 0.839 < 0.85 (SLO min)'
    >>> slo_test({"name": "slo_mae", "statistic": 9.1, "threshold": 12.5}, False)
    'mean absolute error 9.1 back within 12.5 (SLO max)'
    >>> slo_test({"name": "psi", "statistic": 0.3, "threshold": 0.2}, True) is None
    True
    >>> slo_test({"name": "slo_recall", "statistic": 0.62, "threshold": 0.8}, True, "__recall__.fraud")
    'recall of class `fraud` 0.62 < 0.8 (SLO min)'
    """
    words = SLO_WORDS.get(d["name"])
    if words is None:
        return None
    metric, side = of_class(words[0], channel), words[1]
    if not firing:
        return f"{metric} {fmt(d['statistic'])} back within {fmt(d['threshold'])} (SLO {side})"
    return f"{metric} {fmt(d['statistic'])} {'<' if side == 'min' else '>'} {fmt(d['threshold'])} (SLO {side})"


def description(e: dict[str, Any], firing: bool, window_text: str, channel: str = "") -> str:
    """The detector's statistic, threshold and meaning, then reference vs current in full."""
    d = e["detector"]
    slo = slo_test(d, firing, channel)
    if slo is not None:
        test = f"{d['name']}: {slo}"
    elif firing:
        test = f"{d['name']} {fmt(d['statistic'])} {breach_sign(d['name'])} threshold {fmt(d['threshold'])}"
        if d["p_value"] is not None:
            test += f" (p={d['p_value']:.3g})"
    else:
        test = f"{d['name']} back within its threshold {fmt(d['threshold'])}"
    ref = e["reference"]
    current = f"the {e['current']['count']:,} values since the change was detected" if e["basis"] == "since_change" else window_text
    lines = [
        f"{test}: {d['meaning']}.",
        f"Reference ({ref['kind']}, {ref['count']:,} observations): {_side(e, 'reference')}; missing {pct(ref['missing_rate'])}.",
        f"Current ({current}): {_side(e, 'current')}.",
    ]
    r = e.get("rate")
    if r is not None:
        lines.append(f"Rate: {pct(r['current'])} now ({r['count']:,} of {r['of']:,}) vs {pct(r['reference'])} in the reference; "
                     f"alerts when the excess exceeds {pct(r['threshold_excess'])}.")  # fmt: skip
    for key, words in (("f1", "F1"), ("roc_auc", "ROC AUC")):
        if key in e:  # the channel's values encode the metric; its mean and quantiles do not read as it
            lines.append(f"{words}: {fmt(e[key]['reference'])} in the reference, {fmt(e[key]['current'])} in the window.")
    return "\n".join(lines)


def breach_sign(detector: str) -> str:
    """Which way a detector's statistic passes its threshold when it breaches: ``<`` for minimums, else ``>``.

    >>> breach_sign("slo_recall"), breach_sign("auc_drop"), breach_sign("psi")
    ('<', '<', '>')
    """
    return "<" if detector == "auc_drop" or SLO_WORDS.get(detector, ("", ""))[1] == "min" else ">"


def _member_line(d: dict[str, Any], channel: str = "") -> str:
    test = f"{d['name']} {fmt(d['statistic'])} {breach_sign(d['name'])} threshold {fmt(d['threshold'])}"
    if d.get("p_value") is not None:
        test += f" (p={d['p_value']:.3g})"
    return f"- {test}, {d['severity']} since {d['since']}: {meaning(d['name'], channel)}."


def series_description(e: dict[str, Any], firing: bool, window_text: str, channel: str = "") -> str:
    """A channel page's description: every agreeing detector's test (lead first), then reference vs current.

    When it resolves, which detector led it; the figures are then the lead's evidence as of now.
    """
    figures = description(e, firing, window_text, channel).split("\n")[1:]
    if firing:
        members = e.get("detectors") or []
        head = [f"{len(members)} detector{'s agree' if len(members) != 1 else ' agrees'} (the lead first):"]
        head += [_member_line(d, channel) for d in members]
    else:
        agreed = ", ".join(e.get("agreed") or [e["detector"]["name"]])
        head = [f"No detector still fires (during the episode: {agreed}); the figures are {e['detector']['name']}'s, the page's lead."]
    return "\n".join(head + figures)


def drift_words(entries: list[dict[str, Any]]) -> str:
    """Coinciding drifts in prose.

    >>> drift_words([{"channel": "amount", "detectors": ["ks"], "mean_sd": 2.1}, {"channel": "country", "detectors": ["chi2"], "mean_sd": None}])
    'amount (+2.1 sd), country (chi2)'
    """
    return ", ".join(
        f"{e['channel']} ({e['mean_sd']:+.2g} sd)" if e.get("mean_sd") is not None else f"{e['channel']} ({', '.join(e['detectors'])})"
        for e in entries
    )
