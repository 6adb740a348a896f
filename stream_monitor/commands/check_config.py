"""``stream-monitor check-config FILE [--sample FILE]``: validate a config and explain what it monitors.

Besides validation, configured channels are checked against what the data holds: a channel that
neither the model's baseline profile nor any ``--sample`` record contains is a warning naming it
(a typo such as ``incme`` would otherwise just never receive a value). A baseline whose prediction
channels cannot match the ones the model produces (its config's named outputs, or the sample's
predictions) is a warning naming both (:func:`stream_monitor.baseline.baseline_notes`).
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from stream_monitor.baseline import baseline_notes, load_baselines
from stream_monitor.commands.common import EXIT_OK
from stream_monitor.commands.console import explain_config
from stream_monitor.config import AppConfig, ConfigError, load_config
from stream_monitor.core.events import DecodedEvent, decode_inference
from stream_monitor.core.formats import to_native
from stream_monitor.core.formats.common import FormatError
from stream_monitor.core.formats.explain import check_sample, describe
from stream_monitor.core.outputs import is_prediction_channel
from stream_monitor.core.spec import PREDICTION


class SampleError(ConfigError):
    """A ``--sample`` file that cannot be read (exit 2, like a config error)."""


def _event_channels(event: Any) -> set[str]:
    """The channel names an inference event feeds: its feature names and its prediction channels."""
    pred = event.prediction
    outputs = {f"{PREDICTION}.{k}" for k in pred} if isinstance(pred, dict) else {PREDICTION} if pred is not None else set()
    return set(event.features or {}) | outputs


def _sample_lines(path: Path) -> list[bytes]:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            return [line for line in f.read().splitlines() if line.strip()]
    except OSError as exc:
        raise SampleError(f"--sample {path}: {exc.strerror or exc}") from None


def shared_format(cfg: AppConfig) -> Any | None:
    """The model-server format every input topic is read with, when they all share one (else None)."""
    formats = {repr(f) for f in cfg.input_formats.values() if f.kind != "native"}
    if len(formats) != 1 or not set(cfg.kafka.input_topics) <= set(cfg.input_formats):
        return None
    fmt = next(f for f in cfg.input_formats.values() if f.kind != "native")
    return fmt if all(repr(cfg.input_formats[t]) == repr(fmt) for t in cfg.kafka.input_topics) else None


def format_lines(cfg: AppConfig, sample: Path | None) -> list[str]:
    """What each input topic's format reads, and a dry run of the sample's first record in the shared format."""
    lines = [f"input {t}: {describe(f)}" for t, f in cfg.input_formats.items() if f.kind != "native"]
    fmt = shared_format(cfg)
    if sample is not None and fmt is not None:
        first = next(iter(_sample_lines(sample)), None)
        if first is not None:
            _, checked = check_sample(first, None, fmt)
            lines += [f"sample's first record: {line}" if not line.startswith(("WARNING", "ERROR")) else line for line in checked]
    return lines


def sample_channels(cfg: AppConfig, path: Path) -> tuple[dict[str, set[str]], int, int]:
    """Channels per model in a JSONL sample: (model -> feature names, records read, records not decoded).

    Records are inference events in the native format, or — when every input topic has the same
    model-server format (``kafka.input_formats``) — in that format (structured mode: no headers).
    """
    fmt = shared_format(cfg)
    channels: dict[str, set[str]] = defaultdict(set)
    lines = _sample_lines(path)
    failed = 0
    for raw in lines:
        natives: list[bytes] = [raw]
        if fmt is not None:
            out = to_native(raw, None, fmt)
            natives = [] if isinstance(out, FormatError) else [orjson.dumps(e) for e in out]
        decoded = [d for d in (decode_inference(n, 0) for n in natives) if isinstance(d, DecodedEvent)]
        if not decoded:
            failed += 1
        for d in decoded:
            channels[d.event.model] |= _event_channels(d.event)
    return dict(channels), len(lines), failed


def unknown_channels(cfg: AppConfig, known: dict[str, set[str]], checked: set[str]) -> list[str]:
    """Warnings for configured channels of ``checked`` models that ``known`` (baseline ∪ sample) lacks."""
    out = []
    for model_name, model in cfg.models.items():
        if model_name not in checked:
            continue
        names = known.get(model_name, set())
        for ch_name, ch in model.channels.items():
            if ch_name.startswith("__") or not ch.enabled or ch_name in names:
                continue
            guess = difflib.get_close_matches(ch_name, sorted(names), n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            out.append(
                f"models.{model_name}.channels.{ch_name}: no baseline or sample record of {model_name!r} has this channel; "
                f"it will never receive a value{hint}"
            )
    return out


def cmd_check_config(args: argparse.Namespace) -> int:
    """Print the explanation (and warnings) and exit 0; a config, baseline or sample error exits 2."""
    cfg = load_config(args.config)
    baselines = load_baselines(cfg, Path(args.config).parent, warn=False)  # its warnings are printed below
    known: dict[str, set[str]] = {m: set(refs).union(*getattr(refs, "versions", {}).values()) for m, refs in baselines.items()}
    checked = set(baselines)
    warnings: list[str] = []
    sample = getattr(args, "sample", None)
    if sample is not None:
        seen, total, failed = sample_channels(cfg, Path(sample))
        for m, names in seen.items():
            known.setdefault(m, set()).update(names)
        checked |= set(seen)
        if failed:
            warnings.append(f"--sample {sample}: {failed} of {total} records are not valid inference events")
        for m in cfg.models:
            if m not in seen:
                warnings.append(f"--sample {sample}: no record of model {m!r}")
    predictions = {m: {n for n in names if is_prediction_channel(n)} for m, names in (seen if sample is not None else {}).items()}
    warnings = unknown_channels(cfg, known, checked) + baseline_notes(cfg, baselines, predictions) + warnings
    warnings += [f"models.{m}.{note}" for m, model in cfg.models.items() for note in model.estimate_notes()]
    unchecked = [m for m, model in cfg.models.items() if m not in checked and any(not c.startswith("__") for c in model.channels)]
    if unchecked:
        warnings.append(
            f"channel names of {', '.join(repr(m) for m in unchecked)} not checked: no baseline profile; "
            "pass --sample FILE (JSONL inference events) to check them"
        )
    text = explain_config(cfg, baselines, warnings)
    extra = format_lines(cfg, Path(sample) if sample is not None else None)
    if extra:
        head, sep, rest = text.partition("\ndefaults:")
        text = head + "\n" + "\n".join(extra) + "\n" + sep + rest
    sys.stdout.write(text)
    return EXIT_OK
