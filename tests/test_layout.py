"""The tree shows the architecture: layers point inwards, no import cycles, no pickle, small rooms, docstrings."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import stream_monitor

PACKAGE = Path(stream_monitor.__file__).resolve().parent
MODULES = sorted(PACKAGE.rglob("*.py"))

# Lower layers never import higher ones. Same-layer imports are allowed (cycles are not).
LAYERS = {
    "__init__": 0,  # the package root only carries the version
    "core": 0,
    "synthetic": 0,
    "ops": 1,
    "config": 1,
    "baseline": 2,
    "runtime": 2,
    "replay": 3,
    "report": 3,
    "bridges": 3,
    "demo_stream": 3,
    "commands": 4,
    "__main__": 5,
}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
# declarative tables (argument parsers) may be longer than a function should be
LONG_FUNCTIONS_ALLOWED = {"build_parser", "scan_python"}  # scan_python: one compiled loop (core/scan_kernel.py), numba compiles it as one function


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


NAMES = {module_name(p): p for p in MODULES}


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def imports_of(path: Path) -> set[str]:
    """Every stream_monitor module ``path`` imports, anywhere in the file (function-local imports too)."""
    me = module_name(path)
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("stream_monitor")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".") if is_pkg else me.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("stream_monitor"):
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                out.add(sub if sub in NAMES else mod)
    return {m for m in out if m in NAMES and m != me}


GRAPH = {name: imports_of(path) for name, path in NAMES.items()}


def layer(name: str) -> int:
    parts = name.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return LAYERS[top]


def test_every_top_level_module_has_a_layer():
    tops = {n.split(".")[1] for n in NAMES if "." in n}
    assert tops <= set(LAYERS), f"modules outside the layer table: {sorted(tops - set(LAYERS))}"


@pytest.mark.parametrize("name", sorted(NAMES), ids=str)
def test_dependencies_point_inwards(name):
    upward = sorted(m for m in GRAPH[name] if layer(m) > layer(name))
    assert upward == [], f"{name} (layer {layer(name)}) imports higher layers: {upward}"


def test_nothing_below_the_commands_imports_them():
    bad = sorted(
        (n, m) for n, deps in GRAPH.items() for m in deps
        if m.startswith("stream_monitor.commands") and not n.startswith("stream_monitor.commands") and n != "stream_monitor.__main__"
    )  # fmt: skip
    assert bad == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    # a package importing its own submodules (to re-export them) is not a cycle of concerns
    graph = {
        n: {m for m in deps if not (NAMES[n].name == "__init__.py" and m.startswith(n + "."))}
        for n, deps in GRAPH.items()
    }
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_no_pickle_anywhere(path):
    bad = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
    found = []
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in bad]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in bad:
            found.append(node.module)
    assert found == [], f"{rel(path)} imports {found}: state is data, never code"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_rooms_are_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{rel(path)} has {lines} lines"
    long = [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
        and node.name not in LONG_FUNCTIONS_ALLOWED
    ]
    assert long == [], f"{rel(path)}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def _public_without_docstring(module: ast.Module) -> list[str]:
    missing = []
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            if ast.get_docstring(node) is None:
                missing.append(node.name)
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (
                        isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                        and not item.name.startswith("_")
                        and ast.get_docstring(item) is None
                    ):
                        missing.append(f"{node.name}.{item.name}")
    return missing


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_public_classes_and_functions_have_docstrings(path):
    module = tree(path)
    assert ast.get_docstring(module) is not None or path.name == "__init__.py" and not module.body, f"{rel(path)} has no module docstring"
    assert _public_without_docstring(module) == []


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_comments_speak_of_the_code(path):
    text = path.read_text()
    for needle in ("shared/design.md", "../shared", "design.md section", "issue #", "(issue "):
        assert needle not in text, f"{rel(path)} mentions {needle!r}"
