"""One model's channels within a partition.

:class:`ModelMonitor` creates a model's channels as values arrive (discovery) and keeps the
ordered list of its known features; :class:`~stream_monitor.core.gathering.FeatureBlock` gathers a
batch's feature values into one column per feature, which is what keeps the processing step fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import structlog

from stream_monitor.core import detectors as det
from stream_monitor.core import performance as perf
from stream_monitor.core.channel import ChannelMonitor
from stream_monitor.core.estimate import NO_SNAPSHOT, Calibration, Realised, estimate_evidence, expected_cost, expected_error, expected_on
from stream_monitor.core.estimate import matrix_expected_cost
from stream_monitor.core.model_pages import PerformancePage
from stream_monitor.core.outputs import (  # infer_task and resolve_outputs are also read from here
    Outputs,
    class_error,
    infer_task,
    is_prediction_channel,
    legacy_error,
    prediction_mismatch,
    resolve_outputs,
)
from stream_monitor.core.performance import class_name, class_probabilities
from stream_monitor.core.reference import Baseline, NumericReference, Reference
from stream_monitor.core.settings import ChannelType
from stream_monitor.core.spec import (
    ABS_ERROR,
    COST,
    ERROR,
    ERROR_RATE,
    ESTIMATED_CHANNELS,
    ESTIMATED_COST,
    ESTIMATED_ERROR_RATE,
    ESTIMATED_PRECISION,
    PREDICTION,
    MonitorSpec,
    Task,
    base_channel,
    per_class_channel,
    split_per_class,
)

log = structlog.get_logger("stream_monitor.core")

_OUTPUT_PREFIX = PREDICTION + "."
class AllMissing(list):
    """A column of ``None`` only (the feature was in none of the records): it needs no classifying."""

    __slots__ = ()


def classify_all_missing(channel_type: ChannelType, n: int) -> tuple[np.ndarray, list[Any] | np.ndarray, list[int]]:
    """What :meth:`ChannelMonitor.classify` gives for ``n`` missing values, built directly.

    >>> flags, payload, wrong = classify_all_missing("numeric", 2)
    >>> flags.tolist(), payload.tolist(), wrong
    ([1, 1], [nan, nan], [])
    """
    flags = np.full(n, det.FLAG_MISSING, dtype=np.uint8)
    if channel_type == "numeric":
        return flags, np.full(n, np.nan, dtype=np.float64), []
    return flags, [None] * n, []


def type_of(value: Any) -> ChannelType | None:
    """The channel type a first value implies, None for a value no channel takes.

    >>> type_of(1), type_of(True), type_of([1])
    ('numeric', 'categorical', None)
    """
    t = type(value)
    if t is float or t is int:
        return "numeric"
    if t is str or t is bool:
        return "categorical"
    return None


_number = perf.number


class ModelMonitor:
    """The channels of one model within one partition, in the order they were first seen."""

    def __init__(self, spec: MonitorSpec, model: str, partition: int, baseline: dict[str, Reference] | None) -> None:
        self.spec = spec
        self.model = model
        self.partition = partition
        self.baseline = baseline if isinstance(baseline, Baseline) else Baseline(baseline)
        self.channels: dict[str, ChannelMonitor] = {}
        self.disabled: set[str] = set()
        mspec = spec.models.get(model)
        self.discover = mspec.discover if mspec else True
        self.labels = {**spec.labels, **(mspec.labels if mspec else {})}
        self.annotations = {**spec.annotations, **(mspec.annotations if mspec else {})}
        self.known_features: list[str] = []  # features observed on every record with a features object
        if mspec:
            for name, cspec in mspec.channels.items():
                if not cspec.enabled:
                    self.disabled.add(name)
                elif not name.startswith("__"):
                    self.known_features.append(name)
        self.task: Task | None = mspec.task if mspec else None
        self.score_output = mspec.score_output if mspec else None
        self.class_output = mspec.class_output if mspec else None
        self.positive_class = mspec.positive_class if mspec else None
        self.class_probabilities = mspec.class_probabilities if mspec else None
        # multiclass: the classes with per-class channels (configured ones first, then as first seen,
        # up to limits.classes_per_model) and the labelled predictions of a class beyond the cap
        self.classes: dict[str, None] = {}
        if mspec:
            self.classes.update((split[1], None) for name in mspec.channels if (split := split_per_class(name)) is not None)
        self.untracked = 0
        self.class_overflow = 0  # untracked labelled predictions since the caller last looked (a metric)
        self.warned_classes = False  # the log said that classes go untracked
        self.cost = mspec.cost if mspec else None
        self.performance_pages = mspec.performance_pages if mspec else "model"
        self.page = PerformancePage()  # the model's performance page (core/model_pages.py)
        estimate = mspec.estimate if mspec else None
        self.versions: list[str] = []  # model versions seen, oldest first; the model-dependent references are the last one's
        # label-free estimates: the calibration of the baseline, else learned from the first labelled predictions
        self.estimate = estimate if estimate is not None and estimate.enabled else None
        self.calibration = self.start_calibration()
        self.recalibrated = False  # the calibration was learned during the record being gathered
        self.realised = Realised() if self.calibration is not None else None  # what the labels said, for estimate alerts
        self.row = 0  # the record of the batch being gathered
        self._outputs: dict[tuple[str, ...], Outputs] = {}
        self._warned_outputs = False
        self.dirty = True
        self.refused: list[tuple[str, str]] = []  # (limit, channel name) refused since the caller last looked
        self._gather: tuple[tuple[int, str], ...] = ()
        self._gather_stamp: tuple[int, int] | None = None

    def performance(self, prediction: Any, label: Any) -> list[tuple[str, float]]:
        """The performance channel values of one labelled prediction, in channel order.

        ``__error__`` keeps its meaning (:func:`legacy_error`: |prediction - label| for numbers,
        0/1 mismatch otherwise) on the class output, else the score. By task, a classifier's 0/1
        error (class output, or a binary score cut at 0.5) feeds ``__error_rate__`` and a
        regressor's absolute error ``__abs_error__``; the further channels follow
        (:mod:`stream_monitor.core.performance`: recall, precision, log loss, calibration,
        signed error, cost). A dict prediction is read through its score
        and class outputs (:func:`resolve_outputs`); when they are ambiguous a warning is logged
        once per model and nothing is fed. The task is the configured one, else inferred once
        from the first labelled prediction (:func:`infer_task`).
        """
        if prediction is None or label is None:
            return []
        score, klass = self._read_outputs(prediction)
        if score is None and klass is None:
            return []
        out: list[tuple[str, float]] = []
        legacy = legacy_error(klass if klass is not None else score, label)
        if legacy is not None:
            out.append((ERROR, legacy))
        if self.task is None:
            self.task = infer_task(score, klass, label)
            log.info("model_task_inferred", model=self.model, task=self.task, partition=self.partition)
        if self.task == "regression":
            p, lab = _number(score if score is not None else klass), _number(label)
            if p is not None and lab is not None:
                out.append((ABS_ERROR, abs(p - lab)))
                out.extend(perf.regression_values(p, lab))
                cost = perf.regression_cost(self.cost, p, lab) if self.cost is not None else None
                if cost is not None:
                    out.append((COST, cost))
            return out
        predicted = klass
        if predicted is None:
            s = _number(score)
            if s is None or self.task != "binary":
                return out
            predicted = 1.0 if s >= 0.5 else 0.0
        error = class_error(predicted, label)
        out.append((ERROR_RATE, error))
        positive = self.positive_class
        if self.calibration is not None and self.task == "binary":
            p = perf.probability(score)
            if p is not None:
                self._calibrate(p, perf.is_positive(label, positive))
        elif self.calibration is not None and self.task == "multiclass" and isinstance(prediction, dict) and self.class_probabilities:
            decided = class_name(predicted)
            p = class_probabilities(prediction, self.class_probabilities).get(decided)
            if p is not None:
                if error:
                    self.calibration.observe_error(decided, class_name(label))
                self._calibrate(p, not error)  # top-label calibration: how often a decision of that probability is right
        out.extend(perf.classification_values(self.task, score, klass, label, positive))
        if self.task == "multiclass":
            out.extend(self._per_class(class_name(predicted), class_name(label)))
        if self.cost is not None:
            cost = perf.classification_cost(self.cost, predicted, perf.predicted_positive(self.task, score, klass, positive), label, positive)
            if cost is not None:
                out.append((COST, cost))
        if self.realised is not None and self.calibration is not None:
            for name, value in out:
                self.realised.add(self.row, name, value, self.calibration.learned)
            self.dirty = True  # the realised blocks are model state
        return out

    def _per_class(self, predicted: str, label: str) -> list[tuple[str, float]]:
        """The per-class values of one labelled multiclass prediction, for the classes tracked (:meth:`_track`)."""
        tracked = self._track(label) + self._track(predicted)
        if tracked < 2:
            self.untracked += 1
            self.class_overflow += 1
            self.dirty = True
        return perf.per_class_values(predicted, label, self.classes)

    def _track(self, klass: str) -> int:
        """1 when class ``klass`` has per-class channels (taken on while fewer than ``limits.classes_per_model`` are), else 0."""
        classes = self.classes
        if klass in classes:
            return 1
        cap = self.spec.limits.classes_per_model
        if len(classes) < cap:
            classes[klass] = None
            self.dirty = True
            return 1
        if not self.warned_classes:
            self.warned_classes = True
            log.warning(
                "classes_over_limit", model=self.model, limit=cap, untracked_class=klass, partition=self.partition,
                hint="per-class channels only for the first classes seen; raise limits.classes_per_model to track more "
                "(further classes are counted in limits_exceeded, limit classes_per_model)",
            )  # fmt: skip
        return 0

    def _calibrate(self, p: float, positive: bool) -> None:
        """Count a labelled probability in the calibration; once learned, the estimate channels restart their reference.

        ``positive``: the label is the positive class (binary), or the decision was right (multiclass).
        """
        if self.calibration is None or self.calibration.learned:
            return
        self.dirty = True  # the counts are model state until the calibration is learned
        if self.calibration.observe(p, positive):
            self.recalibrated = True
            if self.realised is not None:
                self.realised.mark(self.row, True)
            for name in [n for n in self.channels if base_channel(n) in ESTIMATED_CHANNELS]:
                self.reset_channel(name)
            log.info("estimate_calibrated", model=self.model, labels=self.calibration.count, partition=self.partition)

    def estimates(self, prediction: Any) -> list[tuple[str, float]]:
        """The label-free estimates of one prediction: its expected error, (with a cost model) expected cost and, when it
        decided positive, the probability that it is right (``__estimated_precision__``).

        Only for a binary classifier (configured, inferred, or not yet known) whose prediction has
        a probability in [0, 1], when ``estimate.enabled``. The decision is the class output, else
        the probability cut at 0.5, as for ``__error_rate__``; the probability is calibrated by
        :attr:`calibration` (as is, until it has learned).
        """
        cal = self.calibration
        if cal is None or prediction is None or self.task == "regression":
            return []
        if self.class_probabilities is not None and isinstance(prediction, dict):
            return self._multiclass_estimates(prediction, cal)
        if self.task == "multiclass":
            return []
        score, klass = self._read_outputs(prediction)
        p = perf.probability(score)
        if p is None:
            return []
        decided = perf.predicted_positive("binary", p, klass, self.positive_class)
        if decided is None:
            return []
        out = [(ESTIMATED_ERROR_RATE, expected_error(p, decided, cal))]
        cost = self.cost
        if cost is not None and cost.family == "binary":
            out.append((ESTIMATED_COST, expected_cost(p, decided, cal, cost.false_positive or 0.0, cost.false_negative or 0.0)))
        if decided:
            out.append((ESTIMATED_PRECISION, cal.calibrated(p)))
        return out

    def _multiclass_estimates(self, prediction: dict[str, Any], cal: Calibration) -> list[tuple[str, float]]:
        """A multiclass prediction's expected error, 1 - q, (with a cost matrix) expected cost and, for a tracked
        decided class ``c`` (:meth:`_track`), ``q`` on ``__estimated_precision__.<c>``.

        The decision is the class output, else the class of the highest probability (the first
        one on a tie); ``q`` is the calibrated probability that a decision with that probability is
        right (:attr:`calibration` learns it per probability bin from labelled predictions: top-label
        calibration, one histogram over all classes; ``q`` is the probability itself until then). The expected cost spreads the
        remaining ``1 - q`` over the other classes as the labelled wrong decisions of that class
        were spread (:meth:`Calibration.error_shares`), else in proportion to their probabilities.
        """
        probs = class_probabilities(prediction, self.class_probabilities or "")
        if not probs:
            return []
        _, klass = self._read_outputs(prediction)
        decided = class_name(klass) if klass is not None else max(probs, key=probs.__getitem__)
        p = probs.get(decided)
        if p is None:
            return []
        q = cal.calibrated(p)
        out = [(ESTIMATED_ERROR_RATE, 1.0 - q)]
        cost = self.cost
        if cost is not None and cost.matrix is not None:
            out.append((ESTIMATED_COST, matrix_expected_cost(probs, decided, q, cost.matrix, cal.error_shares(decided))))
        if self._track(decided):
            out.append((per_class_channel(ESTIMATED_PRECISION, decided), q))
        return out

    def begin_batch(self) -> None:
        """A batch starts: the realised metrics as of its records are remembered from here."""
        if self.realised is not None and self.calibration is not None:
            self.realised.begin_batch(self.calibration.learned)

    def estimate_evidence(self, channel: str, row: int) -> dict[str, Any]:
        """An estimate alert's evidence as of record ``row`` of the batch: calibrated or not, and the realised metric."""
        snap = self.realised.at(row) if self.realised is not None else NO_SNAPSHOT
        return estimate_evidence(channel, snap)

    def _read_outputs(self, prediction: Any) -> tuple[Any, Any]:
        """(score, class) of a prediction: a scalar float is a score, any other scalar a class."""
        if not isinstance(prediction, dict):
            if isinstance(prediction, float):
                return prediction, None
            return None, prediction
        keys = tuple(prediction)
        outputs = self._outputs.get(keys)
        if outputs is None:
            outputs = resolve_outputs(keys, self.score_output, self.class_output)
            if len(self._outputs) < 64:
                self._outputs[keys] = outputs
            if outputs.ambiguous and not self._warned_outputs:
                self._warned_outputs = True
                log.warning(
                    "prediction_outputs_ambiguous", model=self.model, outputs=list(keys), partition=self.partition,
                    hint="set score_output and class_output for this model; no error is computed until then",
                )  # fmt: skip
        if outputs.ambiguous:
            return None, None
        if outputs.score is None and outputs.klass is None and len(keys) == 1:  # one output: it is the prediction
            return self._read_outputs(prediction[keys[0]])
        return prediction.get(outputs.score) if outputs.score else None, prediction.get(outputs.klass) if outputs.klass else None

    def gather(self) -> tuple[tuple[int, str], ...]:
        """(index in ``known_features``, name) of the known features that are channels, in order.

        Cached; ``known_features`` and ``channels`` only grow, so their lengths tell when the
        cache is stale.
        """
        stamp = (len(self.known_features), len(self.channels))
        if stamp != self._gather_stamp:
            channels = self.channels
            self._gather = tuple((i, name) for i, name in enumerate(self.known_features) if name in channels)
            self._gather_stamp = stamp
        return self._gather

    def discover_features(self, feats: dict[str, Any]) -> None:
        """Create channels for the new, non-null features of one record (in the record's order)."""
        channels, known = self.channels, self.known_features
        for name, value in feats.items():
            if name not in channels and value is not None:
                if self.channel(name, value) is not None and name not in known:
                    known.append(name)

    def _over_limit(self, name: str) -> bool:
        """Whether a new, unconfigured channel would exceed a cap (then it is listed in ``refused``)."""
        limits = self.spec.limits
        if len(self.channels) >= limits.channels_per_model:
            self.refused.append(("channels_per_model", name))
            return True
        if name.startswith(_OUTPUT_PREFIX) and sum(1 for n in self.channels if n.startswith(_OUTPUT_PREFIX)) >= limits.prediction_outputs:
            self.refused.append(("prediction_outputs", name))
            return True
        return False

    def reset_channel(self, name: str) -> ChannelMonitor:
        """Replace channel ``name`` with a fresh one (same type, settings and ordinal), keeping its open alert episodes."""
        old = self.channels[name]
        baseline = self.baseline_for(name, old.channel_type)
        if baseline is None:
            self.warn_unmatched(name)
        fresh = ChannelMonitor(self.model, name, old.channel_type, old.settings, self.partition, old.ordinal, baseline)
        fresh.adopt_open_episodes(old)
        self.channels[name] = fresh
        self.dirty = True
        return fresh

    def baseline_for(self, name: str, channel_type: ChannelType) -> Reference | None:
        """The baseline reference of a channel (the current version's, else the model's), when one of the right type was configured.

        An estimate channel the profile does not cover takes its reference from the profile's
        probabilities and calibration when it carries one (:meth:`estimate_reference`).
        """
        version = self.versions[-1] if self.versions else None
        ref = self.baseline.reference_for(version, name)
        if ref is None and base_channel(name) in ESTIMATED_CHANNELS:
            ref = self.estimate_reference(name, version)
        if ref is None or isinstance(ref, NumericReference) != (channel_type == "numeric"):
            return None
        return ref

    def estimate_reference(self, name: str, version: str | None) -> NumericReference | None:
        """A binary classifier's estimate channel's reference from its baseline: the expected error (cost, precision) of each
        of the profile's probabilities under the profile's calibration, decided at 0.5 (:func:`expected_on`).

        None unless the profile (the version's, else the model's) carries a calibration and a
        probability channel (``__prediction__``, else its score output's), the estimates are on and
        the model is not a multiclass or regression one; its count is the profile's predictions.
        """
        cal = self.baseline.calibration_for(version)
        if cal is None or self.estimate is None or self.task in ("multiclass", "regression") or self.class_probabilities is not None:
            return None
        costs = None
        if name == ESTIMATED_COST:
            if self.cost is None or self.cost.family != "binary":
                return None
            costs = (self.cost.false_positive or 0.0, self.cost.false_negative or 0.0)
        own = self.baseline.versions.get(version) if version is not None else None
        scores = self.baseline.reference_for(version, PREDICTION)
        if not isinstance(scores, NumericReference):
            keys = [n[len(_OUTPUT_PREFIX) :] for n in {*self.baseline, *(own or ())} if n.startswith(_OUTPUT_PREFIX)]
            score = resolve_outputs(sorted(keys), self.score_output, self.class_output).score if keys else None
            scores = self.baseline.reference_for(version, _OUTPUT_PREFIX + score) if score else None
        sample = scores.sorted_sample if isinstance(scores, NumericReference) else None
        values = expected_on(sample, cal, costs, name == ESTIMATED_PRECISION) if sample is not None and sample.size else None
        if not values:  # (a precision reference needs a probability decided positive)
            return None
        ref = NumericReference.from_values(values, 0, 0, "baseline")  # its count: the profile's predictions (so decided)
        ref.count = max(ref.count, round(scores.count * (1.0 - scores.missing_rate - scores.invalid_rate) * len(values) / sample.size))
        return ref

    def warn_unmatched(self, name: str) -> None:
        """Log that prediction channel ``name`` has no baseline entry while the profile (current version's, else the model's) has others."""
        if not is_prediction_channel(name) or not (self.baseline or self.baseline.versions):
            return
        own = self.baseline.versions.get(self.versions[-1]) if self.versions else None
        names = set(self.baseline) | set(own or ())
        missing, _ = prediction_mismatch(names, [name], complete=False)
        if missing:
            log.warning(
                "baseline_prediction_channel_missing", model=self.model, channel=name, partition=self.partition,
                baseline_channels=sorted(n for n in names if is_prediction_channel(n)),
                hint="the channel starts from a warm-up; build the profile with --prediction-column OUTPUT=COLUMN per output "
                "(or from inference events) so that it uses the channel names run uses",
            )  # fmt: skip

    def start_calibration(self) -> Calibration | None:
        """A calibration to start from: the baseline's (current version's, else the model's; learned), else one to learn; None without estimates."""
        if self.estimate is None:
            return None
        cal = self.baseline.calibration_for(self.versions[-1] if self.versions else None)
        if cal is not None:
            return Calibration.from_state(cal.to_state())  # a copy: the loaded baseline stays as it is
        return Calibration(self.estimate.bins, self.estimate.calibration_size)

    def channel(self, name: str, first_value: Any) -> ChannelMonitor | None:
        """The channel ``name``, created on its first non-null value; None when it is not monitored."""
        ch = self.channels.get(name)
        if ch is not None:
            return ch
        if name in self.disabled:
            return None
        cspec = self.spec.channel_spec(self.model, name)
        if cspec is None and not self.discover:
            return None
        ctype = (cspec.type if cspec else None) or type_of(first_value)
        if ctype is None:
            return None  # type unknown until a non-null value arrives
        if cspec is None and self._over_limit(name):
            return None
        baseline = self.baseline_for(name, ctype)
        if baseline is None:
            self.warn_unmatched(name)
        settings = self.spec.channel_settings(self.model, name, ctype)
        ch = ChannelMonitor(self.model, name, ctype, settings, self.partition, len(self.channels), baseline)
        self.channels[name] = ch
        self.dirty = True
        log.info("channel_discovered", model=self.model, channel=name, type=ctype, partition=self.partition)
        return ch
