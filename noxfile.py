"""The rvoip test matrix: Pythons x media kernels, lint, typecheck, demo, bench.

Run through ``python3 tools/dev.py test`` (which sets up ``.venv`` with nox and uv).
The first Python with the C kernel runs everything (interop and slow tests
included); the other combinations run the package unit and property tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
PYTHONS = ["3.11", "3.12", "3.13"]
MEMBERS = [
    "packages/sip-core",
    "packages/transaction-core",
    "packages/dialog-core",
    "packages/rtp-core",
    "packages/media-core",
    "packages/session-core",
]

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = False
nox.options.sessions = ["tests"]


def install_project(session: nox.Session) -> None:
    """Install the six packages editable plus the test requirements."""
    editable = [arg for member in MEMBERS for arg in ("-e", member)]
    session.install("-r", "tools/requirements-dev.txt", *editable)


@nox.session(python=PYTHONS)
@nox.parametrize("kernel", ["cffi", "numpy"])
def tests(session: nox.Session, kernel: str) -> None:
    """Run the tests on one Python with one media kernel backend."""
    install_project(session)
    env = {"RVOIP_MEDIA_KERNEL": kernel}
    full = session.python == PYTHONS[0] and kernel == "cffi"
    if session.posargs:
        args = list(session.posargs)
    elif full:
        args = ["packages", "tests"]
    elif kernel == "numpy":
        args = ["packages/media-core", "packages/rtp-core", "-m", "not slow and not interop"]
    else:
        args = ["packages", "-m", "not slow and not interop"]
    session.run("pytest", "-q", "-p", "no:cacheprovider", *args, env=env)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff check and format check over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS[0])
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's source."""
    install_project(session)
    session.run("mypy")


@nox.session(python=PYTHONS[0])
def demo(session: nox.Session) -> None:
    """The main job: a real call on loopback with RTP audio and its quality report."""
    install_project(session)
    session.run("rvoip", "demo", *session.posargs)


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """Run every benchmark script in tools/bench and print its figures."""
    install_project(session)
    for script in sorted((ROOT / "tools" / "bench").glob("*.py")):
        if script.name.startswith("_"):
            continue
        session.run("python", str(script), *session.posargs, env=dict(os.environ))
