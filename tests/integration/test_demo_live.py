"""The README's first command, end to end: ``stream-monitor demo`` against the real broker prints the
alerts the README shows — resolves included, which come from the stream's last rows — and counts
every event as monitored.

The demo once stopped when it had *read* as many records as it produced (records of the internal
by-model topic counted too) and a few seconds more: the rows of the stream's end, held for
event-time order until the input is quiet, were never judged, and fraud-v3's two resolves never
printed (a live run said "121156 events monitored, 8 firing and 0 resolved"). It now stops at the
checkpoint after which everything is judged (``runtime/drain.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

ALERT = re.compile(r"^(FIRING|ESCALATED|RESOLVED)\s+(\w+)\s+(\w+)\s+(\S+) / (\S+)\s")
SUMMARY = re.compile(r"^(\d+) events monitored, (\d+) firing and (\d+) resolved alert events; (\d+) dead letters\.$")


def _alerts(lines: list[str]) -> Counter[tuple[str, ...]]:
    """(status, severity, kind, model, channel) of each alert line (their times and figures are the run's)."""
    return Counter(m.groups() for m in map(ALERT.match, lines) if m)


def _readme_demo() -> list[str]:
    """The README's example output of ``make demo``: the first fenced block with alert lines and the closing count."""
    block: list[str] | None = None
    for line in (REPO_ROOT / "README.md").read_text().splitlines():
        if line.startswith("```"):
            if block is not None and any(map(ALERT.match, block)) and any(map(SUMMARY.match, block)):
                return block
            block = [] if block is None else None
        elif block is not None:
            block.append(line)
    raise AssertionError("README.md has no example output of the demo")


def test_the_demo_prints_what_the_readme_shows_resolves_included(kafka_bootstrap):
    cmd = [sys.executable, "-m", "stream_monitor", "demo", "--bootstrap-servers", kafka_bootstrap]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    expected = _readme_demo()
    assert _alerts(out) == _alerts(expected), proc.stdout[-4000:]
    assert any(line.startswith("RESOLVED") for line in out), "the stream's end was not judged"
    got = [m.groups() for m in map(SUMMARY.match, out) if m]
    want = [m.groups() for m in map(SUMMARY.match, expected) if m]
    assert got == want, proc.stdout[-2000:]
