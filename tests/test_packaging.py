"""Packaging as users install it (issue 15): metadata and the full build-and-install check.

The metadata test is fast and runs everywhere; the full check (``tools/packaging_check.py``:
build, twine check, each distribution alone in a fresh venv, media-core from its sdist
with and without a C compiler) is marked slow (CI runs it on 3.11, about a minute with a
warm uv cache).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["sip-core", "transaction-core", "dialog-core", "rtp-core", "media-core", "session-core"]
# Import name -> distribution, for the third-party packages the sources may import.
THIRD_PARTY = {
    "attrs": "attrs",
    "attr": "attrs",
    "anyio": "anyio",
    "sniffio": "sniffio",
    "numpy": "numpy",
    "cffi": "cffi",
    "dns": "dnspython",
    "pylibsrtp": "pylibsrtp",
    "uvloop": "uvloop",
    "trio": "trio",
}
# Imported inside ``try: ... except ImportError``: accelerators and optional loops.
OPTIONAL = {"uvloop", "trio"}


def _imports(package: str) -> set[str]:
    names: set[str] = set()
    src = ROOT / "packages" / package / "src"
    for path in src.rglob("*.py"):
        if "_kernel" in path.parts:  # build-time only (cffi's builder), not in the wheel
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def _declared(package: str) -> set[str]:
    project = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())
    return {
        re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower()
        for requirement in project["project"]["dependencies"]
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_every_third_party_import_is_a_declared_dependency(package: str) -> None:
    """rvoip-rtp-core imported sniffio without declaring it (issue 15's packaging check).

    anyio 4 no longer depends on sniffio, so a fresh venv holding only rvoip-rtp-core
    and its declared dependencies failed at ``import rvoip_rtp_core`` with
    ModuleNotFoundError: the editable dev venv had sniffio through the test tools. Each
    distribution's imports must now be in its own dependency list.
    """
    used = {THIRD_PARTY[name] for name in _imports(package) if name in THIRD_PARTY}
    missing = {dist for dist in used if dist not in OPTIONAL} - _declared(package)
    assert missing == set(), f"rvoip-{package} imports {sorted(missing)} without declaring them"


def test_sip_core_depends_on_attrs_alone() -> None:
    assert _declared("sip-core") == {"attrs"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) to build the kernel")
def test_packaging_check_builds_checks_and_installs_each_distribution() -> None:
    for tool in ("build", "twine"):
        if importlib.util.find_spec(tool) is None:
            pytest.skip(f"{tool} not installed (tools/requirements-dev.txt)")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "packaging_check.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "packaging check: all 15 checks passed" in out
    assert "install sip-core alone: only attrs beside it" in out
    assert "C kernel compiled" in out
    assert "the build and the import warn, numpy backend" in out
