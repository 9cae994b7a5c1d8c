"""A short slice of the fuzz campaign for CI: every target on its seeds and mutations.

The coverage-guided campaign (``tools/fuzz/run.py`` under atheris, millions of inputs per
target, figures in ``docs/security.md``) is too long for CI. This slice runs the same
target functions on their seed corpus (built from the shared corpora and real exchanges
of the layers) and on a fixed, seeded set of mutations of it, within a time budget per
target, so a change that makes a layer raise on hostile input fails CI quickly.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parents[1] / "tools" / "fuzz"
sys.path.insert(0, str(FUZZ_DIR))

from fuzz_seeds import SEEDS, corpora_path  # noqa: E402
from fuzz_targets import TARGETS  # noqa: E402
from mutations import mutate  # noqa: E402

BUDGET_S = 4.0  # per target; seven targets stay well under a minute on two cores
MUTATIONS = 400


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_slice(name: str) -> None:
    """Seeds then seeded mutations of ``name`` within the budget: no finding."""
    if corpora_path() is None and name in ("parse", "framer", "sdp", "rtp"):
        pytest.skip("test corpora not found: set RVOIP_CORPORA or place ../shared/corpora")
    target = TARGETS[name]
    seeds = SEEDS[name]()
    assert seeds, f"no seed inputs for {name}"
    for seed in seeds:
        target(seed)
    rng = random.Random(f"fuzz-slice-{name}")
    deadline = time.monotonic() + BUDGET_S
    ran = 0
    while ran < MUTATIONS and time.monotonic() < deadline:
        data = mutate(rng.choice(seeds), rng, seeds)
        try:
            target(data)
        except Exception as exc:
            raise AssertionError(f"{name} target failed on {data!r}") from exc
        ran += 1
    assert ran > 0
