"""The sans-IO SIP wire layer: bytes in, :class:`~sipchain.model.SipMessage` out.

Nothing here opens a file or a socket. ``parse_message`` reads one datagram or
record; ``SipStreamParser`` frames messages out of a byte stream. The typed
header grammar (URIs, name-addr, Via, …) is available as ``parse_uri``,
``parse_name_addr`` and ``parse_via`` for callers holding a bare header value.
"""

from sipchain.wire._headers import parse_name_addr, parse_uri, parse_via
from sipchain.wire._message import build_message, parse_message, serialize
from sipchain.wire._stream import (
    DEFAULT_MAX_BUFFER,
    NEED_DATA,
    Discarded,
    SipStreamParser,
    starts_like_sip,
)

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "NEED_DATA",
    "Discarded",
    "SipStreamParser",
    "build_message",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "serialize",
    "starts_like_sip",
]
