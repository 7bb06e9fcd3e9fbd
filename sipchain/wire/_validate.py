"""The full rule check of one message, run on first read of ``SipMessage.defects``.

Framing problems are found while parsing (``_message``); this module checks what
needs the typed header grammar: required and single-valued headers (RFC 3261
§8.1.1, §7.3.1), scalar ranges (RFC 4475 §3.1.2.4/5), the Request-URI (§19.1.1),
CSeq/method agreement (§8.1.1.5), name-addr and Via grammar, and the extension
headers sipchain reads (RFC 7989, 3326, 7044, 7315).
"""

from __future__ import annotations

from sipchain.model import Defect, SipMessage, unfold
from sipchain.wire import _grammar as g
from sipchain.wire import _headers as h
from sipchain.wire import _multipart

#: Headers every request and response must carry (RFC 3261 §8.1.1, §8.2.6.2).
REQUIRED = ("Call-ID", "CSeq", "From", "To", "Via")


def _stamp(found: list[Defect], offset: int | None, out: list[Defect]) -> None:
    out.extend(Defect(d.code, d.detail, offset, d.violation) for d in found)


def _scalar(
    name: str, value: str, limit: int, out: list[Defect], offset: int | None, *, prefix: bool = False
) -> None:
    digits = value
    if prefix:
        end = 0
        while end < len(value) and value[end].isdigit():
            end += 1
        digits = value[:end]
    if not (digits.isdigit() and digits.isascii()):
        out.append(Defect("bad-number", f"{name}: {value!r} is not a number", offset, True))
    elif int(digits) > limit:
        out.append(Defect("number-too-large", f"{name}: {digits} is larger than {limit}", offset, True))


def _check_header(
    name: str, value: str, offset: int | None, message: SipMessage, out: list[Defect]
) -> None:
    found: list[Defect] = []
    key = name.lower()
    if key == "call-id":
        if not g.CALL_ID.fullmatch(value):
            found.append(Defect("bad-call-id", f"Call-ID {value!r} is not word[@word]", None, True))
    elif key == "cseq":
        m = g.CSEQ.fullmatch(value)
        if not m:
            found.append(Defect("bad-cseq", f"CSeq {value!r} is not 'number method'", None, True))
        else:
            _scalar("CSeq", m.group(1), g.MAX_UINT32, found, None)
            if message.method is not None and m.group(2) != message.method:
                found.append(
                    Defect(
                        "cseq-method-mismatch",
                        f"CSeq method {m.group(2)} differs from the request method {message.method}",
                        None,
                        True,
                    )
                )
    elif key == "max-forwards":
        _scalar("Max-Forwards", value, g.MAX_FORWARDS_MAX, found, None)
    elif key in ("expires", "min-expires"):
        _scalar(name, value, g.MAX_UINT32, found, None)
    elif key == "retry-after":
        _scalar("Retry-After", value, g.MAX_UINT32, found, None, prefix=True)
    elif key == "warning":
        for part in h.split_list(value):
            if not g.WARNING_VALUE.match(part.strip()):
                found.append(Defect("bad-warning", f"Warning {part.strip()!r} has no 3-digit code", None, True))
    elif key == "date":
        if not g.SIP_DATE.fullmatch(value):
            found.append(Defect("bad-date", f"Date {value!r} is not an RFC 1123 date in GMT", None, True))
    elif key in ("from", "to"):
        h.parse_name_addr(value, found, name)
    elif key in g.NAME_ADDR_LISTS:
        if key == "history-info":
            h.history_info_list([value], found)
        elif not (key == "contact" and value.strip() == "*"):
            h.name_addr_list([value], found, name)
    elif key == "via":
        h.via_list([value], found)
    elif key == "session-id":
        h.session_id_of(value, found)
    elif key == "reason":
        h.reason_list([value], found)
    elif key == "p-charging-vector":
        h.charging_vector_of(value, found)
    _stamp(found, offset, out)


def check(message: SipMessage) -> tuple[Defect, ...]:
    """Every rule defect of ``message`` (framing defects are not repeated)."""
    headers = message.headers
    out: list[Defect] = list(headers.line_defects)
    offsets = headers.offsets
    counts: dict[str, int] = {}
    repeated_at: dict[str, int] = {}
    for i, (_, canonical, raw_value) in enumerate(headers.entries):
        key = canonical.lower()
        counts[key] = counts.get(key, 0) + 1
        offset = offsets[i]
        if counts[key] == 2:
            repeated_at[key] = offset
        value = unfold(raw_value)
        if g.VALUE_BAD_CTL.search(value):
            out.append(Defect("control-character", f"{canonical}: control character in the value", offset, True))
        if g.NOT_UTF8.search(value):
            out.append(Defect("invalid-utf8", f"{canonical}: value is not valid UTF-8", offset, True))
        _check_header(canonical, value, offset, message, out)
    if g.NOT_UTF8.search(message.start_line):
        out.append(Defect("invalid-utf8", "start line is not valid UTF-8", 0, True))

    for name in REQUIRED:
        if name.lower() not in counts:
            out.append(Defect("missing-header", f"required header {name} is missing", None, True))
    if message.method is not None and "max-forwards" not in counts:
        out.append(
            Defect("missing-max-forwards", "request has no Max-Forwards (RFC 2543 peer?)", None, False)
        )
    for key in sorted(g.SINGLE_VALUED):
        if counts.get(key, 0) > 1 and key != "content-length":  # framing reports that one
            out.append(
                Defect(
                    "repeated-header",
                    f"{key} appears {counts[key]} times but allows one value",
                    repeated_at[key],
                    True,
                )
            )

    if message.target is not None:
        found: list[Defect] = []
        uri = h.parse_uri(message.target, found, "Request-URI")
        if uri.headers:
            found.append(
                Defect("headers-in-request-uri", "the Request-URI carries ?headers (RFC 3261 §19.1.1)", None, True)
            )
        _stamp(found, 0, out)

    if message.body and message.content_type is None:
        out.append(Defect("body-without-content-type", "body present but no Content-Type", None, False))
    _body_defects(message, out)
    return tuple(out)


def _body_defects(message: SipMessage, out: list[Defect]) -> None:
    """Body problems are evidence, not SIP violations: recorded, never strict."""
    end = message.length if message.length is not None else len(message.raw)
    body_start = end - len(message.body)

    def shifted(found: tuple[Defect, ...] | list[Defect], what: str, base: int | None) -> None:
        out.extend(
            Defect(
                d.code,
                f"{what}: {d.detail}",
                base + d.offset if base is not None and d.offset is not None else None,
                False,
            )
            for d in found
        )

    _, multipart = _multipart.parse_multipart(message.headers.get("Content-Type"), message.body)
    shifted(multipart, "multipart body", body_start)
    sdp = message.sdp
    if sdp is not None and sdp.defects:
        base = body_start if sdp.raw is message.body else None
        if base is None:  # the SDP is a part of a multipart body
            for part in message.parts:
                if part.body is sdp.raw and part.offset is not None:
                    base = body_start + message.body.find(part.body, part.offset)
        shifted(sdp.defects, "SDP", base)
