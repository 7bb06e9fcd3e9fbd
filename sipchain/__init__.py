"""sipchain: rebuild and prove the SIP signalling path of a call.

The public API is re-exported here and nowhere else; see ``docs/`` for the
contract. Everything not listed in ``__all__`` is private.
"""

from sipchain.api import MessageStream, iter_messages, load
from sipchain.errors import CaptureError, IngestError, SipChainError, SipParseError
from sipchain.model import (
    CSeq,
    Defect,
    Endpoint,
    Headers,
    IngestReport,
    NameAddr,
    Problem,
    Provenance,
    SipMessage,
    SourceReport,
    Trace,
    Uri,
    Via,
)
from sipchain.sources import Limits
from sipchain.wire import NEED_DATA, SipStreamParser, build_message, parse_message, serialize

__version__ = "0.1.0.dev0"

__all__ = [
    "NEED_DATA",
    "CSeq",
    "CaptureError",
    "Defect",
    "Endpoint",
    "Headers",
    "IngestError",
    "IngestReport",
    "Limits",
    "MessageStream",
    "NameAddr",
    "Problem",
    "Provenance",
    "SipChainError",
    "SipMessage",
    "SipParseError",
    "SipStreamParser",
    "SourceReport",
    "Trace",
    "Uri",
    "Via",
    "__version__",
    "build_message",
    "iter_messages",
    "load",
    "parse_message",
    "serialize",
]
