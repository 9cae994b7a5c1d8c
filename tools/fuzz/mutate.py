"""A long mutation campaign over the corpus a coverage-guided run built (no instrumentation).

Usage (from the repository root, with the dev venv)::

    .venv/bin/python tools/fuzz/mutate.py parse --runs 10000000 [--seconds 3600] [--seed 1]

atheris (``run.py``) learns new coverage but runs the instrumented targets at 500-8,000
inputs/s on this machine; this runner takes the inputs it kept in
``tools/fuzz/corpus/<target>/`` (plus the seeds built from the shared corpora), applies
one to four libFuzzer-like edits to a random one (bit flips, SIP/SDP tokens, cuts,
duplications, splices of two inputs, random bytes: ``mutations.mutate``) and runs the
uninstrumented target, 10-30 times faster. A target raising is a finding: the input is
written to ``tools/fuzz/findings/<target>/`` and the run goes on. Prints the inputs run,
inputs/s and findings; exits 1 when there was a finding.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import hashlib
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fuzz_seeds import SEEDS  # noqa: E402
from fuzz_targets import TARGETS  # noqa: E402
from mutations import mutate  # noqa: E402


def corpus(target: str) -> list[bytes]:
    """The seeds plus what coverage-guided runs kept for ``target``."""
    inputs = list(SEEDS[target]())
    folder = HERE / "corpus" / target
    if folder.is_dir():
        inputs += [path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()]
    return [data for data in inputs if data]


def main(argv: list[str]) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--runs", type=int, default=10_000_000)
    parser.add_argument("--seconds", type=float, default=3600.0, help="bound on the run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    # A crash of the interpreter itself (one 10 M run died of SIGSEGV at exit) prints the
    # Python frames of every thread instead of nothing.
    faulthandler.enable()
    target = TARGETS[args.target]
    pool = corpus(args.target)
    rng = random.Random(args.seed)
    findings = HERE / "findings" / args.target
    start = time.monotonic()
    deadline = start + args.seconds
    ran = failed = 0
    print(f"{args.target}: {len(pool)} corpus inputs", flush=True)
    # The corpus and the modules never die: keep them out of the collector's scans, and
    # collect young garbage less often (the dialog target builds a cyclic object graph per
    # input; the default threshold made a third of its time garbage collection).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    while ran < args.runs:
        if ran % 10_000 == 0:
            now = time.monotonic()
            if now >= deadline:
                break
            if ran and ran % 1_000_000 == 0:
                print(f"  {ran:,} inputs, {ran / (now - start):,.0f}/s", flush=True)
        data = mutate(rng.choice(pool), rng, pool)
        try:
            target(data)
        except Exception as exc:  # a target raises only on a broken contract: a finding
            failed += 1
            findings.mkdir(parents=True, exist_ok=True)
            name = "crash-" + hashlib.sha1(data, usedforsecurity=False).hexdigest()
            (findings / name).write_bytes(data)
            print(f"  finding: {type(exc).__name__}: {exc} -> {findings / name}", flush=True)
        ran += 1
    elapsed = time.monotonic() - start
    print(
        f"{args.target}: {ran:,} inputs in {elapsed:,.0f} s ({ran / elapsed:,.0f}/s), "
        f"{failed} findings"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
