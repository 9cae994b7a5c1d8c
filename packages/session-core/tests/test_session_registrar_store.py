"""The sans-IO ``Registrar`` binding store: RFC 3261 §10.3 rules, limits, expiry by ``now``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rvoip_session_core import Registrar, RegistrarSettings, aor_of
from rvoip_sip_core import Request, make_request, parse_uri

DOMAIN = "pbx.test"


def register(
    user: str = "alice",
    contacts: tuple[str, ...] = ("sip:alice@192.0.2.1:5060",),
    *,
    expires: int | None = None,
    call_id: str = "c1",
    cseq: int = 1,
    host: str = DOMAIN,
) -> Request:
    """A REGISTER for ``sip:user@host`` binding ``contacts`` (``*`` for the wildcard)."""
    headers: list[tuple[str, str]] = [
        ("Contact", c if c == "*" or c.startswith("<") else f"<{c}>") for c in contacts
    ]
    if expires is not None:
        headers.append(("Expires", str(expires)))
    aor = f"sip:{user}@{host}"
    return make_request(
        "REGISTER",
        parse_uri(f"sip:{host}"),
        from_=f"<{aor}>;tag=t1",
        to=f"<{aor}>",
        call_id=call_id,
        cseq=cseq,
        via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
        contact=None,
        headers=headers,
    )


def test_aor_is_canonical() -> None:
    assert aor_of("sip:Bob@PBX.test:5070;transport=tcp") == "sip:Bob@pbx.test"
    assert aor_of("<sips:bob@pbx.test>") == "sip:bob@pbx.test"
    assert aor_of("sip:pbx.test") is None
    assert aor_of("not a uri") is None


def test_register_binds_and_lists_every_binding_with_expires() -> None:
    registrar = Registrar(RegistrarSettings(max_expires=600), DOMAIN)
    first = registrar.register(register(expires=300), now=100.0)
    assert first.status == 200
    assert first.changed
    second = registrar.register(
        register(contacts=("<sip:alice@192.0.2.2>;expires=9999;q=0.5",), call_id="c2"),
        now=110.0,
    )
    assert second.status == 200
    # RFC 3261 §10.3 step 8: the 200 lists every current binding with its expires.
    assert second.headers == (
        ("Contact", "<sip:alice@192.0.2.1:5060>;expires=290"),
        ("Contact", "<sip:alice@192.0.2.2>;expires=600;q=0.5"),  # capped at max_expires
    )
    assert [b.q for b in registrar.bindings("sip:alice@pbx.test", 110.0)] == [1.0, 0.5]


def test_binding_lapses_at_its_expiry() -> None:
    registrar = Registrar(domain=DOMAIN)
    registrar.register(register(expires=120), now=0.0)
    assert len(registrar.bindings("sip:alice@pbx.test", 119.0)) == 1
    assert registrar.bindings("sip:alice@pbx.test", 120.0) == ()
    assert registrar.sweep(121.0) == ()
    assert len(registrar) == 0


def test_too_brief_interval_gets_423_with_min_expires() -> None:
    registrar = Registrar(RegistrarSettings(min_expires=60), DOMAIN)
    outcome = registrar.register(register(expires=30), now=0.0)
    assert (outcome.status, outcome.headers) == (423, (("Min-Expires", "60"),))
    assert registrar.bindings("sip:alice@pbx.test", 0.0) == ()


def test_same_call_id_with_a_cseq_not_higher_fails_and_changes_nothing() -> None:
    registrar = Registrar(domain=DOMAIN)
    registrar.register(register(cseq=5, expires=300), now=0.0)
    stale = registrar.register(register(cseq=5, expires=0), now=1.0)
    assert stale.status == 500
    assert len(registrar.bindings("sip:alice@pbx.test", 1.0)) == 1
    # Another Call-ID (another device, or a rebooted one) may update it with any CSeq.
    assert registrar.register(register(cseq=1, call_id="c9", expires=0), now=2.0).status == 200
    assert registrar.bindings("sip:alice@pbx.test", 2.0) == ()


def test_wildcard_with_expires_zero_removes_all() -> None:
    registrar = Registrar(domain=DOMAIN)
    registrar.register(register(contacts=("sip:a@192.0.2.1", "sip:b@192.0.2.2")), now=0.0)
    bad = registrar.register(register(contacts=("*",), call_id="c2"), now=1.0)
    assert bad.status == 400  # RFC 3261 §10.3 step 6: "*" needs Expires: 0
    outcome = registrar.register(register(contacts=("*",), call_id="c2", expires=0), now=1.0)
    assert outcome.status == 200
    assert outcome.changed
    assert outcome.headers == ()
    assert registrar.bindings("sip:alice@pbx.test", 1.0) == ()


def test_query_without_contact_lists_bindings_and_changes_nothing() -> None:
    registrar = Registrar(domain=DOMAIN)
    registrar.register(register(), now=0.0)
    outcome = registrar.register(register(contacts=(), cseq=2), now=10.0)
    assert outcome.status == 200
    assert not outcome.changed
    assert outcome.headers == (("Contact", "<sip:alice@192.0.2.1:5060>;expires=3590"),)


def test_foreign_domain_and_foreign_user_are_refused() -> None:
    registrar = Registrar(domain=DOMAIN)
    assert registrar.register(register(host="elsewhere.test"), now=0.0).status == 404
    outcome = registrar.register(register(user="bob"), now=0.0, authenticated_user="alice")
    assert outcome.status == 403
    assert len(registrar) == 0


def test_limits_on_aors_and_contacts() -> None:
    registrar = Registrar(RegistrarSettings(max_aors=2, max_contacts_per_aor=2), DOMAIN)
    many = ("sip:a@192.0.2.1", "sip:b@192.0.2.2", "sip:c@192.0.2.3")
    assert registrar.register(register(contacts=many), now=0.0).status == 403
    assert registrar.register(register("u1", expires=100), now=0.0).status == 200
    assert registrar.register(register("u2", expires=100), now=0.0).status == 200
    full = registrar.register(register("u3"), now=1.0)
    assert full.status == 503
    assert ("Retry-After", "60") in full.headers
    # Once the others lapse, the sweep makes room.
    assert registrar.register(register("u3"), now=200.0).status == 200


@pytest.mark.parametrize(
    "kwargs", [{"min_expires": 100, "max_expires": 50}, {"max_aors": 0}, {"default_expires": 1}]
)
def test_settings_refuse_nonsense(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"expires|limits"):
        RegistrarSettings(**kwargs)


# --- the property: any sequence of REGISTERs keeps the invariants -----------------------------

USERS = ("alice", "bob", "carol")
CONTACTS = tuple(f"sip:dev{i}@192.0.2.{i}" for i in range(1, 6))

register_ops = st.tuples(
    st.sampled_from(USERS),
    st.one_of(
        st.just(("*",)),
        st.lists(st.sampled_from(CONTACTS), max_size=4, unique=True).map(tuple),
    ),
    st.one_of(st.none(), st.sampled_from([0, 5, 30, 60, 100, 4000])),
    st.sampled_from(["c1", "c2", "c3"]),
    st.integers(min_value=1, max_value=6),
    st.floats(min_value=0.0, max_value=80.0),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(register_ops, max_size=40))
def test_any_register_sequence_keeps_the_invariants(
    ops: list[tuple[str, tuple[str, ...], int | None, str, int, float]],
) -> None:
    """No lapsed binding is ever returned; the AOR and contact limits always hold; the
    200 lists exactly the live bindings; a refused request changes nothing."""
    limits = RegistrarSettings(min_expires=30, max_expires=100, max_aors=2, max_contacts_per_aor=3)
    registrar = Registrar(limits, DOMAIN)
    now = 0.0
    for user, contacts, expires, call_id, cseq, step in ops:
        now += step
        aor = f"sip:{user}@{DOMAIN}"
        before = registrar.bindings(aor, now)
        request = register(user, contacts, expires=expires, call_id=call_id, cseq=cseq)
        outcome = registrar.register(request, now)
        after = registrar.bindings(aor, now)
        if outcome.status != 200:
            assert after == before
        else:
            assert outcome.bindings == after
            assert len(outcome.headers) == len(after)
        for name in USERS:
            live = registrar.bindings(f"sip:{name}@{DOMAIN}", now)
            assert all(b.expires_at > now for b in live)
            assert all(b.expires_in(now) <= limits.max_expires for b in live)
            assert len(live) <= limits.max_contacts_per_aor
        assert len(registrar) <= limits.max_aors
