"""Header names: compact forms, canonical spelling, and the lookup key.

Names compare case-insensitively and a compact form equals its long form
(RFC 3261 §7.3.3), so every lookup goes through :func:`header_key`, which maps
any spelling to one lower-case long name. Both functions memoise known names.
"""

from __future__ import annotations

from ._memo import remember_name

__all__ = ["COMPACT_FORMS", "canonical_name", "header_key"]

# RFC 3261 §7.3.3 and the IANA "Header Fields" registry: compact form -> long name.
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",  # RFC 3841
    "b": "Referred-By",  # RFC 3892
    "c": "Content-Type",
    "d": "Request-Disposition",  # RFC 3841
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",  # RFC 3841
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",  # RFC 4474
    "o": "Event",  # RFC 6665
    "r": "Refer-To",  # RFC 3515
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",  # RFC 6665
    "v": "Via",
    "x": "Session-Expires",  # RFC 4028
    "y": "Identity",  # RFC 8224
}

# Long names whose usual spelling is not plain Title-Case-Per-Dash.
_SPECIAL: tuple[str, ...] = (
    "Call-ID",
    "CSeq",
    "WWW-Authenticate",
    "RAck",
    "RSeq",
    "Min-SE",
    "MIME-Version",
    "SIP-ETag",
    "SIP-If-Match",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "P-Charging-Vector",
    "P-Access-Network-Info",
    "Identity-Info",
)

_CANONICAL: dict[str, str] = {name.lower(): name for name in _SPECIAL}
_CANONICAL.update({name.lower(): name for name in COMPACT_FORMS.values()})
_CANONICAL.update(COMPACT_FORMS)

_KEYS: dict[str, str] = {}
_CACHE_LIMIT = 4096  # names from the wire are unbounded: bounded memo (see _memo)


def header_key(name: str) -> str:
    """Return the lookup key of a header name: lower-case long form.

    Args:
        name: a header name in any case, long or compact ("i", "Call-Id", "CALL-ID").

    Returns:
        The lower-case long name ("call-id").
    """
    key = _KEYS.get(name)
    if key is None:
        lower = name.lower()
        long = COMPACT_FORMS.get(lower)
        key = long.lower() if long is not None else lower
        remember_name(_KEYS, name, key, _CACHE_LIMIT)
    return key


def canonical_name(name: str) -> str:
    """Return the usual spelling of a header name, expanding compact forms.

    Args:
        name: a header name in any case ("call-id", "i", "www-authenticate").

    Returns:
        The canonical long name ("Call-ID", "Call-ID", "WWW-Authenticate");
        unknown names are Title-Cased per dash-separated word ("x-foo" -> "X-Foo").
    """
    lower = name.strip().lower()
    known = _CANONICAL.get(lower)
    if known is not None:
        return known
    return "-".join(part[:1].upper() + part[1:] for part in lower.split("-"))
