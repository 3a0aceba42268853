"""The package's shape: lazy public submodules, no import cycles, an API reference that
builds without warnings."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "rnnkit"


def _module_name(path):
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path, name, lazy=False):
    """rnnkit modules imported when ``name`` is imported: module-level ``import`` /
    ``from ... import`` statements; with ``lazy`` also those inside functions (run later)."""
    is_pkg = path.name == "__init__.py"
    out = set()
    modules = {_module_name(p) for p in PKG.rglob("*.py")}
    tree = ast.parse(path.read_text())
    stack = list(ast.walk(tree)) if lazy else list(tree.body)
    while stack:
        node = stack.pop()
        if not lazy and isinstance(node, (ast.If, ast.Try)):   # e.g. try: import ... except
            stack += node.body + node.orelse + getattr(node, "finalbody", []) + [
                s for h in getattr(node, "handlers", []) for s in h.body]
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_pkg else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from pkg import sub`` needs the submodule; ``from pkg import name`` needs the
            # package's __init__ to have run
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod
                       for a in node.names]
        else:
            continue
        for t in targets:
            if t in modules and t != name:
                out.add(t)
    return out


def _graph(lazy=False):
    return {_module_name(p): _imports(p, _module_name(p), lazy) for p in PKG.rglob("*.py")}


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
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

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles among rnnkit modules: {cycles}"


def test_no_import_cycles_through_function_level_imports_either():
    """Deferred imports inside functions must not hide cycles either. The one sanctioned kind
    of back-edge: a model's Keras-style convenience methods (``save``, ``load_weights``,
    ``export_onnx``, ``to_keras`` on save) call rnnkit.saving / rnnkit.interop, which build or
    read models. Without those function-level edges from rnnkit.models, no cycle remains."""
    graph = _graph(lazy=True)
    strict = _graph(lazy=False)
    for mod, deps in graph.items():
        if mod.startswith("rnnkit.models"):
            graph[mod] = {d for d in deps if d in strict[mod] or not (
                d.startswith("rnnkit.saving") or d.startswith("rnnkit.interop"))}
    cycles = _cycles(graph)
    assert not cycles, f"import cycles among rnnkit modules: {cycles}"


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lazy_public_submodules_after_import_rnnkit():
    code = ("import sys, rnnkit\n"
            "assert 'rnnkit.layers' not in sys.modules and 'numba' not in sys.modules\n"
            "for name in ('interop', 'diagnostics', 'tasks', 'data', 'layers', 'cells', "
            "'kernels', 'losses', 'optimizers', 'callbacks', 'metrics', 'utils'):\n"
            "    assert getattr(rnnkit, name).__name__ == 'rnnkit.' + name\n"
            "assert callable(rnnkit.interop.to_torch) and callable(rnnkit.diagnostics.gradient_flow)\n"
            "assert rnnkit.Sequential.__name__ == 'Sequential' and callable(rnnkit.load_model)\n"
            "assert 'interop' in dir(rnnkit)\n"
            "try:\n    rnnkit.nope\nexcept AttributeError as e:\n    assert \"'nope'\" in str(e)\n"
            "else:\n    raise SystemExit('no AttributeError')\n")
    env = {"PYTHONPATH": str(SRC)}
    import os
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **env})


_PDOC = """
import pathlib, sys, warnings
import pdoc
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pdoc.pdoc(sys.argv[1], output_directory=pathlib.Path(sys.argv[2]))
for w in caught:
    print(f"WARNING {w.category.__name__}: {w.message}")
"""


def _pdoc(module, out, path):
    """Build the API reference of ``module`` with pdoc (in a fresh interpreter); returns the
    warnings it emitted."""
    import os
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path))}
    res = subprocess.run([sys.executable, "-c", _PDOC, module, str(out)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return [line for line in res.stdout.splitlines() if line.startswith("WARNING")]


def test_api_reference_builds_without_warnings(tmp_path):
    """pdoc renders every public module from the docstrings; any warning fails the build
    (``pdoc -o docs/api rnnkit`` builds the same reference by hand)."""
    warnings = _pdoc("rnnkit", tmp_path, [SRC])
    assert not warnings, "\n".join(warnings)
    for page in ("layers", "cells", "kernels", "models", "interop", "diagnostics"):
        assert (tmp_path / "rnnkit" / f"{page}.html").exists(), page


def test_api_reference_check_sees_warnings(tmp_path):
    """The check above can fail: a public name that does not resolve is reported."""
    pkg = tmp_path / "src" / "brokenpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A package."""\n__all__ = ["missing_name"]\n')
    warnings = _pdoc("brokenpkg", tmp_path / "out", [tmp_path / "src"])
    assert len(warnings) == 1 and "missing_name" in warnings[0]
