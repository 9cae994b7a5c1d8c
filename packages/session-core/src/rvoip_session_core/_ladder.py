"""A text SIP ladder diagram of the messages exchanged between endpoints."""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen
class LadderEntry:
    """One message on the ladder: when, from which party to which, and its label."""

    time: float
    source: str
    target: str
    label: str


def render_ladder(parties: Sequence[str], entries: Sequence[LadderEntry], width: int = 26) -> str:
    """Draw ``entries`` as arrows between the columns of ``parties``.

    Entries whose source or target is not a party get a column of their own on the right.
    Times are printed relative to the first entry.
    """
    columns = list(parties)
    for entry in entries:
        for name in (entry.source, entry.target):
            if name not in columns:
                columns.append(name)
    lines = ["         " + "".join(name[: width - 1].ljust(width) for name in columns).rstrip()]
    t0 = entries[0].time if entries else 0.0
    for entry in entries:
        a, b = columns.index(entry.source), columns.index(entry.target)
        cells = ["|".ljust(width) for _ in columns]
        lo, hi = min(a, b), max(a, b)
        span = (hi - lo) * width - 1
        label = f" {entry.label} "[: max(span - 2, 1)]
        if a == b:
            arrow = "|<>" + label
        elif a < b:
            arrow = "|" + label.center(span - 1, "-") + ">"
        else:
            arrow = "|<" + label.center(span - 1, "-")
        row = "".join(cells[:lo]) + arrow + "".join(cells[hi:])
        lines.append(f"{entry.time - t0:8.3f} " + row.rstrip())
    return "\n".join(lines)
