"""rvoip_sip_core: SIP messages, URIs, typed headers, parser/serializer, SDP and digest auth.

Pure and sans-IO: bytes in, objects out, and back. Everything public is
re-exported here; the ``_``-prefixed modules are the implementation.
"""

from . import _digest, _headers, _sdp, _uri
from ._builders import (
    REASON_PHRASES,
    SYSTEM_RANDOM,
    default_reason,
    make_request,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
)
from ._digest import *  # noqa: F403
from ._errors import SipError, SipParseError, SipUsageError
from ._framer import KeepAlive, StreamFramer
from ._headers import *  # noqa: F403
from ._headers_container import Headers
from ._message import HeaderType, Message, Request, Response, recover_fields
from ._names import COMPACT_FORMS, canonical_name, header_key
from ._parser import DEFAULT_MAX_SIZE, parse_message, validate
from ._sdp import *  # noqa: F403
from ._uri import *  # noqa: F403
from ._validate import (
    REQUIRED_REQUEST_HEADERS,
    SINGLE_VALUE_HEADERS,
    SUPPORTED_URI_SCHEMES,
    RequestFault,
    check_max_forwards,
    check_request,
)

__version__ = "0.1.0"

__all__ = [
    "COMPACT_FORMS",
    "DEFAULT_MAX_SIZE",
    "REASON_PHRASES",
    "REQUIRED_REQUEST_HEADERS",
    "SINGLE_VALUE_HEADERS",
    "SUPPORTED_URI_SCHEMES",
    "SYSTEM_RANDOM",
    "HeaderType",
    "Headers",
    "KeepAlive",
    "Message",
    "Request",
    "RequestFault",
    "Response",
    "SipError",
    "SipParseError",
    "SipUsageError",
    "StreamFramer",
    "__version__",
    "canonical_name",
    "check_max_forwards",
    "check_request",
    "default_reason",
    "header_key",
    "make_request",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_message",
    "recover_fields",
    "validate",
]
__all__ += _uri.__all__
__all__ += _headers.__all__
__all__ += _sdp.__all__
__all__ += _digest.__all__
