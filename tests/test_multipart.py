"""Multipart bodies (RFC 2046 §5.1): torture corpus, hand-built cases, properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sipchain.model import BodyPart, Defect, SdpOrigin
from sipchain.wire._multipart import boundary_of, parse_multipart, parts_of
from sipchain.wire._sdp import parse_sdp

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
TORTURE = CORPUS / "torture"

skip_without_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"third-party corpus not present at {CORPUS}"
)


def split_message(name: str) -> tuple[bytes, bytes]:
    """Header section and body of a torture message, split at the first empty line."""
    data = (TORTURE / name).read_bytes()
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"{name} has no empty line"
    return head, body


def header_value(head: bytes, name: bytes) -> str:
    for line in head.split(b"\r\n"):
        field, colon, value = line.partition(b":")
        if colon and field.strip().lower() == name.lower():
            return value.strip().decode()
    raise AssertionError(f"no {name!r} header")


def codes(defects: list[Defect]) -> list[str]:
    return [d.code for d in defects]


SDP_BODY = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)
BINARY = bytes(range(256)) + b"\r\n\r\n\x00\r\r\n\n--not-the-boundary\r\n\x00"


# ---------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------


@pytest.mark.corpus
@skip_without_corpus
def test_rfc4475_mpart01() -> None:
    """RFC 4475 §3.1.1.11: a MESSAGE with text/plain and binary octet-stream parts."""
    head, body = split_message("rfc4475/mpart01.dat")
    content_type = header_value(head, b"Content-Type")
    assert content_type == "multipart/mixed;boundary=7a9cbec02ceef655"
    parts, defects = parse_multipart(content_type, body)
    assert defects == []
    assert parts_of(content_type, body) == parts
    assert len(parts) == 2
    text, binary = parts
    assert [p.content_type for p in parts] == ["text/plain", "application/octet-stream"]
    assert text.headers.get("Content-Transfer-Encoding") == "binary"
    assert text.body == b"Hello"
    assert text.offset == body.index(b"Content-Type: text/plain")
    assert binary.offset == body.index(b"Content-Type: application/octet-stream")
    # The binary part: a DER blob (starts 0x30 0x82) with NUL, bare CR and bare LF
    # inside; the CRLF before the close delimiter is not part of it.
    assert len(binary.body) == 342
    assert binary.body[:4] == b"0\x82\x01R"
    assert binary.body[-4:] == b"\xbc\x99\xd0\x05"
    assert b"\x00" in binary.body
    assert b"\n" in binary.body.replace(b"\r\n", b"")
    assert b"\r" in binary.body.replace(b"\r\n", b"")
    start = body.index(binary.body)
    assert body[start + len(binary.body) :] == b"\r\n--7a9cbec02ceef655--\r\n"
    # Content-Length is 553: the whole body, close delimiter included.
    assert len(body) == int(header_value(head, b"Content-Length"))


@pytest.mark.corpus
@skip_without_corpus
def test_rfc4475_single_part_bodies_are_not_multipart() -> None:
    head, body = split_message("rfc4475/wsinv.dat")
    assert parse_multipart(header_value(head, b"Content-Type"), body) == ((), [])


# ---------------------------------------------------------------------------
# Hand-built cases
# ---------------------------------------------------------------------------


def multipart(
    boundary: bytes, *parts: bytes, preamble: bytes = b"", epilogue: bytes = b""
) -> bytes:
    out = preamble + b"\r\n" if preamble else b""
    for part in parts:
        out += b"--" + boundary + b"\r\n" + part + b"\r\n"
    return out + b"--" + boundary + b"--\r\n" + epilogue


def test_sdp_and_binary_parts() -> None:
    body = multipart(
        b"unique-boundary-1",
        b"Content-Type: application/sdp\r\nContent-Disposition: session\r\n\r\n" + SDP_BODY,
        b"Content-Type: application/octet-stream\r\n\r\n" + BINARY,
    )
    parts = parts_of("multipart/mixed; boundary=unique-boundary-1", body)
    assert [p.content_type for p in parts] == ["application/sdp", "application/octet-stream"]
    assert parts[0].body == SDP_BODY
    assert parts[1].body == BINARY
    assert parts[0].offset == len(b"--unique-boundary-1\r\n")
    sdp = parse_sdp(parts[0].body)
    assert sdp.origin == SdpOrigin("alice", "2890844526", "2890844526", "IN", "IP4", "192.0.2.101")
    assert [(m.media, m.port, m.formats) for m in sdp.media] == [("audio", 49172, ("0",))]


def test_rfc2046_example_quoted_boundary_preamble_epilogue() -> None:
    """The example of RFC 2046 §5.1.1, byte for byte (CRLF line ends)."""
    body = (
        b"This is the preamble.  It is to be ignored, though it\r\n"
        b"is a handy place for composition agents to include an\r\n"
        b"explanatory note to non-MIME conformant readers.\r\n"
        b"\r\n"
        b"--simple boundary\r\n"
        b"\r\n"
        b"This is implicitly typed plain US-ASCII text.\r\n"
        b"It does NOT end with a linebreak.\r\n"
        b"--simple boundary\r\n"
        b"Content-type: text/plain; charset=us-ascii\r\n"
        b"\r\n"
        b"This is explicitly typed plain US-ASCII text.\r\n"
        b"It DOES end with a linebreak.\r\n"
        b"\r\n"
        b"--simple boundary--\r\n"
        b"\r\n"
        b"This is the epilogue.  It is also to be ignored.\r\n"
    )
    parts, defects = parse_multipart('multipart/mixed; boundary="simple boundary"', body)
    assert defects == []
    implicit, explicit = parts
    assert len(implicit.headers) == 0
    assert implicit.content_type is None
    assert implicit.body == (
        b"This is implicitly typed plain US-ASCII text.\r\nIt does NOT end with a linebreak."
    )
    assert implicit.offset == body.index(b"--simple boundary\r\n") + 19
    assert explicit.content_type == "text/plain"
    assert explicit.headers.get("content-type") == "text/plain; charset=us-ascii"
    assert explicit.body == (
        b"This is explicitly typed plain US-ASCII text.\r\nIt DOES end with a linebreak.\r\n"
    )


def test_nested_multipart() -> None:
    inner = multipart(
        b"inner",
        b"Content-Type: text/plain\r\n\r\nplain",
        b"Content-Type: text/html\r\n\r\n<p>html</p>",
    )
    outer = multipart(
        b"outer",
        b"Content-Type: application/sdp\r\n\r\n" + SDP_BODY,
        b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n' + inner,
    )
    sdp_part, nested = parts_of("multipart/mixed;boundary=outer", outer)
    assert sdp_part.body == SDP_BODY
    assert nested.content_type == "multipart/alternative"
    assert nested.body == inner
    plain, html = parts_of(nested.headers.get("Content-Type"), nested.body)
    assert (plain.content_type, plain.body) == ("text/plain", b"plain")
    assert (html.content_type, html.body) == ("text/html", b"<p>html</p>")


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/sdp", "text/plain; boundary=x", "message/sipfrag", "multipart"],
)
def test_not_multipart(content_type: str | None) -> None:
    body = multipart(b"x", b"Content-Type: text/plain\r\n\r\nhi")
    assert parts_of(content_type, body) == ()
    assert parse_multipart(content_type, body) == ((), [])


def test_media_type_and_parameter_names_are_case_insensitive() -> None:
    body = multipart(b"Abc", b"\r\nx")
    (part,) = parts_of("  Multipart/Related ;Type=application/sdp; BOUNDARY = Abc ", body)
    assert part.body == b"x"


def test_boundary_parameter_forms() -> None:
    assert boundary_of("multipart/mixed; boundary=abc") == "abc"
    assert boundary_of('multipart/mixed; boundary="a;b c"; start=x') == "a;b c"
    assert boundary_of(r'multipart/mixed; boundary="a\"b"') == 'a"b'
    assert boundary_of("multipart/mixed; charset=x; boundary=----=_Part_0") == "----=_Part_0"
    assert boundary_of("multipart/mixed; boundary=") is None
    assert boundary_of("multipart/mixed") is None
    found: list[Defect] = []
    assert boundary_of('multipart/mixed; boundary="trailing "', found) == "trailing "
    assert codes(found) == ["multipart-bad-boundary"]


def test_missing_boundary() -> None:
    parts, defects = parse_multipart("multipart/mixed", b"--x\r\n\r\nbody\r\n--x--\r\n")
    assert parts == ()
    assert codes(defects) == ["multipart-no-boundary"]
    assert defects[0].violation is False


def test_no_delimiter() -> None:
    parts, defects = parse_multipart("multipart/mixed; boundary=x", b"just text\r\n--y--\r\n")
    assert parts == ()
    assert codes(defects) == ["multipart-no-delimiter"]
    assert parse_multipart("multipart/mixed; boundary=x", b"")[0] == ()


def test_missing_close_delimiter() -> None:
    body = b"--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\n\r\ntwo, cut short"
    parts, defects = parse_multipart("multipart/mixed; boundary=b", body)
    assert [p.body for p in parts] == [b"one", b"two, cut short"]
    assert [(d.code, d.offset, d.violation) for d in defects] == [
        ("multipart-no-close-delimiter", len(body), False)
    ]


def test_close_delimiter_only() -> None:
    parts, defects = parse_multipart("multipart/mixed; boundary=b", b"preamble\r\n--b--\r\n")
    assert parts == ()
    assert codes(defects) == ["multipart-no-parts"]


def test_boundary_as_line_prefix_is_not_a_delimiter() -> None:
    body = b"--b\r\n\r\nline\r\n--bxyz still body\r\nend\r\n--b--"
    parts, defects = parse_multipart("multipart/mixed; boundary=b", body)
    assert [p.body for p in parts] == [b"line\r\n--bxyz still body\r\nend"]
    assert [(d.code, d.offset) for d in defects] == [
        ("multipart-boundary-prefix", body.index(b"--bxyz"))
    ]


def test_boundary_inside_a_line_is_not_a_delimiter() -> None:
    body = b"--b\r\n\r\nsee --b here\r\n--b--\r\n"
    parts, defects = parse_multipart("multipart/mixed; boundary=b", body)
    assert [p.body for p in parts] == [b"see --b here"]
    assert defects == []


def test_transport_padding_after_delimiters() -> None:
    body = b"--b \t\r\nContent-Type: text/plain\r\n\r\nx\r\n--b  \r\n\r\ny\r\n--b-- \r\nepilogue"
    parts, defects = parse_multipart("multipart/mixed; boundary=b", body)
    assert defects == []
    assert [p.body for p in parts] == [b"x", b"y"]


def test_bare_lf_delimiters_are_tolerated() -> None:
    body = b"--b\nContent-Type: text/plain\n\nfirst\n--b\n\nsecond\r\n--b--\n"
    parts, defects = parse_multipart("multipart/mixed; boundary=b", body)
    assert [(p.content_type, p.body) for p in parts] == [
        ("text/plain", b"first"),
        (None, b"second"),
    ]
    assert codes(defects) == ["multipart-bare-lf"]
    assert defects[0].offset == body.index(b"\n--b\n")


def test_part_with_headers_only() -> None:
    body = b"--b\r\nContent-Type: text/plain\r\n\r\n--b\r\nContent-ID: <x>\r\n--b--\r\n"
    parts, defects = parse_multipart("multipart/mixed; boundary=b", body)
    assert defects == []
    assert [(p.headers.items(), p.body) for p in parts] == [
        ((("Content-Type", "text/plain"),), b""),
        ((("Content-ID", "<x>"),), b""),
    ]


def test_part_without_headers_or_empty_line() -> None:
    body = b"--b\r\n\x00\x01 raw octets\r\n--b--\r\n"
    parts, defects = parse_multipart("multipart/mixed; boundary=b", body)
    assert [p.body for p in parts] == [b"\x00\x01 raw octets"]
    assert len(parts[0].headers) == 0
    assert [(d.code, d.offset) for d in defects] == [("multipart-part-without-headers", 5)]


def test_empty_parts() -> None:
    parts = parts_of("multipart/mixed; boundary=b", b"--b\r\n--b\r\n\r\n--b--")
    assert [(len(p.headers), p.body) for p in parts] == [(0, b""), (0, b"")]


def test_part_header_defects_are_not_violations() -> None:
    body = b"--b\r\nContent-Type: text/plain\r\nno colon here\r\n\r\nx\r\n--b--\r\n"
    parts, defects = parse_multipart("multipart/mixed; boundary=b", body)
    assert parts[0].body == b"x"
    assert parts[0].content_type == "text/plain"
    assert [(d.code, d.offset, d.violation) for d in defects] == [
        ("header-without-colon", body.index(b"no colon"), False)
    ]


def test_folded_part_header() -> None:
    body = b"--b\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\nx\r\n--b--\r\n"
    (part,) = parts_of("multipart/mixed; boundary=b", body)
    assert part.headers.get("Content-Type") == "text/plain; charset=utf-8"
    assert part.content_type == "text/plain"


def test_many_parts_are_linear() -> None:
    count = 20000
    body = multipart(b"b", *(b"Content-Type: text/plain\r\n\r\n%d" % i for i in range(count)))
    parts = parts_of("multipart/mixed; boundary=b", body)
    assert len(parts) == count
    assert parts[-1].body == b"%d" % (count - 1)


def test_one_large_binary_part() -> None:
    blob = (BINARY * 5000)[: 1 << 20]
    (part,) = parts_of("multipart/mixed; boundary=b", multipart(b"b", b"\r\n" + blob))
    assert part.body == blob


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

BCHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?"
boundaries = st.text(alphabet=BCHARS, min_size=8, max_size=70)
header_names = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-",
    min_size=1,
    max_size=20,
)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
)
part_headers = st.lists(st.tuples(header_names, header_values), max_size=4)


@given(st.binary(max_size=2000), st.text(max_size=80))
def test_arbitrary_input_never_raises(body: bytes, content_type: str) -> None:
    for ct in (
        content_type,
        "multipart/" + content_type,
        "multipart/mixed; boundary=" + content_type,
    ):
        parts, defects = parse_multipart(ct, body)
        assert isinstance(parts, tuple)
        assert all(isinstance(p, BodyPart) for p in parts)
        assert all(isinstance(d, Defect) and d.violation is False for d in defects)
        assert parts_of(ct, body) == parts


@given(
    boundaries,
    st.lists(st.sampled_from([b"\r\n", b"\n", b"--", b"x", b"\r", b"\x00", b": "]), max_size=60),
)
def test_delimiter_soup_never_raises(boundary: str, pieces: list[bytes]) -> None:
    token = b"--" + boundary.encode()
    body = b"".join(token if p == b"x" else p for p in pieces)
    parts, defects = parse_multipart(f'multipart/mixed; boundary="{boundary}"', body)
    for part in parts:
        assert part.offset is not None
        assert 0 <= part.offset <= len(body)
        assert part.body in body
    for defect in defects:
        assert defect.offset is None or 0 <= defect.offset <= len(body)


@given(
    boundaries,
    st.lists(st.tuples(part_headers, st.binary(max_size=300)), min_size=1, max_size=6),
    st.binary(max_size=100),
    st.binary(max_size=100),
    st.booleans(),
)
def test_generated_parts_round_trip(
    boundary: str,
    parts: list[tuple[list[tuple[str, str]], bytes]],
    preamble: bytes,
    epilogue: bytes,
    quoted: bool,
) -> None:
    token = boundary.encode()
    encoded = [
        b"".join(f"{name}: {value}\r\n".encode() for name, value in headers) + b"\r\n" + content
        for headers, content in parts
    ]
    assume(all(b"--" + token not in raw for raw in [preamble, *encoded]))
    body = multipart(token, *encoded, preamble=preamble, epilogue=epilogue)
    content_type = (
        f'multipart/mixed; boundary="{boundary}"'
        if quoted
        else (f"multipart/mixed; boundary={boundary}")
    )
    got, defects = parse_multipart(content_type, body)
    assert defects == []
    assert len(got) == len(parts)
    for part, (headers, content), raw in zip(got, parts, encoded, strict=True):
        assert part.body == content
        assert [(f.raw_name, f.value) for f in part.headers.fields()] == [
            (name, value.strip()) for name, value in headers
        ]
        assert part.offset is not None
        assert body[part.offset : part.offset + len(raw)] == raw
