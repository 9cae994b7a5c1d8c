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
