"""libFuzzer-like byte mutations in plain Python, shared by the CI slice and ``mutate.py``.

Used where coverage feedback is not wanted or not affordable: the CI slice (a fixed,
seeded set of mutations of the seeds) and the long mutation campaign over the corpus a
coverage-guided atheris run built (``tools/fuzz/mutate.py``).
"""

from __future__ import annotations

import random

__all__ = ["TOKENS", "mutate"]

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
