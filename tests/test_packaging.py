"""What the package declares matches what it uses, and the source distribution is complete."""

from __future__ import annotations

import ast
import functools
import re
import shutil
import subprocess
import sys
import tarfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "semantic_genesis"
#: runtime dependencies the package uses without importing them by that name
INDIRECT = {
    "tensorboard": "torch.utils.tensorboard writes the event files",
    "setuptools": "`semgen samples` runs `pip download --no-build-isolation`",
    "wheel": "`semgen samples` runs `pip download --no-build-isolation`",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(specs: list[str]) -> set[str]:
    return {_norm(re.match(r"[A-Za-z0-9_.\-]+", s).group(0)) for s in specs}


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether an import sits in a ``try`` whose handlers catch ImportError."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try):
            caught = [ast.unparse(h.type) for h in node.handlers if h.type is not None]
            if any("ImportError" in c or "ModuleNotFoundError" in c for c in caught):
                return True
    return False


def _third_party_imports() -> dict[str, tuple[str, bool]]:
    """Top-level module -> (a file importing it, whether every import of it is guarded)."""
    found: dict[str, tuple[str, bool]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "semantic_genesis":
                    continue
                _, guarded = found.get(top, ("", True))
                found[top] = (str(path.relative_to(REPO)), guarded and _guarded(node, parents))
    return found


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()


def _distribution(module: str) -> str:
    return _norm(_distributions().get(module, [module])[0])


def test_every_third_party_import_is_declared() -> None:
    """An import needs a runtime dependency, or a guard (try/except ImportError) and an extra."""
    project = _project()
    runtime = _requirement_names(project["dependencies"])
    extras = set().union(*(_requirement_names(v) for k, v in
                           project["optional-dependencies"].items() if k != "dev"))
    undeclared = [f"{module} ({where})" for module, (where, guarded)
                  in _third_party_imports().items()
                  if _distribution(module) not in runtime
                  and not (guarded and _distribution(module) in extras)]
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_every_runtime_dependency_is_used() -> None:
    """A runtime dependency is imported by the package or needed for a stated reason (tests'
    own needs, like pydicom, belong in the dev extra)."""
    used = {_distribution(m) for m in _third_party_imports()} | set(INDIRECT)
    unused = sorted(_requirement_names(_project()["dependencies"]) - used)
    assert not unused, f"runtime dependencies the package never uses: {unused}"


def test_licence_file_is_the_declared_one() -> None:
    text = (REPO / "LICENSE").read_text()
    assert _project()["license"] == "Apache-2.0"
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def _checkout_copy(dest: Path) -> Path:
    """The files git tracks or would track (not ignored ones such as .venv), copied."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


def test_sdist_carries_licence_tests_docs_benchmarks_and_c_sources(tmp_path: Path) -> None:
    """Build the sdist from a copy of the checkout (setuptools' PEP 517 backend, no network)
    and check its members: a user can build, test and read the project from it."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout to know the project's files")
    tree = _checkout_copy(tmp_path / "tree")
    dist = tmp_path / "dist"
    dist.mkdir()
    build = ("import sys; from setuptools import build_meta; "
             "print(build_meta.build_sdist(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", build, str(dist)], cwd=tree,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    archive = dist / done.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    expected = {"LICENSE", "README.md", "pyproject.toml", "setup.py", "tests/conftest.py",
                "tests/pretrain/conftest.py", "tests/helpers.py",
                "tests/models/data/ynet3d_state_dict.txt", "docs/cli.md",
                "src/semantic_genesis/transforms/csrc/warp.c",
                "src/semantic_genesis/transforms/csrc/simd.h",
                "src/semantic_genesis/configs/demo.yaml", "src/semantic_genesis/py.typed"}
    assert expected <= members, sorted(expected - members)
    assert any(m.startswith("benchmarks/") and m.endswith(".py") for m in members)
    assert not any("__pycache__" in m or m.endswith((".so", ".pyc")) for m in members)
