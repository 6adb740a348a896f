"""Seeded synthetic inference streams with drift at known points (demo, tests, benchmarks).

Features: ``n_numeric`` numeric features of different scales (normal, log-normal, uniform) and
``n_categorical`` categorical ones; a logistic prediction that depends on some features, so drift in
those features moves the prediction too. Drifts switch on (and optionally off) at event indices.
With ``labels``, each event carries an inline label drawn from its prediction (a calibrated model),
from a random generator of its own (the features and predictions are those of the same spec
without labels); a :class:`ConceptDrift` makes a share of the labels ignore the prediction from an
event index on, with the inputs and predictions unchanged.

>>> events = list(generate_events(StreamSpec(model="m", n_events=3, seed=7, n_numeric=2, n_categorical=1)))
>>> sorted(events[0]["features"]), sorted(events[0])
(['c0', 'x0', 'x1'], ['event_id', 'features', 'latency_ms', 'model', 'model_version', 'prediction', 'ts'])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

import numpy as np

DriftKind = Literal["mean_shift", "new_category", "missing_rate", "scale"]


@dataclass(frozen=True, slots=True)
class Drift:
    """A change to one feature between event indices ``start`` (inclusive) and ``end``."""

    kind: DriftKind
    feature: str
    start: int
    end: int | None = None
    amount: float = 1.0  # mean shift in the feature's standard deviations, a rate, or a scale factor
    category: str = "__new__"

    def active(self, idx: np.ndarray) -> np.ndarray:
        """Whether the drift is in effect at each event index."""
        on = idx >= self.start
        if self.end is not None:
            on &= idx < self.end
        return on


@dataclass(frozen=True, slots=True)
class ConceptDrift:
    """From event index ``start`` on, a share ``amount`` of labels ignore the prediction.

    Such a label is drawn from another event's prediction of the same chunk (a random one), so the
    share of positive labels stays what it was while their agreement with the scores falls.
    """

    start: int
    amount: float = 0.6


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One model's synthetic stream: size, seed, feature counts and the drifts to plant."""

    model: str
    n_events: int
    seed: int
    n_numeric: int = 20
    n_categorical: int = 5
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    interval_ms: int = 10
    model_version: str = "2026-11-01"
    drifts: tuple[Drift, ...] = field(default_factory=tuple)
    categories: int = 6
    prediction_weights: tuple[float, ...] | None = None  # logit weights of x0..; random when None
    labels: bool = False  # inline labels, drawn from the prediction (its own random generator)
    concept_drift: ConceptDrift | None = None  # labels that stop following the prediction (with ``labels``)


def _numeric_params(n: int) -> list[tuple[str, float, float]]:
    """(distribution, location, scale) per numeric feature, varied so scales differ widely."""
    kinds = ["normal", "lognormal", "uniform", "normal"]
    return [(kinds[i % 4], float(10 ** (i % 5 - 1) * (i + 1)), float(10 ** (i % 5 - 1))) for i in range(n)]


def generate_events(spec: StreamSpec, chunk: int = 10_000) -> Iterator[dict[str, Any]]:
    """Yield inference events as dicts (JSON-ready), deterministically for a given spec."""
    rng = np.random.default_rng(spec.seed)
    params = _numeric_params(spec.n_numeric)
    cat_names = [f"c{j}" for j in range(spec.n_categorical)]
    num_names = [f"x{i}" for i in range(spec.n_numeric)]
    cats = [f"v{k}" for k in range(spec.categories)]
    weights = np.array([0.5 ** k for k in range(spec.categories)])
    weights /= weights.sum()
    coef = rng.normal(0, 1, size=spec.n_numeric)
    if spec.prediction_weights is not None:
        coef[: len(spec.prediction_weights)] = spec.prediction_weights
    label_rng = np.random.default_rng([spec.seed, 1])  # apart from ``rng``: labels change no feature
    for base in range(0, spec.n_events, chunk):
        n = min(chunk, spec.n_events - base)
        idx = np.arange(base, base + n)
        cols: dict[str, np.ndarray] = {}
        zs: list[np.ndarray] = []
        for name, (dist, loc, scale) in zip(num_names, params, strict=True):
            z = rng.standard_normal(n)
            for d in spec.drifts:
                if d.feature == name and d.kind == "mean_shift":
                    z = z + d.amount * d.active(idx)
                elif d.feature == name and d.kind == "scale":
                    z = np.where(d.active(idx), z * d.amount, z)
            zs.append(z)
            if dist == "normal":
                cols[name] = loc + scale * z
            elif dist == "lognormal":
                cols[name] = scale * np.exp(0.5 * z)
            else:  # uniform via the normal CDF of z, so shifts still move it
                from scipy.special import ndtr

                cols[name] = loc + scale * ndtr(z)
        cat_cols: dict[str, list[str]] = {}
        for name in cat_names:
            draw = rng.choice(len(cats), size=n, p=weights)
            values = [cats[k] for k in draw.tolist()]
            for d in spec.drifts:
                if d.feature == name and d.kind == "new_category":
                    hit = d.active(idx) & (rng.random(n) < d.amount)
                    for k in np.flatnonzero(hit).tolist():
                        values[k] = d.category
            cat_cols[name] = values
        missing: dict[str, np.ndarray] = {}
        for d in spec.drifts:
            if d.kind == "missing_rate":
                missing[d.feature] = d.active(idx) & (rng.random(n) < d.amount)
        logits = np.stack(zs, axis=1)[:, : min(5, spec.n_numeric)] @ coef[: min(5, spec.n_numeric)] * 0.8 - 1.0 if zs else np.zeros(n)
        proba = 1.0 / (1.0 + np.exp(-logits))
        latency = rng.gamma(4.0, 3.0, size=n)
        labels = _labels(spec, label_rng, idx, proba) if spec.labels else None
        for k in range(n):
            i = base + k
            feats: dict[str, Any] = {}
            for name in num_names:
                feats[name] = None if name in missing and missing[name][k] else round(float(cols[name][k]), 6)
            for name in cat_names:
                feats[name] = None if name in missing and missing[name][k] else cat_cols[name][k]
            event = {
                "event_id": hashlib.blake2b(f"{spec.model}:{spec.seed}:{i}".encode(), digest_size=8).hexdigest(),
                "model": spec.model,
                "model_version": spec.model_version,
                "ts": spec.start_ms + i * spec.interval_ms,
                "features": feats,
                "prediction": round(float(proba[k]), 6),
                "latency_ms": round(float(latency[k]), 3),
            }
            if labels is not None:
                event["label"] = int(labels[k])
            yield event


def _labels(spec: StreamSpec, rng: np.random.Generator, idx: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """0/1 labels drawn from ``proba``; under a concept drift a share is drawn from other events' ``proba``."""
    p = proba
    drift = spec.concept_drift
    if drift is not None:
        ignore = (idx >= drift.start) & (rng.random(idx.size) < drift.amount)
        p = np.where(ignore, proba[rng.permutation(idx.size)], proba)
    return (rng.random(idx.size) < p).astype(np.int64)


def demo_streams(n_events: int, seed: int = 42, labels: bool = False) -> tuple[StreamSpec, StreamSpec]:
    """The demo's two models: ``fraud-v3`` drifts in four ways, ``churn-v1``'s inputs stay stationary.

    fraud-v3 (indices relative to ``n_events``): x0 mean shift of 1.5 sd from 30 % to 70 %,
    c0 gains a new category from 40 %, x3 missing rate 30 % from 55 %, and the prediction drifts
    with x0 (it is an input of the logistic model). With ``labels`` (the demo's producer), churn-v1
    logs inline labels and its concept drifts at 50 %: from there, 60 % of its labels ignore its
    prediction (:class:`ConceptDrift`), with its inputs and predictions unchanged; fraud-v3 is the
    same either way.
    """
    fraud = StreamSpec(
        model="fraud-v3",
        n_events=n_events,
        seed=seed,
        n_numeric=8,
        n_categorical=3,
        prediction_weights=(1.5, 0.4, -0.3, 0.2, 0.1),  # x0 drives the score: its drift is prediction drift
        drifts=(
            Drift("mean_shift", "x0", int(0.30 * n_events), int(0.70 * n_events), amount=1.5),
            Drift("new_category", "c0", int(0.40 * n_events), None, amount=0.3, category="XX"),
            Drift("missing_rate", "x3", int(0.55 * n_events), None, amount=0.3),
        ),
    )
    concept = ConceptDrift(int(0.50 * n_events), amount=0.6) if labels else None
    churn = StreamSpec(model="churn-v1", n_events=n_events, seed=seed + 1, n_numeric=6, n_categorical=2, labels=labels, concept_drift=concept)
    return fraud, churn
