"""Multipart bodies (RFC 2046 §5.1) -> :class:`~sipchain.model.BodyPart` tuples.

A multipart body is split on delimiter lines built from the ``boundary``
parameter of its Content-Type. The preamble before the first delimiter and the
epilogue after the close delimiter are ignored; the CRLF in front of each
delimiter belongs to the delimiter, so part bodies come out byte-exact, binary
content included. Content-Transfer-Encoding is not undone: a part's ``body`` is
the octets as carried. Nested multipart parts are returned as they are; pass a
part's Content-Type and body to :func:`parts_of` again to open it.

Nothing here raises: problems become :class:`~sipchain.model.Defect` entries
(``violation=False``) with byte offsets inside the multipart body.
"""

from __future__ import annotations

import re
from itertools import pairwise

from sipchain.model import BodyPart, Defect, Headers
from sipchain.wire._message import parse_header_block

__all__ = ["boundary_of", "parse_multipart", "parts_of"]

# RFC 2045 §5.1 (and RFC 3261 §20.15 m-parameter):
# parameter := attribute "=" value ; attribute := token ; value := token / quoted-string
# tspecials := "(" / ")" / "<" / ">" / "@" / "," / ";" / ":" / "\" / <"> / "/" / "[" /
#              "]" / "?" / "="
# An unquoted value is read up to the next ";" (deployed stacks put tspecials
# such as "=" in unquoted boundaries); a quoted one honours quoted-pairs.
PARAMETER = re.compile(
    r';[ \t]*([^ \t=;"]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^;]*))', re.DOTALL
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)

# boundary := 0*69<bchars> bcharsnospace
# bchars := bcharsnospace / " "
# bcharsnospace := DIGIT / ALPHA / "'" / "(" / ")" / "+" / "_" / "," / "-" / "." /
#                  "/" / ":" / "=" / "?"
BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")

# transport-padding := *LWSP-char ; LWSP-char = SP / HTAB
_PADDING = re.compile(rb"[ \t]*")

# A part's first line looks like a header field: field-name ":" (RFC 5322 §3.6.8
# ftext, i.e. printable US-ASCII except ":").
_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def boundary_of(content_type: str, defects: list[Defect] | None = None) -> str | None:
    """The ``boundary`` parameter of a Content-Type value, unquoted, or ``None``.

    Parameter names compare case-insensitively; the first ``boundary`` wins. A
    boundary outside the RFC 2046 §5.1.1 grammar is still returned, with a
    defect appended to ``defects`` (offset ``None``: it is not in the body).
    """
    _, _, params = content_type.partition(";")
    for match in PARAMETER.finditer(";" + params):
        if match.group(1).lower() != "boundary":
            continue
        quoted, token = match.group(2), match.group(3)
        value = _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else token.rstrip(" \t")
        if not value:
            return None
        if defects is not None and not BOUNDARY.fullmatch(value):
            defects.append(
                Defect(
                    "multipart-bad-boundary",
                    f"boundary {value[:80]!r} does not follow RFC 2046 §5.1.1",
                    None,
                    False,
                )
            )
        return value
    return None


def _part(body: bytes, start: int, end: int, defects: list[Defect]) -> BodyPart:
    """One body-part := MIME-part-headers [CRLF *OCTET], from ``body[start:end]``."""
    if start >= end:
        return BodyPart(Headers(), b"", start)
    # A part may have no headers: it starts with the empty line at once.
    if body.startswith(b"\r\n", start):
        return BodyPart(Headers(), body[start + 2 : end], start)
    if body.startswith(b"\n", start):
        return BodyPart(Headers(), body[start + 1 : end], start)
    eol = body.find(b"\n", start, end)
    newline = b"\r\n" if eol > start and body[eol - 1] == 0x0D else b"\n"
    blank = body.find(newline + newline, start, end) if eol >= 0 else -1
    if blank >= 0:
        block = body[start:blank]
        content = body[blank + 2 * len(newline) : end]
    elif _HEADER_LINE.match(body, start, end):
        # Headers only, no body: the optional [CRLF *OCTET] is absent.
        block = body[start:end].rstrip(b"\r\n")
        content = b""
    else:
        defects.append(
            Defect(
                "multipart-part-without-headers",
                "part has neither header fields nor the empty line before its body",
                start,
                False,
            )
        )
        return BodyPart(Headers(), body[start:end], start)
    found: list[Defect] = []
    headers = parse_header_block(block, start, found, newline=newline)
    # Offsets stay inside the part (a bare LF in a CRLF block can shift them).
    defects.extend(
        Defect(
            d.code,
            f"multipart part header: {d.detail}",
            None if d.offset is None else min(d.offset, end),
            False,
        )
        for d in found
    )
    return BodyPart(headers, content, start)


def parse_multipart(
    content_type: str | None, body: bytes
) -> tuple[tuple[BodyPart, ...], list[Defect]]:
    """Split a multipart body (RFC 2046 §5.1) into its parts, with defects.

    Returns ``((), [])`` unless the media type of ``content_type`` starts with
    ``multipart/``. Otherwise the body is split on ``--boundary`` lines: the
    preamble and the epilogue (after ``--boundary--``) are ignored, the line
    end in front of each delimiter belongs to the delimiter, and each part gets
    its own header block (possibly empty) and body. ``BodyPart.offset`` is the
    offset of the part's first byte (its first header byte) in ``body``.

    Tolerated, each recorded as a defect with ``violation=False``: a bare LF in
    front of a delimiter, a line that starts with the delimiter but goes on
    with other text (not taken as a delimiter), a missing close delimiter (the
    last part runs to the end of the body), a part with neither headers nor an
    empty line (all of it is taken as its body). A missing boundary parameter
    or a body without any delimiter gives no parts. Never raises.
    """
    defects: list[Defect] = []
    if content_type is None:
        return (), defects
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not media_type.startswith("multipart/"):
        return (), defects
    boundary = boundary_of(content_type, defects)
    if boundary is None:
        defects.append(
            Defect(
                "multipart-no-boundary", f"{media_type} without a boundary parameter", None, False
            )
        )
        return (), defects

    # dash-boundary := "--" boundary ; delimiter := CRLF dash-boundary
    # close-delimiter := delimiter "--"
    # encapsulation := delimiter transport-padding CRLF body-part
    needle = b"--" + boundary.encode("utf-8", "surrogateescape")
    size = len(body)
    find = body.find
    # (start of the delimiter with its line end in front, end of its line, is close)
    delimiters: list[tuple[int, int, bool]] = []
    bare_lf_reported = False
    pos = 0
    while True:
        i = find(needle, pos)
        if i < 0:
            break
        pos = i + 1
        if i > 0 and body[i - 1] != 0x0A:
            continue  # not at the start of a line
        after = i + len(needle)
        close = body.startswith(b"--", after)
        if close:
            after += 2
        padded = _PADDING.match(body, after)
        after = padded.end() if padded is not None else after
        if close:
            # Whatever follows the close delimiter on its line is epilogue.
            line_end = after
        elif after == size:
            line_end = size
        elif body.startswith(b"\r\n", after):
            line_end = after + 2
        elif body[after] == 0x0A:
            line_end = after + 1
        else:
            defects.append(
                Defect(
                    "multipart-boundary-prefix",
                    "a line starts with the boundary but goes on with other text; not a delimiter",
                    i,
                    False,
                )
            )
            continue
        start = i
        if i > 0:
            start = i - 1
            if i >= 2 and body[i - 2] == 0x0D:
                start = i - 2
            elif delimiters and not bare_lf_reported:
                bare_lf_reported = True
                defects.append(
                    Defect(
                        "multipart-bare-lf",
                        "delimiter preceded by LF instead of CRLF",
                        start,
                        False,
                    )
                )
        delimiters.append((start, line_end, close))
        if close:
            break
        pos = line_end

    if not delimiters:
        defects.append(
            Defect(
                "multipart-no-delimiter",
                f"no delimiter line for boundary {boundary[:80]!r}",
                None,
                False,
            )
        )
        return (), defects

    parts: list[BodyPart] = []
    for (_, part_start, _), (next_start, _, _) in pairwise(delimiters):
        parts.append(_part(body, part_start, max(part_start, next_start), defects))
    last_start, last_end, last_close = delimiters[-1]
    if not last_close:
        defects.append(
            Defect(
                "multipart-no-close-delimiter",
                f"no close delimiter '--{boundary[:80]}--'; the last part runs to the end",
                size,
                False,
            )
        )
        if last_end < size:
            parts.append(_part(body, last_end, size, defects))
    elif len(delimiters) == 1:
        defects.append(
            Defect(
                "multipart-no-parts",
                "close delimiter without any part before it",
                last_start,
                False,
            )
        )
    return tuple(parts), defects


def parts_of(content_type: str | None, body: bytes) -> tuple[BodyPart, ...]:
    """The parts of a multipart body (empty for any other body or when unreadable).

    ``content_type`` is the Content-Type header value (with its parameters).
    See :func:`parse_multipart`, which also returns the defects found.
    """
    return parse_multipart(content_type, body)[0]
