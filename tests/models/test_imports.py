"""No import cycle among the modules of the package.

Function-level (lazy) imports count too: a cycle hidden inside a function still ties two modules
together (``models/checkpoint.py`` <-> ``models/weights.py`` once did).
"""

from __future__ import annotations

import ast
from pathlib import Path

import semantic_genesis

PACKAGE = Path(semantic_genesis.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """The semantic_genesis modules ``path`` imports anywhere in its code."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import sub` depends on the submodule; `from pkg import name` on pkg
            subs = [f"{node.module}.{a.name}" for a in node.names]
            names = [n for n in subs if n in known] or [node.module]
        out.update(n for n in names if n in known)
    return out


def _graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    known = {_module_name(p) for p in files}
    graph = {_module_name(p): _imports(p, known) for p in files}
    for name, deps in graph.items():  # a package's __init__ is not part of the edge a -> a.b
        deps.discard(name)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_walk_sees_imports() -> None:
    graph = _graph()
    assert "semantic_genesis.models.checkpoint" in graph["semantic_genesis.models.weights"]
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_no_import_cycle_in_the_package() -> None:
    assert _cycle(_graph()) is None


def test_the_package_ships_no_test_only_hooks() -> None:
    """Tests slow a run down from the outside (tests/pretrain/slow_semgen.py), so no module
    reads a debugging environment variable such as SEMGEN_DEBUG_STEP_SLEEP."""
    hooks = [p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py") if "SEMGEN_DEBUG" in p.read_text()]
    assert hooks == []
