"""Layering rules, enforced on the source: a pure core (no Kafka, no wall clock), no print in libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import stream_monitor

PACKAGE = Path(stream_monitor.__file__).resolve().parent
CORE = PACKAGE / "core"
CORE_MODULES = sorted(CORE.rglob("*.py"))
LIBRARY_MODULES = sorted(PACKAGE.rglob("*.py"))
# The commands layer writes its output to the terminal; nothing else does.
COMMANDS = PACKAGE / "commands"
KAFKA_CLIENTS = {"kafka", "confluent_kafka", "aiokafka"}


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def imported_modules(module: ast.Module) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def test_the_core_has_modules():
    assert {p.name for p in CORE_MODULES} >= {
        "events.py", "settings.py", "spec.py", "stats.py", "reference.py", "channel.py", "lifecycle.py", "monitor.py",
        "alert.py", "state.py", "signing.py",
    }  # fmt: skip
    assert (CORE / "detectors" / "__init__.py").exists()


@pytest.mark.parametrize("path", CORE_MODULES, ids=rel)
def test_core_never_imports_kafka_or_the_edges(path):
    bad = []
    for lineno, name in imported_modules(tree(path)):
        top = name.split(".")[0]
        if top in KAFKA_CLIENTS:
            bad.append((lineno, name))
        # the core only depends on itself inside the package
        if top == "stream_monitor" and not name.startswith("stream_monitor.core"):
            bad.append((lineno, name))
    assert bad == [], f"{rel(path)} imports {bad}"


def test_core_imports_without_kafka_installed():
    """Block the kafka package entirely, import every core module, and check no Kafka module loaded."""
    code = f"""
import importlib, pkgutil, sys
for name in {sorted(KAFKA_CLIENTS)!r}:
    sys.modules[name] = None  # any `import kafka` now raises ImportError
import stream_monitor.core as core
names = [m.name for m in pkgutil.walk_packages(core.__path__, "stream_monitor.core.")]
for name in names:
    importlib.import_module(name)
loaded = [m for m in sys.modules if m.split(".")[0] in {sorted(KAFKA_CLIENTS)!r} and sys.modules[m] is not None]
edges = [m for m in sys.modules if m.startswith("stream_monitor.") and not m.startswith("stream_monitor.core")]
print(len(names), loaded, edges)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent, timeout=120)
    assert proc.returncode == 0, proc.stderr
    count, loaded, edges = proc.stdout.strip().split(" ", 2)
    assert int(count) >= 9
    assert (loaded, edges) == ("[]", "[]"), proc.stdout


WALL_CLOCK_CALLS = {
    ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "monotonic_ns"),
    ("time", "perf_counter"), ("time", "perf_counter_ns"), ("time", "localtime"), ("time", "gmtime"),
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
}  # fmt: skip


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


@pytest.mark.parametrize("path", CORE_MODULES, ids=rel)
def test_core_never_reads_the_wall_clock(path):
    module = tree(path)
    bad = []
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = _dotted(node.func.value).split(".")[-1]
            if (owner, node.func.attr) in WALL_CLOCK_CALLS or node.func.attr in ("now", "utcnow"):
                bad.append((node.lineno, _dotted(node.func)))
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            bad.append((node.lineno, "from time import " + ", ".join(a.name for a in node.names)))
    for lineno, name in imported_modules(module):
        if name == "time":
            bad.append((lineno, "import time"))
    assert bad == [], f"{rel(path)} reads the wall clock: {bad}"


@pytest.mark.parametrize("path", CORE_MODULES, ids=rel)
def test_core_has_no_hidden_nondeterminism(path):
    """Same input, same alerts: no unseeded randomness or uuids in the core."""
    names = {name.split(".")[0] for _, name in imported_modules(tree(path))}
    assert not names & {"random", "uuid", "secrets"}, f"{rel(path)} imports {names & {'random', 'uuid', 'secrets'}}"
    text = path.read_text()
    assert "np.random" not in text and "os.urandom" not in text


def print_calls(module: ast.Module) -> list[tuple[int, str | None]]:
    """(line, enclosing function or None) of every print() call."""
    out: list[tuple[int, str | None]] = []

    def visit(node: ast.AST, func: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id == "print":
                out.append((child.lineno, func))
            visit(child, func)

    visit(module, None)
    return out


@pytest.mark.parametrize("path", LIBRARY_MODULES, ids=rel)
def test_no_print_in_library_modules(path):
    calls = print_calls(tree(path))
    if path.parent == COMMANDS:
        # command output is fine, but only from functions (never at import time)
        assert [c for c in calls if c[1] is None] == [], f"{rel(path)} prints at module level"
    else:
        assert calls == [], f"{rel(path)} calls print() at lines {[c[0] for c in calls]}; log with structlog instead"


@pytest.mark.parametrize("path", CORE_MODULES, ids=rel)
def test_core_never_writes_to_the_terminal(path):
    bad = [
        (n.lineno, _dotted(n))
        for n in ast.walk(tree(path))
        if isinstance(n, ast.Attribute) and _dotted(n) in ("sys.stdout", "sys.stderr")
    ]
    assert bad == [], f"{rel(path)} writes to the terminal: {bad}"
