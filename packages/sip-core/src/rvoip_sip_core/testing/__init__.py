"""Hypothesis strategies of rvoip_sip_core for tests here and in the layers above.

Needs the ``testing`` extra (``pip install rvoip-sip-core[testing]``: hypothesis).
"""

from . import header_strategies, sdp_strategies, strategies
from .header_strategies import *  # noqa: F403
from .sdp_strategies import *  # noqa: F403
from .strategies import *  # noqa: F403

__all__: list[str] = []
__all__ += strategies.__all__
__all__ += header_strategies.__all__
__all__ += sdp_strategies.__all__
