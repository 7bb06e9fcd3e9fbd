"""SIP over WebSocket (RFC 7118) on one direction's in-order bytes, sans-IO.

Feed the bytes of one TCP stream direction with
:meth:`WebSocketDecoder.receive_data`, then call
:meth:`WebSocketDecoder.next_event` until it returns :data:`NEED_DATA`. Each
event is a :class:`WsMessage`:

- ``opcode == -1``: the HTTP/1.1 Upgrade handshake (RFC 6455 §4) that opened
  the stream, reported whole so the caller can account for its bytes;
- ``opcode`` 1 (text) or 2 (binary): one complete data message, fragments
  joined (RFC 6455 §5.4); RFC 7118 §4.2 carries one SIP message per WebSocket
  message;
- ``opcode`` 8, 9, 10: a close, ping or pong control frame (RFC 6455 §5.5),
  returned as soon as it is read, even between the fragments of a message.

``start`` and ``end`` are the stream offsets of the first byte of the first
frame and one past the last byte of the last frame that made the message.

Incomplete input is never an exception. A framing violation raises
:class:`~sipchain.SipParseError` after the offending bytes were consumed, so
the next call goes on with what follows.
"""

from __future__ import annotations

import re
from typing import Final, Literal, NamedTuple

from sipchain.errors import SipParseError
from sipchain.wire import NEED_DATA
from sipchain.wire._stream import _Sentinel

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "HANDSHAKE",
    "PING",
    "PONG",
    "TEXT",
    "WebSocketDecoder",
    "WsMessage",
    "looks_like_websocket_frame",
    "looks_like_websocket_handshake",
]

# RFC 6455 §5.2 opcodes; HANDSHAKE is ours, for the HTTP Upgrade exchange.
HANDSHAKE: Final = -1
CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA
_KNOWN_OPCODES: Final = frozenset({CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG})

# RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less"
_MAX_CONTROL_PAYLOAD: Final = 125

# RFC 6455 §4.1: the opening handshake is an HTTP/1.1 GET request
#   Request-Line = "GET" SP request-target SP "HTTP/1.1" CRLF
_REQUEST_LINE = re.compile(rb"GET [^ \r\n]+ HTTP/1\.\d\r?\n")
# RFC 6455 §4.2.2: the server answers "HTTP/1.1 101 Switching Protocols"
_STATUS_LINE = re.compile(rb"HTTP/1\.\d (\d{3})[^\r\n]*\r?\n")
# RFC 6455 §4.2.1 (3): an |Upgrade| header field containing "websocket"
_UPGRADE_WEBSOCKET = re.compile(rb"(?:^|\n)upgrade[ \t]*:[^\r\n]*\bwebsocket\b", re.IGNORECASE)
# RFC 6455 §11.3.4 / RFC 7118 §4.1: Sec-WebSocket-Protocol: sip
_SUBPROTOCOL = re.compile(rb"(?:^|\n)sec-websocket-protocol[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
# RFC 6455 §9.1: Sec-WebSocket-Extensions
_EXTENSIONS = re.compile(rb"(?:^|\n)sec-websocket-extensions[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
# How far looks_like_websocket_handshake() reads.
_SNIFF_LIMIT: Final = 16 * 1024
# A SIP start line at the start of a message (RFC 3261 §7.1, §7.2), for sniffing.
_SIP_START = re.compile(rb"SIP/2\.0 \d|[A-Za-z]+ (?:sips?|tel|urn):", re.IGNORECASE)


class WsMessage(NamedTuple):
    """One WebSocket message (or the opening handshake, ``opcode == -1``)."""

    opcode: int
    payload: bytes
    start: int  # stream offset of the first byte of its first frame
    end: int  # stream offset one past the last byte of its last frame


def looks_like_websocket_handshake(data: bytes) -> bool:
    """Whether a stream's first bytes are a WebSocket opening handshake.

    True for an HTTP/1.1 ``GET`` request or a ``101`` response whose header
    section (as far as it is present in ``data``) has ``Upgrade: websocket``
    (RFC 6455 §4.1, §4.2.2).
    """
    head = bytes(data[:_SNIFF_LIMIT])
    end = head.find(b"\r\n\r\n")
    if end >= 0:
        head = head[:end]
    status = _STATUS_LINE.match(head)
    if not (_REQUEST_LINE.match(head) or (status is not None and status.group(1) == b"101")):
        return False
    return _UPGRADE_WEBSOCKET.search(head) is not None


def looks_like_websocket_frame(data: bytes) -> bool:
    """Whether ``data`` starts with a WebSocket data frame carrying a SIP start line.

    For streams picked up after the handshake: a first frame with no reserved
    bits, opcode text or binary (RFC 6455 §5.2) whose (unmasked) payload
    begins like a SIP request or response (RFC 7118 §4.2).
    """
    header = _parse_header(data)
    if header is None:
        return False
    b0, length, mask, hlen = header
    if b0 & 0x70 or (b0 & 0x0F) not in (TEXT, BINARY):
        return False
    sample = bytes(data[hlen : hlen + min(length, 24)])
    if mask is not None:
        sample = _unmask(sample, mask)
    return _SIP_START.match(sample) is not None


def _parse_header(buf: bytes | bytearray) -> tuple[int, int, bytes | None, int] | None:
    """RFC 6455 §5.2 base framing header: (first byte, payload length, masking
    key or None, header length), or None when incomplete.

    Payload length: 7 bits; 126 means a 16-bit and 127 a 64-bit length follows
    (network byte order). A masking key of 4 octets follows when MASK is set.
    """
    n = len(buf)
    if n < 2:
        return None
    b1 = buf[1]
    length = b1 & 0x7F
    hlen = 2
    if length == 126:
        hlen = 4
        if n < hlen:
            return None
        length = int.from_bytes(buf[2:4], "big")
    elif length == 127:
        hlen = 10
        if n < hlen:
            return None
        length = int.from_bytes(buf[2:10], "big")
    mask: bytes | None = None
    if b1 & 0x80:
        if n < hlen + 4:
            return None
        mask = bytes(buf[hlen : hlen + 4])
        hlen += 4
    return buf[0], length, mask, hlen


def _unmask(data: bytes, key: bytes) -> bytes:
    """RFC 6455 §5.3: octet i of the payload is XORed with octet i MOD 4 of the key."""
    n = len(data)
    if not n:
        return b""
    stream = (key * ((n + 3) // 4))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


# Decoder states
_START: Final = "start"  # nothing decided yet: a handshake or frames?
_HANDSHAKE: Final = "handshake"  # inside the HTTP header section
_HANDSHAKE_DISCARD: Final = "handshake-discard"  # over-long handshake: skip to its end
_FRAMES: Final = "frames"
_REFUSED: Final = "refused"  # the HTTP exchange did not upgrade: ignore the rest


class WebSocketDecoder:
    """Decode WebSocket frames (RFC 6455 §5) of one stream direction.

    Args:
        max_message: bound on one message's payload (all its fragments); a
            longer one raises ``SipParseError`` (code ``"ws-too-large"``), its
            bytes are skipped as they arrive and never buffered. Also bounds
            the handshake.
        start_offset: stream offset of the first byte that will be fed (for
            a decoder started after a gap).

    Attributes:
        consumed: stream offset of the next byte to decode.
        subprotocol: the ``Sec-WebSocket-Protocol`` value of the handshake
            (offered list in a request, the choice in a response), if any.
        extensions: the ``Sec-WebSocket-Extensions`` value, if any. Frames
            compressed by an extension (RSV1, RFC 7692) are not decoded.
        ignored: octets skipped without decoding (refused handshake, rejected
            frames).
    """

    def __init__(self, *, max_message: int = 1 << 20, start_offset: int = 0) -> None:
        if max_message <= 0:
            raise ValueError("max_message must be positive")
        self.max_message = max_message
        self.consumed = start_offset
        self.subprotocol: str | None = None
        self.extensions: str | None = None
        self.ignored = 0
        self._buf = bytearray()
        self._state = _START
        self._scan = 0  # where to resume looking for the end of the handshake
        self._skip = 0  # payload octets of a rejected frame still to skip
        # the data message being reassembled from fragments (RFC 6455 §5.4)
        self._frag_opcode: int | None = None
        self._frag_start = 0
        self._frag_size = 0
        self._fragments: list[bytes] = []
        self._discard_message = False  # skip continuations of a rejected message

    # ------------------------------------------------------------ input
    def receive_data(self, data: bytes) -> None:
        """Append in-order bytes of the stream."""
        self._buf += data

    @property
    def buffered(self) -> int:
        """Octets held: an incomplete frame or handshake, plus held fragments."""
        return len(self._buf) + self._frag_size

    # ------------------------------------------------------------ output
    def next_event(self) -> WsMessage | Literal[_Sentinel.NEED_DATA]:
        """The next complete message or control frame, or :data:`NEED_DATA`.

        When it raises :class:`~sipchain.SipParseError`, the offending bytes
        have been consumed (or are skipped as they arrive).
        """
        while True:
            if self._skip and not self._skip_payload():
                return NEED_DATA
            state = self._state
            if state == _FRAMES:
                frame = self._next_frame()
                if frame is None:
                    return NEED_DATA
                if isinstance(frame, WsMessage):
                    return frame
                continue  # a fragment was held, or a rejected message skipped
            if state == _START:
                if not self._decide():
                    return NEED_DATA
                continue
            if state == _HANDSHAKE:
                return self._handshake()
            if state == _HANDSHAKE_DISCARD:
                if not self._discard_handshake():
                    return NEED_DATA
                continue
            # _REFUSED
            self.ignored += len(self._buf)
            self._take(len(self._buf))
            return NEED_DATA

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self.consumed += n
        return data

    def _skip_payload(self) -> bool:
        """Drop payload octets of a rejected frame; True when all are gone."""
        k = min(self._skip, len(self._buf))
        if k:
            del self._buf[:k]
            self.consumed += k
            self.ignored += k
            self._skip -= k
        return self._skip == 0

    # ------------------------------------------------------------ handshake
    def _decide(self) -> bool:
        """At the start of the stream: an HTTP handshake, or frames already?

        A frame's first octet is never "G" or "H" (0x47 and 0x48 are a
        reserved opcode and a fragmented close), so the first octets decide.
        """
        head = bytes(self._buf[:5])
        if not head:
            return False
        if head.startswith((b"GET ", b"HTTP/")):
            self._state = _HANDSHAKE
            return True
        if b"GET ".startswith(head) or b"HTTP/".startswith(head):
            return False  # could still be either
        self._state = _FRAMES
        return True

    def _find_handshake_end(self) -> tuple[int, int]:
        """RFC 9112 §2.1: the header section ends with an empty line (CRLF,
        or a bare LF, §2.2). Returns (index, separator length) or (-1, 0)."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n", self._scan)
        if end >= 0:
            return end, 4
        end = buf.find(b"\n\n", self._scan)
        if end >= 0:
            return end, 2
        self._scan = max(0, len(buf) - 3)
        return -1, 0

    def _handshake(self) -> WsMessage | Literal[_Sentinel.NEED_DATA]:
        end, sep = self._find_handshake_end()
        start = self.consumed
        if end < 0:
            if len(self._buf) > self.max_message:
                self.ignored += len(self._buf)
                self._take(len(self._buf))
                self._scan = 0
                self._state = _HANDSHAKE_DISCARD
                raise SipParseError(
                    f"WebSocket handshake exceeds {self.max_message} octets; skipped",
                    code="ws-too-large",
                    offset=start,
                )
            return NEED_DATA
        raw = self._take(end + sep)
        self._scan = 0
        head = raw[:end]
        status = _STATUS_LINE.match(raw)
        m = _SUBPROTOCOL.search(head)
        if m is not None:
            self.subprotocol = m.group(1).strip().decode("latin-1")
        m = _EXTENSIONS.search(head)
        if m is not None:
            self.extensions = m.group(1).strip().decode("latin-1")
        if status is not None and status.group(1) != b"101":
            self._state = _REFUSED
            raise SipParseError(
                f"HTTP status {status.group(1).decode()} instead of 101: the WebSocket upgrade was refused (RFC 6455 §4.2.2)",
                code="ws-handshake",
                offset=start,
            )
        if _UPGRADE_WEBSOCKET.search(head) is None:
            self._state = _REFUSED
            raise SipParseError(
                "HTTP message without 'Upgrade: websocket' (RFC 6455 §4.1, §4.2.1)",
                code="ws-handshake",
                offset=start,
            )
        self._state = _FRAMES
        return WsMessage(HANDSHAKE, raw, start, self.consumed)

    def _discard_handshake(self) -> bool:
        """Skip the rest of an over-long handshake; True once its end was found."""
        end, sep = self._find_handshake_end()
        if end < 0:
            keep = min(3, len(self._buf))
            drop = len(self._buf) - keep
            self.ignored += drop
            self._take(drop)
            self._scan = 0
            return False
        self.ignored += end + sep
        self._take(end + sep)
        self._scan = 0
        self._state = _FRAMES
        return True

    # ------------------------------------------------------------ frames
    def _reject(self, reason: str, code: str, start: int, hlen: int, length: int) -> SipParseError:
        """Consume a bad frame's header, skip its payload as it arrives."""
        self.ignored += hlen
        self._take(hlen)
        self._skip = length
        self._skip_payload()
        return SipParseError(reason, code=code, offset=start)

    def _drop_fragments(self) -> None:
        self._frag_opcode = None
        self._frag_size = 0
        self._fragments = []

    def _next_frame(self) -> WsMessage | bool | None:
        """Read one frame: a message to return, True when it was absorbed
        (a held fragment or a skipped one), None when incomplete."""
        buf = self._buf
        header = _parse_header(buf)
        if header is None:
            return None
        b0, length, mask, hlen = header
        start = self.consumed
        fin = bool(b0 & 0x80)
        opcode = b0 & 0x0F
        if length >> 63:
            # RFC 6455 §5.2: "the most significant bit MUST be 0"; the length is
            # meaningless, so the frame's end is unknown: drop what is held
            self.ignored += len(buf)
            self._take(len(buf))
            self._drop_fragments()
            raise SipParseError(
                "64-bit payload length with the most significant bit set (RFC 6455 §5.2)",
                code="ws-length",
                offset=start,
            )
        if b0 & 0x70:
            # RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension defines them
            what = "RSV1 set: compressed (RFC 7692), not supported" if b0 & 0x40 else "reserved bits set"
            raise self._reject(
                f"{what}; no extension defines them here (RFC 6455 §5.2)", "ws-reserved-bits", start, hlen, length
            )
        if opcode not in _KNOWN_OPCODES:
            raise self._reject(f"reserved opcode 0x{opcode:X} (RFC 6455 §5.2)", "ws-opcode", start, hlen, length)
        if opcode & 0x8:
            # RFC 6455 §5.5: control frames have <= 125 octets and are not fragmented
            if length > _MAX_CONTROL_PAYLOAD:
                raise self._reject(
                    f"control frame (opcode 0x{opcode:X}) of {length} octets; at most 125 allowed (RFC 6455 §5.5)",
                    "ws-control",
                    start,
                    hlen,
                    length,
                )
            if not fin:
                raise self._reject(
                    f"fragmented control frame (opcode 0x{opcode:X}) (RFC 6455 §5.5)", "ws-control", start, hlen, length
                )
        elif opcode == CONTINUATION:
            if self._discard_message:
                # a continuation of a message already rejected for its size
                self._discard_message = not fin
                self.ignored += hlen
                self._take(hlen)
                self._skip = length
                return True
            if self._frag_opcode is None:
                raise self._reject(
                    "continuation frame without a message to continue (RFC 6455 §5.4)",
                    "ws-continuation",
                    start,
                    hlen,
                    length,
                )
        else:
            self._discard_message = False
            if self._frag_opcode is not None:
                # RFC 6455 §5.4: fragments of messages MUST NOT be interleaved.
                # The incomplete message is lost; this frame is read next time.
                lost = self._frag_size
                self._drop_fragments()
                raise SipParseError(
                    f"new data frame before the fragmented message ended; {lost} octets of it dropped (RFC 6455 §5.4)",
                    code="ws-fragment",
                    offset=start,
                )
        if not opcode & 0x8 and self._frag_size + length > self.max_message:
            self._drop_fragments()
            self._discard_message = not fin
            raise self._reject(
                f"message over {self.max_message} octets; skipped (limit max_message)",
                "ws-too-large",
                start,
                hlen,
                length,
            )
        total = hlen + length
        if len(buf) < total:
            return None
        raw = self._take(total)
        payload = raw[hlen:]
        if mask is not None:
            payload = _unmask(payload, mask)
        end = self.consumed
        if opcode & 0x8:
            return WsMessage(opcode, payload, start, end)
        if opcode != CONTINUATION:
            if fin:
                return WsMessage(opcode, payload, start, end)
            self._frag_opcode = opcode
            self._frag_start = start
            self._fragments = [payload]
            self._frag_size = len(payload)
            return True
        self._fragments.append(payload)
        self._frag_size += len(payload)
        if not fin:
            return True
        assert self._frag_opcode is not None
        message = WsMessage(self._frag_opcode, b"".join(self._fragments), self._frag_start, end)
        self._drop_fragments()
        return message
