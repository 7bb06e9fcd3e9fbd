"""SDP bodies (RFC 8866) -> :class:`~sipchain.model.SessionDescription`.

An SDP body is a list of ``<type>=<value>`` lines, one case-significant letter
per type (RFC 8866 §5). The session-level lines come first; every ``m=`` line
opens a media section that runs to the next ``m=`` line or the end.

The reader is lenient and never raises: a line that does not follow the grammar
becomes a :class:`~sipchain.model.Defect` (``violation=False``: SDP problems are
evidence, not SIP violations) carrying the byte offset of the line inside the
body, and the line is skipped; everything else is still read. Lines end with
CRLF or, tolerated as RFC 8866 §5 asks, a bare LF; the last line may lack its
line end. Text is decoded from UTF-8 with ``surrogateescape`` so no octet is
lost. Each pattern below quotes the RFC 8866 §9 ABNF rule it implements.
"""

from __future__ import annotations

import re

from sipchain.model import (
    Defect,
    SdpConnection,
    SdpMedia,
    SdpOrigin,
    SdpRtpMap,
    SessionDescription,
)

__all__ = ["DIRECTIONS", "parse_sdp"]

#: The direction attributes (RFC 8866 §6.7.1-§6.7.4).
DIRECTIONS = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})

# token = 1*(token-char)
# token-char = ALPHA / DIGIT / "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
#              "-" / "." / "^" / "_" / "`" / "{" / "|" / "}" / "~"
_TOKEN_CHARS = r"A-Za-z0-9!#$%&'*+\-.^_`{|}~"
TOKEN = re.compile(f"[{_TOKEN_CHARS}]+")

# Each line: <type>=<value>, <type> "is exactly one case-significant character" (§5).
# type letters defined by RFC 8866 §5 (k= is obsolete but still defined, §5.12).
_SESSION_ONLY = frozenset("vosuepzrt")
_MEDIA_ALLOWED = frozenset("icbka")
_KNOWN_TYPES = _SESSION_ONLY | _MEDIA_ALLOWED | {"m"}

# integer = POS-DIGIT *DIGIT ; zero-based-integer = "0" / integer
# (leading zeros are tolerated here: they carry the same number)
_DIGITS = re.compile(r"[0-9]+")

# version-field = %s"v" "=" 1*DIGIT CRLF
VERSION = _DIGITS

# origin-field = %s"o" "=" username SP sess-id SP sess-version SP nettype SP
#                addrtype SP unicast-address CRLF
# sess-id = 1*DIGIT ; sess-version = 1*DIGIT
SESS_ID = _DIGITS

# connection-field = %s"c" "=" nettype SP addrtype SP connection-address CRLF
# connection-address = multicast-address / unicast-address
# IP4-multicast = m1 3( "." decimal-uchar ) "/" ttl [ "/" numaddr ]
# IP6-multicast = IP6-address [ "/" numaddr ]
# ttl = (POS-DIGIT *2DIGIT) / "0" ; numaddr = integer

# media-field = %s"m" "=" media SP port ["/" integer] SP proto 1*(SP fmt) CRLF
# media = token ; port = 1*DIGIT ; proto = token *("/" token) ; fmt = token
MEDIA_PORT = re.compile(r"([0-9]+)(?:/([0-9]+))?")
PROTO = re.compile(f"[{_TOKEN_CHARS}]+(?:/[{_TOKEN_CHARS}]+)*")

# attribute = (attribute-name ":" attribute-value) / attribute-name
# attribute-name = token ; attribute-value = byte-string
ATTRIBUTE_NAME = TOKEN

# rtpmap-value = payload-type SP encoding-name "/" clock-rate [ "/" encoding-params ]
# payload-type = zero-based-integer ; encoding-name = token ; clock-rate = integer
# encoding-params = channels ; channels = integer        (RFC 8866 §6.6)
RTPMAP = re.compile(rf"([0-9]+)[ \t]+([{_TOKEN_CHARS}]+)(?:/([0-9]+)(?:/([^ \t/]+))?)?[ \t]*")

_WS = " \t"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


class _Media:
    """A media section while it is being read (mutable, private)."""

    __slots__ = (
        "attributes",
        "connections",
        "direction",
        "formats",
        "media",
        "port",
        "port_count",
        "proto",
        "rtpmaps",
    )

    def __init__(
        self, media: str, port: int, port_count: int | None, proto: str, formats: tuple[str, ...]
    ) -> None:
        self.media = media
        self.port = port
        self.port_count = port_count
        self.proto = proto
        self.formats = formats
        self.connections: list[SdpConnection] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.rtpmaps: list[SdpRtpMap] = []
        self.direction: str | None = None

    def freeze(self) -> SdpMedia:
        return SdpMedia(
            media=self.media,
            port=self.port,
            proto=self.proto,
            formats=self.formats,
            port_count=self.port_count,
            connections=tuple(self.connections),
            attributes=tuple(self.attributes),
            rtpmaps=tuple(self.rtpmaps),
            direction=self.direction,
        )


class _Reader:
    """State of one :func:`parse_sdp` call."""

    def __init__(self) -> None:
        self.defects: list[Defect] = []
        self.version: int | None = None
        self.origin: SdpOrigin | None = None
        self.session_name: str | None = None
        self.connection: SdpConnection | None = None
        self.attributes: list[tuple[str, str | None]] = []
        self.direction: str | None = None
        self.media: list[_Media] = []
        self.seen: set[str] = set()
        # True once an m= line opened a section; False while still at session level.
        self.in_media = False
        # The section lines go to; None after a malformed m= line (its lines are dropped).
        self.current: _Media | None = None

    def defect(self, code: str, detail: str, offset: int) -> None:
        self.defects.append(Defect(code, detail, offset, False))

    # ------------------------------------------------------------ lines
    def line(self, offset: int, raw: bytes) -> None:
        eq = raw.find(b"=")
        if eq < 0:
            self.defect("sdp-bad-line", f"line without '=': {_decode(raw[:80])!r}", offset)
            return
        kind = _decode(raw[:eq])
        if len(kind) != 1 or not ("a" <= kind <= "z" or "A" <= kind <= "Z"):
            self.defect("sdp-bad-line", f"line type {kind[:40]!r} is not a single letter", offset)
            return
        value = _decode(raw[eq + 1 :])
        if kind not in _KNOWN_TYPES:
            self.defect("sdp-unknown-line", f"unknown line type {kind!r} ignored", offset)
            return
        if kind == "m":
            self.media_line(value.rstrip(_WS), offset)
            return
        if self.in_media:
            if kind in _SESSION_ONLY:
                self.defect(
                    "sdp-misplaced-line",
                    f"{kind}= line inside a media section ignored (session level only)",
                    offset,
                )
                return
            if self.current is None:
                return  # the section of a malformed m= line: already reported
        elif kind in "vosc" and self.has_value(kind):
            self.defect("sdp-repeated-line", f"second session-level {kind}= line ignored", offset)
            return
        self.seen.add(kind)
        if kind == "a":
            self.attribute_line(value.rstrip(_WS), offset)
        elif kind == "c":
            self.connection_line(value.rstrip(_WS), offset)
        elif kind == "v":
            self.version_line(value.rstrip(_WS), offset)
        elif kind == "o":
            self.origin_line(value, offset)
        elif kind == "s":
            # session-name-field = %s"s" "=" text CRLF  (text kept as written)
            self.session_name = value
        # i= u= e= p= b= t= r= z= k= are valid but not part of the model.

    def has_value(self, kind: str) -> bool:
        """Whether the session-level ``kind`` line was already read successfully."""
        if kind == "v":
            return self.version is not None
        if kind == "o":
            return self.origin is not None
        if kind == "s":
            return self.session_name is not None
        return self.connection is not None

    def version_line(self, value: str, offset: int) -> None:
        if not VERSION.fullmatch(value):
            self.defect("sdp-bad-version", f"v= value {value[:40]!r} is not a number", offset)
            return
        self.version = int(value)
        if self.version != 0:
            self.defect("sdp-unknown-version", f"SDP version {value} (only 0 is defined)", offset)

    def origin_line(self, value: str, offset: int) -> None:
        fields = value.split()
        if len(fields) != 6:
            self.defect(
                "sdp-bad-origin",
                f"o= line has {len(fields)} fields instead of 6: {value[:80]!r}",
                offset,
            )
            return
        if not (SESS_ID.fullmatch(fields[1]) and SESS_ID.fullmatch(fields[2])):
            self.defect(
                "sdp-bad-origin",
                f"o= sess-id {fields[1][:40]!r} / sess-version {fields[2][:40]!r} are not numbers",
                offset,
            )
        self.origin = SdpOrigin(*fields)

    def connection_line(self, value: str, offset: int) -> None:
        connection = self.connection_of(value, offset)
        if connection is None:
            return
        if self.current is not None:
            self.current.connections.append(connection)
        else:
            self.connection = connection

    def connection_of(self, value: str, offset: int) -> SdpConnection | None:
        fields = value.split()
        if len(fields) != 3:
            self.defect(
                "sdp-bad-connection",
                f"c= line has {len(fields)} fields instead of 3: {value[:80]!r}",
                offset,
            )
            return None
        nettype, addrtype, address = fields
        ttl: int | None = None
        count: int | None = None
        if "/" in address:
            address, *suffix = address.split("/")
            if not address or not all(_DIGITS.fullmatch(s) for s in suffix):
                self.defect(
                    "sdp-bad-connection", f"bad connection-address {fields[2][:80]!r}", offset
                )
                return None
            numbers = [int(s) for s in suffix]
            if addrtype.upper() == "IP6":
                # IP6-multicast = IP6-address [ "/" numaddr ]  (no TTL for IPv6)
                if len(numbers) != 1:
                    self.defect(
                        "sdp-bad-connection", f"IP6 address with a TTL: {fields[2][:80]!r}", offset
                    )
                    return None
                count = numbers[0]
            else:
                if len(numbers) > 2:
                    self.defect(
                        "sdp-bad-connection", f"bad connection-address {fields[2][:80]!r}", offset
                    )
                    return None
                ttl = numbers[0]
                count = numbers[1] if len(numbers) == 2 else None
                if ttl > 255:
                    self.defect("sdp-bad-connection", f"TTL {ttl} is above 255", offset)
        return SdpConnection(nettype, addrtype, address, ttl, count)

    def media_line(self, value: str, offset: int) -> None:
        self.in_media = True
        self.current = None
        fields = value.split()
        if len(fields) < 3:
            self.defect(
                "sdp-bad-media",
                f"m= line has {len(fields)} fields (needs media, port, proto, formats);"
                " its section is ignored",
                offset,
            )
            return
        media, port_text, proto, *formats = fields
        port_match = MEDIA_PORT.fullmatch(port_text)
        if port_match is None or not TOKEN.fullmatch(media):
            self.defect(
                "sdp-bad-media",
                f"m= line {value[:80]!r} has a bad media or port; its section is ignored",
                offset,
            )
            return
        port = int(port_match.group(1))
        count_text = port_match.group(2)
        if port > 65535:
            self.defect("sdp-bad-media", f"m= port {port} is above 65535", offset)
        if not PROTO.fullmatch(proto):
            self.defect("sdp-bad-media", f"m= proto {proto[:40]!r} is not a token list", offset)
        if not formats:
            self.defect("sdp-bad-media", "m= line without any format", offset)
        section = _Media(
            media, port, int(count_text) if count_text is not None else None, proto, tuple(formats)
        )
        self.media.append(section)
        self.current = section

    def attribute_line(self, value: str, offset: int) -> None:
        name, colon, attr_value = value.partition(":")
        if not ATTRIBUTE_NAME.fullmatch(name):
            self.defect("sdp-bad-attribute", f"attribute name {name[:40]!r} is not a token", offset)
            return
        item = (name, attr_value if colon else None)
        target = self.current
        if name in DIRECTIONS and not colon:
            current = target.direction if target is not None else self.direction
            if current is not None:
                if current != name:
                    self.defect(
                        "sdp-conflicting-direction",
                        f"a={name} after a={current} at the same level (the first one is kept)",
                        offset,
                    )
            elif target is not None:
                target.direction = name
            else:
                self.direction = name
        if target is None:
            self.attributes.append(item)
            return
        target.attributes.append(item)
        if name == "rtpmap" and colon:
            rtpmap = self.rtpmap_of(attr_value, offset)
            if rtpmap is not None:
                target.rtpmaps.append(rtpmap)

    def rtpmap_of(self, value: str, offset: int) -> SdpRtpMap | None:
        match = RTPMAP.fullmatch(value)
        if match is None:
            self.defect("sdp-bad-rtpmap", f"bad rtpmap value {value[:80]!r}", offset)
            return None
        payload_type, encoding, clock, params = match.groups()
        if clock is None:
            self.defect(
                "sdp-bad-rtpmap",
                f"rtpmap {value[:80]!r} has no clock rate",
                offset,
            )
        if int(payload_type) > 127:
            self.defect("sdp-bad-rtpmap", f"RTP payload type {payload_type} is above 127", offset)
        return SdpRtpMap(
            int(payload_type), encoding, int(clock) if clock is not None else None, params
        )

    # ------------------------------------------------------------ whole body
    def finish(self, body: bytes, first_type: bytes | None) -> SessionDescription:
        if first_type is None:
            self.defect("sdp-empty", "SDP body has no lines", 0)
        else:
            if first_type != b"v":
                self.defect("sdp-version-not-first", "the first SDP line is not v=", 0)
            for kind, what in (
                ("v", "v= (version)"),
                ("o", "o= (origin)"),
                ("s", "s= (session name)"),
                ("t", "t= (timing)"),
            ):
                if kind not in self.seen:
                    self.defect("sdp-missing-line", f"no session-level {what} line", 0)
        return SessionDescription(
            raw=body,
            version=self.version,
            origin=self.origin,
            session_name=self.session_name,
            connection=self.connection,
            attributes=tuple(self.attributes),
            media=tuple(m.freeze() for m in self.media),
            direction=self.direction,
            defects=tuple(self.defects),
        )


def parse_sdp(body: bytes) -> SessionDescription:
    """Read an SDP body (RFC 8866) into a :class:`~sipchain.model.SessionDescription`.

    Fills the version (``v=``), origin (``o=``), session name (``s=``), the
    session-level connection (``c=`` before any ``m=``; multicast ``/ttl/count``
    split off, IPv6 ``/count`` only), the session-level attributes as
    ``(name, value)`` tuples in order (``value`` is ``None`` for a flag such as
    ``a=recvonly``) and direction, and one :class:`~sipchain.model.SdpMedia`
    per ``m=`` line with its own ``c=`` lines, attributes, ``a=rtpmap`` entries
    and direction. Every ``a=`` line is kept as an attribute, known or not.

    Never raises. Lines that do not follow the grammar are skipped and listed
    in ``defects`` (``violation=False``) with the byte offset of the line in
    ``body``; the lines of a media section whose ``m=`` line is unreadable are
    dropped with it (they would otherwise be charged to the wrong section). An
    ``a=rtpmap`` without a clock rate is kept with ``clock_rate`` ``None`` and a defect.
    ``raw`` is ``body`` itself (the same object).
    """
    reader = _Reader()
    first_type: bytes | None = None
    start = 0
    size = len(body)
    find = body.find
    while start < size:
        end = find(b"\n", start)
        if end < 0:
            end = size
        line = body[start:end]
        if line.endswith(b"\r"):
            line = line[:-1]
        if line:
            if first_type is None:
                first_type = line.split(b"=", 1)[0]
            reader.line(start, line)
        else:
            reader.defect("sdp-empty-line", "empty line in the SDP body", start)
        start = end + 1
    return reader.finish(body, first_type)
