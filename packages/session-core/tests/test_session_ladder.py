"""Tests of the text SIP ladder."""

from __future__ import annotations

from rvoip_session_core._ladder import LadderEntry, render_ladder


def test_arrows_point_from_source_to_target() -> None:
    text = render_ladder(
        ["A", "B"],
        [
            LadderEntry(10.0, "A", "B", "INVITE"),
            LadderEntry(10.5, "B", "A", "200 OK"),
        ],
    )
    lines = text.splitlines()
    assert lines[0].split() == ["A", "B"]
    assert lines[1].startswith("   0.000 |")
    assert "INVITE" in lines[1]
    assert lines[1].rstrip().endswith(">|")
    assert lines[2].startswith("   0.500 |<")
    assert "200 OK" in lines[2]


def test_unknown_parties_get_their_own_column() -> None:
    text = render_ladder(["A"], [LadderEntry(0.0, "A", "X", "OPTIONS")])
    assert text.splitlines()[0].split() == ["A", "X"]


def test_empty_ladder_has_only_the_header() -> None:
    assert render_ladder(["A", "B"], []).split() == ["A", "B"]
