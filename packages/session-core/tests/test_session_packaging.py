"""The distribution metadata lists every third-party package the sources import."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]
_SOURCES = _PACKAGE / "src" / "rvoip_session_core"

# Import name -> distribution name for the third-party packages session-core may use.
_DISTRIBUTIONS = {"attrs": "attrs", "anyio": "anyio", "numpy": "numpy", "uvloop": "uvloop"}
# Optional accelerators imported inside try/except ImportError: not required dependencies.
_OPTIONAL = {"uvloop", "trio"}


def _top_level_imports() -> set[str]:
    names: set[str] = set()
    for path in _SOURCES.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_third_party_import_is_a_declared_dependency() -> None:
    project = tomllib.loads((_PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {
        re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower()
        for requirement in project["project"]["dependencies"]
    }
    third_party = {name for name in _top_level_imports() if name in _DISTRIBUTIONS}
    assert "numpy" in third_party  # the bridge and media code import it directly
    missing = {_DISTRIBUTIONS[name] for name in third_party - _OPTIONAL} - declared
    assert missing == set()


def _internal_imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _SOURCES.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "rvoip_session_core."
            ):
                deps.add((node.module or "").split(".")[1])
        graph[path.stem] = deps - {path.stem}
    return graph


def test_no_import_cycle_among_the_modules() -> None:
    """Issue 11: the coordinator's parts imported each other in a cycle of six modules."""
    graph = _internal_imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*path, dep])}")
            if dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_no_class_inherits_through_a_chain_of_project_classes() -> None:
    """One level of a shared base is fine; the coordinator was a five-class chain.

    Exception hierarchies (``CallCancelled`` is a ``CallFailed``) are what they should be.
    """
    import inspect

    import rvoip_session_core

    project = "rvoip_session_core"
    for name in dir(rvoip_session_core):
        obj = getattr(rvoip_session_core, name)
        if (
            inspect.isclass(obj)
            and obj.__module__.startswith(project)
            and not issubclass(obj, BaseException)
        ):
            chain = [c for c in obj.__mro__[1:] if c.__module__.startswith(project)]
            assert len(chain) <= 1, f"{name} inherits through {chain}"
