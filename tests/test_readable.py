"""The code a learner reads stays readable: short public functions, short call paths, no import
cycles. These are measurements of the source, so they fail the moment a function grows."""
import ast
import inspect
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import compresslab
from compresslab import distill, encode, prune, quant, speed

ROOT = Path(compresslab.__file__).parent
# Validation and the NumPy/torch switch are helpers a reader can skip.
HELPERS = (ROOT / "_validate.py", ROOT / "backend.py")


def body_lines(fn) -> int:
    """Non-blank, non-comment lines of a function's body, its docstring excluded."""
    src = textwrap.dedent(inspect.getsource(fn))
    f = ast.parse(src).body[0]
    body = f.body
    if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    lines = src.splitlines()[body[0].lineno - 1:f.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def traced_lines(fn, *args, **kwargs) -> set:
    """The distinct (file, line) pairs of compresslab code, helpers aside, that one call executes."""
    seen = set()
    helpers = {str(h) for h in HELPERS}

    def tracer(frame, event, arg):
        name = frame.f_code.co_filename
        if not name.startswith(str(ROOT)) or name in helpers:
            return None
        if event == "line":
            seen.add((name, frame.f_lineno))
        return tracer

    fn(*args, **kwargs)                   # once untraced: lazy imports and caches are not the point
    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn(*args, **kwargs)
    finally:
        sys.settrace(old)
    return seen


SHOWN = {   # what the lessons show with ??, and the functions the issue names
    "quant.quantize": quant.quantize, "quant.qparams": quant.qparams,
    "distill.kd_loss": distill.kd_loss, "prune.magnitude": prune.magnitude,
    "prune.structured": prune.structured, "speed.compare": speed.compare,
    "encode.relative_index_encode": encode.relative_index_encode,
}


@pytest.mark.parametrize("name", sorted(SHOWN))
def test_public_functions_fit_on_a_screen(name):
    n = body_lines(SHOWN[name])
    assert n <= 25, f"{name} has a {n}-line body; the readable form must fit in 25"


def test_body_lines_counts_what_a_reader_sees():
    def f(x):
        """Doc."""
        # a comment
        y = x + 1

        return y
    assert body_lines(f) == 2


_x = np.array([0.1, -0.3, 2.5, 0.04], np.float32)
_w = np.array([[0.3, -1.2, 0.05], [2.0, -0.01, 0.4]], np.float32)
_logits = np.array([[1.0, 2.0, 0.5], [0.2, -1.0, 3.0]], np.float32)
CALLS = {
    "quant.quantize": lambda: quant.quantize(_x, quant.QParams(0.1, 3, 0, 255)),
    "quant.qparams": lambda: quant.qparams(_x),
    "distill.kd_loss": lambda: distill.kd_loss(_logits, _logits[::-1], np.array([1, 2]), T=4.0),
    "prune.magnitude": lambda: prune.magnitude(_w, 0.5),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_small_call_reads_through_at_most_30_lines(name):
    lines = traced_lines(CALLS[name])
    shown = "\n".join(f"{os.path.relpath(f, ROOT)}:{n}" for f, n in sorted(lines))
    assert 0 < len(lines) <= 30, f"{name}: {len(lines)} lines of compresslab code\n{shown}"


# ------------------------------------------------------------------ import cycles
def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def import_edges() -> dict:
    """module -> set of compresslab modules it imports, at module level or inside functions."""
    mods = _modules()
    edges = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                if node.level == 0:
                    base = node.module
                elif node.module:
                    base = f"{base}.{node.module}"
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods:          # `import compresslab.quant.linear as x` etc.
                    t = t.rpartition(".")[0]
                if t and t != mod and t.startswith("compresslab"):
                    edges[mod].add(t)
    return edges


def find_cycle(edges: dict):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(m, stack):
        state[m] = "open"
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n, stack)
                if found:
                    return found
        stack.pop()
        state[m] = "done"
        return None

    for m in sorted(edges):
        if m not in state:
            found = visit(m, [])
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    edges = import_edges()
    assert "compresslab.quant.observers" in edges["compresslab.quant"]     # the walk sees re-exports
    assert "compresslab._validate" in edges["compresslab.quant.linear"]    # and relative imports
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_plots_import_no_technique_module():
    """plots draw numbers they are given: no algorithm, no import back into the techniques."""
    edges = import_edges()
    allowed = {"compresslab.plots", "compresslab._validate", "compresslab._lazy"}
    for mod, targets in edges.items():
        if mod.startswith("compresslab.plots"):
            bad = {t for t in targets if not (t.startswith("compresslab.plots") or t in allowed)}
            assert not bad, f"{mod} imports {sorted(bad)}"


def test_quant_and_speed_are_packages_that_import_with_numpy_alone():
    import subprocess
    code = ("import sys; sys.modules['torch'] = None; sys.modules['matplotlib'] = None; "
            "import compresslab.quant, compresslab.speed; "
            "print(compresslab.quant.__path__ is not None, compresslab.speed.__path__ is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


# ------------------------------------------------------------------ docstrings that teach
DOCUMENTED = ("prune", "quant", "distill", "encode", "lowrank", "nn", "speed", "data", "speculative")


def _public(modname):
    import importlib

    mod = importlib.import_module(f"compresslab.{modname}")
    for name in mod.__all__:
        obj = getattr(mod, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{modname}.{name}", obj


@pytest.mark.parametrize("modname", DOCUMENTED)
def test_public_functions_have_numpydoc_sections(modname):
    """Parameters (when there are any), Returns (functions), Examples: the doctests run them."""
    lacking = {}
    for qualname, obj in _public(modname):
        doc = inspect.getdoc(obj) or ""
        params = [p for p in inspect.signature(obj).parameters if p != "self"]
        need = (["Parameters"] if params else []) + (["Returns"] if inspect.isfunction(obj) else []) + ["Examples"]
        has = {s for s in ("Parameters", "Returns", "Yields", "Examples") if f"{s}\n{'-' * len(s)}" in doc}
        missing = [s for s in need if s not in has and not (s == "Returns" and "Yields" in has)]
        if missing:
            lacking[qualname] = missing
    assert not lacking, f"numpydoc sections missing: {lacking}"


@pytest.mark.parametrize("package", [quant, speed])
def test_no_public_name_hides_a_module_of_its_package(package):
    """``compresslab.quant.X`` must be the module X when X.py exists (a function of the same name
    would shadow it, and ``import compresslab.quant.X as m`` would give the function)."""
    import importlib
    import types

    for path in Path(package.__file__).parent.glob("[!_]*.py"):
        importlib.import_module(f"{package.__name__}.{path.stem}")
        assert isinstance(getattr(package, path.stem), types.ModuleType), f"{package.__name__}.{path.stem}"
