"""(c) The naive loop people write today, for comparison.

Per record: ``json.loads``, a pydantic ``InferenceEvent``, and per channel River ``ADWIN`` and
``PageHinkley`` updates (numeric channels) plus window statistics recomputed on every record over
the last ``window`` values against the first ``window`` values of the stream (the reference):
scipy's two-sample KS test and PSI for numeric channels, a chi-square test (scipy
``chi2_contingency``) for categorical ones. Every breach is produced to an alerts topic (no
dedup, no lifecycle). This is deliberately straightforward code, not a straw man: the reference
bins and counts are computed once, only the window side is recomputed.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, deque
from typing import Any, Callable

import numpy as np
from river import drift
from scipy import stats as sps

from stream_monitor.core.events import InferenceEvent


class NaiveNumeric:
    def __init__(self, window: int) -> None:
        self.window = window
        self.adwin = drift.ADWIN()
        self.ph = drift.PageHinkley()
        self.reference: list[float] = []
        self.values: deque[float] = deque(maxlen=window)
        self.edges: np.ndarray | None = None
        self.ref_props: np.ndarray | None = None

    def update(self, x: float) -> list[tuple[str, float]]:
        breaches: list[tuple[str, float]] = []
        self.adwin.update(x)
        if self.adwin.drift_detected:
            breaches.append(("adwin", 1.0))
        self.ph.update(x)
        if self.ph.drift_detected:
            breaches.append(("page_hinkley", 1.0))
        if len(self.reference) < self.window:
            self.reference.append(x)
            if len(self.reference) == self.window:
                ref = np.asarray(self.reference)
                self.edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
                self.ref_props = (np.bincount(np.searchsorted(self.edges, ref), minlength=10) + 0.5) / (ref.size + 5.0)
            return breaches
        self.values.append(x)
        cur = np.asarray(self.values)
        res = sps.ks_2samp(self.reference, cur)
        if res.statistic > 0.12 and res.pvalue < 1e-4:
            breaches.append(("ks", float(res.statistic)))
        q = (np.bincount(np.searchsorted(self.edges, cur), minlength=10) + 0.5) / (cur.size + 5.0)
        psi = float(np.sum((q - self.ref_props) * np.log(q / self.ref_props)))
        if psi > 0.2:
            breaches.append(("psi", psi))
        return breaches


class NaiveCategorical:
    def __init__(self, window: int) -> None:
        self.window = window
        self.reference: Counter[str] = Counter()
        self.n_ref = 0
        self.values: deque[str] = deque(maxlen=window)

    def update(self, x: str) -> list[tuple[str, float]]:
        if self.n_ref < self.window:
            self.reference[x] += 1
            self.n_ref += 1
            return []
        self.values.append(x)
        current = Counter(self.values)
        cats = sorted(set(self.reference) | set(current))
        table = np.array([[self.reference[c] for c in cats], [current[c] for c in cats]], dtype=float)
        if table.shape[1] < 2:
            return []
        res = sps.chi2_contingency(table, correction=False)
        return [("chi2", float(res.statistic))] if res.pvalue < 1e-6 else []


class NaiveMonitor:
    """All channels of every model, fed record by record."""

    def __init__(self, window: int, send: Callable[[bytes], Any]) -> None:
        self.window = window
        self.send = send
        self.channels: dict[tuple[str, str], NaiveNumeric | NaiveCategorical] = {}
        self.values = 0
        self.alerts = 0
        self.invalid = 0

    def _channel(self, model: str, name: str, value: Any) -> NaiveNumeric | NaiveCategorical:
        key = (model, name)
        ch = self.channels.get(key)
        if ch is None:
            ch = self.channels[key] = NaiveCategorical(self.window) if isinstance(value, str | bool) else NaiveNumeric(self.window)
        return ch

    def process(self, raw: bytes) -> None:
        try:
            event = InferenceEvent.model_validate(json.loads(raw))
        except ValueError:
            self.invalid += 1
            return
        items: list[tuple[str, Any]] = list((event.features or {}).items())
        if event.prediction is not None and not isinstance(event.prediction, dict):
            items.append(("__prediction__", event.prediction))
        for name, value in items:
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                continue
            ch = self._channel(event.model, name, value)
            if isinstance(ch, NaiveCategorical):
                breaches = ch.update(str(value))
            else:
                breaches = ch.update(float(value))
            self.values += 1
            for detector, statistic in breaches:
                self.alerts += 1
                self.send(
                    json.dumps(
                        {"model": event.model, "feature": name, "detector": detector, "statistic": statistic, "ts": event.ts, "at": time.time()}
                    ).encode()
                )
