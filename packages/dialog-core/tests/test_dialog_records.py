"""The dialog layer's bookkeeping records: the dialog-indexed table."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_dialog_core import DialogId
from rvoip_dialog_core._records import DialogTable

DIALOGS = [DialogId("c", "l", str(i)) for i in range(3)]


@attrs.define(eq=False)
class Record:
    dialog_id: DialogId | None


ops = st.lists(
    st.tuples(
        st.sampled_from(["set", "pop", "del"]),
        st.integers(0, 7),
        st.sampled_from([None, *DIALOGS]),
    ),
    max_size=60,
)


@given(ops)
def test_table_matches_a_plain_dict_and_its_dialog_index(
    steps: list[tuple[str, int, object]],
) -> None:
    """After any sequence of writes, ``of(dialog)`` is the dict filtered by dialog, in order."""
    table: DialogTable[int, Record] = DialogTable()
    model: dict[int, Record] = {}
    for op, key, did in steps:
        if op == "set":
            assert did is None or isinstance(did, DialogId)
            record = Record(did)
            model.pop(key, None)  # a re-inserted key goes last, like the table
            model[key] = record
            table[key] = record
        elif op == "pop":
            assert table.pop(key) is model.pop(key, None)
        elif key in model:
            del model[key]
            del table[key]
        else:
            with pytest.raises(KeyError):
                del table[key]
        assert list(table.items()) == list(model.items())
        assert table.get(key) is model.get(key)
        assert (key in table) == (key in model)
        assert len(table) == len(model)
        for dialog in DIALOGS:
            expected = [(k, r) for k, r in model.items() if r.dialog_id == dialog]
            assert table.of(dialog) == expected
