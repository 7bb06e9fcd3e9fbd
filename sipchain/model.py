"""sipchain's data model: frozen, slotted attrs classes.

Every value here is immutable and compares by value. Nothing here touches files,
sockets, dpkt or pyshark; objects are built by the wire layer
(:func:`sipchain.parse_message`) or by the named constructors below.

A :class:`SipMessage` keeps the exact bytes it was parsed from (``raw``) and a
header table that keeps the wire truth (raw name, canonical name, raw value in
wire order). Typed views of the headers (``via``, ``from_``, ``session_id``, …)
are parsed by the wire grammar on first access and cached, so the hot path of a
correlator (start line, Call-ID, CSeq, tags, top Via branch) stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs

__all__ = [
    "BodyPart",
    "CSeq",
    "Chain",
    "ChargingVector",
    "ClockOffset",
    "Defect",
    "Endpoint",
    "Evidence",
    "Failover",
    "Finding",
    "HeaderField",
    "Headers",
    "HistoryInfoEntry",
    "IngestReport",
    "Leg",
    "Link",
    "NameAddr",
    "Params",
    "Problem",
    "Provenance",
    "Reason",
    "SdpConnection",
    "SdpMedia",
    "SdpOrigin",
    "SdpRtpMap",
    "SessionDescription",
    "SessionId",
    "SipMessage",
    "SourceReport",
    "Trace",
    "Transaction",
    "Unlinked",
    "Uri",
    "Via",
    "canonical_header_name",
    "parse_instant",
]

_T = TypeVar("_T")

# --------------------------------------------------------------------------
# Header names
# --------------------------------------------------------------------------

#: RFC 3261 §7.3.3 and later RFCs: compact form -> full header name.
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

_KNOWN_NAMES = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Accept-Resource-Priority",
    "Alert-Info", "Allow", "Allow-Events", "Answer-Mode", "Authentication-Info", "Authorization",
    "Call-ID", "Call-Info", "Contact", "Content-Disposition", "Content-Encoding",
    "Content-ID", "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date",
    "Diversion", "Error-Info", "Event", "Expires", "Feature-Caps", "Flow-Timer", "From",
    "Geolocation", "History-Info", "Identity", "Identity-Info", "In-Reply-To", "Join",
    "Max-Breadth", "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE", "Organization",
    "P-Access-Network-Info", "P-Asserted-Identity", "P-Asserted-Service", "P-Called-Party-ID",
    "P-Charging-Function-Addresses", "P-Charging-Vector", "P-Early-Media", "P-Preferred-Identity",
    "P-Visited-Network-ID", "Path", "Priority", "Privacy", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-Sub",
    "Refer-To", "Referred-By", "Reject-Contact", "Remote-Party-ID", "Replaces", "Reply-To",
    "Request-Disposition", "Require", "Resource-Priority", "Retry-After", "Route", "RSeq",
    "Security-Client", "Security-Server", "Security-Verify", "Server", "Service-Route",
    "Session-Expires", "Session-ID", "SIP-ETag", "SIP-If-Match", "Subject",
    "Subscription-State", "Supported", "Target-Dialog", "Timestamp", "To", "Unsupported",
    "User-Agent", "User-to-User", "Via", "Warning", "WWW-Authenticate",
]
_CANONICAL: dict[str, str] = {n.lower(): n for n in _KNOWN_NAMES}
#: lower-cased names that have a compact form, and the compact letters
_COMPACT_OF = {v.lower() for v in COMPACT_FORMS.values()} | set(COMPACT_FORMS)
for _short, _long in COMPACT_FORMS.items():
    _CANONICAL[_short] = _long
del _short, _long


def canonical_header_name(name: str) -> str:
    """Return the canonical spelling of a header name.

    Compact forms are expanded (``i`` -> ``Call-ID``) and known headers get their
    RFC capitalisation (``cseq`` -> ``CSeq``); unknown headers keep their spelling.
    Lookups compare names case-insensitively anyway.
    """
    return _CANONICAL.get(name.lower(), name)


# a set of lower-cased header names -> the pattern that finds them at line starts
_PRESENT: dict[frozenset[str], re.Pattern[str]] = {}

# raw name as written (before the colon) -> (name, canonical name, lookup key, is a token)
_NAMES: dict[str, tuple[str, str, str, bool]] = {}


def _name_info(written: str) -> tuple[str, str, str, bool]:
    name = written.rstrip(" \t")
    canonical = canonical_header_name(name)
    info = (name, canonical, canonical.lower(), _TOKEN.fullmatch(name) is not None)
    if len(_NAMES) < 4096:  # bounded: hostile input cannot grow it
        _NAMES[written] = info
    return info


def _lookup_key(name: str) -> str:
    return _CANONICAL.get(name.lower(), name).lower()


# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")

_FOLD = re.compile(r"\r?\n[ \t]+|\r(?=[ \t])")


def unfold(raw_value: str) -> str:
    """Replace line folding (CRLF + whitespace) by one space and strip the ends."""
    if "\n" in raw_value or "\r" in raw_value:
        raw_value = _FOLD.sub(" ", raw_value)
    return raw_value.strip(" \t\r\n")


def parse_instant(value: object) -> int:
    """An export's timestamp as integer nanoseconds since the epoch, UTC.

    Accepts an integer or decimal epoch in seconds, milliseconds, microseconds
    or nanoseconds (told apart by magnitude) and ISO 8601 with a zone. Raises
    ``ValueError`` for anything else, including a local time without a zone,
    which is never guessed.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"no time in {value!r}")
    text = str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{text!r} is not an epoch number or an ISO 8601 time") from None
        if when.tzinfo is None:
            raise ValueError(f"local time {text!r} without a zone") from None
        return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
    if not number.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    for limit, scale in ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3)):
        if abs(number) < limit:
            return int(number * scale)
    return int(number)


# --------------------------------------------------------------------------
# Small value types
# --------------------------------------------------------------------------


@attrs.frozen
class Defect:
    """A deviation from the grammar or rules found while parsing.

    Attributes:
        code: machine-readable identifier (``"trailing-data"``, ``"bad-via"``, …).
        detail: a readable description naming the offending text.
        offset: byte offset in ``SipMessage.raw`` where it was found, when known.
        violation: ``True`` when the message breaks RFC 3261 (strict parsing
            rejects it); ``False`` for a deviation the RFCs tell a receiver to
            tolerate (trailing octets after a datagram, RFC 2543 syntax), which is
            recorded as evidence but accepted even in strict mode.
    """

    code: str
    detail: str
    offset: int | None = None
    violation: bool = True


@attrs.frozen
class Params:
    """Ordered ``;name=value`` parameters; names compare case-insensitively.

    A parameter without ``=`` has value ``None``. Values are kept as written
    (quoted strings keep their quotes; URI parameters are %-unescaped).
    """

    items: tuple[tuple[str, str | None], ...] = ()

    def get(self, name: str, default: str | None = None) -> str | None:
        """Value of the first parameter called ``name`` (``None`` for a flag)."""
        key = name.lower()
        for k, v in self.items:
            if k.lower() == key:
                return v
        return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return any(k.lower() == key for k, _ in self.items)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def as_dict(self) -> dict[str, str | None]:
        """Lower-cased names to values; the first occurrence wins."""
        out: dict[str, str | None] = {}
        for k, v in self.items:
            out.setdefault(k.lower(), v)
        return out


@attrs.frozen
class Uri:
    """An absolute URI: ``sip``/``sips``/``tel`` parsed into parts, others kept opaque.

    ``user`` and ``password`` are %-unescaped; ``host`` is the bare host (an
    IPv6 reference without brackets) and ``host_type`` says which kind it is:
    ``"ipv4"``, ``"ipv6"`` or ``"hostname"``. For ``tel`` the number is in
    ``user``. For any other scheme only ``scheme`` and ``opaque`` are set.
    """

    scheme: str
    raw: str
    user: str | None = None
    password: str | None = None
    host: str | None = None
    host_type: str | None = None
    port: int | None = None
    params: Params = Params()
    headers: tuple[tuple[str, str], ...] = ()
    opaque: str | None = None

    @property
    def hostport(self) -> str | None:
        """``host[:port]`` with IPv6 brackets restored, or ``None``."""
        if self.host is None:
            return None
        host = f"[{self.host}]" if self.host_type == "ipv6" else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.raw


@attrs.frozen
class NameAddr:
    """``name-addr`` or ``addr-spec`` with header parameters (From, To, Contact, …).

    ``display_name`` is unquoted and unescaped (``None`` when absent). ``params``
    are the header parameters after the URI (``tag``, ``expires``, ``q``, …),
    never the URI's own parameters.
    """

    uri: Uri
    raw: str
    display_name: str | None = None
    params: Params = Params()
    bracketed: bool = True

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3), or ``None``."""
        return self.params.get("tag")


@attrs.frozen
class Via:
    """One Via header value (RFC 3261 §20.42)."""

    protocol: str
    version: str
    transport: str
    host: str
    raw: str
    port: int | None = None
    params: Params = Params()

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter, or ``None``."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter, or ``None``."""
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The ``rport`` value (RFC 3581), ``None`` when absent or without value."""
        value = self.params.get("rport")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter, or ``None``."""
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        """The ``ttl`` parameter as a number, or ``None``."""
        value = self.params.get("ttl")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as the transaction key uses it (RFC 3261 §17.2.3)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


@attrs.frozen
class CSeq:
    """CSeq header (RFC 3261 §20.16): sequence number and method."""

    number: int
    method: str


@attrs.frozen
class SessionId:
    """RFC 7989 Session-ID: local and remote UUIDs (lower-case hex), parameters.

    ``remote`` is ``None`` when the ``remote`` parameter is absent; the null UUID
    (32 zeros) is kept as written — it means "not yet known".
    """

    local: str
    remote: str | None = None
    params: Params = Params()

    NULL = "0" * 32

    def uuids(self) -> frozenset[str]:
        """The non-null UUIDs this value names (for set intersection)."""
        return frozenset(u for u in (self.local, self.remote) if u and u != self.NULL)


@attrs.frozen
class Reason:
    """RFC 3326 Reason value: protocol (``SIP``, ``Q.850``, …), cause and text."""

    protocol: str
    cause: int | None = None
    text: str | None = None
    params: Params = Params()


@attrs.frozen
class HistoryInfoEntry:
    """RFC 7044 History-Info entry: the hi-targeted-to-uri, its index and Reason."""

    target: NameAddr
    index: str | None = None
    reasons: tuple[Reason, ...] = ()

    @property
    def params(self) -> Params:
        """The entry's header parameters (``index``, ``rc``, ``mp``, …)."""
        return self.target.params


@attrs.frozen
class ChargingVector:
    """RFC 7315 P-Charging-Vector."""

    icid_value: str | None = None
    related_icid: str | None = None
    icid_generated_at: str | None = None
    orig_ioi: str | None = None
    term_ioi: str | None = None
    params: Params = Params()


@attrs.frozen
class Endpoint:
    """One end of a hop: IP address, port and transport (``udp``, ``tcp``, …)."""

    ip: str
    port: int
    transport: str

    def __str__(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}/{self.transport}"


@attrs.frozen
class Provenance:
    """Where a message came from, for the chain of custody.

    Attributes:
        source: the source file's path or name.
        source_sha256: SHA-256 (hex) of the whole source file.
        frame: 1-based frame number (captures) or record index (exports); for a
            reassembled message the last contributing frame, as Wireshark counts.
        frames: every frame that contributed, in order.
        offset: byte offset of the record in the source file.
        time_meaning: what ``SipMessage.timestamp_ns`` means (e.g. "capture time,
            UTC, from the pcap record header").
        parser_chain: the layers walked, e.g. ``"pcapng/ethernet/ipv4/udp/sip"``.
    """

    source: str
    source_sha256: str
    frame: int
    frames: tuple[int, ...] = ()
    offset: int | None = None
    time_meaning: str = ""
    parser_chain: str = ""


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------


@attrs.frozen
class HeaderField:
    """One header line as on the wire.

    ``raw_value`` is everything after the colon up to the line end, folding
    included; ``value`` is its unfolded, stripped form.
    """

    raw_name: str
    name: str
    raw_value: str
    offset: int | None = None

    @property
    def value(self) -> str:
        """The value with line folding replaced by one space, ends stripped."""
        return unfold(self.raw_value)


_Table = tuple[
    tuple[tuple[str, str, str], ...],  # entries
    tuple[int, ...],  # offsets
    dict[str, list[int]],  # lower-cased canonical name -> positions
    tuple[Defect, ...],  # line-level defects
]


@attrs.frozen
class Headers:
    """Header fields in wire order, with case-insensitive lookup.

    Holds the header block as decoded text (``text``: the lines between the
    start line and the empty line, separated by ``newline``) and derives the
    table on first use, so a parser that only needs a few fields never pays
    for the rest.

    Each entry is ``(raw_name, canonical_name, raw_value)``; ``raw_value`` is
    everything after the colon, folding included. Compact forms are expanded
    for lookup, so ``get("Call-ID")`` finds an ``i:`` line. ``get`` always
    returns ``str | None`` and ``get_all`` always a tuple of ``str`` (one per
    header line, unfolded and stripped; comma-separated lists are split by the
    typed accessors of :class:`SipMessage`, not here).
    """

    text: str = ""
    base_offset: int = attrs.field(default=0, eq=False, repr=False)
    newline: str = attrs.field(default="\r\n", eq=False, repr=False)
    _table: _Table | None = attrs.field(default=None, init=False, eq=False, repr=False, hash=False)
    _low: str | None = attrs.field(default=None, init=False, eq=False, repr=False, hash=False)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        """Build from ``(name, value)`` pairs, as a builder would write them."""
        return cls("\r\n".join(f"{n}: {v}" for n, v in pairs))

    # ------------------------------------------------------------ the table
    def _build(self) -> _Table:
        table = self._table
        if table is not None:
            return table
        entries: list[tuple[str, str, str]] = []
        offsets: list[int] = []
        index: dict[str, list[int]] = {}
        defects: list[Defect] = []
        text = self.text
        newline = self.newline
        offset = self.base_offset
        # (line, offset of the line, length of the line end after it)
        if text and newline == "\r\n" and "\n" in text.replace("\r\n", ""):
            pieces: list[tuple[str, int]] = []
            for piece in text.split("\n"):
                if piece.endswith("\r"):
                    pieces.append((piece[:-1], 2))
                else:
                    pieces.append((piece, 1))
        else:
            step = len(newline)
            pieces = [(line, step) for line in text.split(newline)] if text else []
        ascii_text = text.isascii()
        lines: list[tuple[str, int, int]] = []
        for line, step in pieces:
            lines.append((line, offset, step))
            length = len(line) if ascii_text else len(line.encode("utf-8", "surrogateescape"))
            offset += length + step
        for index_, (line, offset, step) in enumerate(lines):
            if step == 1 and newline == "\r\n" and index_ < len(lines) - 1:
                defects.append(Defect("bare-lf", "header line ends with LF instead of CRLF", offset))
            first = line[:1]
            if first == " " or first == "\t":
                if entries:
                    raw_name, name, raw_value = entries[-1]
                    entries[-1] = (raw_name, name, raw_value + newline + line)
                else:
                    defects.append(Defect("bad-folding", "continuation line before any header", offset))
            else:
                raw_name, colon, raw_value = line.partition(":")
                if not colon:
                    defects.append(Defect("header-without-colon", f"header line without ':' ({line!r})", offset))
                else:
                    known = _NAMES.get(raw_name)
                    if known is None:
                        known = _name_info(raw_name)
                    raw_name, canonical, key, is_token = known
                    if not is_token:
                        defects.append(
                            Defect("bad-header-name", f"header name {raw_name!r} is not a token", offset)
                        )
                    index.setdefault(key, []).append(len(entries))
                    entries.append((raw_name, canonical, raw_value))
                    offsets.append(offset)
        table = (tuple(entries), tuple(offsets), index, tuple(defects))
        object.__setattr__(self, "_table", table)
        return table

    @property
    def entries(self) -> tuple[tuple[str, str, str], ...]:
        """``(raw_name, canonical_name, raw_value)`` for every header line, in order."""
        return self._build()[0]

    @property
    def offsets(self) -> tuple[int, ...]:
        """Byte offset of each entry's line in the message."""
        return self._build()[1]

    @property
    def line_defects(self) -> tuple[Defect, ...]:
        """Lines that are not ``name: value`` (no colon, bad name, stray folding)."""
        return self._build()[3]

    def _positions(self, name: str) -> list[int]:
        return self._build()[2].get(_lookup_key(name), [])

    def _lower(self) -> str:
        low = self._low
        if low is None:
            low = self.text.lower()
            object.__setattr__(self, "_low", low)
        return low

    def present(self, names: frozenset[str]) -> frozenset[str]:
        """Which of ``names`` (lower case, names without a compact form) start
        a line of this block: one pass over the text, no table built."""
        pattern = _PRESENT.get(names)
        if pattern is None:
            alternatives = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
            pattern = re.compile(rf"(?:^|\n)({alternatives})[ \t]*:")
            if len(_PRESENT) < 64:
                _PRESENT[names] = pattern
        return frozenset(pattern.findall(self._lower()))

    def _scan_first(self, name: str) -> tuple[bool, str | None]:
        """``(True, first value of name)`` by scanning the text (``None`` when
        absent); ``(False, None)`` when only the table can say (compact forms,
        folding, odd line ends). Same answer as the table, without building it."""
        text = self.text
        if self._table is not None or self.newline != "\r\n" or "\n " in text or "\n\t" in text:
            return False, None  # folded lines: only the table joins them right
        key = name.lower()
        if key in _COMPACT_OF:  # several spellings: the table knows them
            return False, None
        low = self._lower()
        start = 0 if low.startswith(key) else low.find("\n" + key) + 1
        if start == 0 and not low.startswith(key):
            return True, None
        while True:
            i = start + len(key)
            while i < len(low) and low[i] in " \t":
                i += 1
            if i < len(low) and low[i] == ":":
                end = text.find("\r\n", i)
                end = len(text) if end < 0 else end
                value = text[i + 1 : end]
                if "\n" in value or "\r" in value:
                    return False, None  # a stray line end: let the table split it
                return True, value.strip(" \t")
            start = low.find("\n" + key, i) + 1
            if start == 0:
                return True, None

    # ------------------------------------------------------------ lookups
    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (unfolded, stripped), or ``default``."""
        if self._table is None:
            known, quick = self._scan_first(name)
            if known:
                return default if quick is None else quick
        pos = self._positions(name)
        return unfold(self.entries[pos[0]][2]) if pos else default

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of ``name`` in wire order, one per header line."""
        entries = self.entries
        return tuple(unfold(entries[i][2]) for i in self._positions(name))

    def fields(self, name: str | None = None) -> tuple[HeaderField, ...]:
        """The header lines (all, or those called ``name``) as :class:`HeaderField`."""
        entries, offsets, _, _ = self._build()
        positions = range(len(entries)) if name is None else self._positions(name)
        return tuple(HeaderField(*entries[i], offsets[i]) for i in positions)

    def names(self) -> tuple[str, ...]:
        """Canonical names in wire order (with repeats)."""
        return tuple(canonical for _, canonical, _ in self.entries)

    def items(self) -> tuple[tuple[str, str], ...]:
        """``(canonical_name, value)`` pairs in wire order."""
        return tuple((canonical, unfold(raw)) for _, canonical, raw in self.entries)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if self._table is None:
            known, quick = self._scan_first(name)
            if known:
                return quick is not None
        return bool(self._positions(name))

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        return iter(self.entries)


# --------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------


@attrs.frozen
class SdpOrigin:
    """SDP ``o=`` line (RFC 8866 §5.2)."""

    username: str
    session_id: str
    session_version: str
    nettype: str
    addrtype: str
    address: str


@attrs.frozen
class SdpConnection:
    """SDP ``c=`` line (RFC 8866 §5.7); multicast ``/ttl/count`` split off."""

    nettype: str
    addrtype: str
    address: str
    ttl: int | None = None
    count: int | None = None


@attrs.frozen
class SdpRtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock>[/<params>]``."""

    payload_type: int
    encoding: str
    clock_rate: int | None
    encoding_params: str | None = None


@attrs.frozen
class SdpMedia:
    """One ``m=`` section with its own lines."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connections: tuple[SdpConnection, ...] = ()
    attributes: tuple[tuple[str, str | None], ...] = ()
    rtpmaps: tuple[SdpRtpMap, ...] = ()
    direction: str | None = None

    @property
    def connection(self) -> SdpConnection | None:
        """The first media-level ``c=`` line, or ``None``."""
        return self.connections[0] if self.connections else None


@attrs.frozen
class SessionDescription:
    """An SDP body (RFC 8866), read leniently.

    Every ``a=`` line is kept in ``attributes`` (session level) or in its media
    section, known or not; a line of an unknown type or that breaks the grammar
    becomes a defect and the rest is still read.

    ``direction`` is the session-level direction attribute when present.
    ``defects`` lists lines that do not follow the grammar.
    """

    raw: bytes
    version: int | None = None
    origin: SdpOrigin | None = None
    session_name: str | None = None
    connection: SdpConnection | None = None
    attributes: tuple[tuple[str, str | None], ...] = ()
    media: tuple[SdpMedia, ...] = ()
    direction: str | None = None
    defects: tuple[Defect, ...] = ()

    def media_direction(self, media: SdpMedia) -> str:
        """Effective direction of ``media`` (media level, else session, else sendrecv)."""
        return media.direction or self.direction or "sendrecv"


@attrs.frozen
class BodyPart:
    """One part of a multipart body (RFC 2046), with its own headers."""

    headers: Headers
    body: bytes
    offset: int | None = None

    @property
    def content_type(self) -> str | None:
        """The part's media type, lower-cased, without parameters."""
        value = self.headers.get("Content-Type")
        return value.split(";", 1)[0].strip().lower() if value else None


# --------------------------------------------------------------------------
# The message
# --------------------------------------------------------------------------


@attrs.frozen
class SipMessage:
    """One SIP request or response, with its exact bytes.

    Build one with :func:`sipchain.parse_message` (or ``SipStreamParser``, or a
    source reader, which also fills ``provenance``, ``timestamp_ns``, ``src`` and
    ``dst``). ``raw`` is the exact input; ``raw[:length]`` is the message proper
    and anything after it (trailing octets in a datagram) is recorded as a
    defect, never taken as a second message.

    ``metadata`` holds ``(name, value)`` pairs an export carried beside the
    message (``trunk_id``, ``original_trunk_id``, ``failover_timestamp``,
    ``sip_sequence``, ``conversationId``, ``callidAleg`` …), as strings.

    Typed header accessors are parsed on first access and cached. ``defects``
    lists framing problems found while parsing plus, computed on first access,
    every grammar or rule problem of the typed headers.
    """

    raw: bytes
    start_line: str
    headers: Headers
    body: bytes
    method: str | None = None
    target: str | None = None
    status: int | None = None
    reason: str | None = None
    version: str = "SIP/2.0"
    length: int | None = None
    framing_defects: tuple[Defect, ...] = ()
    provenance: Provenance | None = None
    timestamp_ns: int | None = None
    src: Endpoint | None = None
    dst: Endpoint | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    also: tuple[Provenance, ...] = ()
    _cache: dict[str, Any] = attrs.field(
        factory=dict, init=False, eq=False, repr=False, hash=False
    )

    @property
    def provenances(self) -> tuple[Provenance, ...]:
        """Every place this message was seen: its own provenance first, then
        the other sources that carried the same message (``load`` of several
        sources merges them: "proved by a.pcap frame 12 and genesys.json
        record 4")."""
        return ((self.provenance,) if self.provenance is not None else ()) + self.also

    def meta(self, *names: str) -> str | None:
        """The first export metadata value under any of ``names`` (e.g.
        ``"trunk_id", "trunkId"``), or ``None``. Sources that carry metadata
        beside the SIP text (platform exports) fill ``metadata``."""
        for name in names:
            for key, value in self.metadata:
                if key == name:
                    return value
        return None

    def _memo(self, key: str, compute: Callable[[], _T]) -> _T:
        cache = self._cache
        try:
            value: _T = cache[key]
        except KeyError:
            value = cache[key] = compute()
        return value

    # ------------------------------------------------------------ kind
    @property
    def is_request(self) -> bool:
        """True for a request."""
        return self.method is not None

    @property
    def is_response(self) -> bool:
        """True for a response."""
        return self.status is not None

    # ------------------------------------------------------------ defects
    @property
    def defects(self) -> tuple[Defect, ...]:
        """Every defect: framing ones and those of the typed headers and body."""
        from sipchain.wire import _validate

        def compute() -> tuple[Defect, ...]:
            try:
                return self.framing_defects + _validate.check(self)
            except Exception as exc:  # a checker bug must not hide the message
                return (*self.framing_defects, Defect("internal", f"rule check failed: {exc!r}"))

        return self._memo("defects", compute)

    # ------------------------------------------------------------ hot path
    @property
    def request_uri(self) -> Uri | None:
        """The Request-URI, parsed (``None`` for a response)."""
        from sipchain.wire import _headers

        return self._memo(
            "request_uri", lambda: _headers.parse_uri(self.target) if self.target else None
        )

    # The parser primes these five in ``_cache``; a message built another way
    # (``attrs.evolve``) computes them from the header table on first read.
    def _hot(self, key: str) -> Any:
        from sipchain.wire import _headers

        get = self.headers.get
        if key == "call_id":
            value: Any = get("Call-ID")
        elif key == "cseq":
            value = _headers.cseq_of(get("CSeq"))
        elif key == "from_tag":
            value = _headers.tag_of(get("From"))
        elif key == "to_tag":
            value = _headers.tag_of(get("To"))
        else:
            vias = self.headers.get_all("Via")
            value = _headers.top_branch_of(vias[0]) if vias else None
        self._cache[key] = value
        return value

    @property
    def call_id(self) -> str | None:
        """The Call-ID value, or ``None``."""
        try:
            return self._cache["call_id"]  # type: ignore[no-any-return]
        except KeyError:
            return self._hot("call_id")  # type: ignore[no-any-return]

    @property
    def cseq(self) -> CSeq | None:
        """The CSeq header, or ``None`` when absent or unreadable."""
        try:
            return self._cache["cseq"]  # type: ignore[no-any-return]
        except KeyError:
            return self._hot("cseq")  # type: ignore[no-any-return]

    @property
    def from_tag(self) -> str | None:
        """The From header's tag, or ``None``."""
        try:
            return self._cache["from_tag"]  # type: ignore[no-any-return]
        except KeyError:
            return self._hot("from_tag")  # type: ignore[no-any-return]

    @property
    def to_tag(self) -> str | None:
        """The To header's tag, or ``None``."""
        try:
            return self._cache["to_tag"]  # type: ignore[no-any-return]
        except KeyError:
            return self._hot("to_tag")  # type: ignore[no-any-return]

    @property
    def branch(self) -> str | None:
        """The top Via's branch parameter, or ``None``."""
        try:
            return self._cache["branch"]  # type: ignore[no-any-return]
        except KeyError:
            return self._hot("branch")  # type: ignore[no-any-return]

    # ------------------------------------------------------------ typed views
    def _name_addr(self, name: str) -> NameAddr | None:
        from sipchain.wire import _headers

        return self._memo(name, lambda: _headers.name_addr_of(self.headers.get(name)))

    def _name_addrs(self, name: str) -> tuple[NameAddr, ...]:
        from sipchain.wire import _headers

        return self._memo(name, lambda: _headers.name_addr_list(self.headers.get_all(name)))

    @property
    def from_(self) -> NameAddr | None:
        """The From header, parsed."""
        return self._name_addr("From")

    @property
    def to(self) -> NameAddr | None:
        """The To header, parsed."""
        return self._name_addr("To")

    @property
    def via(self) -> tuple[Via, ...]:
        """Every Via value in order (top first), comma lists split."""
        from sipchain.wire import _headers

        return self._memo("via", lambda: _headers.via_list(self.headers.get_all("Via")))

    @property
    def contact(self) -> tuple[NameAddr, ...]:
        """Contact values (empty for ``Contact: *``, see ``contact_is_wildcard``)."""
        return self._name_addrs("Contact")

    @property
    def contact_is_wildcard(self) -> bool:
        """True for ``Contact: *`` (RFC 3261 §10.2.2)."""
        return any(v.strip() == "*" for v in self.headers.get_all("Contact"))

    @property
    def route(self) -> tuple[NameAddr, ...]:
        """Route values in order."""
        return self._name_addrs("Route")

    @property
    def record_route(self) -> tuple[NameAddr, ...]:
        """Record-Route values in order."""
        return self._name_addrs("Record-Route")

    @property
    def diversion(self) -> tuple[NameAddr, ...]:
        """Diversion values (RFC 5806), with their ``reason``/``counter`` params."""
        return self._name_addrs("Diversion")

    @property
    def asserted_identity(self) -> tuple[NameAddr, ...]:
        """P-Asserted-Identity values (RFC 3325)."""
        return self._name_addrs("P-Asserted-Identity")

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards as a number, or ``None``."""
        from sipchain.wire import _headers

        return self._memo("max_forwards", lambda: _headers.int_of(self.headers.get("Max-Forwards")))

    @property
    def content_length(self) -> int | None:
        """Content-Length as a number, or ``None`` when absent or unreadable."""
        from sipchain.wire import _headers

        return self._memo(
            "content_length", lambda: _headers.int_of(self.headers.get("Content-Length"))
        )

    @property
    def content_type(self) -> str | None:
        """The body's media type, lower-cased, without parameters, or ``None``."""
        value = self.headers.get("Content-Type")
        return value.split(";", 1)[0].strip().lower() if value else None

    @property
    def session_id(self) -> SessionId | None:
        """RFC 7989 Session-ID, or ``None``."""
        from sipchain.wire import _headers

        return self._memo(
            "session_id", lambda: _headers.session_id_of(self.headers.get("Session-ID"))
        )

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """Every RFC 3326 Reason value, in order."""
        from sipchain.wire import _headers

        return self._memo("reasons", lambda: _headers.reason_list(self.headers.get_all("Reason")))

    @property
    def history_info(self) -> tuple[HistoryInfoEntry, ...]:
        """RFC 7044 History-Info entries, in order."""
        from sipchain.wire import _headers

        return self._memo(
            "history_info", lambda: _headers.history_info_list(self.headers.get_all("History-Info"))
        )

    @property
    def charging_vector(self) -> ChargingVector | None:
        """RFC 7315 P-Charging-Vector, or ``None``."""
        from sipchain.wire import _headers

        return self._memo(
            "charging_vector",
            lambda: _headers.charging_vector_of(self.headers.get("P-Charging-Vector")),
        )

    # ------------------------------------------------------------ bodies
    @property
    def parts(self) -> tuple[BodyPart, ...]:
        """Parts of a multipart body (empty for any other body)."""
        from sipchain.wire import _multipart

        return self._memo(
            "parts", lambda: _multipart.parts_of(self.headers.get("Content-Type"), self.body)
        )

    @property
    def sdp(self) -> SessionDescription | None:
        """The SDP body (directly, or the first ``application/sdp`` part), or ``None``."""
        from sipchain.wire import _sdp

        def compute() -> SessionDescription | None:
            if self.content_type == "application/sdp":
                return _sdp.parse_sdp(self.body)
            for part in self.parts:
                if part.content_type == "application/sdp":
                    return _sdp.parse_sdp(part.body)
            return None

        return self._memo("sdp", compute)

    def __str__(self) -> str:
        return self.start_line


# --------------------------------------------------------------------------
# Ingestion: what was read, and what was not used
# --------------------------------------------------------------------------


@attrs.frozen
class Problem:
    """Something in a source that could not be used, with where it is.

    Attributes:
        source: the source file's path.
        frame: 1-based frame (or record) number, ``None`` for a problem of the
            file as a whole (bad header, trailing garbage).
        offset: byte offset in the file (of the record, or where the problem is).
        kind: a stable category: ``"truncated"``, ``"malformed-capture"``,
            ``"unknown-link-type"``, ``"malformed-packet"``, ``"malformed-sip"``,
            ``"reassembly"``.
        reason: what is wrong, in words.
    """

    source: str
    frame: int | None
    offset: int | None
    kind: str
    reason: str

    def __str__(self) -> str:
        where = self.source if self.frame is None else f"{self.source} frame {self.frame}"
        return f"{where}: {self.reason}"


@attrs.frozen
class SourceReport:
    """What one source gave: every frame in exactly one of three buckets.

    ``frames == sip_frames + non_sip_frames + problem_frames``: a SIP frame
    supplied bytes of at least one SIP message, a non-SIP frame is ordinary
    other traffic (counted by reason), and a problem frame could not be used.
    ``problems`` lists every problem with its frame (several may name one
    frame; a problem of the file as a whole has no frame).
    """

    source: str
    sha256: str
    format: str
    frames: int
    sip_frames: int
    sip_messages: int
    non_sip: tuple[tuple[str, int], ...] = ()
    problem_frames: int = 0
    problems: tuple[Problem, ...] = ()
    time_meaning: str = ""

    @property
    def non_sip_frames(self) -> int:
        """Frames of ordinary non-SIP traffic."""
        return sum(n for _, n in self.non_sip)

    def is_balanced(self) -> bool:
        """True when every frame is in exactly one bucket."""
        return self.frames == self.sip_frames + self.non_sip_frames + self.problem_frames


@attrs.frozen
class ClockOffset:
    """How far one source's clock is from the reference source's.

    Estimated from the messages both sources carried (the median of their time
    differences): ``offset_ns`` is ``source time - reference time``.
    """

    source: str
    reference: str
    offset_ns: int
    pairs: int


@attrs.frozen
class IngestReport:
    """What ``load()`` read from every source, and what it did not use.

    ``clock_offsets`` and ``merged`` describe how several sources were put
    together: the estimated clock offset of each source, and how many messages
    were the same message seen in more than one source.
    """

    sources: tuple[SourceReport, ...] = ()
    clock_offsets: tuple[ClockOffset, ...] = ()
    merged: int = 0

    @property
    def frames(self) -> int:
        """Frames (or records) read, over all sources."""
        return sum(s.frames for s in self.sources)

    @property
    def sip_frames(self) -> int:
        """Frames that supplied SIP messages."""
        return sum(s.sip_frames for s in self.sources)

    @property
    def sip_messages(self) -> int:
        """SIP messages read."""
        return sum(s.sip_messages for s in self.sources)

    @property
    def non_sip(self) -> dict[str, int]:
        """Non-SIP frames by reason, over all sources (sorted by reason)."""
        out: dict[str, int] = {}
        for s in self.sources:
            for reason, n in s.non_sip:
                out[reason] = out.get(reason, 0) + n
        return dict(sorted(out.items()))

    @property
    def problem_frames(self) -> int:
        """Frames that could not be used."""
        return sum(s.problem_frames for s in self.sources)

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every problem, source by source, in file order."""
        return tuple(p for s in self.sources for p in s.problems)

    def is_balanced(self) -> bool:
        """True when, in every source, each frame is in exactly one bucket."""
        return all(s.is_balanced() for s in self.sources)

    def __str__(self) -> str:
        lines = [
            f"{self.frames} frames: {self.sip_frames} SIP ({self.sip_messages} messages), "
            f"{sum(self.non_sip.values())} non-SIP, {self.problem_frames} problem frames"
        ]
        lines += [f"  non-SIP {reason}: {n}" for reason, n in self.non_sip.items()]
        lines += [f"  problem {p}" for p in self.problems]
        return "\n".join(lines)


@attrs.frozen
class Trace:
    """Messages read from one or more sources, time-ordered, and the report.

    ``messages`` is sorted by ``timestamp_ns``; ties keep capture order.
    """

    messages: tuple[SipMessage, ...]
    report: IngestReport

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[SipMessage]:
        return iter(self.messages)


# --------------------------------------------------------------------------
# Correlation: transactions, legs, links, failovers, chains
# --------------------------------------------------------------------------


@attrs.frozen
class Transaction:
    """One SIP transaction (RFC 3261 §17) as seen on one hop.

    Attributes:
        key: the matching key: ``(branch, sent-by, method)`` for RFC 3261
            branches, or the RFC 2543 fallback fields.
        method: the request method (``ACK`` to a non-2xx belongs to the INVITE
            transaction and is in ``ack``; a CANCEL is its own transaction).
        request: the first copy of the request, ``None`` when only responses
            were captured.
        retransmissions: later copies of the request, kept as evidence.
        responses: every response in capture order (retransmissions included).
        ack: the ACK to a non-2xx final response, when seen.
        state: the state the transaction reached (``_fsm`` table), e.g.
            ``"completed"`` or ``"terminated"``.
    """

    key: tuple[str, ...]
    method: str
    request: SipMessage | None
    retransmissions: tuple[SipMessage, ...] = ()
    responses: tuple[SipMessage, ...] = ()
    ack: SipMessage | None = None
    state: str = ""

    @property
    def final(self) -> SipMessage | None:
        """The first final (>= 200) response, or ``None``."""
        for r in self.responses:
            if r.status is not None and r.status >= 200:
                return r
        return None

    @property
    def messages(self) -> tuple[SipMessage, ...]:
        """Every message of the transaction, in capture time order."""
        items = [m for m in (self.request, *self.retransmissions, *self.responses, self.ack) if m is not None]
        return tuple(sorted(items, key=_time_of))


def _time_of(message: SipMessage) -> int:
    return message.timestamp_ns if message.timestamp_ns is not None else 0


@attrs.frozen
class Leg:
    """One call attempt between two adjacent hops (see ``docs/correlate.md``).

    The initial INVITE transaction on that hop and everything in the dialog it
    creates. Keyed on Call-ID + From-tag + hop + INVITE branch + time, never on
    Call-ID alone.

    Attributes:
        leg_id: stable identifier, unique in a reconstruction.
        call_id, from_tag: the dialog identifiers of the caller side.
        to_tags: the callee tags seen (several when the INVITE forked).
        branch: the INVITE's top Via branch (``None`` when the INVITE is absent).
        uac, uas: the endpoints that sent and received the INVITE.
        role: ``"inbound"`` (no upstream leg in its chain) or ``"outbound"``.
        trunk: the trunk name of the remote end, or its address when unmapped.
        attempt: 1-based order among the outbound attempts of the same
            upstream leg (``None`` for inbound legs).
        final_status: the final response to the INVITE (``None`` if none seen).
        end: how the attempt ended: ``"answered"``, ``"failed"``,
            ``"cancelled"``, ``"timeout"`` (INVITE retransmitted, no final
            response, the call moved on), or ``"open"``.
        invite: the first INVITE of the leg, ``None`` when not captured.
        messages: every message of the leg, in time order.
        transactions: the leg's transactions, in time order.
        dialogs: ``(To-tag, state)`` of each dialog the INVITE created (early
            dialogs from forking included), the state from the dialog table.
    """

    leg_id: str
    call_id: str
    from_tag: str | None
    to_tags: tuple[str, ...]
    branch: str | None
    uac: Endpoint | None
    uas: Endpoint | None
    started_ns: int
    ended_ns: int
    invite: SipMessage | None
    final_status: int | None
    end: str
    messages: tuple[SipMessage, ...]
    transactions: tuple[Transaction, ...] = ()
    role: str = "inbound"
    trunk: str | None = None
    attempt: int | None = None
    dialogs: tuple[tuple[str, str], ...] = ()

    @property
    def answered(self) -> bool:
        """True when the INVITE got a 2xx."""
        return self.final_status is not None and 200 <= self.final_status < 300


@attrs.frozen
class Evidence:
    """One fact a link rests on: a header (or field) value and where it was seen."""

    field: str
    value: str
    frames: tuple[tuple[str, int], ...] = ()  # (source, frame) of the messages that carried it


@attrs.frozen
class Link:
    """An edge between two legs and why it exists.

    ``score`` 0-100 says how strong the rule is; ``identifier_match`` is true
    for an identifier the signalling carried, false for a heuristic.
    """

    a: str
    b: str
    rule: str
    evidence: tuple[Evidence, ...]
    score: int
    identifier_match: bool


@attrs.frozen
class Failover:
    """A move from one outbound attempt to the next one of the same upstream leg.

    ``cause`` is the failure status (``"408"``, ``"503"`` …), ``"timeout"``
    (no final response on the wire: the next attempt began while the INVITE
    was still being retransmitted or unanswered) or ``"cancelled"``.
    ``failed_at_ns`` is when the failure is evident on the wire: the final
    response, the CANCEL, or for a timeout the first INVITE of the failed
    attempt (the element's local timer is not on the wire). ``latency_ns`` is
    ``next_invite_at_ns - failed_at_ns``.
    """

    from_leg: str
    to_leg: str
    cause: str
    failed_at_ns: int
    next_invite_at_ns: int
    latency_ns: int
    original_trunk_id: str | None
    attempt: int
    evidence: tuple[Evidence, ...] = ()


@attrs.frozen
class Chain:
    """All legs of one logical call, the links that tie them, its failovers.

    ``legs``: inbound legs first, then outbound attempts in order.
    ``outcome``: ``"answered"``, ``"failed"``, ``"cancelled"`` or ``"open"``;
    ``answered_by`` the leg that answered, ``final_status`` what the caller got.
    """

    chain_id: str
    legs: tuple[Leg, ...]
    links: tuple[Link, ...]
    failovers: tuple[Failover, ...]
    outcome: str
    answered_by: str | None = None
    final_status: int | None = None

    def leg(self, leg_id: str) -> Leg:
        """The leg with that id."""
        for leg in self.legs:
            if leg.leg_id == leg_id:
                return leg
        raise KeyError(leg_id)


@attrs.frozen
class Unlinked:
    """A message that belongs to no chain, and why."""

    message: SipMessage
    reason: str


@attrs.frozen
class Finding:
    """A compliance rule's verdict about a chain or a leg.

    Attributes:
        rule: the rule id (``"leg-has-final-response"`` …).
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        chain_id: the chain it concerns.
        leg: the leg it concerns, or ``None`` for the chain as a whole.
        frames: ``(source, frame)`` of the messages that prove it.
        message: what a reviewer reads.
        hint: what to look at or do next.
    """

    rule: str
    severity: str
    chain_id: str
    leg: str | None
    frames: tuple[tuple[str, int], ...]
    message: str
    hint: str = ""
