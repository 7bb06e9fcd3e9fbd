"""sipchain: rebuild and prove the SIP signalling path of a call.

The public API is re-exported here and nowhere else; see ``docs/`` for the
contract. Everything not listed in ``__all__`` is private.
"""

from sipchain.errors import SipChainError, SipParseError
from sipchain.model import (
    CSeq,
    Defect,
    Endpoint,
    Headers,
    NameAddr,
    Provenance,
    SipMessage,
    Uri,
    Via,
)
from sipchain.wire import NEED_DATA, SipStreamParser, build_message, parse_message, serialize

__version__ = "0.1.0.dev0"

__all__ = [
    "NEED_DATA",
    "CSeq",
    "Defect",
    "Endpoint",
    "Headers",
    "NameAddr",
    "Provenance",
    "SipChainError",
    "SipMessage",
    "SipParseError",
    "SipStreamParser",
    "Uri",
    "Via",
    "__version__",
    "build_message",
    "parse_message",
    "serialize",
]
