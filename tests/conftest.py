"""Shared pytest configuration for stream-monitor.

Kafka fixtures (kafka_bootstrap, unique_name, topic_factory, the `kafka` marker) live in
tests/kafka_fixtures.py; add other shared fixtures below.
"""

import subprocess
import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:  # so `tests.` imports work under any pytest import mode
    sys.path.insert(0, _REPO_ROOT)

from tests.kafka_fixtures import *  # noqa: E402,F401,F403  (fixtures + pytest_configure hook)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _no_leftover_monitor_processes():
    """A failing integration test must not leave `stream-monitor run` subprocesses behind."""
    yield
    from tests.integration.harness import MonitorProcess

    MonitorProcess.kill_leftovers()


@pytest.fixture
def isolated_cli(monkeypatch):
    """A command-line test's own world: no STREAM_MONITOR_* variable of the caller, and structlog as it was after."""
    import os

    import structlog

    for key in list(os.environ):
        if key.startswith("STREAM_MONITOR_"):
            monkeypatch.delenv(key)
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``) the broker tests of one
    module run on one worker, in one group (``kafka-<module>``), so a module's fixtures (a
    workload, the SASL broker) are made once; the workers share the run's one broker
    (tests/kafka_fixtures.py, ``SharedBroker``) and take the groups and the other tests as they
    come, so neither waits while the other still has work.

    xdist's ``loadgroup`` reads a test's group from an ``@group`` suffix of its node id, which
    xdist 3.8 sets as ``item._nodeid``; pytest 9.2 builds node ids from ``item._id`` instead, so
    that suffix no longer reached the scheduler and the broker tests were spread over both
    workers one by one, with every module fixture made on both, and nothing failed. So the
    suffix is set here too, in pytest's own form, before xdist's hook (which then adds nothing
    pytest reads).
    """
    if not config.pluginmanager.hasplugin("xdist"):
        return
    # the MLServer test waits for its virtualenv, built in the background from the session's start
    # (pytest_sessionstart below): last in line, it finds it built instead of holding a worker idle
    items.sort(key=lambda item: item.path == _MLSERVER_TEST)
    grouped = bool(getattr(config.option, "loadgroup", False))  # what xdist sets on its workers for --dist loadgroup
    for item in items:
        if item.get_closest_marker("kafka") is not None:
            group = f"kafka-{item.path.stem}"
            item.add_marker(pytest.mark.xdist_group(group))
            if grouped and hasattr(item, "_id") and not item.nodeid.endswith(f"@{group}"):  # pytest >= 9.2
                from _pytest.nodeid import NodeId

                item._id = NodeId.parse(f"{item.nodeid}@{group}")


_MLSERVER_TEST = Path(_REPO_ROOT) / "tests" / "integration" / "test_mlserver.py"
_prebuild: list[subprocess.Popen[bytes]] = []  # the background build of MLServer's virtualenv, when one was started


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start building MLServer's virtualenv (tests/mlserver_fixtures.py) in the background when the
    MLServer test is part of the run, so that a fresh clone's install overlaps the other tests
    (the test waits for it). Once, in the process that runs the session (xdist: the controller)."""
    config = session.config
    if hasattr(config, "workerinput") or "not kafka" in (config.option.markexpr or ""):
        return
    roots = [Path(str(a).split("::")[0]).resolve() for a in config.args] or [Path.cwd().resolve()]
    if any(r == _MLSERVER_TEST or r in _MLSERVER_TEST.parents for r in roots):
        from tests.mlserver_fixtures import prebuild_in_background

        proc = prebuild_in_background()
        if proc is not None:
            _prebuild.append(proc)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A background build still running when the session ends is stopped (the next one starts over)."""
    import os
    import signal

    for proc in _prebuild:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
