"""Sans-IO framing of SIP messages on a byte stream (TCP, TLS, WebSocket payloads).

RFC 3261 §18.3: on a stream, Content-Length is mandatory and frames the body.
RFC 5626 §3.5.1: a double CRLF is a keep-alive ping, a single CRLF its pong;
both may appear between messages and are counted, never taken for messages.

Feed bytes with :meth:`SipStreamParser.receive_data`, then call
:meth:`SipStreamParser.next_message` until it returns :data:`NEED_DATA`.
Incomplete input is never an exception; only a framing violation or the
buffer bound is.
"""

from __future__ import annotations

import enum
import re
from typing import Final, Literal

import attrs

from sipchain.errors import SipParseError
from sipchain.model import Defect, SipMessage
from sipchain.wire._message import parse_message

__all__ = ["DEFAULT_MAX_BUFFER", "NEED_DATA", "Discarded", "SipStreamParser", "starts_like_sip"]


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return self.value


#: Returned by :meth:`SipStreamParser.next_message` when more bytes are needed.
NEED_DATA: Final = _Sentinel.NEED_DATA

#: Default bound on buffered incomplete data (bytes).
DEFAULT_MAX_BUFFER: Final = 256 * 1024

# Content-Length header line inside a header block (compact form "l" too).
# Content-Length = ( "Content-Length" / "l" ) HCOLON 1*DIGIT
_CONTENT_LENGTH = re.compile(rb"(?:^|\n)(?:content-length|l)[ \t]*:[ \t\r\n]*([^\r\n]*)", re.IGNORECASE)
# A plausible start line at the beginning of a line:
# Request-Line = Method SP Request-URI SP SIP-Version ; Status-Line = SIP-Version SP 3DIGIT
_START_LINE = re.compile(
    rb"(?:^|(?<=\n))(?:[A-Za-z0-9\-.!%*_+`'~]+[ \t]+[^\r\n]*SIP/\d+\.\d+[ \t]*\r?\n|SIP/\d+\.\d+ \d{3}[ \r\n])",
    re.IGNORECASE,
)


def starts_like_sip(data: bytes) -> bool:
    """True when ``data`` begins with a SIP request or status line.

    This is how SIP is recognised on any port: by its start line, never by the
    port number.
    """
    return _START_LINE.match(data) is not None


class Discarded:
    """Bytes the stream parser skipped to find the next start line (lenient mode)."""

    __slots__ = ("data", "offset", "reason")

    def __init__(self, offset: int, data: bytes, reason: str) -> None:
        self.offset = offset
        self.data = data
        self.reason = reason

    def __repr__(self) -> str:
        return f"Discarded(offset={self.offset}, length={len(self.data)}, reason={self.reason!r})"


class SipStreamParser:
    """Frame SIP messages out of a byte stream.

    Args:
        strict: raise :class:`~sipchain.SipParseError` on any violation instead
            of recording it (also for garbage between messages).
        max_buffer: bound on buffered incomplete data; a message that cannot be
            framed within it raises ``SipParseError`` and the buffer is dropped,
            so memory stays bounded on hostile input.

    Attributes:
        consumed: bytes consumed from the start of the stream.
        last_offset: stream offset of the first byte of the last message returned.
        keepalives: CRLF keep-alives (RFC 5626) seen between messages.
        discarded: byte runs skipped in lenient mode, with the reason.
    """

    def __init__(self, *, strict: bool = False, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        if max_buffer <= 0:
            raise ValueError("max_buffer must be positive")
        self.strict = strict
        self.max_buffer = max_buffer
        self.consumed = 0
        self.last_offset = 0
        self.keepalives = 0
        self.discarded: list[Discarded] = []
        self._buf = bytearray()
        self._scan = 0  # where to resume the search for the empty line
        self._eof = False
        self.last_defect: Defect | None = None

    # ------------------------------------------------------------ input
    def receive_data(self, data: bytes) -> None:
        """Append bytes read from the stream."""
        if self._eof and data:
            raise SipParseError("data received after end of stream", code="after-eof")
        self._buf += data

    def receive_eof(self) -> None:
        """Say that the stream has ended; leftovers are then reported."""
        self._eof = True

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self._buf)

    # ------------------------------------------------------------ output
    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self.consumed += n
        self._scan = 0
        return data

    def _skip_keepalives(self) -> None:
        buf = self._buf
        i = 0
        while buf.startswith(b"\r\n", i):
            i += 2
        if i:
            self.keepalives += 1
            self._take(i)

    def _resync(self) -> bool:
        """Skip bytes up to the next plausible start line; False when none yet."""
        buf = self._buf
        m = _START_LINE.search(buf)
        if m is None:
            # keep a possible partial start line at the end
            keep = buf.rfind(b"\n") + 1
            if keep == 0 and not self._eof:
                return False
            cut = keep if keep and not self._eof else len(buf)
        else:
            cut = m.start()
        if cut == 0:
            return m is not None
        offset = self.consumed
        data = self._take(cut)
        if self.strict:
            raise SipParseError(
                f"{len(data)} octets before a SIP start line", code="garbage", offset=offset
            )
        self.discarded.append(Discarded(offset, data, "no SIP start line"))
        return m is not None

    def next_message(self) -> SipMessage | Literal[_Sentinel.NEED_DATA]:
        """The next complete message, or :data:`NEED_DATA`.

        When it raises :class:`~sipchain.SipParseError`, the offending bytes have
        been consumed, so the next call goes on with what follows them.
        """
        raw = self.next_frame()
        if raw is NEED_DATA:
            return NEED_DATA
        message = parse_message(raw, strict=self.strict)
        if self.last_defect is not None:
            message = attrs.evolve(message, framing_defects=(*message.framing_defects, self.last_defect))
        return message

    def next_frame(self) -> bytes | Literal[_Sentinel.NEED_DATA]:
        """The exact bytes of the next complete message (framing only), or :data:`NEED_DATA`.

        For callers that parse the bytes themselves. A framing problem the
        message itself cannot show (no Content-Length on a stream) is left in
        :attr:`last_defect` until the next call.
        """
        self.last_defect = None
        while True:
            self._skip_keepalives()
            buf = self._buf
            if not buf or buf == b"\r":
                return self._at_end()
            if buf.find(b"\n") < 0:
                if len(buf) > self.max_buffer:
                    self._overflow("start line")
                return self._at_end()
            if not _START_LINE.match(buf):
                if not self._resync():
                    return self._at_end()
                continue
            blank = buf.find(b"\r\n\r\n", self._scan)
            sep = 4
            if blank < 0:
                alt = buf.find(b"\n\n", self._scan)
                if alt >= 0:
                    blank, sep = alt, 2
            if blank < 0:
                if len(buf) > self.max_buffer:
                    self._overflow("header section")
                self._scan = max(0, len(buf) - 3)
                return self._at_end()
            m = _CONTENT_LENGTH.search(buf, 0, blank)
            if m is None:
                offset = self.consumed
                if self.strict:
                    self._take(blank + sep)
                    raise SipParseError(
                        "message on a stream has no Content-Length", code="missing-content-length", offset=offset
                    )
                length = 0
                self.last_defect = Defect(
                    "missing-content-length", "no Content-Length on a stream; body taken as empty", blank, True
                )
            else:
                value = m.group(1).strip()
                if not value.isdigit():
                    # cannot frame: skip this message's header section and resync
                    offset = self.consumed
                    data = self._take(blank + sep)
                    if self.strict:
                        raise SipParseError(
                            f"Content-Length {value!r} is not a number; cannot frame",
                            code="bad-content-length",
                            offset=offset,
                        )
                    self.discarded.append(Discarded(offset, data, f"Content-Length {value!r} is not a number"))
                    continue
                length = int(value)
            total = blank + sep + length
            if total > len(buf):
                if total > self.max_buffer:
                    self._overflow(f"message of {total} octets")
                return self._at_end()
            self.last_offset = self.consumed
            return self._take(total)

    def _overflow(self, what: str) -> None:
        offset = self.consumed
        self._take(len(self._buf))
        raise SipParseError(
            f"{what} exceeds the buffer limit of {self.max_buffer} octets; buffer dropped",
            code="buffer-limit",
            offset=offset,
        )

    def _at_end(self) -> Literal[_Sentinel.NEED_DATA]:
        if self._eof and self._buf:
            offset = self.consumed
            data = self._take(len(self._buf))
            if data.strip(b"\r\n"):
                if self.strict:
                    raise SipParseError(
                        f"stream ended inside a message ({len(data)} octets pending)",
                        code="truncated-stream",
                        offset=offset,
                    )
                self.discarded.append(Discarded(offset, data, "stream ended inside a message"))
        return NEED_DATA
