"""The interop suite's pcap writer: round trips, frame layout, and what tshark reads from it."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from interop_pcap import (
    LINKTYPE_ETHERNET,
    PcapError,
    UdpDatagram,
    datagrams,
    ethernet_frame,
    g711_tone_rtp,
    pcap_bytes,
    read_pcap,
    rfc4733_rtp,
    write_pcap,
)

from rvoip_media_core import Codec, decode, detect_tone
from rvoip_rtp_core import DtmfDecoder, DtmfEnded, RtpPacket

pytestmark = pytest.mark.interop

ports = st.integers(min_value=1, max_value=65535)
hosts = st.ip_addresses(v=4).map(str)
datagram_strategy = st.builds(
    UdpDatagram,
    time=st.integers(min_value=0, max_value=2**31).map(lambda us: us / 1_000_000),
    payload=st.binary(max_size=1500),
    src=st.tuples(hosts, ports),
    dst=st.tuples(hosts, ports),
)


@given(st.lists(datagram_strategy, max_size=20))
def test_pcap_round_trip(items: list[UdpDatagram]) -> None:
    assert read_pcap(pcap_bytes(items)) == items


@given(st.binary(max_size=200))
def test_reader_raises_only_pcap_error(data: bytes) -> None:
    try:
        read_pcap(data)
    except PcapError:
        pass


@given(st.lists(datagram_strategy, min_size=1, max_size=3), st.data())
def test_capture_cut_inside_a_record_is_a_pcap_error(
    items: list[UdpDatagram], data: st.DataObject
) -> None:
    whole = pcap_bytes(items)
    last_record = 16 + len(ethernet_frame(items[-1]))
    cut = data.draw(st.integers(min_value=1, max_value=last_record - 1))
    with pytest.raises(PcapError):
        read_pcap(whole[:-cut])


def test_frame_layout_is_ethernet_ipv4_udp() -> None:
    frame = ethernet_frame(UdpDatagram(0.0, b"abc", ("127.0.0.1", 6000), ("10.0.0.2", 6002)))
    assert struct.unpack("!H", frame[12:14])[0] == 0x0800
    assert frame[14] == 0x45  # IPv4, 20-byte header
    assert frame[23] == 17  # UDP
    assert struct.unpack("!H", frame[16:18])[0] == 20 + 8 + 3
    assert frame[26:30] == bytes([127, 0, 0, 1])
    assert frame[30:34] == bytes([10, 0, 0, 2])
    assert struct.unpack("!HHH", frame[34:40]) == (6000, 6002, 11)
    assert frame[42:] == b"abc"
    header = pcap_bytes([])
    assert struct.unpack("<IHHiIII", header)[-1] == LINKTYPE_ETHERNET


def test_g711_capture_carries_the_tone_every_20_ms() -> None:
    items = read_pcap(pcap_bytes(datagrams(g711_tone_rtp(Codec.PCMU, 1000.0, 0.2))))
    packets = [RtpPacket.parse(d.payload) for d in items]
    assert [round(d.time, 3) for d in items] == [round(0.02 * i, 3) for i in range(10)]
    assert [p.payload_type for p in packets] == [0] * 10
    assert [p.sequence_number - packets[0].sequence_number for p in packets] == list(range(10))
    assert all(detect_tone(decode(Codec.PCMU, p.payload), 1000.0) for p in packets)


def test_rfc4733_capture_decodes_to_the_digits() -> None:
    decoder = DtmfDecoder()
    digits = []
    for item in read_pcap(pcap_bytes(datagrams(rfc4733_rtp("19*#", 101)))):
        packet = RtpPacket.parse(item.payload)
        assert packet.payload_type == 101
        digits += [n.digit for n in decoder.feed_packet(packet) if isinstance(n, DtmfEnded)]
    assert "".join(digits) == "19*#"


def test_tshark_reads_our_capture_as_rtp(tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark not found on PATH (Debian: apt-get install tshark)")
    path = write_pcap(tmp_path / "dtmf.pcap", datagrams(rfc4733_rtp("5", 101)))
    options = ["-o", "ip.check_checksum:TRUE", "-d", "udp.port==6002,rtp", "-T", "fields"]
    fields = ["-e", "ip.checksum.status", "-e", "rtp.p_type", "-e", "rtpevent.event_id"]
    out = subprocess.run(
        [tshark, "-r", str(path), *options, *fields],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    rows = [line.split("\t") for line in out.stdout.splitlines() if line.strip()]
    assert rows
    # ip.checksum.status 1 = verified good (0 bad, 2 unverified).
    assert all(row == ["1", "101", "5"] for row in rows), rows
