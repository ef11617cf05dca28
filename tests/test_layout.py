"""The package's plan (docs: DEVELOPERS.md): few top-level modules, subpackages by role, imports downhill."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "lib" / "facesr"

# The roles from the top down: a unit may import only units of a lower rank (its own rank's too for the
# leaf modules, which never import each other in a cycle; checked below).
RANKS = [
    {"cli", "__main__", "demo"},
    {"report"},
    {"colab"},
    {"inference"},
    {"training"},
    {"config"},
    {"weights"},
    {"losses"},
    {"models"},
    {"data"},
    {"editions", "metrics"},
    {"atomic", "errors", "__init__"},
]
TOP_LEVEL = {"__init__", "__main__", "cli", "demo", "editions", "metrics", "losses", "atomic", "errors"}
MOVED = ("config_parsing", "train_config", "named_configs", "quick_mode", "checkpoints", "checkpoint_formats",
         "exports", "infer", "tta", "submission", "drive")


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The facesr modules ``path`` imports (at any depth: a lazy import is still a dependency)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "facesr":
            folder = PACKAGE.parent.joinpath(*node.module.split("."))
            submodules = {f"{node.module}.{a.name}" for a in node.names if (folder / f"{a.name}.py").exists()}
            found |= submodules or {node.module}  # `from facesr.training import distributed` is a module
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "facesr"}
    return found


def _rank(unit: str) -> int:
    return next(i for i, units in enumerate(RANKS) if unit in units)


def test_top_level_holds_at_most_eight_modules_beside_the_subpackages():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules <= TOP_LEVEL, f"new top-level modules {sorted(modules - TOP_LEVEL)}: put them in a subpackage"
    assert len(modules - {"__init__"}) <= 8
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages >= {"config", "weights", "inference", "colab", "training", "report", "models", "data"}


def test_subpackage_inits_only_name_their_public_functions():
    for init in PACKAGE.glob("*/__init__.py"):
        for node in ast.parse(init.read_text()).body:
            where = f"{init.relative_to(REPO)} line {node.lineno}"
            if isinstance(node, ast.Expr):
                assert isinstance(node.value, ast.Constant), f"code in {where}"
            elif isinstance(node, ast.Assign):
                assert [getattr(t, "id", None) for t in node.targets] == ["__all__"], f"code in {where}"
            elif isinstance(node, ast.FunctionDef):
                assert node.name == "__getattr__", f"code in {where}"  # lazy public names (facesr.training)
            else:
                assert isinstance(node, ast.Import | ast.ImportFrom), f"code in {where}"


def test_imports_run_downhill_and_have_no_cycles():
    graph: dict[str, set[str]] = {}
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        graph[module] = set()
        for target in _imports(path):
            graph[module].add(target)
            src, dst = _unit(module), _unit(target)
            if src != dst and dst != "__init__" and _rank(dst) <= _rank(src) and not (
                    _rank(dst) == _rank(src) and len(RANKS[_rank(src)]) > 1):
                upward.append(f"{module} imports {target}")
    assert not upward, "imports that go up the package plan: " + "; ".join(sorted(upward))

    # No cycle among the modules (a package's __init__ counts as importing what it re-exports).
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_no_old_module_path_is_used_anywhere():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    pattern = re.compile(r"facesr[./](" + "|".join(MOVED) + r")\b(?!/)")
    hits = []
    for name in tracked.splitlines():
        path = REPO / name
        if path.suffix not in {".py", ".md", ".sh", ".toml", ".ipynb", ".txt"} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{name}:{number}")
    assert not hits, "old module paths: " + ", ".join(hits[:20])
