"""Seed inputs for the fuzz targets, built at run time from the shared corpora.

The corpora (RFC 4475/5118 torture messages, real-world SIP and SDP, RTP captures) are
read in place and never copied into the repository; the seeds generated from them are
written under ``tools/fuzz/corpus/`` (git-ignored) by ``run.py``. Seeds that cannot come
from the corpora (in-dialog requests with the right tags, responses to the harness's own
client transactions, credentials for the harness's digest server) are made here by
running the real layers, so they stay right when the layers change.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SEPARATOR = b"\n\x00\x00\n"
"""Splits one fuzz input into several messages (transaction and dialog targets)."""


def corpora_path() -> Path | None:
    """Where the shared corpora are: ``$RVOIP_CORPORA`` or ``../shared/corpora``."""
    env = os.environ.get("RVOIP_CORPORA")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "corpora")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def _files(*parts: str, suffixes: tuple[str, ...]) -> Iterator[bytes]:
    base = corpora_path()
    if base is None:
        return
    folder = base.joinpath(*parts)
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in suffixes:
            yield path.read_bytes()


def sip_messages() -> list[bytes]:
    """Every SIP message of the corpora (RFC 4475, RFC 5118 wire copies, real world)."""
    out = list(_files("rfc4475", suffixes=(".dat",)))
    out += _files("rfc5118", "wire", suffixes=(".dat",))
    out += _files("real-world", suffixes=(".sip",))
    return out


def sdp_bodies() -> list[bytes]:
    """The real-world SDPs plus the SDP bodies found in the corpora's SIP messages."""
    out = list(_files("real-world", "sdp", suffixes=(".sdp",)))
    for message in sip_messages():
        _, _, body = message.partition(b"\r\n\r\n")
        if body.startswith(b"v=0"):
            out.append(body)
    out.append(
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
    return out


def rtp_packets() -> list[bytes]:
    """The aiortc RTP/RTCP captures and the RFC 4733/3550 binary vectors."""
    out = list(_files("rtp", "aiortc", suffixes=(".bin",)))
    out += _files("rtp", "rfc4733", suffixes=(".bin",))
    out += _files("rtp", "rfc3550", suffixes=(".bin",))
    return out


def framer_streams() -> list[bytes]:
    """Streams of corpus messages (with Content-Length), keep-alives between some."""
    messages = [m for m in sip_messages() if b"content-length" in m.lower()]
    out = list(messages)
    for i in range(0, len(messages) - 1, 2):
        out.append(messages[i] + b"\r\n\r\n" + messages[i + 1] + b"\r\n")
    out.append(b"\r\n\r\n\r\n")
    return out


def digest_inputs() -> list[bytes]:
    """``challenge SEPARATOR credentials`` pairs, from the corpora and the real server."""
    from fuzz_targets import digest_seed_pairs

    out: list[bytes] = []
    for message in sip_messages():
        for line in message.split(b"\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"www-authenticate", b"proxy-authenticate"):
                out.append(value.strip() + SEPARATOR)
            elif name.strip().lower() in (b"authorization", b"proxy-authorization"):
                out.append(SEPARATOR + value.strip())
    out += digest_seed_pairs()
    return out


def transaction_inputs() -> list[bytes]:
    """Corpus messages and the harness's own exchanges, joined by SEPARATOR."""
    from fuzz_targets import transaction_seed_inputs

    return [b"\x00" + m for m in sip_messages()] + transaction_seed_inputs()


def dialog_inputs() -> list[bytes]:
    """Real in-dialog requests (and mutations of them) towards the harness's UAS."""
    from fuzz_targets import dialog_seed_inputs

    return dialog_seed_inputs(random.Random(0))


SEEDS: dict[str, Callable[[], list[bytes]]] = {
    "parse": sip_messages,
    "framer": framer_streams,
    "sdp": sdp_bodies,
    "digest": digest_inputs,
    "transaction": transaction_inputs,
    "dialog": dialog_inputs,
    "rtp": rtp_packets,
}
"""Seed builder of each target."""
