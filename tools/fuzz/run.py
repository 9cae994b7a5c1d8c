"""Run one fuzz target under atheris (coverage-guided libFuzzer), or replay inputs.

Usage (from the repository root, with the dev venv)::

    .venv/bin/python tools/fuzz/run.py parse -runs=10000000 -max_total_time=3600
    .venv/bin/python tools/fuzz/run.py --replay parse tools/fuzz/findings/parse/crash-*
    .venv/bin/python tools/fuzz/run.py --seeds-only parse

The seed corpus is rebuilt from the shared corpora into ``tools/fuzz/corpus/<target>/``
(git-ignored) before each run; libFuzzer adds what it finds there. Crashing inputs go to
``tools/fuzz/findings/<target>/`` (git-ignored). Every argument after the target name is
passed to libFuzzer (``-runs=``, ``-max_total_time=``, ``-max_len=``, ``-jobs=`` ...);
always bound a run with ``-runs=`` or ``-max_total_time=``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PACKAGES = [
    "rvoip_sip_core",
    "rvoip_transaction_core",
    "rvoip_dialog_core",
    "rvoip_rtp_core",
    "rvoip_session_core",
]
DICTIONARY = {
    "parse": "sip.dict",
    "framer": "sip.dict",
    "transaction": "sip.dict",
    "dialog": "sip.dict",
    "digest": "sip.dict",
    "sdp": "sdp.dict",
}
MAX_LEN = {"rtp": 1500, "sdp": 4096, "digest": 2048, "framer": 4096}


def write_seeds(target: str) -> Path:
    """(Re)build ``corpus/<target>`` from the shared corpora; returns the directory."""
    from fuzz_seeds import SEEDS

    folder = HERE / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for seed in SEEDS[target]():
        name = "seed-" + hashlib.sha1(seed, usedforsecurity=False).hexdigest()
        (folder / name).write_bytes(seed)
    return folder


def replay(target: str, paths: list[str]) -> int:
    """Run ``target`` on each file; print what each raised. Returns the number that raised."""
    from fuzz_targets import TARGETS

    failed = 0
    for path in paths:
        data = Path(path).read_bytes()
        try:
            TARGETS[target](data)
        except Exception as exc:
            failed += 1
            print(f"{path}: {type(exc).__name__}: {exc}")
        else:
            print(f"{path}: ok")
    return failed


def fuzz(target: str, libfuzzer_args: list[str]) -> None:
    """Instrument the rvoip packages, build the seeds and hand over to libFuzzer."""
    import atheris  # type: ignore[import-untyped]  # optional, untyped

    with atheris.instrument_imports(include=PACKAGES):
        from fuzz_targets import TARGETS

    corpus = write_seeds(target)
    findings = HERE / "findings" / target
    findings.mkdir(parents=True, exist_ok=True)
    args = [sys.argv[0], *libfuzzer_args]
    if not any(a.startswith("-artifact_prefix=") for a in args):
        args.append(f"-artifact_prefix={findings}/")
    if target in DICTIONARY and not any(a.startswith("-dict=") for a in args):
        args.append(f"-dict={HERE / DICTIONARY[target]}")
    if not any(a.startswith("-timeout=") for a in args):
        args.append("-timeout=10")  # an input running 10 s is a hang: a finding
    if not any(a.startswith("-max_len=") for a in args):
        args.append(f"-max_len={MAX_LEN.get(target, 4096)}")
    if not any(a.startswith(("-runs=", "-max_total_time=")) for a in args):
        sys.exit("bound the run with -runs=N or -max_total_time=S")
    args.append(str(corpus))
    atheris.Setup(args, TARGETS[target])
    atheris.Fuzz()


def main(argv: list[str]) -> int:
    """Command line entry point (see the module docstring)."""
    from fuzz_targets import TARGETS

    if len(argv) >= 2 and argv[0] == "--replay":
        return 1 if replay(argv[1], argv[2:]) else 0
    if len(argv) >= 2 and argv[0] == "--seeds-only":
        folder = write_seeds(argv[1])
        print(f"{len(list(folder.iterdir()))} inputs in {folder}")
        return 0
    if not argv or argv[0] not in TARGETS:
        print(__doc__)
        print("targets:", ", ".join(TARGETS))
        return 2
    fuzz(argv[0], argv[1:])
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if (args and args[0] in ("--replay", "--seeds-only")) or not args:
        sys.exit(main(args))
    fuzz(args[0], args[1:])
