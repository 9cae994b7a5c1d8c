"""RFC 3263 server location, sans-IO: the walk, NAPTR and SRV ordering, the record cache."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_dialog_core._dns import RecordCache, parse_dns_server
from rvoip_dialog_core._hops import hop_target
from rvoip_dialog_core._locate import (
    Naptr,
    ParkedTargets,
    Query,
    Record,
    SipTarget,
    Srv,
    locate,
    naptr_choices,
    retry_after_seconds,
    srv_order,
)
from rvoip_sip_core import make_request, parse_uri
from rvoip_transaction_core import Peer

Table = Mapping[tuple[str, str], Sequence[Record]]


def walk(
    target: SipTarget,
    table: Table,
    *,
    transports: Sequence[str] = ("UDP", "TCP", "TLS"),
    default: str = "UDP",
    max_targets: int = 8,
    seed: int = 1,
) -> tuple[list[Peer], list[Query]]:
    """Drive :func:`locate` from ``table``; the targets and the queries it asked."""
    asked: list[Query] = []
    gen = locate(
        target,
        transports=transports,
        default_transport=default,
        address_type="A",
        rng=random.Random(seed),
        max_targets=max_targets,
    )
    try:
        query = next(gen)
        while True:
            asked.append(query)
            query = gen.send(table.get((query.name, query.rdtype), ()))
    except StopIteration as done:
        return done.value, asked


EXAMPLE: Table = {
    ("example.test", "NAPTR"): [
        Naptr(20, 0, "s", "SIP+D2U", "", "_sip._udp.example.test"),
        Naptr(10, 0, "s", "SIP+D2T", "", "_sip._tcp.example.test"),
        Naptr(30, 0, "s", "SIPS+D2T", "", "_sips._tcp.example.test"),
    ],
    ("_sip._tcp.example.test", "SRV"): [
        Srv(10, 0, 5070, "a.example.test"),
        Srv(20, 0, 5080, "b.example.test"),
    ],
    ("_sip._udp.example.test", "SRV"): [Srv(10, 0, 5090, "a.example.test")],
    ("a.example.test", "A"): ["127.0.0.1"],
    ("b.example.test", "A"): ["127.0.0.2", "127.0.0.3"],
}


def test_naptr_then_srv_then_a_in_priority_order() -> None:
    peers, asked = walk(SipTarget("example.test"), EXAMPLE)
    assert peers == [
        Peer("TCP", "127.0.0.1", 5070),
        Peer("TCP", "127.0.0.2", 5080),
        Peer("TCP", "127.0.0.3", 5080),
    ]
    assert asked[:2] == [Query("example.test", "NAPTR"), Query("_sip._tcp.example.test", "SRV")]
    # RFC 5922 §4: a TLS server is checked against the URI's domain, not the SRV target.
    assert {p.server_name for p in peers} == {"example.test"}


def test_naptr_skips_transports_we_do_not_have() -> None:
    peers, _ = walk(SipTarget("example.test"), EXAMPLE, transports=("UDP",))
    assert peers == [Peer("UDP", "127.0.0.1", 5090)]


def test_explicit_port_means_a_lookup_only() -> None:
    peers, asked = walk(SipTarget("a.example.test", port=5999), EXAMPLE)
    assert asked == [Query("a.example.test", "A")]
    assert peers == [Peer("UDP", "127.0.0.1", 5999)]


def test_transport_parameter_means_srv_for_that_transport() -> None:
    peers, asked = walk(SipTarget("example.test", transport="UDP"), EXAMPLE)
    assert asked[0] == Query("_sip._udp.example.test", "SRV")
    assert peers == [Peer("UDP", "127.0.0.1", 5090)]


def test_sips_uses_only_sips_records() -> None:
    table = dict(EXAMPLE)
    table[("_sips._tcp.example.test", "SRV")] = [Srv(0, 0, 5061, "a.example.test")]
    peers, _ = walk(SipTarget("example.test", secure=True), table)
    assert peers == [Peer("TLS", "127.0.0.1", 5061)]


def test_without_naptr_srv_for_each_transport_ours_first() -> None:
    table = {k: v for k, v in EXAMPLE.items() if k[1] != "NAPTR"}
    peers, asked = walk(SipTarget("example.test"), table, default="TCP")
    assert asked[1] == Query("_sip._tcp.example.test", "SRV")
    assert peers[0] == Peer("TCP", "127.0.0.1", 5070)
    peers, asked = walk(SipTarget("example.test"), table, default="UDP")
    assert peers == [Peer("UDP", "127.0.0.1", 5090)]


def test_without_srv_the_a_record_and_default_port() -> None:
    peers, asked = walk(SipTarget("a.example.test"), EXAMPLE)
    assert [q.rdtype for q in asked] == ["NAPTR", "SRV", "SRV", "A"]
    assert peers == [Peer("UDP", "127.0.0.1", 5060)]
    peers, _ = walk(SipTarget("a.example.test", secure=True), EXAMPLE)
    assert peers == [Peer("TLS", "127.0.0.1", 5061)]


def test_unknown_name_gives_no_targets() -> None:
    assert walk(SipTarget("nowhere.test"), EXAMPLE)[0] == []


def test_targets_are_bounded() -> None:
    table: dict[tuple[str, str], Sequence[Record]] = {
        ("_sip._udp.many.test", "SRV"): [Srv(i, 0, 5060 + i, f"h{i}.many.test") for i in range(50)]
    }
    for i in range(50):
        table[(f"h{i}.many.test", "A")] = [f"127.0.1.{i}", f"127.0.2.{i}"]
    peers, asked = walk(SipTarget("many.test", transport="UDP"), table, max_targets=5)
    assert len(peers) == 5
    assert len(asked) <= 1 + 5


def test_srv_weighted_order_follows_weights() -> None:
    """RFC 2782: within a priority the heavier record comes first in proportion.

    The RFC draws from 0..sum inclusive (11 values for weights 1 and 9), so the light
    record wins on 0 and 1: 2/11, the heavy one 9/11 (about 0.82).
    """
    records = [Srv(0, 1, 1, "light"), Srv(0, 9, 2, "heavy"), Srv(1, 0, 3, "backup")]
    rng = random.Random(7)
    firsts = [srv_order(records, rng)[0].target for _ in range(2000)]
    share = firsts.count("heavy") / len(firsts)
    assert 0.78 < share < 0.86
    assert all(srv_order(records, rng)[-1].target == "backup" for _ in range(50))


def test_srv_dot_target_means_no_service() -> None:
    assert srv_order([Srv(0, 0, 0, ".")], random.Random(1)) == []


srvs = st.builds(
    Srv,
    priority=st.integers(0, 3),
    weight=st.integers(0, 20),
    port=st.integers(1, 65535),
    target=st.sampled_from(["a.test", "b.test", "c.test", ".", "d.test."]),
)


@given(st.lists(srvs, max_size=12), st.integers(0, 2**32))
def test_srv_order_is_a_permutation_sorted_by_priority(records: list[Srv], seed: int) -> None:
    ordered = srv_order(records, random.Random(seed))
    real = [r for r in records if r.target.rstrip(".")]
    if len(records) == 1 and not records[0].target.rstrip("."):
        assert ordered == []
        return
    assert sorted(ordered, key=repr) == sorted(real, key=repr)
    assert [r.priority for r in ordered] == sorted(r.priority for r in ordered)


naptrs = st.builds(
    Naptr,
    order=st.integers(0, 5),
    preference=st.integers(0, 5),
    flags=st.sampled_from(["s", "S", "a", ""]),
    service=st.sampled_from(["SIP+D2U", "SIP+D2T", "SIPS+D2T", "SIP+D2S", "E2U+sip"]),
    regexp=st.sampled_from(["", "!^.*$!sip:x@y!"]),
    replacement=st.sampled_from(["_sip._udp.x.test", "_sip._tcp.x.test.", ".", ""]),
)


@given(
    st.lists(naptrs, max_size=10),
    st.sets(st.sampled_from(["UDP", "TCP", "TLS"])),
    st.booleans(),
)
def test_naptr_choices_are_usable_and_ordered(
    records: list[Naptr], transports: set[str], secure: bool
) -> None:
    choices = naptr_choices(records, sorted(transports), secure)
    assert all(t in transports for t, _ in choices)
    assert all(name and not name.endswith(".") for _, name in choices)
    if secure:
        assert all(t == "TLS" for t, _ in choices)
    usable = sorted(
        (r for r in records if r.flags.lower() == "s" and not r.regexp),
        key=lambda r: (r.order, r.preference),
    )
    assert len(choices) <= len(usable)


addresses = st.lists(
    st.integers(1, 2**24 - 1).map(lambda n: str(ipaddress.IPv4Address((127 << 24) + n))),
    max_size=4,
)
names = st.sampled_from(["x.test", "y.test", "_sip._udp.x.test", "_sip._tcp.x.test"])


@given(
    st.dictionaries(
        st.tuples(names, st.sampled_from(["NAPTR", "SRV", "A"])),
        st.one_of(st.lists(naptrs, max_size=4), st.lists(srvs, max_size=4), addresses),
        max_size=8,
    ),
    st.integers(1, 6),
    st.sampled_from([None, 5070]),
    st.sampled_from([None, "UDP", "TCP"]),
)
def test_locate_returns_bounded_addresses_on_supported_transports(
    table: dict[tuple[str, str], Sequence[Record]],
    max_targets: int,
    port: int | None,
    transport: str | None,
) -> None:
    """Whatever DNS says, the list is bounded, of IP literals, on our transports."""
    peers, asked = walk(
        SipTarget("x.test", port, transport),
        table,
        transports=("UDP", "TCP"),
        max_targets=max_targets,
    )
    assert len(peers) <= max_targets
    assert len(asked) <= 4 + max_targets
    for peer in peers:
        ipaddress.ip_address(peer.host)
        assert peer.transport in ("UDP", "TCP")
        assert peer.server_name == "x.test"


def test_hop_target_keeps_what_the_uri_says() -> None:
    def target(uri: str) -> SipTarget | None:
        req = make_request(
            "OPTIONS",
            parse_uri(uri),
            from_="<sip:a@h>;tag=1",
            to="<sip:b@h>",
            call_id="c",
            cseq=1,
            via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1",
        )
        return hop_target(req)

    assert target("sip:bob@example.test") == SipTarget("example.test")
    assert target("sip:bob@example.test:5070") == SipTarget("example.test", 5070)
    assert target("sip:bob@example.test;transport=tcp") == SipTarget("example.test", None, "TCP")
    assert target("sips:bob@example.test") == SipTarget("example.test", secure=True)
    assert target("sip:bob@x.test;maddr=y.test") == SipTarget("y.test")
    assert target("sip:bob@[::1]:5070") == SipTarget("::1", 5070)
    assert target("sip:bob@example.test;transport=sctp") is None


def test_record_cache_honours_ttl_and_bound() -> None:
    cache = RecordCache(size=2)
    a, b, c = Query("a.test", "A"), Query("b.test", "A"), Query("c.test", "A")
    assert cache.get(a, 0.0) is None
    cache.put(a, ["127.0.0.1"], 60.0, 0.0)
    assert cache.get(a, 59.0) == ("127.0.0.1",)
    assert cache.get(a, 60.0) is None
    cache.put(a, [], 30.0, 0.0)  # a negative answer is cached too
    assert cache.get(a, 1.0) == ()
    cache.put(b, ["127.0.0.2"], 60.0, 0.0)
    cache.put(c, ["127.0.0.3"], 60.0, 0.0)
    assert len(cache) == 2
    assert cache.get(a, 1.0) is None  # the oldest went
    cache.put(a, ["127.0.0.1"], 0.0, 0.0)  # TTL 0: not cached
    assert cache.get(a, 0.0) is None


def test_parse_dns_server() -> None:
    assert parse_dns_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_dns_server("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_dns_server("[::1]:5353") == ("::1", 5353)
    assert parse_dns_server("::1") == ("::1", 53)
    for bad in ("dns.example:53", "127.0.0.1:0", "[::1", "127.0.0.1:x"):
        with pytest.raises(ValueError):
            parse_dns_server(bad)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120),
        (" 18000;duration=3600", 18000),
        ("120 (I'm in a meeting)", 120),
        ("0", 0),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("99999999999", None),
        (None, None),
    ],
)
def test_retry_after_seconds(value: str | None, seconds: int | None) -> None:
    """RFC 3261 §20.33: delta-seconds, then an optional comment and parameters."""
    assert retry_after_seconds(value) == seconds


def _peer(n: int) -> Peer:
    return Peer("UDP", "127.0.0.1", 5060 + n)


def test_a_parked_target_goes_last_until_its_retry_after_passes() -> None:
    """RFC 3261 §21.5.4: the 503's sender is tried after the others, then first again."""
    parked = ParkedTargets()
    a, b, c = _peer(0), _peer(1), _peer(2)
    parked.park(a, 120, now=10.0)
    assert parked.order([a, b, c], now=10.0) == [b, c, a]
    assert parked.is_parked(a, 129.9)
    assert parked.order([a, b, c], now=130.0) == [a, b, c]  # expired: forgotten
    assert len(parked) == 0


def test_parking_is_bounded_in_time_and_size() -> None:
    parked = ParkedTargets(max_seconds=300.0, size=4)
    parked.park(_peer(0), 4_294_967_295, now=0.0)
    assert not parked.is_parked(_peer(0), 300.0)  # a hostile Retry-After is capped
    for n in range(10):
        parked.park(_peer(n), 60, now=1.0)
    assert len(parked) == 4
    off = ParkedTargets(max_seconds=0.0)
    off.park(_peer(0), 60, now=0.0)
    assert off.order([_peer(0), _peer(1)], now=0.0) == [_peer(0), _peer(1)]


@given(
    st.lists(st.integers(0, 7), min_size=1, max_size=8, unique=True),
    st.lists(st.tuples(st.integers(0, 7), st.integers(1, 100)), max_size=8),
    st.floats(0, 200),
)
def test_ordering_keeps_every_target_and_puts_parked_ones_after(
    order: list[int], parks: list[tuple[int, int]], now: float
) -> None:
    """A permutation: nothing dropped or added; ready targets first, each group in order."""
    parked = ParkedTargets()
    for n, seconds in parks:
        parked.park(_peer(n), seconds, now=0.0)
    peers = [_peer(n) for n in order]
    waiting = {p for p in peers if parked.is_parked(p, now)}
    result = parked.order(peers, now)
    assert sorted(result, key=peers.index) == peers
    ready = [p for p in peers if p not in waiting]
    assert result == ready + [p for p in peers if p in waiting]


@given(st.text(max_size=40))
def test_retry_after_of_any_text_is_none_or_a_bounded_number(value: str) -> None:
    """A hostile Retry-After never raises: None, or the leading delta-seconds (≤ 10 digits)."""
    seconds = retry_after_seconds(value)
    assert seconds is None or 0 <= seconds < 10**10
    if seconds is not None:
        assert value.strip().startswith(str(seconds)) or value.strip().lstrip("0").startswith(
            str(seconds)
        )
