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
from sipchain.model import Defect, Headers, SipMessage, canonical_header_name
from sipchain.wire import _grammar as g

__all__ = ["build_message", "parse_header_block", "parse_message", "serialize"]

_CRLF = b"\r\n"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def parse_header_block(
    block: bytes, base_offset: int, defects: list[Defect], *, newline: bytes = _CRLF
) -> Headers:
    """Split a header block (no start line, no empty line) into a :class:`Headers`.

    Folded continuation lines (starting with SP or HTAB) are kept in the
    ``raw_value`` of the header they continue. A line without a colon is
    recorded as a defect and left out of the table (its bytes stay in ``raw``).
    ``base_offset`` is the block's offset in the message, for defect offsets.
    """
    entries: list[tuple[str, str, str]] = []
    offsets: list[int] = []
    if not block:
        return Headers()
    offset = base_offset
    step = len(newline)
    lines = block.split(newline)
    if newline == _CRLF and b"\n" in block:
        # bare LF inside a CRLF message: split further, but say so.
        fixed: list[bytes] = []
        for line in lines:
            if b"\n" in line:
                defects.append(
                    Defect("bare-lf", "header line ends with LF instead of CRLF", offset, True)
                )
                fixed.extend(line.split(b"\n"))
            else:
                fixed.append(line)
        lines = fixed
    for line in lines:
        first = line[:1]
        if first == b" " or first == b"\t":
            if entries:
                raw_name, name, raw_value = entries[-1]
                entries[-1] = (raw_name, name, raw_value + "\r\n" + _decode(line))
            else:
                defects.append(
                    Defect("bad-folding", "continuation line before any header", offset, True)
                )
        else:
            colon = line.find(b":")
            if colon < 0:
                text = _decode(line)
                defects.append(
                    Defect("header-without-colon", f"header line without ':' ({text!r})", offset, True)
                )
            else:
                raw_name = line[:colon].rstrip(b" \t").decode("ascii", "surrogateescape")
                if not g.TOKEN.fullmatch(raw_name):
                    defects.append(
                        Defect("bad-header-name", f"header name {raw_name!r} is not a token", offset, True)
                    )
                entries.append(
                    (raw_name, canonical_header_name(raw_name), _decode(line[colon + 1 :]))
                )
                offsets.append(offset)
        offset += len(line) + step
    return Headers(tuple(entries), tuple(offsets))


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


def parse_message(data: bytes | bytearray | memoryview, *, strict: bool = False) -> SipMessage:
    """Parse one SIP message from a datagram or an export record.

    Lenient by default: deviations are recorded in ``SipMessage.defects`` and
    the message is returned where it can be read at all. With ``strict=True``
    any RFC 3261 violation raises :class:`~sipchain.SipParseError`. Octets after
    the message (beyond Content-Length) are a defect, never a second message
    (RFC 4475 §3.1.1.8); they stay in ``raw`` so nothing is lost.

    Only :class:`~sipchain.SipParseError` is raised, whatever the input.
    """
    given: object = data
    if isinstance(given, bytearray | memoryview):
        given = bytes(given)
    if not isinstance(given, bytes):
        raise SipParseError(f"expected bytes, got {type(given).__name__}", code="not-bytes")
    try:
        message = _parse(given)
        if strict:
            for defect in message.defects:
                if defect.violation:
                    raise SipParseError(defect.detail, code=defect.code, offset=defect.offset)
    except SipParseError:
        raise
    except Exception as exc:  # the contract: nothing but SipParseError escapes
        raise SipParseError(f"unexpected parser failure: {exc!r}", code="internal") from exc
    return message


def _parse(data: bytes) -> SipMessage:
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
    headers = parse_header_block(block, header_start, defects, newline=newline)

    length = n
    body = data[body_start:]
    cl_values = headers.get_all("Content-Length")
    if cl_values:
        if len(set(cl_values)) > 1:
            defects.append(
                Defect(
                    "conflicting-content-length",
                    f"several Content-Length values: {', '.join(cl_values)}",
                    body_start,
                    True,
                )
            )
        else:
            cl = cl_values[0]
            if not (cl.isdigit() and cl.isascii()):
                defects.append(
                    Defect("bad-content-length", f"Content-Length {cl!r} is not a number", body_start, True)
                )
            else:
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
                elif want < have:
                    length = body_start + want
                    body = data[body_start:length]
                    defects.append(
                        Defect(
                            "trailing-data",
                            f"{have - want} octets after the message (beyond Content-Length {want}) ignored",
                            length,
                            False,
                        )
                    )
    return SipMessage(
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
    )


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
