"""A small pcap writer for SIPp's ``play_pcap_audio``: RTP packets as Ethernet/IPv4/UDP frames.

SIPp replays the UDP payloads of a full link-layer capture with the capture's timing
(it reads Ethernet or Linux-cooked frames, IPv4/IPv6, UDP). The RTP packets come from
rvoip_rtp_core (header, RFC 4733 events) and rvoip_media_core (G.711, tones), so a
capture made here carries exactly what our own stack would send.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from rvoip_media_core import Codec, ToneGenerator, encode
from rvoip_rtp_core import DtmfEncoder, encode_rtp

PCAP_MAGIC = 0xA1B2C3D4  # microsecond timestamps, written big- or little-endian
LINKTYPE_ETHERNET = 1
ETHERTYPE_IPV4 = 0x0800
IPPROTO_UDP = 17
SAMPLE_RATE = 8000
SAMPLES_PER_PACKET = 160  # 20 ms of G.711 at 8 kHz

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")


class PcapError(ValueError):
    """A capture could not be read back (truncated or not what this module writes)."""


@attrs.frozen
class UdpDatagram:
    """One captured UDP datagram: when it was sent, from where to where, and its payload."""

    time: float
    payload: bytes
    src: tuple[str, int] = ("127.0.0.1", 6000)
    dst: tuple[str, int] = ("127.0.0.1", 6002)


def _ipv4_checksum(header: bytes) -> int:
    """RFC 791 header checksum: one's complement of the one's complement sum of 16-bit words."""
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def ethernet_frame(datagram: UdpDatagram, ident: int = 0) -> bytes:
    """The datagram as an Ethernet II / IPv4 / UDP frame (UDP checksum 0: none, RFC 768)."""
    src_ip = ipaddress.IPv4Address(datagram.src[0]).packed
    dst_ip = ipaddress.IPv4Address(datagram.dst[0]).packed
    udp_len = _UDP.size + len(datagram.payload)
    total_len = _IPV4.size + udp_len
    if total_len > 0xFFFF:
        raise ValueError(f"a UDP payload of {len(datagram.payload)} bytes does not fit IPv4")
    header = _IPV4.pack(
        0x45, 0, total_len, ident & 0xFFFF, 0x4000, 64, IPPROTO_UDP, 0, src_ip, dst_ip
    )
    header = header[:10] + struct.pack("!H", _ipv4_checksum(header)) + header[12:]
    udp = _UDP.pack(datagram.src[1], datagram.dst[1], udp_len, 0)
    macs = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")
    return macs + struct.pack("!H", ETHERTYPE_IPV4) + header + udp + datagram.payload


def pcap_bytes(datagrams: Iterable[UdpDatagram]) -> bytes:
    """A whole capture file (pcap 2.4, Ethernet link type) holding ``datagrams`` in order."""
    parts = [_GLOBAL.pack(PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)]
    for ident, datagram in enumerate(datagrams):
        frame = ethernet_frame(datagram, ident)
        micros = round(datagram.time * 1_000_000)
        sec, usec = divmod(micros, 1_000_000)
        parts.append(_RECORD.pack(sec, usec, len(frame), len(frame)))
        parts.append(frame)
    return b"".join(parts)


def write_pcap(path: Path, datagrams: Iterable[UdpDatagram]) -> Path:
    """Write ``datagrams`` as a capture file at ``path`` (parent directories created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pcap_bytes(datagrams))
    return path


def read_pcap(data: bytes) -> list[UdpDatagram]:
    """Read back a capture this module wrote (Ethernet/IPv4/UDP records only).

    Raises:
        PcapError: the bytes are not such a capture.
    """
    if len(data) < _GLOBAL.size:
        raise PcapError("shorter than a pcap global header")
    magic, _major, _minor, _zone, _sigfigs, _snaplen, link = _GLOBAL.unpack_from(data)
    if magic != PCAP_MAGIC or link != LINKTYPE_ETHERNET:
        raise PcapError(f"not a little-endian Ethernet pcap (magic {magic:#x}, link {link})")
    out: list[UdpDatagram] = []
    pos = _GLOBAL.size
    while pos < len(data):
        if pos + _RECORD.size > len(data):
            raise PcapError(f"truncated record header at byte {pos}")
        sec, usec, incl, _orig = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        frame = data[pos : pos + incl]
        pos += incl
        if len(frame) != incl or incl < 14 + _IPV4.size + _UDP.size:
            raise PcapError(f"truncated frame before byte {pos}")
        if struct.unpack_from("!H", frame, 12)[0] != ETHERTYPE_IPV4:
            raise PcapError("not an IPv4 frame")
        fields = _IPV4.unpack_from(frame, 14)
        if fields[6] != IPPROTO_UDP or _ipv4_checksum(frame[14 : 14 + _IPV4.size]) != 0:
            raise PcapError("not a valid IPv4/UDP header")
        sport, dport, udp_len, _ = _UDP.unpack_from(frame, 14 + _IPV4.size)
        start = 14 + _IPV4.size + _UDP.size
        payload = frame[start : start + udp_len - _UDP.size]
        src = (str(ipaddress.IPv4Address(fields[8])), sport)
        dst = (str(ipaddress.IPv4Address(fields[9])), dport)
        out.append(UdpDatagram((sec * 1_000_000 + usec) / 1_000_000, payload, src, dst))
    return out


# --- RTP content ------------------------------------------------------------------------


def g711_tone_rtp(
    codec: Codec = Codec.PCMA,
    frequency: float = 1000.0,
    seconds: float = 2.0,
    *,
    ssrc: int = 0x5EED0711,
    first_seq: int = 1000,
    first_ts: int = 160_000,
) -> Iterator[tuple[float, bytes]]:
    """(send time, RTP packet) of a G.711 tone, one packet every 20 ms from time 0."""
    tone = ToneGenerator(frequency, 0.3)
    count = round(seconds * SAMPLE_RATE / SAMPLES_PER_PACKET)
    for i in range(count):
        payload = encode(codec, tone.read(SAMPLES_PER_PACKET)).tobytes()
        seq = (first_seq + i) & 0xFFFF
        ts = (first_ts + i * SAMPLES_PER_PACKET) & 0xFFFFFFFF
        packet = encode_rtp(codec.payload_type, seq, ts, ssrc, payload, marker=i == 0)
        yield i * SAMPLES_PER_PACKET / SAMPLE_RATE, packet


def rfc4733_rtp(
    digits: str,
    payload_type: int = 101,
    *,
    duration: int = 800,
    gap: float = 0.2,
    ssrc: int = 0xD7F04733,
    first_seq: int = 2000,
    first_ts: int = 320_000,
) -> Iterator[tuple[float, bytes]]:
    """(send time, RTP packet) of ``digits`` as RFC 4733 telephone events, one after another.

    Each digit lasts ``duration`` timestamp units (100 ms at 800); ``gap`` seconds separate
    the end of one digit from the start of the next.
    """
    encoder = DtmfEncoder()
    seq, start_time, start_ts = first_seq, 0.0, first_ts
    for digit in digits:
        last = 0
        # RFC 4733 §2.5.1.2: every packet of one event carries the event's start timestamp.
        for packet in encoder.packets(digit, duration):
            data = encode_rtp(
                payload_type, seq & 0xFFFF, start_ts, ssrc, packet.payload, marker=packet.marker
            )
            yield start_time + packet.offset / SAMPLE_RATE, data
            seq += 1
            last = packet.offset
        start_time += last / SAMPLE_RATE + gap
        start_ts = (start_ts + last + round(gap * SAMPLE_RATE)) & 0xFFFFFFFF


def datagrams(
    packets: Iterable[tuple[float, bytes]],
    src: tuple[str, int] = ("127.0.0.1", 6000),
    dst: tuple[str, int] = ("127.0.0.1", 6002),
) -> list[UdpDatagram]:
    """Wrap (time, payload) pairs as datagrams from ``src`` to ``dst``."""
    return [UdpDatagram(time, payload, src, dst) for time, payload in packets]
