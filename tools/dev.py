#!/usr/bin/env python3
"""One-command set-up and runs for rvoip (the README's two commands).

    python3 tools/dev.py demo   # set up .venv, then run `rvoip demo` (a real loopback call)
    python3 tools/dev.py test   # set up, install SIPp, run the whole test matrix with nox
    python3 tools/dev.py ci     # what .ci/run does: test + lint + typecheck

The full test session (first Python, C kernel) includes the slow tests, among them
tests/test_packaging.py, which runs tools/packaging_check.py: every distribution built
(sdist, wheel from it), twine-checked and installed alone in a fresh venv.

Needs only Python 3.11+ and a C compiler; everything else is installed here:
Python packages into ``.venv`` (with uv for speed), and on Debian, when run as
root, the SIP test peers (``sip-tester``, ``baresip-core``) and the DNS server of the
RFC 3263 tests (``dnsmasq-base``) through apt-get.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PACKAGES = [
    "packages/sip-core",
    "packages/transaction-core",
    "packages/dialog-core",
    "packages/rtp-core",
    "packages/media-core",
    "packages/session-core",
]
APT_PACKAGES = {
    "sipp": "sip-tester",
    "tshark": "tshark",
    "openssl": "openssl",
    "baresip": "baresip-core",
    "kamailio": "kamailio",
    "dnsmasq": "dnsmasq-base",  # the DNS server the RFC 3263 tests start on 127.0.0.1
}


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    """Run a command, echoing it; exit with its status when it fails."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def environment() -> dict[str, str]:
    """The environment for child processes: the venv first on PATH, pyenv's Pythons visible."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    # Interpreters installed by pyenv (the nox matrix wants 3.11, 3.12, 3.13): put
    # their bin directories right after the venv's, ahead of pyenv's shims, so
    # `python3.12` resolves without depending on PYENV_VERSION.
    pyenv_root = Path(env.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv_root.is_dir():
        extra = [
            str(version / "bin")
            for version in sorted(pyenv_root.iterdir())
            if version.name.startswith(("3.11.", "3.12.", "3.13."))
        ]
        env["PATH"] = os.pathsep.join([str(BIN), *extra, env["PATH"]])
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    return env


def setup() -> None:
    """Create .venv and install the six packages (editable) and the dev tools."""
    if sys.version_info < (3, 11):  # noqa: UP036 (this script may be run by an older python3)
        sys.exit(f"rvoip needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    env = environment()
    if not (BIN / "uv").exists():
        run(BIN / "python", "-m", "pip", "install", "-q", "--upgrade", "pip", "uv", env=env)
    editable = [arg for pkg in PACKAGES for arg in ("-e", pkg)]
    run(
        BIN / "uv",
        "pip",
        "install",
        "-q",
        "--python",
        BIN / "python",
        "-r",
        "tools/requirements-dev.txt",
        *editable,
        env=env,
    )


def install_system_tools() -> None:
    """Install what the interop and TLS tests drive: SIPp, tshark, openssl (Debian, as root)."""
    missing = [pkg for tool, pkg in APT_PACKAGES.items() if shutil.which(tool) is None]
    if not missing:
        return
    if shutil.which("apt-get") is None or (hasattr(os, "geteuid") and os.geteuid() != 0):
        print(
            f"note: {', '.join(missing)} not installed and cannot be installed here; "
            "the interop tests that need them will skip and say so",
            flush=True,
        )
        return
    apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run("apt-get", "update", "-qq", env=apt_env)
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=apt_env)


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "test"
    extra = argv[1:]
    setup()
    env = environment()
    if command == "demo":
        run(BIN / "rvoip", "demo", *extra, env=env)
    elif command == "test":
        install_system_tools()
        run(BIN / "nox", "-f", ROOT / "noxfile.py", "-s", "tests", *extra, env=env)
    elif command == "ci":
        install_system_tools()
        env["RVOIP_MEDIA_REQUIRE_EXTENSION"] = "1"
        env["HYPOTHESIS_PROFILE"] = "ci"
        run(
            BIN / "nox",
            "-f",
            ROOT / "noxfile.py",
            "-s",
            "tests",
            "lint",
            "typecheck",
            *extra,
            env=env,
        )
    elif command == "setup":
        pass
    else:
        sys.exit(f"unknown command {command!r}: use demo, test, ci or setup")


if __name__ == "__main__":
    main(sys.argv[1:])
