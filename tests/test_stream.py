"""SipStreamParser: framing by Content-Length, fed whole, byte by byte, in pieces."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipchain import NEED_DATA, SipMessage, SipParseError, SipStreamParser, parse_message

DATA = Path(__file__).parent / "data" / "torture"


def _framable() -> list[tuple[str, bytes]]:
    """Torture messages whose Content-Length frames them exactly (stream-safe)."""
    out = []
    for path in sorted(DATA.glob("rfc*/*.dat")):
        data = path.read_bytes()
        try:
            m = parse_message(data)
        except SipParseError:
            continue
        if m.content_length is not None and m.length == len(data) and not any(
            d.violation for d in m.defects
        ):
            out.append((path.stem, data))
    return out


FRAMABLE = _framable()


def _drain(parser: SipStreamParser) -> list[SipMessage]:
    out = []
    while True:
        item = parser.next_message()
        if item is NEED_DATA:
            return out
        out.append(item)


def test_enough_cases() -> None:
    assert len(FRAMABLE) >= 25


@pytest.mark.parametrize(("name", "data"), FRAMABLE, ids=[n for n, _ in FRAMABLE])
def test_whole(name: str, data: bytes) -> None:
    p = SipStreamParser(strict=True)
    p.receive_data(data)
    (m,) = _drain(p)
    assert m.raw == data
    assert m == parse_message(data)
    assert p.buffered == 0


@pytest.mark.parametrize(("name", "data"), FRAMABLE, ids=[n for n, _ in FRAMABLE])
def test_byte_by_byte(name: str, data: bytes) -> None:
    p = SipStreamParser(strict=True)
    for i in range(len(data) - 1):
        p.receive_data(data[i : i + 1])
        assert p.next_message() is NEED_DATA, f"message complete early at byte {i}"
    p.receive_data(data[-1:])
    m = p.next_message()
    assert isinstance(m, SipMessage)
    assert m.raw == data
    assert p.next_message() is NEED_DATA


@pytest.mark.parametrize(("name", "data"), FRAMABLE, ids=[n for n, _ in FRAMABLE])
def test_with_trailing_bytes(name: str, data: bytes) -> None:
    p = SipStreamParser()
    tail = b"OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
    p.receive_data(data + tail)
    (m,) = _drain(p)
    assert m.raw == data
    assert p.buffered == len(tail)
    assert p.consumed == len(data)


def test_several_messages_in_one_buffer_and_keepalives() -> None:
    datas = [d for _, d in FRAMABLE[:5]]
    stream = b"\r\n\r\n".join(datas) + b"\r\n"
    p = SipStreamParser(strict=True)
    p.receive_data(stream)
    got = _drain(p)
    assert [m.raw for m in got] == datas
    assert p.keepalives == 5
    offsets = []
    p2 = SipStreamParser()
    p2.receive_data(stream)
    while p2.next_message() is not NEED_DATA:
        offsets.append(p2.last_offset)
    expected, pos = [], 0
    for d in datas:
        expected.append(pos)
        pos += len(d) + 4
    assert offsets == expected


def test_body_split_across_chunks() -> None:
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    head = (
        b"INVITE sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n"
        b"Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n"
        b"From: <sip:alice@example.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710\r\n"
        b"CSeq: 314159 INVITE\r\nContent-Type: application/sdp\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    data = head + body
    p = SipStreamParser(strict=True)
    for chunk in (data[:10], data[10 : len(head) + 5], data[len(head) + 5 : -3]):
        p.receive_data(chunk)
        assert p.next_message() is NEED_DATA
    p.receive_data(data[-3:])
    m = p.next_message()
    assert isinstance(m, SipMessage)
    assert m.body == body
    assert m.sdp is not None


def test_garbage_before_start_line_is_skipped_and_recorded() -> None:
    _, data = FRAMABLE[0]
    p = SipStreamParser()
    p.receive_data(b"\x00\x01garbage line\r\nmore: junk\r\n" + data)
    (m,) = _drain(p)
    assert m.raw == data
    (skipped,) = p.discarded
    assert skipped.offset == 0
    assert skipped.data == b"\x00\x01garbage line\r\nmore: junk\r\n"


def test_garbage_in_strict_mode_raises() -> None:
    p = SipStreamParser(strict=True)
    p.receive_data(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(SipParseError) as info:
        p.next_message()
    assert info.value.code == "garbage"


def test_buffer_limit_bounds_memory() -> None:
    p = SipStreamParser(max_buffer=1024)
    p.receive_data(b"INVITE sip:a@b SIP/2.0\r\nX-Long: " + b"a" * 2000)
    with pytest.raises(SipParseError) as info:
        p.next_message()
    assert info.value.code == "buffer-limit"
    assert p.buffered == 0


def test_content_length_beyond_limit_is_rejected_before_buffering() -> None:
    p = SipStreamParser(max_buffer=1024)
    p.receive_data(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 99999999\r\n\r\nxx")
    with pytest.raises(SipParseError, match="buffer limit"):
        p.next_message()


def test_missing_content_length_lenient_and_strict() -> None:
    data = b"BYE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\n\r\n"
    p = SipStreamParser()
    p.receive_data(data)
    (m,) = _drain(p)
    assert "missing-content-length" in {d.code for d in m.defects}
    strict = SipStreamParser(strict=True)
    strict.receive_data(data)
    with pytest.raises(SipParseError):
        strict.next_message()


def test_unframable_content_length_is_discarded() -> None:
    _, good = FRAMABLE[0]
    bad = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -5\r\n\r\n"
    p = SipStreamParser()
    p.receive_data(bad + good)
    (m,) = _drain(p)
    assert m.raw == good
    assert p.discarded[0].data == bad


def test_eof_inside_message_is_reported() -> None:
    _, data = FRAMABLE[0]
    p = SipStreamParser()
    p.receive_data(data[:-5])
    assert p.next_message() is NEED_DATA
    p.receive_eof()
    assert p.next_message() is NEED_DATA
    (left,) = p.discarded
    assert left.reason == "stream ended inside a message"
    assert left.data == data[:-5]
    strict = SipStreamParser(strict=True)
    strict.receive_data(data[:-5])
    strict.receive_eof()
    with pytest.raises(SipParseError):
        strict.next_message()


def test_bare_lf_stream() -> None:
    data = b"OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\nContent-Length: 2\n\nhi"
    p = SipStreamParser()
    p.receive_data(data)
    (m,) = _drain(p)
    assert m.body == b"hi"
    assert "bare-lf" in {d.code for d in m.defects}


def test_many_unframable_messages_do_not_recurse() -> None:
    _, good = FRAMABLE[0]
    bad = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n"
    p = SipStreamParser(max_buffer=1 << 22)
    p.receive_data(bad * 5000 + good)
    (m,) = _drain(p)
    assert m.raw == good
    assert len(p.discarded) == 5000


def test_next_frame_returns_exact_bytes() -> None:
    datas = [d for _, d in FRAMABLE[:3]]
    p = SipStreamParser()
    p.receive_data(b"".join(datas))
    frames = []
    while (raw := p.next_frame()) is not NEED_DATA:
        frames.append(raw)
    assert frames == datas
