"""Bytes -> :class:`~sipchain.model.SipMessage` for one datagram or record.

RFC 3261 §7: a message is a start line, header fields, an empty line and an
optional body whose length is given by Content-Length (§18.3, §20.14). This
module frames one message and splits its header lines; typed header values are
parsed later, on first access (``_headers``), and the full rule check runs when
``SipMessage.defects`` is first read (``_validate``) or at once in strict mode.
"""

from __future__ import annotations

from collections.abc import Iterable

from sipchain.errors import SipParseError
from sipchain.model import (
    Defect,
    Endpoint,
    Headers,
    Provenance,
    SipMessage,
    canonical_header_name,
    unfold,
)
from sipchain.wire import _grammar as g
from sipchain.wire import _headers as _h

__all__ = [
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_SIZE",
    "build_message",
    "parse_header_block",
    "parse_message",
    "parse_with_origin",
    "serialize",
]

_CRLF = b"\r\n"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def parse_header_block(
    block: bytes, base_offset: int, defects: list[Defect], *, newline: bytes = _CRLF
) -> Headers:
    """Wrap a header block (no start line, no empty line) in a :class:`Headers`.

    Line-level problems (a line without a colon, a bad name, stray folding) are
    appended to ``defects``; ``base_offset`` is the block's offset in the
    message or body, so defect and header offsets point into it.
    """
    headers = Headers(_decode(block), base_offset, newline.decode("ascii"))
    defects.extend(headers.line_defects)
    return headers


def _parse_start_line(
    line: str, defects: list[Defect], offset: int
) -> tuple[str | None, str | None, int | None, str | None, str]:
    """Return ``(method, target, status, reason, version)``."""
    if line[:4].upper() == "SIP/":
        # Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
        version, _, rest = line.partition(" ")
        code, sp, reason = rest.partition(" ")
        if not sp:
            defects.append(
                Defect("no-reason-separator", "status line has no SP after the status code", offset, False)
            )
        if not (code.isdigit() and code.isascii()):
            raise SipParseError(f"status code {code!r} is not a number", code="bad-status-line", offset=offset)
        status = int(code)
        if not g.STATUS_CODE.fullmatch(code):
            defects.append(Defect("bad-status-code", f"status code {code} is outside 100..699", offset, True))
        if g.REASON_BAD_CHARS.search(reason):
            defects.append(Defect("bad-reason-phrase", "reason phrase has control characters", offset, True))
        _check_version(version, defects, offset)
        return None, None, status, reason, version
    # Request-Line = Method SP Request-URI SP SIP-Version CRLF
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        words = line.split()
        if line != line.rstrip(" \t"):
            code, why = "start-line-whitespace", "trailing whitespace after the SIP-Version"
        elif len(words) == 3:
            code, why = "start-line-whitespace", "more than one SP between request-line elements"
        elif len(words) > 3 and g.SIP_VERSION.fullmatch(words[-1]):
            code, why = "lws-in-request-uri", f"whitespace inside the Request-URI {' '.join(words[1:-1])!r}"
        elif len(words) == 2 and g.SCHEME.match(words[1]) and ":" in words[1]:
            code, why = "no-sip-version", "request line has no SIP-Version"
            words.append("")
        else:
            raise SipParseError(f"not a SIP start line: {line[:80]!r}", code="bad-start-line", offset=offset)
        defects.append(Defect(code, why, offset, True))
        parts = [words[0], "".join(words[1:-1]), words[-1]]
    method, target, version = parts
    if not g.METHOD.fullmatch(method):
        raise SipParseError(f"method {method[:40]!r} is not a token", code="bad-start-line", offset=offset)
    if version:
        _check_version(version, defects, offset)
    if target.startswith("<") and target.endswith(">"):
        defects.append(Defect("bracketed-request-uri", f"Request-URI enclosed in <>: {target}", offset, True))
        target = target[1:-1]
    return method, target, None, None, version


def _check_version(version: str, defects: list[Defect], offset: int) -> None:
    if version != "SIP/2.0":
        if not g.SIP_VERSION.fullmatch(version):
            raise SipParseError(f"{version[:40]!r} is not a SIP-Version", code="bad-start-line", offset=offset)
        if version.upper() != "SIP/2.0":
            defects.append(Defect("bad-version", f"unsupported protocol version {version}", offset, True))


#: Largest message ``parse_message`` reads (bytes); larger input is refused.
DEFAULT_MAX_SIZE = 1 << 20
#: Most header lines ``parse_message`` reads; more is refused.
DEFAULT_MAX_HEADERS = 1000


def parse_message(
    data: bytes | bytearray | memoryview,
    *,
    strict: bool = False,
    max_size: int = DEFAULT_MAX_SIZE,
    max_headers: int = DEFAULT_MAX_HEADERS,
) -> SipMessage:
    """Parse one SIP message from a datagram or an export record.

    Lenient by default: deviations are recorded in ``SipMessage.defects`` and
    the message is returned where it can be read at all. With ``strict=True``
    any RFC 3261 violation raises :class:`~sipchain.SipParseError`. Octets after
    the message (beyond Content-Length) are a defect, never a second message
    (RFC 4475 §3.1.1.8); they stay in ``raw`` so nothing is lost.

    ``max_size`` and ``max_headers`` bound the work done on hostile input;
    beyond them the input is refused with ``SipParseError`` (code
    ``"too-large"``) in either mode. Only :class:`~sipchain.SipParseError` is
    raised, whatever the input.
    """
    given: object = data
    if isinstance(given, bytearray | memoryview):
        given = bytes(given)
    if not isinstance(given, bytes):
        raise SipParseError(f"expected bytes, got {type(given).__name__}", code="not-bytes")
    return parse_with_origin(given, _NO_ORIGIN, strict=strict, max_size=max_size, max_headers=max_headers)


#: ``(provenance, timestamp_ns, src, dst, metadata)`` of a message read from a source.
Origin = tuple[Provenance | None, int | None, Endpoint | None, Endpoint | None, tuple[tuple[str, str], ...]]
_NO_ORIGIN: Origin = (None, None, None, None, ())


def parse_with_origin(
    data: bytes,
    origin: Origin,
    *,
    strict: bool = False,
    max_size: int = DEFAULT_MAX_SIZE,
    max_headers: int = DEFAULT_MAX_HEADERS,
) -> SipMessage:
    """``parse_message`` for the sources layer: the message also gets its origin.

    ``origin`` is ``(provenance, timestamp_ns, src, dst, metadata)``; building the
    message with them at once avoids copying it afterwards.
    """
    if len(data) > max_size:
        raise SipParseError(
            f"message of {len(data)} octets exceeds the limit of {max_size}", code="too-large"
        )
    try:
        message = _parse_fast(data, max_headers, origin)
        if message is None:
            message = _parse_general(data, max_headers, origin)
        if strict:
            for defect in message.defects:
                if defect.violation:
                    raise SipParseError(defect.detail, code=defect.code, offset=defect.offset)
    except SipParseError:
        raise
    except Exception as exc:  # the contract: nothing but SipParseError escapes
        raise SipParseError(f"unexpected parser failure: {exc!r}", code="internal") from exc
    return message


# ---------------------------------------------------------------------------
# The fields every correlator reads, found in one pass over the header lines
# ---------------------------------------------------------------------------

_HOT_KEYS = {
    "call-id": "call-id",
    "i": "call-id",
    "cseq": "cseq",
    "from": "from",
    "f": "from",
    "to": "to",
    "t": "to",
    "via": "via",
    "v": "via",
    "content-length": "content-length",
    "l": "content-length",
}
_HOT_FIRST = frozenset("cCiIfFtTvVlL")
_name_keys: dict[str, str] = {}  # raw header name -> hot key ("" when not hot)


def _hot_key(name: str) -> str:
    key = _name_keys.get(name)
    if key is None:
        key = _HOT_KEYS.get(name.rstrip(" \t").lower(), "")
        if len(_name_keys) < 4096:  # bounded: hostile input cannot grow it
            _name_keys[name] = key
    return key


def _parse_fast(data: bytes, max_headers: int, origin: Origin) -> SipMessage | None:
    """The common shape (CRLF lines, no folding, clean start line), or ``None``."""
    blank = data.find(b"\r\n\r\n")
    if blank <= 0 or data[0] in (13, 10):
        return None
    head = _decode(data[:blank])
    lines = head.split("\r\n")
    if len(head.splitlines()) != len(lines):
        return None  # a bare CR or LF: the general path handles it
    if len(lines) > max_headers:
        raise SipParseError(f"more than {max_headers} header lines", code="too-large")
    start_line = lines[0]
    method = target = reason = None
    status = None
    if start_line.startswith("SIP/2.0 "):
        code = start_line[8:11]
        if not (len(start_line) > 11 and start_line[11] == " " and g.STATUS_CODE.fullmatch(code)):
            return None
        reason = start_line[12:]
        if not (reason.isascii() and reason.isprintable()) and g.REASON_BAD_CHARS.search(reason):
            return None
        status = int(code)
    else:
        parts = start_line.split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0":
            return None
        method, target, _ = parts
        if not target or target[0] == "<" or not (
            method in g.COMMON_METHODS or g.METHOD.fullmatch(method)
        ):
            return None
    hot: dict[str, str] = {}
    lengths: list[str] = []
    name_keys = _name_keys
    for line in lines[1:]:
        first = line[:1]
        if first in _HOT_FIRST:
            name, colon, value = line.partition(":")
            if colon:
                key = name_keys.get(name)
                if key is None:
                    key = _hot_key(name)
                if key:
                    if key == "content-length":
                        lengths.append(value.strip(" \t"))
                    elif key not in hot:
                        hot[key] = value
        elif first == " " or first == "\t":
            return None  # folding: the general path handles it
    header_start = len(start_line) + 2
    headers = Headers(head[header_start:] if len(lines) > 1 else "", header_start)
    defects: list[Defect] = []
    body, length = _frame(data, blank + 4, lengths, defects)
    message = SipMessage(
        data, start_line, headers, body, method, target, status, reason, "SIP/2.0", length, tuple(defects), *origin
    )
    # no folding and no bare CR or LF on this path: stripping is unfolding
    cache = message._cache  # the parser primes the message it built
    get = hot.get
    raw: str | None = get("call-id")
    cache["call_id"] = raw.strip(" \t") if raw is not None else None
    raw = get("cseq")
    cache["cseq"] = _h.cseq_of(raw.strip(" \t")) if raw is not None else None
    raw = get("from")
    cache["from_tag"] = _h.tag_of(raw) if raw is not None else None
    raw = get("to")
    cache["to_tag"] = _h.tag_of(raw) if raw is not None else None
    raw = get("via")
    cache["branch"] = _h.top_branch_of(raw) if raw is not None else None
    return message


def _prime(
    message: SipMessage,
    call_id: str | None,
    cseq: str | None,
    from_: str | None,
    to: str | None,
    via: str | None,
) -> None:
    """Fill the message's cache with the hot fields, from their raw values."""
    cache = message._cache  # the parser primes the message it built
    cache["call_id"] = unfold(call_id) if call_id is not None else None
    cache["cseq"] = _h.cseq_of(unfold(cseq)) if cseq is not None else None
    cache["from_tag"] = _h.tag_of(unfold(from_)) if from_ is not None else None
    cache["to_tag"] = _h.tag_of(unfold(to)) if to is not None else None
    cache["branch"] = _h.top_branch_of(unfold(via)) if via is not None else None


def _frame(
    data: bytes, body_start: int, lengths: list[str], defects: list[Defect]
) -> tuple[bytes, int]:
    """Body and message length from the Content-Length values (RFC 3261 §18.3)."""
    n = len(data)
    if not lengths:
        return data[body_start:], n
    if len(lengths) > 1 and len(set(lengths)) > 1:
        defects.append(
            Defect(
                "conflicting-content-length",
                f"several Content-Length values: {', '.join(lengths)}",
                body_start,
                True,
            )
        )
        return data[body_start:], n
    cl = lengths[0]
    if not (cl.isdigit() and cl.isascii()):
        defects.append(
            Defect("bad-content-length", f"Content-Length {cl!r} is not a number", body_start, True)
        )
        return data[body_start:], n
    want = int(cl)
    have = n - body_start
    if want > have:
        defects.append(
            Defect(
                "body-truncated",
                f"Content-Length is {want} but only {have} octets follow the headers",
                n,
                True,
            )
        )
        return data[body_start:], n
    if want < have:
        end = body_start + want
        defects.append(
            Defect(
                "trailing-data",
                f"{have - want} octets after the message (beyond Content-Length {want}) ignored",
                end,
                False,
            )
        )
        return data[body_start:end], end
    return data[body_start:], n


def _parse_general(data: bytes, max_headers: int, origin: Origin) -> SipMessage:
    """Any shape: leading CRLF, bare LF, folding, odd start lines, no empty line."""
    defects: list[Defect] = []
    start = 0
    n = len(data)
    # RFC 3261 §7.5: ignore CRLFs before the start line.
    while data.startswith(b"\r\n", start) or data.startswith(b"\n", start):
        start += 2 if data[start] == 13 else 1
    if start:
        defects.append(Defect("leading-crlf", f"{start} octets of CRLF before the start line", 0, False))
    if start >= n:
        raise SipParseError("no SIP message (empty input)", code="empty", offset=start)

    eol = data.find(b"\n", start)
    newline = _CRLF
    if eol < 0:
        line_end = n
    elif eol > start and data[eol - 1] == 13:
        line_end = eol - 1
    else:
        newline = b"\n"
        line_end = eol
        defects.append(Defect("bare-lf", "lines end with LF instead of CRLF", eol, True))
    start_line = _decode(data[start:line_end])
    method, target, status, reason, version = _parse_start_line(start_line, defects, start)

    blank = newline + newline
    header_start = line_end + len(newline) if eol >= 0 else n
    end = data.find(blank, line_end) if eol >= 0 else -1
    if end < 0:
        defects.append(
            Defect("no-empty-line", "header section is not terminated by an empty line", n, True)
        )
        block_end = n
        while data.endswith(newline, 0, block_end) and block_end > header_start:
            block_end -= len(newline)
        body_start = n
    else:
        block_end = end
        body_start = end + len(blank)
    block = data[header_start:block_end] if block_end > header_start else b""
    if block.count(b"\n") >= max_headers:
        raise SipParseError(f"more than {max_headers} header lines", code="too-large")
    headers = Headers(_decode(block), header_start, newline.decode("ascii"))
    body, length = _frame(data, body_start, list(headers.get_all("Content-Length")), defects)
    vias = headers.get_all("Via")
    message = SipMessage(
        data,
        start_line,
        headers,
        body,
        method,
        target,
        status,
        reason,
        version,
        length,
        tuple(defects),
        *origin,
    )
    _prime(
        message,
        headers.get("Call-ID"),
        headers.get("CSeq"),
        headers.get("From"),
        headers.get("To"),
        vias[0] if vias else None,
    )
    return message


def serialize(message: SipMessage) -> bytes:
    """The exact bytes the message was parsed from (``raw``)."""
    return message.raw


def build_message(
    start_line: str,
    headers: Iterable[tuple[str, str]],
    body: bytes = b"",
    *,
    content_length: bool = True,
) -> SipMessage:
    """Write well-formed wire bytes from parts and parse them.

    ``headers`` are ``(name, value)`` pairs written in order as ``name: value``.
    A ``Content-Length`` matching ``body`` is appended unless one is given or
    ``content_length`` is false.
    """
    pairs = list(headers)
    lines = [start_line.encode("utf-8", "surrogateescape")]
    lines += [f"{n}: {v}".encode("utf-8", "surrogateescape") for n, v in pairs]
    if content_length and not any(
        canonical_header_name(n) == "Content-Length" for n, _ in pairs
    ):
        lines.append(b"Content-Length: %d" % len(body))
    return parse_message(_CRLF.join(lines) + _CRLF + _CRLF + body)
