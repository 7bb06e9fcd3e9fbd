"""Rule checks beyond the torture corpus: control characters, UTF-8, limits, offsets."""

from __future__ import annotations

import pytest

from sipchain import SipParseError, build_message, parse_message

BASE = [
    ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9"),
    ("From", "<sip:alice@example.com>;tag=9fxced76sl"),
    ("To", "<sip:bob@example.com>"),
    ("Call-ID", "c1@example.com"),
    ("CSeq", "1 OPTIONS"),
    ("Max-Forwards", "70"),
]


def _wire(*extra: tuple[str, str]) -> bytes:
    return build_message("OPTIONS sip:bob@example.com SIP/2.0", BASE + list(extra)).raw


def test_clean_message_has_no_defects() -> None:
    m = parse_message(_wire(), strict=True)
    assert m.defects == ()


def test_control_character_in_plain_header() -> None:
    data = _wire(("X-CID", "\x008f2a"))
    with pytest.raises(SipParseError) as info:
        parse_message(data, strict=True)
    assert info.value.code == "control-character"
    (d,) = [d for d in parse_message(data).defects if d.code == "control-character"]
    assert data[d.offset : d.offset + 6] == b"X-CID:"  # type: ignore[index,operator]


def test_escaped_control_character_in_quoted_string_is_fine() -> None:
    data = _wire(("X-Note", '"NUL:\\\x00 ok"'))
    parse_message(data, strict=True)


def test_invalid_utf8_is_a_violation_but_bytes_survive() -> None:
    data = _wire().replace(b"<sip:alice", b'"Zo\xeb" <sip:alice')
    with pytest.raises(SipParseError) as info:
        parse_message(data, strict=True)
    assert info.value.code == "invalid-utf8"
    m = parse_message(data)
    assert m.from_ is not None
    assert m.from_.display_name is not None
    assert m.from_.display_name.encode("utf-8", "surrogateescape") == b"Zo\xeb"
    assert m.raw == data


def test_size_limit() -> None:
    data = _wire(("X-Big", "a" * 5000))
    parse_message(data)
    with pytest.raises(SipParseError) as info:
        parse_message(data, max_size=4096)
    assert info.value.code == "too-large"


def test_header_count_limit() -> None:
    data = _wire(*[("X-N", str(i)) for i in range(50)])
    assert len(parse_message(data).headers) == 57  # with Content-Length
    with pytest.raises(SipParseError, match="header lines"):
        parse_message(data, max_headers=20)
    folded = data.replace(b"X-N: 1\r\n", b"X-N:\r\n 1\r\n")  # the general path counts too
    with pytest.raises(SipParseError, match="header lines"):
        parse_message(folded, max_headers=20)


def test_repeated_header_points_at_the_second_line() -> None:
    data = _wire(("Call-ID", "other@example.com"))
    (d,) = [d for d in parse_message(data).defects if d.code == "repeated-header"]
    assert d.offset is not None
    assert data[d.offset :].startswith(b"Call-ID: other@example.com")


def test_non_bytes_input_is_a_parse_error() -> None:
    with pytest.raises(SipParseError, match="expected bytes"):
        parse_message("OPTIONS sip:a@b SIP/2.0\r\n\r\n")  # type: ignore[arg-type]
    m = parse_message(bytearray(_wire()))
    assert m.call_id == "c1@example.com"


@pytest.mark.parametrize(
    "data",
    [b"", b"\r\n\r\n", b"hello", b"SIP/2.0 abc OK\r\n\r\n", b"\x00\x01\x02", b"GET / HTTP/1.1\r\n\r\n"],
)
def test_not_sip_raises_in_both_modes(data: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(data)
    with pytest.raises(SipParseError):
        parse_message(data, strict=True)


def test_fast_and_general_paths_agree() -> None:
    data = _wire(("Subject", "hello"))
    folded = data.replace(b"Subject: hello", b"Subject:\r\n hello")
    fast, general = parse_message(data), parse_message(folded)
    for name in ("call_id", "cseq", "from_tag", "to_tag", "branch", "method", "target"):
        assert getattr(fast, name) == getattr(general, name)
    assert fast.headers.get("Subject") == general.headers.get("Subject") == "hello"


def test_bare_lf_header_offsets_are_exact() -> None:
    data = b"OPTIONS sip:a@b SIP/2.0\r\nA: 1\nB: 2\r\nC: 3\r\n\r\n"
    m = parse_message(data)
    assert [data[o : o + 1] for o in m.headers.offsets] == [b"A", b"B", b"C"]
    (d,) = [d for d in m.defects if d.code == "bare-lf"]
    assert d.offset == data.index(b"A: 1")
    assert d.violation


def test_multipart_body_defects_reach_the_message() -> None:
    body = b"--xyz\r\nContent-Type: text/plain\r\n\r\nHello\r\n"  # no close delimiter
    m = build_message(
        "MESSAGE sip:bob@example.com SIP/2.0",
        [*BASE[:4], ("CSeq", "1 MESSAGE"), ("Content-Type", "multipart/mixed;boundary=xyz")],
        body,
    )
    found = [d for d in m.defects if d.detail.startswith("multipart body")]
    assert found
    assert not any(d.violation for d in found)
    assert [p.body for p in m.parts] == [b"Hello\r\n"]  # no delimiter: runs to the end
