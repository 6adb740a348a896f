"""``stream-monitor baseline --input FILE --model M --out baseline.json``: build a reference profile."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stream_monitor.baseline import BaselineError, build_profile, write_profile
from stream_monitor.commands.common import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, config_path, load_app_config


def cmd_baseline(args: argparse.Namespace) -> int:
    """``stream-monitor baseline --input FILE --model M --out baseline.json``; with ``--config``, the model's config names its outputs."""
    mspec = load_app_config(args).monitor_spec().models.get(args.model) if config_path(args) else None  # ConfigError: exit 2
    try:
        profile = build_profile(args.input, args.model, getattr(args, "prediction_column", None), getattr(args, "label_column", None), mspec)
    except BaselineError as exc:
        sys.stderr.write(f"stream-monitor baseline: error: {exc}\n")
        return EXIT_USAGE
    try:
        write_profile(profile, args.out)
    except OSError as exc:
        sys.stderr.write(f"stream-monitor baseline: failed to write {args.out}: {exc}\n")
        return EXIT_RUNTIME
    sys.stdout.write(format_summary(profile, args.out))
    return EXIT_OK


def format_summary(profile: dict[str, Any], out: str | Path) -> str:
    """The summary of a built profile printed to stdout."""
    channels = profile["channels"]
    lines = [f"baseline for model {profile['model']!r}: {profile['rows']} rows, {len(channels)} channels -> {out}"]
    for name, ch in channels.items():
        if ch["type"] == "numeric":
            detail = f"mean {ch['mean']:.4g}, std {ch['std']:.4g}, range [{ch['min']:.4g}, {ch['max']:.4g}]"
        else:
            detail = f"{len(ch['categories'])} categories"
        lines.append(f"  {name:<28} {ch['type']:<12} {detail}; missing {ch['missing_rate']:.1%}, invalid {ch['invalid_rate']:.1%}")
    if profile.get("calibration"):
        cal = profile["calibration"]
        lines.append(f"  calibration: {sum(cal['n'])} labelled probabilities in {cal['bins']} bins (label-free estimates start calibrated)")
    if profile.get("skipped_rows_of_other_models"):
        lines.append(f"  skipped {profile['skipped_rows_of_other_models']} events of other models")
    if profile.get("empty_columns"):
        lines.append(f"  no usable values (left out): {', '.join(profile['empty_columns'])}")
    return "\n".join(lines) + "\n"
