"""Label-free performance estimates of a classifier: expected error and cost from its probabilities.

A prediction with a probability ``p`` of the positive class and a decision (its class output,
else ``p`` cut at 0.5) is wrong with probability ``1 - q`` when it decided positive and ``q``
when it decided negative, ``q`` being the calibrated probability of the positive class. The mean
of these expected errors over a window estimates the window's error rate without a single label
(confidence-based performance estimation); the expected cost (``(1 - q)`` x the cost of a false
positive, ``q`` x that of a false negative) estimates its cost.

``q`` comes from :class:`Calibration`: histogram binning learned from the first labelled
predictions (the share of positives among the labels of each score bin). Until it has learned,
the scores are taken as calibrated (``q = p``).

A multiclass prediction with per-class probabilities is wrong with probability ``1 - q``, ``q``
the calibrated probability of the decided class: the same binning, counting per bin of that
probability how often the decision was right (top-label calibration); its expected cost under a
cost matrix is :func:`matrix_expected_cost`.

>>> cal = Calibration(bins=2, size=40)
>>> for i in range(20):
...     _ = cal.observe(0.2, i % 2), cal.observe(0.9, 1)
>>> cal.learned, cal.calibrated(0.25), cal.calibrated(0.7)
(True, 0.5, 1.0)
>>> expected_error(0.25, False, cal), expected_error(0.7, True, cal)
(0.5, 0.0)
>>> expected_cost(0.1, False, Calibration(), false_positive=5.0, false_negative=100.0)
10.0
"""

from __future__ import annotations

from typing import Any

MIN_BIN = 10
"""Labelled predictions a score bin needs before its share of positives replaces the score."""


class Calibration:
    """Histogram-binning calibration of binary scores, learned from the first ``size`` labelled predictions.

    ``bins`` equal-width score bins over [0, 1] count their labelled predictions (``n``) and
    positives (``pos``); once ``size`` were counted the calibration is ``learned`` and frozen. A
    bin with fewer than :data:`MIN_BIN` labels keeps the raw score. A multiclass model's also
    counts, over the same labels, the true classes of its wrong decisions per decided class
    (``errors``: what a wrong decision's cost is spread over). The state is plain integers
    (:meth:`to_state`, :meth:`from_state`).
    """

    __slots__ = ("bins", "size", "n", "pos", "errors")

    def __init__(self, bins: int = 10, size: int = 2000) -> None:
        self.bins = bins
        self.size = size
        self.n = [0] * bins
        self.pos = [0] * bins
        self.errors: dict[str, dict[str, int]] = {}  # decided class -> {true class: wrong decisions}

    def observe_error(self, decided: str, label: str) -> None:
        """Count a wrong multiclass decision's true class (before :meth:`observe` counts that labelled prediction)."""
        if not self.learned:
            row = self.errors.setdefault(decided, {})
            row[label] = row.get(label, 0) + 1

    def error_shares(self, decided: str) -> dict[str, float] | None:
        """The true classes of the wrong decisions for class ``decided``, as shares; None before :data:`MIN_BIN` of them.

        >>> cal = Calibration(size=10)
        >>> for label in "aaab" * 3:
        ...     cal.observe_error("c", label)
        >>> cal.error_shares("c"), cal.error_shares("a")
        ({'a': 0.75, 'b': 0.25}, None)
        """
        row = self.errors.get(decided)
        total = sum(row.values()) if row else 0
        return {k: v / total for k, v in row.items()} if row and total >= MIN_BIN else None

    @property
    def count(self) -> int:
        """Labelled predictions counted so far."""
        return sum(self.n)

    @property
    def learned(self) -> bool:
        """Whether ``size`` labelled predictions were counted (the calibration no longer changes)."""
        return self.count >= self.size

    def _bin(self, p: float) -> int:
        return min(int(p * self.bins), self.bins - 1)

    def observe(self, p: float, positive: bool | int) -> bool:
        """Count one labelled prediction (score ``p`` in [0, 1]); True when this one completed the learning."""
        if self.learned:
            return False
        b = self._bin(p)
        self.n[b] += 1
        self.pos[b] += 1 if positive else 0
        return self.learned

    def calibrated(self, p: float) -> float:
        """The calibrated probability of the positive class for score ``p`` (``p`` itself until learned)."""
        if not self.learned:
            return p
        b = self._bin(p)
        return self.pos[b] / self.n[b] if self.n[b] >= MIN_BIN else p

    def to_state(self) -> dict[str, Any]:
        """The calibration as plain numbers: ``{bins, size, n, pos}``, and ``errors`` when some were counted."""
        out: dict[str, Any] = {"bins": self.bins, "size": self.size, "n": list(self.n), "pos": list(self.pos)}
        if self.errors:
            out["errors"] = {d: dict(row) for d, row in self.errors.items()}
        return out

    @classmethod
    def from_state(cls, obj: Any) -> Calibration:
        """Rebuild from :meth:`to_state`'s map; ``ValueError`` when it is not a consistent one.

        >>> Calibration.from_state({"bins": 2, "size": 4, "n": [1, 0], "pos": [2, 0]})
        Traceback (most recent call last):
        ...
        ValueError: calibration: a bin has more positives than labels
        """
        if not isinstance(obj, dict) or set(obj) - {"errors"} != {"bins", "size", "n", "pos"}:
            raise ValueError("calibration: not a {bins, size, n, pos} map")
        bins, size, n, pos = obj["bins"], obj["size"], obj["n"], obj["pos"]
        if type(bins) is not int or type(size) is not int or not 2 <= bins <= 100 or size < 1:
            raise ValueError("calibration: bins or size out of range")
        for counts in (n, pos):
            if not isinstance(counts, list) or len(counts) != bins or not all(type(c) is int and c >= 0 for c in counts):
                raise ValueError("calibration: counts are not one non-negative integer per bin")
        if any(p > k for p, k in zip(pos, n, strict=True)):
            raise ValueError("calibration: a bin has more positives than labels")
        cal = cls(bins, size)
        cal.n, cal.pos = list(n), list(pos)
        cal.errors = _errors(obj.get("errors", {}), sum(n))
        return cal


def rebinned(cal: Calibration, bins: int) -> Calibration:
    """``cal``'s counts merged into ``bins`` equal-width bins, learned (``size`` = its count); ``ValueError``
    unless ``bins`` divides ``cal.bins`` (the merged bins then cover exactly the same scores).

    >>> c = rebinned(Calibration.from_state({"bins": 4, "size": 10, "n": [1, 2, 3, 4], "pos": [0, 1, 2, 3]}), 2)
    >>> c.n, c.pos, c.learned
    ([3, 7], [1, 5], True)
    """
    if bins < 1 or cal.bins % bins:
        raise ValueError(f"estimate.bins {bins} does not divide the profile's {cal.bins} calibration bins")
    k = cal.bins // bins
    out = Calibration(bins, max(cal.count, 1))
    out.n = [sum(cal.n[i * k : (i + 1) * k]) for i in range(bins)]
    out.pos = [sum(cal.pos[i * k : (i + 1) * k]) for i in range(bins)]
    return out


def _errors(obj: Any, labels: int) -> dict[str, dict[str, int]]:
    """A calibration's ``errors`` map, checked: ``{str: {str: count > 0}}``, at most ``labels`` in all."""
    ok = isinstance(obj, dict) and all(type(d) is str and isinstance(row, dict) for d, row in obj.items())
    ok = ok and all(type(k) is str and type(v) is int and v > 0 for row in obj.values() for k, v in row.items())
    if not ok or sum(v for row in obj.values() for v in row.values()) > labels:
        raise ValueError("calibration: errors is not a {decided: {label: count}} map within the labels counted")
    return {d: dict(row) for d, row in obj.items()}


def expected_error(p: float, decided_positive: bool, cal: Calibration) -> float:
    """The probability that a decision is wrong: ``1 - q`` when it decided positive, else ``q`` (``q`` calibrated)."""
    q = cal.calibrated(p)
    return 1.0 - q if decided_positive else q


def expected_cost(p: float, decided_positive: bool, cal: Calibration, false_positive: float, false_negative: float) -> float:
    """The expected cost of a decision: ``(1 - q)`` x a false positive's cost when positive, else ``q`` x a false negative's."""
    q = cal.calibrated(p)
    return (1.0 - q) * false_positive if decided_positive else q * false_negative


def expected_on(scores: Any, cal: Calibration, costs: tuple[float, float] | None = None, precision: bool = False) -> list[float] | None:
    """The expected error (or, with ``costs`` = (false positive, false negative), cost) of each of ``scores``, decided at 0.5;
    with ``precision``, the calibrated probability ``q`` of each score decided positive (the others feed nothing).

    The values a reference's probabilities would feed the estimate channel with under ``cal``:
    their mean is the error rate (cost, precision) expected over that probability distribution.
    ``None`` unless every score is a probability in [0, 1].

    >>> cal = Calibration.from_state({"bins": 2, "size": 20, "n": [10, 10], "pos": [3, 8]})
    >>> expected_on([0.1, 0.2, 0.9], cal), expected_on([0.9], cal, (5.0, 100.0)), expected_on([1.5], cal)
    ([0.3, 0.3, 0.19999999999999996], [0.9999999999999998], None)
    >>> expected_on([0.1, 0.2, 0.9], cal, precision=True)
    [0.8]
    """
    out: list[float] = []
    for p in scores:
        p = float(p)
        if not 0.0 <= p <= 1.0:
            return None
        decided = p >= 0.5
        if precision:
            if decided:
                out.append(cal.calibrated(p))
            continue
        out.append(expected_error(p, decided, cal) if costs is None else expected_cost(p, decided, cal, *costs))
    return out


def matrix_expected_cost(
    probs: dict[str, float], decided: str, q: float, matrix: dict[str, dict[str, float]], shares: dict[str, float] | None = None
) -> float:
    """The expected cost of a multiclass decision ``decided`` under a cost matrix (``{label: {predicted: cost}}``).

    The label is ``decided`` with probability ``q`` (the calibrated probability that the decision
    is right) and another class ``c`` with ``(1 - q)`` x its share among the wrong decisions of
    ``decided`` in the labelled data (``shares``, :meth:`Calibration.error_shares`), or, without
    them, ``(1 - q) x p_c / (1 - p_decided)``: the rest spread in proportion to the probabilities
    (evenly over the other classes when they have none).

    >>> m = {"a": {"b": 10.0}, "b": {"a": 1.0}, "c": {"a": 4.0}}
    >>> round(matrix_expected_cost({"a": 0.6, "b": 0.3, "c": 0.1}, "a", 0.8, m), 6)
    0.35
    >>> round(matrix_expected_cost({"a": 0.6, "b": 0.3, "c": 0.1}, "a", 0.8, m, {"c": 1.0}), 6)
    0.8
    """
    cost = q * matrix.get(decided, {}).get(decided, 0.0)
    if shares is not None:
        return cost + (1.0 - q) * sum(share * matrix.get(c, {}).get(decided, 0.0) for c, share in shares.items())
    others = [c for c in probs if c != decided]
    rest = sum(probs[c] for c in others)
    for c in others:
        share = probs[c] / rest if rest > 0 else 1.0 / len(others)
        cost += (1.0 - q) * share * matrix.get(c, {}).get(decided, 0.0)
    return cost


BLOCK = 1000
"""Labels per block of the realised metric shown next to an estimate (the latest complete block)."""

_REALISED = ("__error_rate__", "__cost__")
_PRECISION = "__precision__"
Blocks = tuple[tuple[str, tuple[float, int]], ...]
Snapshot = tuple[bool, bool, tuple[float, int] | None, tuple[float, int] | None, Blocks]
NO_SNAPSHOT: Snapshot = (False, False, None, None, ())
"""What an estimate alert says before anything is known: not calibrated, no labels, no realised figure."""


def realised_channel(channel: str) -> str | None:
    """The channel whose labels realise an estimate channel's metric; None for any other channel.

    >>> realised_channel("__estimated_error_rate__"), realised_channel("__estimated_precision__.cat"), realised_channel("x")
    ('__error_rate__', '__precision__.cat', None)
    """
    if channel in ("__estimated_error_rate__", "__estimated_cost__"):
        return channel.replace("estimated_", "")
    metric, dot, klass = channel.partition(".")
    return _PRECISION + dot + klass if metric == "__estimated_precision__" else None


class Realised:
    """What the labels said so far, as of each record of the batch being gathered.

    The realised error rate and cost are kept in blocks of :data:`BLOCK` labelled predictions,
    the realised precision (``__precision__``, and per class ``__precision__.<class>``) in blocks
    of :data:`BLOCK` labelled predictions so decided (the latest complete block is shown). An
    alert is built after its whole batch was gathered, so the state as of each record is
    remembered as the changes within the batch (``marks``): what an alert says depends on its
    record only, not on where the batch boundaries fall.

    >>> r = Realised()
    >>> r.begin_batch(False)
    >>> r.add(3, "__error_rate__", 1.0, False)
    >>> r.at(2), r.at(3)
    ((False, False, None, None, ()), (False, True, None, None, ()))
    """

    __slots__ = ("sums", "counts", "latest", "labels", "start", "marks", "precision", "blocks")

    def __init__(self) -> None:
        self.sums = {name: 0.0 for name in _REALISED}
        self.counts = {name: 0 for name in _REALISED}
        self.latest: dict[str, tuple[float, int] | None] = {name: None for name in _REALISED}
        self.labels = 0
        self.start: Snapshot = NO_SNAPSHOT
        self.marks: list[tuple[int, Snapshot]] = []
        self.precision: dict[str, list[Any]] = {}  # realised precision channel -> [sum, count, latest block or None]
        self.blocks: Blocks = ()  # the latest complete precision blocks, by channel name

    def snapshot(self, calibrated: bool) -> Snapshot:
        """(calibrated, any label seen, latest error-rate block, latest cost block, latest precision blocks) now."""
        return (calibrated, self.labels > 0, self.latest["__error_rate__"], self.latest["__cost__"], self.blocks)

    def begin_batch(self, calibrated: bool) -> None:
        """A new batch starts: what holds before its first record."""
        self.start = self.snapshot(calibrated)
        self.marks = []

    def mark(self, row: int, calibrated: bool) -> None:
        """Remember the state as of record ``row`` when it changed."""
        snap = self.snapshot(calibrated)
        if snap != (self.marks[-1][1] if self.marks else self.start):
            self.marks.append((row, snap))

    def add(self, row: int, name: str, value: float, calibrated: bool) -> None:
        """One realised value (``__error_rate__``'s 0/1 error, ``__cost__``'s cost, a precision channel's 0/1 hit) of record ``row``."""
        if name not in self.sums:
            if name.partition(".")[0] == _PRECISION:
                self._add_precision(name, value)
                self.mark(row, calibrated)
            return
        if name == "__error_rate__":
            self.labels += 1
        self.sums[name] += value
        self.counts[name] += 1
        if self.counts[name] >= BLOCK:
            self.latest[name] = (self.sums[name] / self.counts[name], self.counts[name])
            self.sums[name], self.counts[name] = 0.0, 0
        self.mark(row, calibrated)

    def _add_precision(self, name: str, value: float) -> None:
        block = self.precision.setdefault(name, [0.0, 0, None])
        block[0] += value
        block[1] += 1
        if block[1] >= BLOCK:
            block[2] = (block[0] / block[1], block[1])
            block[0], block[1] = 0.0, 0
            self.blocks = tuple(sorted((n, b[2]) for n, b in self.precision.items() if b[2] is not None))

    def at(self, row: int) -> Snapshot:
        """The state as of record ``row`` of the batch."""
        snap = self.start
        for r, s in self.marks:
            if r > row:
                break
            snap = s
        return snap

    def to_state(self) -> dict[str, Any]:
        """The running blocks as plain numbers: ``{labels, sums, counts, latest}`` (one entry per realised channel), and
        ``precision: {channel: [sum, count, latest]}`` once a precision value was counted."""
        out: dict[str, Any] = {"labels": self.labels, "sums": [self.sums[n] for n in _REALISED], "counts": [self.counts[n] for n in _REALISED],
               "latest": [list(self.latest[n]) if self.latest[n] is not None else None for n in _REALISED]}  # fmt: skip
        if self.precision:
            out["precision"] = {n: [b[0], b[1], list(b[2]) if b[2] is not None else None] for n, b in self.precision.items()}
        return out

    @classmethod
    def from_state(cls, obj: Any) -> Realised:
        """Rebuild from :meth:`to_state`'s map; ``ValueError`` when it is not a consistent one."""
        if not isinstance(obj, dict) or set(obj) - {"precision"} != {"labels", "sums", "counts", "latest"}:
            raise ValueError("realised: not a {labels, sums, counts, latest} map")
        labels, sums, counts, latest = obj["labels"], obj["sums"], obj["counts"], obj["latest"]
        n = len(_REALISED)
        ok = type(labels) is int and labels >= 0 and all(isinstance(x, list) and len(x) == n for x in (sums, counts, latest))
        ok = ok and all(type(v) is float for v in sums) and all(type(c) is int and 0 <= c < BLOCK for c in counts)
        ok = ok and all(_block_ok(v) for v in latest)
        if not ok:
            raise ValueError("realised: malformed sums, counts or latest blocks")
        r = cls()
        r.labels = labels
        for i, name in enumerate(_REALISED):
            r.sums[name], r.counts[name] = sums[i], counts[i]
            r.latest[name] = (latest[i][0], latest[i][1]) if latest[i] is not None else None
        precision = obj.get("precision", {})
        ok = isinstance(precision, dict) and all(
            type(k) is str and k.partition(".")[0] == _PRECISION and isinstance(b, list) and len(b) == 3
            and type(b[0]) is float and type(b[1]) is int and 0 <= b[1] < BLOCK and _block_ok(b[2]) for k, b in precision.items()
        )  # fmt: skip
        if not ok:
            raise ValueError("realised: precision is not a {__precision__[.class]: [sum, count, latest]} map")
        r.precision = {k: [b[0], b[1], (b[2][0], b[2][1]) if b[2] is not None else None] for k, b in precision.items()}
        r.blocks = tuple(sorted((k, b[2]) for k, b in r.precision.items() if b[2] is not None))
        return r


def _block_ok(v: Any) -> bool:
    """Whether a stored latest block is None or [mean (float), count (int)]."""
    return v is None or (isinstance(v, list) and len(v) == 2 and type(v[0]) is float and type(v[1]) is int)


def estimate_evidence(channel: str, snap: Snapshot) -> dict[str, Any]:
    """What an alert on an estimate channel adds to its evidence: how the estimate was made, and the realised metric.

    ``snap`` is :meth:`Realised.at` the alert's record: the realised metric (:func:`realised_channel`)
    is the latest complete block of labels (per 1,000 predictions for a cost), ``None`` before one.

    >>> estimate_evidence("__estimated_error_rate__", NO_SNAPSHOT)
    {'source': 'probabilities', 'calibrated': False, 'labels': False, 'realised': None, 'realised_count': 0}
    >>> estimate_evidence("__estimated_cost__", (True, True, (0.1, 2000), (5.0, 1000), ()))["realised"]
    5000.0
    >>> estimate_evidence("__estimated_precision__.cat", (True, True, None, None, (("__precision__.cat", (0.8, 1000)),)))["realised"]
    0.8
    """
    calibrated, labels, err, cost, blocks = snap
    realised = realised_channel(channel)
    block = cost if realised == "__cost__" else err if realised == "__error_rate__" else dict(blocks).get(realised or "")
    value = None
    if block is not None:
        value = block[0] * (1000.0 if realised == "__cost__" else 1.0)
    return {"source": "probabilities", "calibrated": calibrated, "labels": labels, "realised": value,
            "realised_count": block[1] if block is not None else 0}  # fmt: skip
