"""SIP over WebSocket (RFC 7118 / RFC 6455): handshake, framing, masking, fragments, errors."""

from __future__ import annotations

import socket
import struct
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipchain import NEED_DATA, SipParseError, parse_message
from sipchain.sources._packets import Segment
from sipchain.sources._tcp import StreamData, StreamKey, TcpReassembler
from sipchain.sources._websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    HANDSHAKE,
    PING,
    PONG,
    TEXT,
    WebSocketDecoder,
    WsMessage,
    looks_like_websocket_frame,
    looks_like_websocket_handshake,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
WS_PCAP = CORPUS / "pcap" / "heplify" / "sip_tcp_websocket.pcap"

skip_without_corpus = pytest.mark.skipif(
    not WS_PCAP.is_file(), reason=f"third-party corpus not present at {CORPUS}"
)

MASK = b"\x37\xfa\x21\x3d"

SIP = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKasudf\r\n"
    b"From: <sip:alice@example.com>;tag=65bnmj.34asd\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: asidkj3ss\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

REQUEST = (
    b"GET / HTTP/1.1\r\n"
    b"Host: proxy.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://www.example.com\r\n"
    b"Sec-WebSocket-Protocol: sip\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: sip\r\n"
    b"\r\n"
)


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    mask: bytes | None = None,
    rsv: int = 0,
    length_form: int | None = None,
) -> bytes:
    """Build one RFC 6455 §5.2 frame; ``length_form`` forces 7, 16 or 64-bit lengths."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    form = length_form or (7 if n < 126 else 16 if n < 1 << 16 else 64)
    mask_bit = 0x80 if mask is not None else 0
    if form == 7:
        head = bytes([b0, mask_bit | n])
    elif form == 16:
        head = bytes([b0, mask_bit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mask_bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def drain(d: WebSocketDecoder) -> list[WsMessage]:
    out = []
    while (item := d.next_event()) is not NEED_DATA:
        out.append(item)
    return out


def decode_whole(data: bytes, **kwargs: int) -> list[WsMessage]:
    d = WebSocketDecoder(**kwargs)
    d.receive_data(data)
    return drain(d)


def decode_byte_by_byte(data: bytes) -> list[WsMessage]:
    d = WebSocketDecoder()
    out: list[WsMessage] = []
    for i in range(len(data)):
        d.receive_data(data[i : i + 1])
        out.extend(drain(d))
    assert d.buffered == 0
    return out


# ------------------------------------------------------------------ frames


def test_unmasked_text_frame() -> None:
    data = frame(TEXT, SIP)
    assert decode_whole(data) == [WsMessage(TEXT, SIP, 0, len(data))]


def test_masked_text_frame() -> None:
    data = frame(TEXT, SIP, mask=MASK)
    assert SIP not in data
    (m,) = decode_whole(data)
    assert m == WsMessage(TEXT, SIP, 0, len(data))
    assert parse_message(m.payload).method == "OPTIONS"


def test_16_bit_length() -> None:
    payload = SIP + b"x" * (300 - len(SIP))
    data = frame(BINARY, payload, mask=MASK)
    assert data[1] & 0x7F == 126
    assert decode_whole(data) == [WsMessage(BINARY, payload, 0, len(data))]


def test_64_bit_length() -> None:
    payload = bytes(range(256)) * 300  # 76800 octets
    data = frame(BINARY, payload, mask=MASK)
    assert data[1] & 0x7F == 127
    assert decode_whole(data) == [WsMessage(BINARY, payload, 0, len(data))]
    # a small payload in a non-minimal 64-bit length is still read
    small = frame(TEXT, b"hi", length_form=64)
    assert decode_whole(small) == [WsMessage(TEXT, b"hi", 0, len(small))]


def test_fragmented_message_with_interleaved_ping() -> None:
    parts = [SIP[:10], SIP[10:100], SIP[100:]]
    f1 = frame(TEXT, parts[0], fin=False, mask=MASK)
    ping = frame(PING, b"are you there", mask=MASK)
    f2 = frame(CONTINUATION, parts[1], fin=False, mask=MASK)
    f3 = frame(CONTINUATION, parts[2], mask=MASK)
    data = f1 + ping + f2 + f3
    expected = [
        WsMessage(PING, b"are you there", len(f1), len(f1) + len(ping)),
        WsMessage(TEXT, SIP, 0, len(data)),
    ]
    assert decode_whole(data) == expected
    assert decode_byte_by_byte(data) == expected


def test_close_ping_pong() -> None:
    close = frame(CLOSE, struct.pack("!H", 1000) + b"bye", mask=MASK)
    pong = frame(PONG, b"")
    data = pong + close
    assert decode_whole(data) == [
        WsMessage(PONG, b"", 0, len(pong)),
        WsMessage(CLOSE, b"\x03\xe8bye", len(pong), len(data)),
    ]


def test_byte_by_byte_needs_data_until_complete() -> None:
    data = frame(TEXT, SIP, mask=MASK)
    d = WebSocketDecoder()
    for i in range(len(data) - 1):
        d.receive_data(data[i : i + 1])
        assert d.next_event() is NEED_DATA
    d.receive_data(data[-1:])
    assert d.next_event() == WsMessage(TEXT, SIP, 0, len(data))
    assert d.next_event() is NEED_DATA
    assert d.consumed == len(data)


def test_whole_and_byte_by_byte_agree_on_a_session() -> None:
    data = (
        REQUEST
        + frame(TEXT, SIP, mask=MASK)
        + frame(BINARY, SIP * 3, mask=MASK)
        + frame(TEXT, SIP[:7], fin=False)
        + frame(PING, b"p")
        + frame(CONTINUATION, SIP[7:])
        + frame(CLOSE, b"\x03\xe8")
    )
    whole = decode_whole(data)
    assert [m.opcode for m in whole] == [HANDSHAKE, TEXT, BINARY, PING, TEXT, CLOSE]
    assert decode_byte_by_byte(data) == whole
    assert whole[-1].end == len(data)


# ------------------------------------------------------------------ handshake


def test_handshake_request_then_frames() -> None:
    body = frame(TEXT, SIP, mask=MASK)
    d = WebSocketDecoder()
    d.receive_data(REQUEST + body)
    assert d.next_event() == WsMessage(HANDSHAKE, REQUEST, 0, len(REQUEST))
    assert d.next_event() == WsMessage(TEXT, SIP, len(REQUEST), len(REQUEST) + len(body))
    assert d.subprotocol == "sip"


def test_handshake_response_then_frames() -> None:
    body = frame(TEXT, SIP)
    assert decode_whole(RESPONSE + body) == [
        WsMessage(HANDSHAKE, RESPONSE, 0, len(RESPONSE)),
        WsMessage(TEXT, SIP, len(RESPONSE), len(RESPONSE) + len(body)),
    ]


def test_handshake_byte_by_byte() -> None:
    data = REQUEST + frame(TEXT, SIP, mask=MASK)
    assert decode_byte_by_byte(data) == decode_whole(data)


def test_refused_upgrade() -> None:
    d = WebSocketDecoder()
    d.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n" + frame(TEXT, SIP))
    with pytest.raises(SipParseError, match="refused") as info:
        d.next_event()
    assert info.value.code == "ws-handshake"
    assert d.next_event() is NEED_DATA  # what follows is not WebSocket: ignored
    assert d.buffered == 0


def test_get_without_upgrade_is_not_websocket() -> None:
    plain = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"
    assert not looks_like_websocket_handshake(plain)
    d = WebSocketDecoder()
    d.receive_data(plain)
    with pytest.raises(SipParseError) as info:
        d.next_event()
    assert info.value.code == "ws-handshake"


def test_looks_like_websocket_handshake() -> None:
    assert looks_like_websocket_handshake(REQUEST)
    assert looks_like_websocket_handshake(RESPONSE)
    assert looks_like_websocket_handshake(REQUEST[:120])  # the first segment only
    assert not looks_like_websocket_handshake(SIP)
    assert not looks_like_websocket_handshake(frame(TEXT, SIP))
    assert not looks_like_websocket_handshake(b"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\n\r\n")
    assert not looks_like_websocket_handshake(b"")


def test_looks_like_websocket_frame() -> None:
    assert looks_like_websocket_frame(frame(TEXT, SIP, mask=MASK))
    assert looks_like_websocket_frame(frame(TEXT, b"SIP/2.0 200 OK\r\n"))
    assert not looks_like_websocket_frame(frame(TEXT, b"hello"))
    assert not looks_like_websocket_frame(frame(PING, SIP[:100]))
    assert not looks_like_websocket_frame(SIP)
    assert not looks_like_websocket_frame(b"\x81")


def test_over_long_handshake_is_skipped() -> None:
    d = WebSocketDecoder(max_message=200)
    head = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n" + b"X-Pad: " + b"a" * 400 + b"\r\n"
    d.receive_data(head)
    with pytest.raises(SipParseError) as info:
        d.next_event()
    assert info.value.code == "ws-too-large"
    body = frame(TEXT, b"after")
    d.receive_data(b"X-More: b\r\n\r\n" + body)
    (m,) = drain(d)
    assert m.payload == b"after"
    assert m.end == d.consumed


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (frame(TEXT, b"compressed", rsv=4), "ws-reserved-bits"),
        (frame(TEXT, b"rsv2", rsv=2, mask=MASK), "ws-reserved-bits"),
        (frame(3, b"reserved opcode"), "ws-opcode"),
        (frame(0xB, b"reserved control"), "ws-opcode"),
        (frame(PING, b"p" * 126), "ws-control"),
        (frame(CLOSE, b"\x03\xe8", fin=False), "ws-control"),
        (frame(CONTINUATION, b"orphan"), "ws-continuation"),
    ],
)
def test_malformed_frame_is_consumed_then_decoding_goes_on(bad: bytes, code: str) -> None:
    good = frame(TEXT, SIP, mask=MASK)
    d = WebSocketDecoder()
    d.receive_data(bad + good)
    with pytest.raises(SipParseError) as info:
        d.next_event()
    assert info.value.code == code
    assert info.value.offset == 0
    assert d.next_event() == WsMessage(TEXT, SIP, len(bad), len(bad) + len(good))


def test_malformed_frame_payload_arriving_later_is_skipped() -> None:
    bad = frame(3, b"z" * 50)
    good = frame(TEXT, b"ok")
    d = WebSocketDecoder()
    d.receive_data(bad[:5])
    with pytest.raises(SipParseError):
        d.next_event()
    for i in range(5, len(bad)):
        d.receive_data(bad[i : i + 1])
        assert d.next_event() is NEED_DATA
    d.receive_data(good)
    assert d.next_event() == WsMessage(TEXT, b"ok", len(bad), len(bad) + len(good))


def test_64_bit_length_with_top_bit_set() -> None:
    data = bytes([0x82, 127]) + b"\x80" + b"\x00" * 7 + b"payload"
    d = WebSocketDecoder()
    d.receive_data(data)
    with pytest.raises(SipParseError) as info:
        d.next_event()
    assert info.value.code == "ws-length"
    assert d.buffered == 0


def test_max_message_single_frame() -> None:
    big = frame(BINARY, b"b" * 5000, mask=MASK)
    after = frame(TEXT, b"next")
    d = WebSocketDecoder(max_message=1000)
    d.receive_data(big[:100])
    with pytest.raises(SipParseError, match="max_message") as info:
        d.next_event()
    assert info.value.code == "ws-too-large"
    assert d.buffered == 0  # nothing of it is held
    for i in range(100, len(big), 700):
        d.receive_data(big[i : i + 700])
        assert d.next_event() is NEED_DATA
        assert d.buffered == 0
    d.receive_data(after)
    assert d.next_event() == WsMessage(TEXT, b"next", len(big), len(big) + len(after))


def test_max_message_across_fragments() -> None:
    parts = [frame(TEXT, b"a" * 400, fin=False), frame(CONTINUATION, b"b" * 400, fin=False)]
    parts += [frame(PING, b"x"), frame(CONTINUATION, b"c" * 400, fin=False), frame(CONTINUATION, b"d")]
    after = frame(TEXT, b"next")
    d = WebSocketDecoder(max_message=1000)
    d.receive_data(b"".join(parts) + after)
    ping = d.next_event()
    assert isinstance(ping, WsMessage)
    assert ping.opcode == PING
    with pytest.raises(SipParseError) as info:
        d.next_event()
    assert info.value.code == "ws-too-large"
    # the rest of the rejected message is skipped; the next one is read
    total = sum(len(p) for p in parts)
    assert drain(d) == [WsMessage(TEXT, b"next", total, total + len(after))]


def test_new_message_inside_a_fragmented_one() -> None:
    first = frame(TEXT, b"partial", fin=False)
    second = frame(TEXT, SIP)
    d = WebSocketDecoder()
    d.receive_data(first + second)
    with pytest.raises(SipParseError) as info:
        d.next_event()
    assert info.value.code == "ws-fragment"
    assert info.value.offset == len(first)
    assert d.next_event() == WsMessage(TEXT, SIP, len(first), len(first) + len(second))


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_property_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    d = WebSocketDecoder(max_message=128)
    d.receive_data(data)
    for _ in range(len(data) + 2):
        try:
            if d.next_event() is NEED_DATA:
                break
        except SipParseError:
            pass
    assert d.buffered <= len(data)


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.sampled_from([TEXT, BINARY, PING]), st.binary(max_size=200), st.booleans()), max_size=6),
    st.lists(st.integers(1, 40), min_size=1, max_size=30),
)
def test_property_any_chunking_gives_the_same_messages(
    spec: list[tuple[int, bytes, bool]], sizes: list[int]
) -> None:
    data = REQUEST
    for opcode, payload, masked in spec:
        if opcode == PING:
            payload = payload[:125]
        data += frame(opcode, payload, mask=MASK if masked else None)
    whole = decode_whole(data)
    assert len(whole) == len(spec) + 1
    d = WebSocketDecoder()
    out: list[WsMessage] = []
    pos = i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        d.receive_data(data[pos : pos + n])
        pos += n
        i += 1
        out.extend(drain(d))
    assert out == whole


# ------------------------------------------------------------------ real capture


def _tcp_segments(path: Path) -> list[Segment]:
    dpkt = pytest.importorskip("dpkt")
    segments = []
    with path.open("rb") as f:
        for number, (_, buf) in enumerate(dpkt.pcap.Reader(f), start=1):
            ip = dpkt.ethernet.Ethernet(buf).data
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            segments.append(
                Segment(
                    "tcp",
                    socket.inet_ntoa(ip.src),
                    tcp.sport,
                    socket.inet_ntoa(ip.dst),
                    tcp.dport,
                    bytes(tcp.data),
                    "ethernet/ipv4/tcp",
                    (number,),
                    tcp.seq,
                    tcp.flags,
                )
            )
    return segments


def _decode_directions(chunks: list[tuple[StreamKey, bytes]]) -> dict[StreamKey, list[WsMessage]]:
    decoders: dict[StreamKey, WebSocketDecoder] = {}
    out: dict[StreamKey, list[WsMessage]] = {}
    for key, data in chunks:
        if key not in decoders:
            assert looks_like_websocket_handshake(data)
            decoders[key] = WebSocketDecoder()
        decoders[key].receive_data(data)
        out.setdefault(key, []).extend(drain(decoders[key]))
    for d in decoders.values():
        assert d.buffered == 0
        assert d.subprotocol == "sip"
    return out


@pytest.mark.corpus
@skip_without_corpus
def test_real_capture_sip_over_websocket() -> None:
    segments = _tcp_segments(WS_PCAP)
    # the capture is in order: the payloads of each direction, as they come
    direct = _decode_directions(
        [((s.src, s.sport, s.dst, s.dport), s.payload) for s in segments if s.payload]
    )
    # and the same through the reassembler
    r = TcpReassembler()
    chunks: list[tuple[StreamKey, bytes]] = []
    for i, s in enumerate(segments):
        events, _ = r.feed(s, i)
        chunks.extend((e.key, e.data) for e in events if isinstance(e, StreamData))
    chunks.extend((e.key, e.data) for e in r.flush() if isinstance(e, StreamData))
    assert _decode_directions(chunks) == direct

    client: StreamKey = ("10.243.17.55", 43380, "10.243.0.157", 8080)
    server: StreamKey = ("10.243.0.157", 8080, "10.243.17.55", 43380)
    assert set(direct) == {client, server}
    summary: dict[StreamKey, list[str]] = {}
    call_ids = set()
    for key, messages in direct.items():
        assert messages[0].opcode == HANDSHAKE
        assert messages[0].start == 0
        for prev, nxt in pairwise(messages):
            assert prev.end == nxt.start  # every byte accounted for
        for m in messages[1:]:
            assert m.opcode == TEXT
            sip = parse_message(m.payload)
            call_ids.add(sip.call_id)
            summary.setdefault(key, []).append(sip.method or str(sip.status))
    assert "kovfhoptshgn59q712sr" in call_ids
    assert summary[client] == ["INVITE", "ACK", "INVITE", "ACK", "BYE"]
    assert summary[server] == ["407", "100", "180", "183", "200", "200"]
    assert direct[client][0].end == 988  # the Upgrade request of frame 6
    assert direct[server][0].payload.startswith(b"HTTP/1.1 101 Switching Protocols")
