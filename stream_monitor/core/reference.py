"""Reference profiles: what "normal" looks like for one channel.

A reference comes from a channel's warm-up (its first N observations) or from a baseline profile
built from training data (``stream-monitor baseline``). Numeric references keep a sorted sample of
at most ``SAMPLE_SIZE`` values (exact quantiles for larger inputs), moments and range; categorical
references keep category counts.

>>> ref = NumericReference.from_values([1.0, 2.0, 3.0, 4.0], missing=1, invalid=0, kind="warmup")
>>> ref.mean, ref.count, ref.missing_rate
(2.5, 5, 0.2)
>>> cat = CategoricalReference.from_values(["a", "b", "a"], missing=0, invalid=0, kind="warmup")
>>> cat.categories, cat.counts.tolist()
(['a', 'b'], [2, 1])
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

SAMPLE_SIZE = 2000
ReferenceKind = Literal["warmup", "baseline"]


@dataclass(slots=True)
class NumericReference:
    """A numeric channel's reference: a sorted sample, moments, range and missing/invalid rates."""

    kind: ReferenceKind
    count: int  # observations, including missing and invalid ones
    missing_rate: float
    invalid_rate: float
    sorted_sample: np.ndarray
    mean: float
    std: float
    minimum: float
    maximum: float

    @property
    def scale(self) -> float:
        """Standard deviation used to standardise values (1.0 for a constant reference)."""
        return self.std if self.std > 0 else 1.0

    @classmethod
    def from_values(cls, values: Sequence[float] | np.ndarray, missing: int, invalid: int, kind: ReferenceKind) -> NumericReference:
        """The reference of the present values, with counts of missing and invalid observations."""
        arr = np.sort(np.asarray(values, dtype=np.float64))
        total = int(arr.size + missing + invalid)
        if arr.size > SAMPLE_SIZE:
            sample = np.quantile(arr, np.linspace(0.0, 1.0, SAMPLE_SIZE))
        else:
            sample = arr
        return cls(
            kind=kind,
            count=total,
            missing_rate=missing / total if total else 0.0,
            invalid_rate=invalid / total if total else 0.0,
            sorted_sample=sample,
            mean=float(arr.mean()) if arr.size else 0.0,
            std=float(arr.std()) if arr.size else 0.0,
            minimum=float(arr[0]) if arr.size else 0.0,
            maximum=float(arr[-1]) if arr.size else 0.0,
        )

    def to_profile(self) -> dict[str, Any]:
        """This reference as a baseline-file channel entry."""
        return {
            "type": "numeric",
            "count": self.count,
            "missing_rate": self.missing_rate,
            "invalid_rate": self.invalid_rate,
            "mean": self.mean,
            "std": self.std,
            "min": self.minimum,
            "max": self.maximum,
            "sample": self.sorted_sample.tolist(),
        }

    @classmethod
    def from_profile(cls, profile: dict[str, Any]) -> NumericReference:
        """A reference from a baseline-file channel entry."""
        return cls(
            kind="baseline",
            count=int(profile["count"]),
            missing_rate=float(profile.get("missing_rate", 0.0)),
            invalid_rate=float(profile.get("invalid_rate", 0.0)),
            sorted_sample=np.sort(np.asarray(profile["sample"], dtype=np.float64)),
            mean=float(profile["mean"]),
            std=float(profile["std"]),
            minimum=float(profile["min"]),
            maximum=float(profile["max"]),
        )


@dataclass(slots=True)
class CategoricalReference:
    """A categorical channel's reference: category counts and missing/invalid rates."""

    kind: ReferenceKind
    count: int
    missing_rate: float
    invalid_rate: float
    categories: list[str]  # most frequent first, ties by name
    counts: np.ndarray  # aligned with categories

    @property
    def distinct(self) -> int:
        """Number of categories."""
        return len(self.categories)

    @classmethod
    def from_counts(cls, counter: dict[str, int], missing: int, invalid: int, kind: ReferenceKind) -> CategoricalReference:
        """The reference of category counts (most frequent first, ties by name)."""
        ordered = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        present = sum(counter.values())
        total = present + missing + invalid
        return cls(
            kind=kind,
            count=total,
            missing_rate=missing / total if total else 0.0,
            invalid_rate=invalid / total if total else 0.0,
            categories=[k for k, _ in ordered],
            counts=np.asarray([v for _, v in ordered], dtype=np.int64),
        )

    @classmethod
    def from_values(cls, values: Sequence[str], missing: int, invalid: int, kind: ReferenceKind) -> CategoricalReference:
        """The reference of the present categories."""
        return cls.from_counts(Counter(values), missing, invalid, kind)

    def to_profile(self) -> dict[str, Any]:
        """This reference as a baseline-file channel entry."""
        return {
            "type": "categorical",
            "count": self.count,
            "missing_rate": self.missing_rate,
            "invalid_rate": self.invalid_rate,
            "categories": dict(zip(self.categories, self.counts.tolist(), strict=True)),
        }

    @classmethod
    def from_profile(cls, profile: dict[str, Any]) -> CategoricalReference:
        """A reference from a baseline-file channel entry."""
        counts = {str(k): int(v) for k, v in profile["categories"].items()}
        ref = cls.from_counts(counts, 0, 0, "baseline")
        ref.count = int(profile["count"])
        ref.missing_rate = float(profile.get("missing_rate", 0.0))
        ref.invalid_rate = float(profile.get("invalid_rate", 0.0))
        return ref


Reference = NumericReference | CategoricalReference


def bounded_category(value: str, max_length: int) -> str:
    """``value``, or when longer than ``max_length`` its head plus ``"…#"`` and 8 hex of its SHA-256.

    >>> bounded_category("short", 16)
    'short'
    >>> bounded_category("x" * 40, 16)
    'xxxxxxxxxxxxxxxx…#bd913ff6'
    """
    if len(value) <= max_length:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{value[:max_length]}…#{digest}"


def reference_from_profile(profile: dict[str, Any]) -> Reference:
    """Rebuild a reference from one channel entry of a baseline file."""
    kind = profile.get("type")
    if kind == "numeric":
        return NumericReference.from_profile(profile)
    if kind == "categorical":
        return CategoricalReference.from_profile(profile)
    raise ValueError(f"unknown channel type {kind!r} in baseline profile")


class Baseline(dict):  # type: ignore[type-arg]
    """A model's baseline profile: its channels' references by channel name (a plain ``dict``), and more.

    ``calibration`` is the label-free estimates' calibration the profile carries (a learned
    :class:`~stream_monitor.core.estimate.Calibration`, from a profile built with a label column
    and a probability), ``None`` when it carries none. ``versions`` holds the baselines of named
    model versions (``models.<m>.baselines``): a version with its own baseline takes its
    references (and calibration) from it, and from this one for the channels it does not cover.

    >>> b = Baseline({"x": NumericReference.from_values([1.0], 0, 0, "baseline")}, versions={"v2": Baseline()})
    >>> sorted(b), sorted(b.versions), b.calibration is None
    (['x'], ['v2'], True)
    """

    __slots__ = ("calibration", "versions")

    def __init__(self, refs: dict[str, Reference] | None = None, calibration: Any = None, versions: dict[str, Baseline] | None = None) -> None:
        super().__init__(refs or {})
        self.calibration = calibration
        self.versions: dict[str, Baseline] = dict(versions or {})

    def reference_for(self, version: str | None, name: str) -> Reference | None:
        """Channel ``name``'s reference under model version ``version``: the version's own, else this one's."""
        own = self.versions.get(version) if version is not None and self.versions else None
        ref = own.get(name) if own is not None else None
        return ref if ref is not None else self.get(name)

    def calibration_for(self, version: str | None) -> Any:
        """The calibration under model version ``version``: the version's own baseline's, else this one's (None: none)."""
        own = self.versions.get(version) if version is not None and self.versions else None
        return own.calibration if own is not None and own.calibration is not None else self.calibration
