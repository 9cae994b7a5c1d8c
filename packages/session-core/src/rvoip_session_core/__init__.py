"""rvoip_session_core: make, answer, hold, transfer and bridge SIP calls with RTP audio."""

from rvoip_session_core import api as _api
from rvoip_session_core.api import *  # noqa: F403
from rvoip_session_core.api import __all__ as _api_all

__version__ = "0.1.0"

__all__ = ["__version__", *_api_all]


def __getattr__(name: str) -> object:
    """``Accept`` and ``EventHub``: importable for one release, with a DeprecationWarning."""
    return _api.__getattr__(name)
