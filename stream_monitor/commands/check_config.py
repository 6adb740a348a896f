"""``stream-monitor check-config FILE``: validate a config and explain what it monitors."""

from __future__ import annotations

import argparse
import sys

from stream_monitor.commands.common import EXIT_OK
from stream_monitor.commands.console import explain_config
from stream_monitor.config import load_config


def cmd_check_config(args: argparse.Namespace) -> int:
    """Print the explanation and exit 0; a config error exits 2 (see :func:`~stream_monitor.commands.common.run_command`)."""
    cfg = load_config(args.config)
    sys.stdout.write(explain_config(cfg))
    return EXIT_OK
