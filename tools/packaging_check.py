#!/usr/bin/env python3
"""Packaging as users install it: build, check and install each distribution alone.

    .venv/bin/python tools/packaging_check.py [--keep DIR]

For each of the six distributions under ``packages/``:

1. ``python -m build`` makes the sdist and then the wheel *from that sdist* (so a file
   missing from the sdist fails the build), with uv creating the build environments.
2. ``twine check --strict`` validates the metadata and the README rendering of both.
3. A fresh venv (``uv venv``) gets the wheel and only the rvoip wheels it depends on;
   the package imports there. ``rvoip-sip-core`` must bring nothing but ``attrs``.

Then ``rvoip-media-core`` is installed from its sdist twice more, each in a fresh venv:
with the C compiler (``RVOIP_MEDIA_REQUIRE_EXTENSION=1``: the build fails without the
kernel; the cffi module ``rvoip_media_core._kernel_cffi`` must import and be the backend)
and without one (``CC=/bin/false``: the build hook warns and leaves a pure-Python wheel;
importing the package warns that the numpy fallback is in use).

Third-party dependencies come from the package index through uv's cache (one download
per machine). Exits 0 when every check passed; prints one line per check.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["sip-core", "transaction-core", "dialog-core", "rtp-core", "media-core", "session-core"]
BIN = Path(sys.executable).parent
STEP_TIMEOUT = 300.0
"""Seconds any one build or install may take."""
SIP_CORE_ALLOWED = {"rvoip-sip-core", "attrs"}
"""What a venv holding only rvoip-sip-core may contain."""

# A smoke line per distribution: each imports the package and touches its main API.
SMOKE = {
    "sip-core": (
        "from rvoip_sip_core import parse_message; "
        "m = parse_message(b'OPTIONS sip:a@b SIP/2.0\\r\\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\\r\\n"
        "From: <sip:x@y>;tag=1\\r\\nTo: <sip:a@b>\\r\\nCall-ID: c\\r\\nCSeq: 1 OPTIONS\\r\\n"
        "Max-Forwards: 70\\r\\nContent-Length: 0\\r\\n\\r\\n'); assert m.method == 'OPTIONS'"
    ),
    "transaction-core": "import rvoip_transaction_core",
    "dialog-core": "import rvoip_dialog_core",
    "rtp-core": "import rvoip_rtp_core",
    "media-core": "import rvoip_media_core",
    "session-core": "import rvoip_session_core; from rvoip_session_core.cli import main",
}


class CheckError(Exception):
    """One check failed; the message says which and why."""


def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # uv and twine of this venv
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _run(
    cmd: list[str], what: str, env: dict[str, str] | None = None, *, stderr: bool = True
) -> str:
    """Run ``cmd`` (bounded); its stdout (and stderr); CheckError when it fails."""
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        env=env or _env(),
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise CheckError(
            f"{what}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout + (result.stderr if stderr else "")


def _uv() -> str:
    uv = shutil.which("uv", path=str(BIN)) or shutil.which("uv")
    if uv is None:
        raise CheckError("uv not found (python3 tools/dev.py setup installs it)")
    return uv


def rvoip_requirements(package: str) -> list[str]:
    """The rvoip distributions ``package`` needs, transitively, dependencies first."""
    project = tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())
    found: list[str] = []
    for requirement in project["project"]["dependencies"]:
        name = re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0]
        if name.startswith("rvoip-"):
            for dep in [
                *rvoip_requirements(name.removeprefix("rvoip-")),
                name.removeprefix("rvoip-"),
            ]:
                if dep not in found:
                    found.append(dep)
    return found


def _artifact(dist: Path, package: str, suffix: str) -> Path:
    stem = "rvoip_" + package.replace("-", "_")
    matches = sorted(dist.glob(f"{stem}-*{suffix}"))
    if len(matches) != 1:
        raise CheckError(f"{package}: expected one {suffix} in {dist}, found {matches}")
    return matches[0]


def build(package: str, dist: Path) -> None:
    """sdist, then the wheel from the sdist (``python -m build``'s default)."""
    _run(
        [
            sys.executable,
            "-m",
            "build",
            "--installer",
            "uv",
            "--outdir",
            str(dist),
            str(ROOT / "packages" / package),
        ],
        f"build {package}",
    )
    _artifact(dist, package, ".tar.gz")
    _artifact(dist, package, ".whl")


def twine_check(dist: Path) -> None:
    """``twine check --strict`` over every sdist and wheel."""
    files = sorted(str(p) for p in dist.iterdir() if p.suffix in (".whl", ".gz"))
    _run([sys.executable, "-m", "twine", "check", "--strict", *files], "twine check")


def fresh_venv(where: Path) -> Path:
    """A new venv (uv venv, the running interpreter); returns its python."""
    _run([_uv(), "venv", "-q", "--python", sys.executable, str(where)], f"uv venv {where}")
    return where / "bin" / "python"


def install(
    python: Path,
    requirements: list[str],
    what: str,
    env: dict[str, str] | None = None,
    *,
    verbose: bool = False,
) -> str:
    """``uv pip install`` into ``python``'s venv; returns uv's output."""
    cmd = [_uv(), "pip", "install", "--python", str(python)]
    if verbose:
        cmd.append("-v")
    return _run([*cmd, *requirements], what, env)


def installed(python: Path) -> set[str]:
    """The distribution names in ``python``'s venv."""
    out = _run([_uv(), "pip", "freeze", "--python", str(python)], "uv pip freeze", stderr=False)
    names = set()
    for line in out.splitlines():
        name = re.split(r"[=@ ]", line.strip(), maxsplit=1)[0]
        if name:
            names.add(name.lower().replace("_", "-"))
    return names


def check_alone(package: str, dist: Path, work: Path) -> str:
    """The wheel installs in a fresh venv with only its rvoip dependencies; it imports."""
    python = fresh_venv(work / f"venv-{package}")
    wheels = [str(_artifact(dist, dep, ".whl")) for dep in [*rvoip_requirements(package), package]]
    install(python, wheels, f"install {package}")
    _run([str(python), "-c", SMOKE[package]], f"import {package}", _env(RVOIP_MEDIA_KERNEL=None))
    names = installed(python)
    if package == "sip-core" and names != SIP_CORE_ALLOWED:
        raise CheckError(f"rvoip-sip-core brought more than attrs: {sorted(names)}")
    return f"{len(names)} distributions" if package != "sip-core" else "only attrs beside it"


_MEDIA_PROBE = (
    "import warnings; warnings.simplefilter('always')\n"
    "with warnings.catch_warnings(record=True) as seen:\n"
    "    from rvoip_media_core._backend import BACKEND\n"
    "print('BACKEND', BACKEND)\n"
    "print('WARNINGS', [str(w.message) for w in seen])\n"
    "try:\n"
    "    import rvoip_media_core._kernel_cffi\n"
    "    print('KERNEL yes')\n"
    "except ImportError:\n"
    "    print('KERNEL no')\n"
)


def check_media_sdist(dist: Path, work: Path, *, compiler: bool) -> str:
    """rvoip-media-core's wheel built from its sdist, with or without a C compiler.

    The sdist is unpacked and built by ``python -m build --wheel`` (what pip does with
    an sdist; an installer's cache could hand back a wheel built the other way), then
    the wheel is installed in a fresh venv and asked which kernel it runs.
    """
    label = "with" if compiler else "without"
    sdist = _artifact(dist, "media-core", ".tar.gz")
    source = work / f"media-src-{label}-cc"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(source, filter="data")
    (tree,) = source.iterdir()
    wheels = work / f"media-wheel-{label}-cc"
    if compiler:
        env = _env(RVOIP_MEDIA_REQUIRE_EXTENSION="1", RVOIP_MEDIA_NO_EXTENSION=None)
    else:  # the compiler cffi would call fails at once, as on a machine without one
        env = _env(
            CC="/bin/false", RVOIP_MEDIA_REQUIRE_EXTENSION=None, RVOIP_MEDIA_NO_EXTENSION=None
        )
    out = _run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--installer",
            "uv",
            "--outdir",
            str(wheels),
            str(tree),
        ],
        f"build media-core wheel from its sdist {label} a compiler",
        env,
    )
    python = fresh_venv(work / f"venv-media-{label}-cc")
    wheel = _artifact(wheels, "media-core", ".whl")
    install(python, [str(_artifact(dist, "rtp-core", ".whl")), str(wheel)], f"install {wheel.name}")
    probe = _run(
        [str(python), "-c", _MEDIA_PROBE], "media-core backend probe", _env(RVOIP_MEDIA_KERNEL=None)
    )
    if compiler:
        if "BACKEND cffi" not in probe or "KERNEL yes" not in probe or "none-any" in wheel.name:
            raise CheckError(f"media-core built with a compiler has no C kernel:\n{probe}")
        return f"{wheel.name}: C kernel compiled, rvoip_media_core._kernel_cffi imports"
    if "BACKEND numpy" not in probe or "KERNEL no" not in probe:
        raise CheckError(f"media-core built without a compiler is not the numpy fallback:\n{probe}")
    if "numpy backend" not in probe:
        raise CheckError(f"importing the fallback did not warn:\n{probe}")
    if "numpy fallback" not in out:
        raise CheckError(f"the build did not warn that the C kernel was not built:\n{out[-2000:]}")
    return f"{wheel.name}: the build and the import warn, numpy backend"


def main() -> int:
    """Run every check; print one line each; exit 1 on the first failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="build into DIR and keep it")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rvoip-packaging-") as tmp:
        work = args.keep or Path(tmp)
        dist = work / "dist"
        dist.mkdir(parents=True, exist_ok=True)
        checks: list[tuple[str, object]] = []
        for package in PACKAGES:
            checks.append(
                (f"build {package} (sdist, wheel from sdist)", lambda p=package: build(p, dist))
            )
        checks.append(("twine check --strict", lambda: twine_check(dist)))
        for package in PACKAGES:
            checks.append(
                (f"install {package} alone", lambda p=package: check_alone(p, dist, work))
            )
        checks.append(
            (
                "media-core sdist with a C compiler",
                lambda: check_media_sdist(dist, work, compiler=True),
            )
        )
        checks.append(
            (
                "media-core sdist without a C compiler",
                lambda: check_media_sdist(dist, work, compiler=False),
            )
        )
        passed = 0
        for name, check in checks:
            step = time.monotonic()
            try:
                detail = check()  # type: ignore[operator]
            except (CheckError, subprocess.TimeoutExpired) as exc:
                print(f"FAIL {name}: {exc}", flush=True)
                print(f"packaging check: {passed} of {len(checks)} checks passed", flush=True)
                return 1
            passed += 1
            extra = f": {detail}" if isinstance(detail, str) else ""
            print(f"ok   {name}{extra} ({time.monotonic() - step:.1f} s)", flush=True)
    print(
        f"packaging check: all {passed} checks passed in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
