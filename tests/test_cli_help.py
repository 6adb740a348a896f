"""The command line's help says what the commands do."""

from __future__ import annotations

import argparse

from stream_monitor.commands import build_parser


def _sub(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _help(sub: str, flag: str) -> str:
    return next(a.help for a in _sub(sub)._actions if flag in a.option_strings) or ""


def test_replay_report_dir_help_names_the_files_it_writes():
    text = _help("replay", "--report-dir")
    # write_report_dir writes SVG plots, summary.json and report.html
    assert "SVG" in text and "PNG" not in text and "summary.json" in text
