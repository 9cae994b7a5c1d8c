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

BUDGET_S = 4.0  # per target; seven targets stay well under a minute on two cores
MUTATIONS = 400

TOKENS = [
    b"\r\n",
    b"\r\n\r\n",
    b";tag=",
    b";branch=z9hG4bK",
    b"Content-Length: 99999\r\n",
    b"Via: SIP/2.0/UDP [::1\r\n",
    b"CSeq: 4294967296 INVITE\r\n",
    b"m=audio 65535 RTP/AVP 0\r\n",
    b'Digest nonce="',
    b"\x00",
    b"\xff\xfe",
    b",",
    b'"',
    b"<",
]


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """One to four libFuzzer-like edits: flip, insert a token, cut, duplicate, splice."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = rng.choice(TOKENS)
        elif op == 2:
            del buf[pos : pos + rng.randint(1, 64)]
        elif op == 3:
            end = min(len(buf), pos + rng.randint(1, 32))
            buf[pos:pos] = buf[pos:end]
        elif op == 4:
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            buf[pos:] = other[cut:]
        else:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(buf)


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
