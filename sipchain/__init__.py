"""sipchain: rebuild and prove the SIP signalling path of a call.

The public API is re-exported here and nowhere else; see ``docs/`` for the
contract. Everything not listed in ``__all__`` is private.
"""

from sipchain.api import MessageStream, iter_messages, load, reconstruct
from sipchain.errors import (
    CaptureError,
    IngestError,
    SipChainError,
    SipParseError,
    UnsupportedFormatError,
)
from sipchain.model import (
    Chain,
    CSeq,
    Defect,
    Endpoint,
    Evidence,
    Failover,
    Headers,
    IngestReport,
    Leg,
    Link,
    NameAddr,
    Problem,
    Provenance,
    SipMessage,
    SourceReport,
    Trace,
    Unlinked,
    Uri,
    Via,
)
from sipchain.result import Reconstruction
from sipchain.sources import Limits
from sipchain.wire import NEED_DATA, SipStreamParser, build_message, parse_message, serialize

__version__ = "0.1.0.dev0"

__all__ = [
    "NEED_DATA",
    "CSeq",
    "CaptureError",
    "Chain",
    "Defect",
    "Endpoint",
    "Evidence",
    "Failover",
    "Headers",
    "IngestError",
    "IngestReport",
    "Leg",
    "Limits",
    "Link",
    "MessageStream",
    "NameAddr",
    "Problem",
    "Provenance",
    "Reconstruction",
    "SipChainError",
    "SipMessage",
    "SipParseError",
    "SipStreamParser",
    "SourceReport",
    "Trace",
    "Unlinked",
    "UnsupportedFormatError",
    "Uri",
    "Via",
    "__version__",
    "build_message",
    "iter_messages",
    "load",
    "parse_message",
    "reconstruct",
    "serialize",
]
