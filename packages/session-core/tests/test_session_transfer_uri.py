"""The Refer-To of an attended transfer: Replaces escaped into the URI and read back out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rvoip_dialog_core import DialogId
from rvoip_session_core._transfer import replaces_refer_to, split_uri_headers
from rvoip_sip_core import Replaces, parse_uri

# RFC 3261 §25.1: Call-ID is word ["@" word]; tags are tokens.
_WORD = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~()<>:\\\"/[]?{}",
    min_size=1,
    max_size=20,
)
_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~", min_size=1, max_size=16)


def test_refer_to_escapes_the_dialog_and_names_our_remote_tag_as_to_tag() -> None:
    did = DialogId("abc@pc.example", "ours", "theirs")
    uri = replaces_refer_to("<sip:carol@10.0.0.2:5080>", did)
    assert (
        uri
        == "sip:carol@10.0.0.2:5080?Replaces=abc%40pc.example%3Bto-tag%3Dtheirs%3Bfrom-tag%3Dours"
    )
    base, headers = split_uri_headers(uri)
    assert base == "sip:carol@10.0.0.2:5080"
    assert headers == {"Replaces": "abc@pc.example;to-tag=theirs;from-tag=ours"}


def test_only_replaces_is_taken_from_a_refer_to_uri() -> None:
    """RFC 3261 §19.1.5: headers are honoured per component; a REFER sets no others."""
    base, headers = split_uri_headers(
        "sip:c@h?Route=%3Csip:evil%3E&replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2&Subject=x"
    )
    assert base == "sip:c@h"
    assert headers == {"Replaces": "a;to-tag=1;from-tag=2"}
    assert split_uri_headers("sip:c@h") == ("sip:c@h", {})


@given(
    call_id=st.builds(lambda a, b: f"{a}@{b}" if b else a, _WORD, st.one_of(st.just(""), _WORD)),
    local=_TOKEN,
    remote=_TOKEN,
)
def test_replaces_survives_the_refer_to_round_trip(call_id: str, local: str, remote: str) -> None:
    """Any Call-ID and tags come back out of the Refer-To exactly, as a parseable Replaces."""
    did = DialogId(call_id, local, remote)
    uri = replaces_refer_to("sip:carol@127.0.0.1", did)
    parse_uri(uri)  # a valid SIP URI with a header part
    base, headers = split_uri_headers(uri)
    assert base == "sip:carol@127.0.0.1"
    rep = Replaces.parse(headers["Replaces"])
    assert (rep.call_id, rep.to_tag, rep.from_tag) == (call_id, remote, local)


@given(st.text(max_size=200))
def test_any_refer_to_text_splits_without_error_and_keeps_only_replaces(text: str) -> None:
    """A Refer-To is the peer's text: any of it splits, and only Replaces comes out."""
    base, headers = split_uri_headers(text)
    assert set(headers) <= {"Replaces"}
    assert "?" not in base
    assert text.startswith(base)
