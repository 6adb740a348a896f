"""Reference profiles from training data (``stream-monitor baseline``), and loading them for the core.

A baseline profile describes what "normal" looks like for every channel of one model, built from
the data the model was trained on, so the monitor compares serving traffic with training data
(training/serving skew) from the first window on, instead of with its own warm-up.

Input formats, chosen by file name:

* ``.csv`` (stdlib ``csv``): a header row of column names. A column whose non-empty values all
  parse as numbers is numeric (``nan``/``inf`` count as invalid values), any other column is
  categorical; an empty cell is a missing value.
* ``.jsonl`` / ``.jsonl.gz`` (also ``.ndjson``): either inference events as the monitor reads them
  (``features`` object; ``prediction``, ``label`` and ``latency_ms`` feed the reserved channels;
  events of other models are skipped) or flat rows (one object per row, one key per column). The
  first row decides which: an object with a ``features`` object, or a ``model`` name with a
  ``prediction``, ``ts`` or ``event_id``, makes it a file of events. JSON numbers are numeric, strings and booleans categorical, ``null`` missing.
* ``.parquet`` (needs ``pyarrow``: ``pip install 'stream-monitor[parquet]'``): flat rows.

For flat rows, ``--label-column`` becomes the ``__label__`` channel and ``--prediction-column``
the prediction channels, named as ``run`` names them (:func:`prediction_columns`): ``COLUMN`` is
``__prediction__`` (a scalar prediction), ``OUTPUT=COLUMN`` (repeatable) ``__prediction__.OUTPUT``
(an output of an object prediction such as ``{"proba": 0.8, "label": 1}``); with the model's
config (``--config``), a column named after an output the config names (``score_output``,
``class_output``) is that output, and the task, outputs and positive class are the config's. A row with both a prediction and a label also feeds
the performance channels (``__error_rate__``, ``__recall__``, ``__abs_error__``, ...), computed by
the same code as in ``run`` (:meth:`ModelMonitor.performance`, task inferred from the first
labelled prediction), so the profile holds their references too; and a binary classifier's
probability with its 0/1 label is counted in ``calibration``, a histogram of
:data:`CALIBRATION_BINS` equal-width probability bins (labelled predictions ``n`` and positives
``pos`` per bin) from which the label-free estimates start calibrated. The profile file::

    {"schema_version": 1, "model": "fraud-v3", "created_from": {"path": ..., "format": ..., "sha256": ...},
     "rows": 100000, "channels": {"amount": {"type": "numeric", ...}, "country": {"type": "categorical", ...}},
     "calibration": {"bins": 100, "n": [...], "pos": [...]}}

where each channel entry is ``NumericReference.to_profile()`` / ``CategoricalReference.to_profile()``
(``calibration`` only when some labelled probability was counted). Configure it per model
(``models.<name>.baseline: path``, and per model version ``models.<name>.baselines: {version:
path}``) and load it with :func:`load_baselines`.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "train.csv").write_text("amount,country,y\\n1.5,DE,0\\n2.5,FR,1\\n,DE,0\\n")
>>> profile = build_profile(d / "train.csv", "m", prediction_column="y")
>>> profile["rows"], sorted(profile["channels"])
(3, ['__prediction__', 'amount', 'country'])
>>> profile["channels"]["amount"]["missing_rate"], profile["channels"]["country"]["categories"]
(0.3333333333333333, {'DE': 2, 'FR': 1})
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import os
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import structlog

from stream_monitor.config import ConfigError
from stream_monitor.core.estimate import Calibration, rebinned
from stream_monitor.core.model_monitor import ModelMonitor
from stream_monitor.core.outputs import configured_prediction_channels, mismatch_text, prediction_columns, prediction_mismatch
from stream_monitor.core.reference import Baseline, CategoricalReference, NumericReference, Reference, reference_from_profile
from stream_monitor.core.spec import LABEL, LATENCY, PREDICTION, EstimateSpec, ModelSpec, MonitorSpec

log = structlog.get_logger("stream_monitor.baseline")

PROFILE_SCHEMA_VERSION = 1
# A categorical channel keeps at most this many (most frequent) categories in the profile. One more
# than the largest ``reference.max_categories`` the config accepts, so a truncated channel is still
# recognised as high-cardinality (and its distribution tests switched off) exactly as before.
MAX_PROFILE_CATEGORIES = 10_001
CALIBRATION_BINS = 100
"""Probability bins of a profile's calibration histogram: a model's ``estimate.bins`` must divide it."""


class BaselineError(ConfigError):
    """A problem with training data or a baseline profile, worded for the person who gave it."""


# --------------------------------------------------------------------------------------------- columns
class _Column:
    """Accumulates one channel's values: numbers in a compact array, categories in a counter."""

    __slots__ = ("name", "type", "numbers", "categories", "present", "invalid", "missing")

    def __init__(self, name: str) -> None:
        self.name = name
        self.type: str | None = None  # "numeric" | "categorical", from the first non-null value
        self.numbers = array("d")
        self.categories: Counter[str] = Counter()
        self.present = 0  # non-null values (valid or invalid)
        self.invalid = 0
        self.missing = 0  # explicit nulls; absent values are added in :meth:`reference`

    def add(self, value: Any) -> None:
        if value is None:
            self.missing += 1
            return
        self.present += 1
        t = type(value)
        if self.type is None:
            if t is float or t is int:
                self.type = "numeric"
            elif t is str or t is bool:
                self.type = "categorical"
            else:
                self.invalid += 1
                return
        if self.type == "numeric":
            if (t is float or t is int) and math.isfinite(value):
                self.numbers.append(float(value))
            else:
                self.invalid += 1
        elif t is str:
            self.categories[value] += 1
        elif t is bool:
            self.categories["true" if value else "false"] += 1
        else:
            self.invalid += 1

    def reference(self, rows: int | None) -> Reference | None:
        """The channel's reference; ``rows`` = rows on which the channel was expected (absent = missing)."""
        missing = self.missing if rows is None else rows - self.present
        if self.type == "numeric" and len(self.numbers):
            return NumericReference.from_values(self.numbers, missing=missing, invalid=self.invalid, kind="baseline")
        if self.type == "categorical" and self.categories:
            ref = CategoricalReference.from_counts(self.categories, missing=missing, invalid=self.invalid, kind="baseline")
            if ref.distinct > MAX_PROFILE_CATEGORIES:
                ref.categories = ref.categories[:MAX_PROFILE_CATEGORIES]
                ref.counts = ref.counts[:MAX_PROFILE_CATEGORIES]
            return ref
        return None


class _Profiler:
    """Feeds rows into columns: feature columns (absent = missing) and reserved channels."""

    def __init__(self, model: str, outputs: dict[str, str | None], label_column: str | None, mspec: ModelSpec | None = None) -> None:
        self.model = model
        self.outputs = outputs  # prediction column -> output (None: the scalar __prediction__)
        self.scalar = next((c for c, o in outputs.items() if o is None), None)
        self.label_column = label_column
        self.features: dict[str, _Column] = {}
        self.reserved: dict[str, _Column] = {}
        self.rows = 0
        self.feature_rows = 0  # rows that carry features (flat rows, or events with a features object)
        self.skipped_other_models = 0
        self.unseen_prediction_columns = set(outputs)
        self.seen_label_column = label_column is None
        # the performance channels and the calibration histogram, by the monitor's own code
        never = 2**62  # the histogram counts every labelled probability (it is never "learned")
        estimate = EstimateSpec(enabled=True, bins=CALIBRATION_BINS, calibration_size=never)
        mspec = (mspec or ModelSpec()).model_copy(update={"estimate": estimate, "baseline": None, "baselines": {}})
        self.performance = ModelMonitor(MonitorSpec(models={model: mspec}), model, 0, None)

    def _labelled(self, prediction: Any, label: Any) -> None:
        for name, value in self.performance.performance(prediction, label):
            self._reserved(name, value)

    def calibration(self) -> dict[str, Any] | None:
        """The calibration histogram ``{bins, n, pos}``, None when no labelled probability was counted."""
        cal = self.performance.calibration
        if cal is None or cal.count == 0:
            return None
        return {"bins": cal.bins, "n": list(cal.n), "pos": list(cal.pos)}

    def _feature(self, name: str, value: Any) -> None:
        col = self.features.get(name)
        if col is None:
            col = self.features[name] = _Column(name)
        col.add(value)

    def _reserved(self, name: str, value: Any) -> None:
        if value is None:
            return  # like the monitor: a null prediction/label/latency is no observation
        col = self.reserved.get(name)
        if col is None:
            col = self.reserved[name] = _Column(name)
        col.add(value)

    def flat_row(self, row: dict[str, Any]) -> None:
        self.rows += 1
        self.feature_rows += 1
        outputs = self.outputs
        for name, value in row.items():
            if name in outputs:
                self.unseen_prediction_columns.discard(name)
                output = outputs[name]
                self._reserved(PREDICTION if output is None else f"{PREDICTION}.{output}", value)
            elif name == self.label_column:
                self.seen_label_column = True
                self._reserved(LABEL, value)
            else:
                self._feature(name, value)
        if outputs and self.label_column is not None:
            if self.scalar is not None:
                prediction = row.get(self.scalar)
            else:  # an object prediction, as run reads it (its outputs resolved by the same code)
                prediction = {o: row.get(c) for c, o in outputs.items()}
            self._labelled(prediction, row.get(self.label_column))

    def event_row(self, row: dict[str, Any]) -> None:
        model = row.get("model")
        if model is not None and model != self.model:
            self.skipped_other_models += 1
            return
        self.rows += 1
        features = row.get("features")
        if isinstance(features, dict):
            self.feature_rows += 1
            for name, value in features.items():
                self._feature(name, value)
        prediction = row.get("prediction")
        if isinstance(prediction, dict):
            for name, value in prediction.items():
                self._reserved(f"{PREDICTION}.{name}", value)
        else:
            self._reserved(PREDICTION, prediction)
        self._reserved(LABEL, row.get("label"))
        self._reserved(LATENCY, row.get("latency_ms"))
        self._labelled(prediction, row.get("label"))

    def channels(self) -> tuple[dict[str, Reference], list[str]]:
        out: dict[str, Reference] = {}
        empty: list[str] = []
        columns = [(col, self.feature_rows) for col in self.features.values()]
        columns += [(col, None) for col in self.reserved.values()]
        for col, rows in columns:
            ref = col.reference(rows)
            if ref is None:
                empty.append(col.name)
            else:
                out[col.name] = ref
        return out, empty


# -------------------------------------------------------------------------------------------- readers
def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        return "csv"
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise BaselineError(f"{path}: unsupported input format; use .csv, .jsonl, .jsonl.gz or .parquet")


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")  # noqa: SIM115


def _csv_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_csv(path: Path, profiler: _Profiler) -> None:
    # Pass 1: a column is numeric when every non-empty cell parses as a number.
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise BaselineError(f"{path}: empty CSV file (a header row of column names is required)")
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            raise BaselineError(f"{path}: duplicate column names {dupes}")
        numeric = [True] * len(header)
        for lineno, cells in enumerate(reader, start=2):
            if len(cells) > len(header):
                raise BaselineError(f"{path}:{lineno}: {len(cells)} cells but the header names {len(header)} columns")
            for i, cell in enumerate(cells):
                if numeric[i] and cell != "" and _csv_number(cell) is None:
                    numeric[i] = False
    # Pass 2: values typed by column.
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        next(reader)
        for cells in reader:
            if not cells:
                continue
            row: dict[str, Any] = {}
            for i, name in enumerate(header):
                cell = cells[i] if i < len(cells) else ""
                if cell == "":
                    row[name] = None
                elif numeric[i]:
                    row[name] = float(cell)
                else:
                    row[name] = cell
            profiler.flat_row(row)


def _json_line(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # NaN/Infinity literals: counted as invalid numbers


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """``raw`` parsed as one JSON object; ``ValueError`` saying what is wrong otherwise."""
    try:
        doc = _json_line(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"expected a JSON object{what}, got {type(doc).__name__}")
    return doc


def _is_event(row: dict[str, Any]) -> bool:
    """An inference event (``features`` object, or ``model`` with a prediction/time/id) or a flat row."""
    if isinstance(row.get("features"), dict):
        return True
    return isinstance(row.get("model"), str) and any(k in row for k in ("prediction", "ts", "event_id"))


def _read_jsonl(path: Path, profiler: _Profiler) -> None:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    events: bool | None = None
    with opener(path, "rb") as fh:  # type: ignore[operator]
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                row = _json_object(line, " per line")
            except ValueError as exc:
                raise BaselineError(f"{path}:{lineno}: {exc}") from None
            if events is None:  # the first row decides: a file of inference events, or of flat rows
                events = _is_event(row)
            if events:
                profiler.event_row(row)
            else:
                profiler.flat_row(row)


def _read_parquet(path: Path, profiler: _Profiler) -> None:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BaselineError(
            f"{path}: reading Parquet needs pyarrow; install the extra: pip install 'stream-monitor[parquet]'"
        ) from None
    try:
        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=65_536):
            for row in batch.to_pylist():
                profiler.flat_row(row)
    except (OSError, ValueError) as exc:  # pyarrow.lib.ArrowInvalid is a ValueError
        raise BaselineError(f"{path}: not a readable Parquet file: {exc}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -------------------------------------------------------------------------------------------- profile
def build_profile(
    path: str | Path,
    model: str,
    prediction_column: str | list[str] | None = None,
    label_column: str | None = None,
    model_spec: ModelSpec | None = None,
) -> dict[str, Any]:
    """Read training data and return the baseline profile document (see the module docstring).

    ``prediction_column``: ``COLUMN`` or ``OUTPUT=COLUMN`` items (:func:`prediction_columns`);
    ``model_spec``: the model's config, when known (its outputs, task and positive class).
    """
    path = Path(path)
    if not model:
        raise BaselineError("--model must not be empty")
    try:
        outputs = prediction_columns(prediction_column, model_spec)
    except ValueError as exc:
        raise BaselineError(str(exc)) from None
    if label_column is not None and label_column in outputs:
        raise BaselineError(f"--prediction-column and --label-column are both {label_column!r}")
    fmt = _format_of(path)
    if not path.is_file():
        raise BaselineError(f"{path}: input file not found")
    profiler = _Profiler(model, outputs, label_column, model_spec)
    try:
        {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[fmt](path, profiler)
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except (gzip.BadGzipFile, EOFError) as exc:
        raise BaselineError(f"{path}: not a readable gzip file: {exc}") from None
    except csv.Error as exc:
        raise BaselineError(f"{path}: not readable as CSV: {exc}") from None
    if profiler.rows == 0:
        other = f" ({profiler.skipped_other_models} events of other models skipped)" if profiler.skipped_other_models else ""
        raise BaselineError(f"{path}: no rows for model {model!r}{other}")
    if profiler.unseen_prediction_columns:
        raise BaselineError(f"{path}: --prediction-column {sorted(profiler.unseen_prediction_columns)[0]!r} is not a column of the input")
    if not profiler.seen_label_column:
        raise BaselineError(f"{path}: --label-column {label_column!r} is not a column of the input")
    channels, empty = profiler.channels()
    if not channels:
        raise BaselineError(f"{path}: no column has a usable value (all empty or of unsupported types)")
    calibration = profiler.calibration()
    return {
        "schema_version": PROFILE_SCHEMA_VERSION,
        "model": model,
        "created_from": {"path": str(path), "format": fmt, "sha256": _sha256(path)},
        "rows": profiler.rows,
        "skipped_rows_of_other_models": profiler.skipped_other_models,
        "empty_columns": empty,
        "channels": {name: ref.to_profile() for name, ref in channels.items()},
        **({"calibration": calibration} if calibration is not None else {}),
    }


def write_profile(profile: dict[str, Any], out: str | Path) -> None:
    """Write a profile atomically (a reader never sees half a file)."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(orjson.dumps(profile) + b"\n")
    os.replace(tmp, out)


# -------------------------------------------------------------------------------------------- loading
def _check_reference(name: str, entry: Any) -> Reference:
    if not isinstance(entry, dict):
        raise ValueError(f"channels.{name}: expected an object, got {type(entry).__name__}")
    kind = entry.get("type")
    try:
        if kind == "numeric":
            sample = entry.get("sample")
            if not isinstance(sample, list) or not sample:
                raise ValueError("'sample' must be a non-empty list of numbers")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in sample):
                raise ValueError("'sample' must hold finite numbers only")
        elif kind == "categorical":
            cats = entry.get("categories")
            if not isinstance(cats, dict) or not cats:
                raise ValueError("'categories' must be a non-empty object of category counts")
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in cats.values()):
                raise ValueError("category counts must be non-negative integers")
        ref = reference_from_profile(entry)
    except KeyError as exc:
        raise ValueError(f"channels.{name}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"channels.{name}: {exc}") from None
    numbers = [ref.count, ref.missing_rate, ref.invalid_rate] + (
        [ref.mean, ref.std, ref.minimum, ref.maximum] if isinstance(ref, NumericReference) else []
    )
    if not all(math.isfinite(x) for x in numbers) or ref.count < 0 or not (0 <= ref.missing_rate <= 1 and 0 <= ref.invalid_rate <= 1):
        raise ValueError(f"channels.{name}: count must be >= 0 and rates within [0, 1]")
    if isinstance(ref, NumericReference) and (ref.std < 0 or ref.minimum > ref.maximum):
        raise ValueError(f"channels.{name}: std must be >= 0 and min <= max")
    return ref


def _check_calibration(entry: Any) -> Calibration:
    """A profile's ``calibration`` histogram as a learned :class:`Calibration`; ``ValueError`` says what is wrong."""
    if not isinstance(entry, dict) or set(entry) != {"bins", "n", "pos"}:
        raise ValueError("calibration: expected an object {bins, n, pos}")
    n = entry["n"]
    total = sum(n) if isinstance(n, list) and all(type(c) is int for c in n) else 0
    cal = Calibration.from_state({**entry, "size": max(total, 1)})
    if total == 0:
        raise ValueError("calibration: no labelled prediction counted")
    return cal


def load_profile(path: str | Path, model: str | None = None) -> Baseline:
    """Read and validate one baseline profile file (references by channel, and its calibration); ``ValueError`` says what is wrong."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValueError("file not found") from None
    except OSError as exc:
        raise ValueError(f"cannot read: {exc}") from None
    doc = _json_object(raw, "")
    version = doc.get("schema_version")
    if version != PROFILE_SCHEMA_VERSION:
        raise ValueError(f"schema_version is {version!r}; this monitor reads version {PROFILE_SCHEMA_VERSION}")
    if model is not None and doc.get("model") != model:
        raise ValueError(f"the profile was built for model {doc.get('model')!r}")
    channels = doc.get("channels")
    if not isinstance(channels, dict) or not channels:
        raise ValueError("'channels' must be a non-empty object")
    refs = {str(name): _check_reference(str(name), entry) for name, entry in channels.items()}
    return Baseline(refs, _check_calibration(doc["calibration"]) if "calibration" in doc else None)


def load_baselines(spec: MonitorSpec, base_dir: str | Path | None = None, warn: bool = True) -> dict[str, Baseline]:
    """The baselines of every configured model with ``baseline: path`` and/or ``baselines: {version: path}``.

    Relative paths resolve against ``base_dir`` (e.g. the config file's folder) when given, else
    the working directory. Raises :class:`BaselineError` (a ``ConfigError``: exit code 2) naming the
    field (``models.<m>.baseline`` or ``models.<m>.baselines.<version>``), the path and the problem.
    A model's entry holds its ``baseline`` references (none when only ``baselines`` is set) and,
    in ``versions``, one :class:`Baseline` per named version; a profile's calibration is merged
    into the model's ``estimate.bins``. Pass the result as ``PartitionMonitor(..., baselines=...)``.
    With ``warn``, each of :func:`baseline_notes` is logged (``baseline_prediction_channels``).
    """
    out: dict[str, Baseline] = {}
    for model_name, mspec in spec.models.items():
        where = f"models.{model_name}.baseline"
        if not mspec.baseline and spec.model_settings(model_name).reference.kind == "baseline":
            raise BaselineError(f"{where}: reference.kind is 'baseline' but no baseline profile path is set")
        if not mspec.baseline and not mspec.baselines:
            continue
        base = _load_one(mspec.baseline, where, model_name, mspec, base_dir) if mspec.baseline else Baseline()
        for version, version_path in mspec.baselines.items():
            base.versions[version] = _load_one(version_path, f"models.{model_name}.baselines.{version}", model_name, mspec, base_dir)
        out[model_name] = base
    if warn:
        for note in baseline_notes(spec, out):
            log.warning("baseline_prediction_channels", note=note)
    return out


def baseline_notes(spec: MonitorSpec, baselines: dict[str, Baseline], sample: dict[str, set[str]] | None = None) -> list[str]:
    """Warnings for baselines whose prediction channels cannot match the ones the model produces, naming both.

    What the model produces is what its config names (``score_output`` / ``class_output``: its
    predictions are objects), and for a model in ``sample`` (model -> prediction channels seen in
    sample records) every prediction channel seen there.
    """
    notes = []
    for model_name, base in baselines.items():
        mspec = spec.models.get(model_name)
        seen = (sample or {}).get(model_name)
        live, complete = (sorted(seen), True) if seen else (configured_prediction_channels(mspec), False)
        source = "seen in the sample" if complete else "its config names its outputs: " + ", ".join(live)
        profiles = [("baseline", set(base))] + [(f"baselines.{v}", set(b) | set(base)) for v, b in base.versions.items()]
        for where, profile in profiles:
            missing, unmatched = prediction_mismatch(profile, live, complete)
            if missing or unmatched:
                notes.append(f"models.{model_name}.{where}: " + mismatch_text(model_name, missing, unmatched, profile, source))
    return notes


def _load_one(where_to: str, where: str, model_name: str, mspec: ModelSpec, base_dir: str | Path | None) -> Baseline:
    """One model's profile, checked against its channel config; :class:`BaselineError` names ``where``."""
    path = Path(where_to).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    try:
        refs = load_profile(path, model_name)
        if refs.calibration is not None:  # only the label-free estimates use it
            refs.calibration = rebinned(refs.calibration, mspec.estimate.bins) if mspec.estimate.enabled else None
    except ValueError as exc:
        raise BaselineError(f"{where}: {path}: {exc}") from None
    for ch_name, ref in refs.items():
        cspec = mspec.channels.get(ch_name)
        ref_type = "numeric" if isinstance(ref, NumericReference) else "categorical"
        if cspec is not None and cspec.type is not None and cspec.type != ref_type:
            raise BaselineError(
                f"{where}: {path}: channel {ch_name!r} is {ref_type} in the baseline but "
                f"models.{model_name}.channels.{ch_name}.type is {cspec.type}"
            )
    return refs


__all__ = ["BaselineError", "build_profile", "load_baselines", "load_profile", "write_profile"]
