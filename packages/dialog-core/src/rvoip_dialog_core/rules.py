"""The dialog layer's rule tables and helpers, for tests, tools and diagrams.

Not part of the everyday API (they are not in ``rvoip_dialog_core.__all__``): the RFC 3261
§12 dialog state table and its triggers, the Via and next-hop helpers the layer and
driver use, the RFC 3261 §14.1 glare delay and the RFC 3515 sipfrag body helpers.
"""

from ._dialog import make_via
from ._hops import next_hop, target_for
from ._rules import glare_delay, parse_sipfrag_status, sipfrag
from ._states import DIALOG_UAC, DIALOG_UAS, DialogMachine, Trigger, transition

__all__ = [
    "DIALOG_UAC",
    "DIALOG_UAS",
    "DialogMachine",
    "Trigger",
    "glare_delay",
    "make_via",
    "next_hop",
    "parse_sipfrag_status",
    "sipfrag",
    "target_for",
    "transition",
]
