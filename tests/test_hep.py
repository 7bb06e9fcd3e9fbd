"""HEP v1/v2/v3 (Homer Encapsulation Protocol): decoding, errors, TCP framing, properties."""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipchain import NEED_DATA, SipParseError, parse_message
from sipchain.sources._hep import HepPacket, HepStreamSplitter, decode_hep, looks_like_hep

SIP = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9\r\n"
    b"From: <sip:alice@example.com>;tag=9fxced76sl\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: 3848276298220188511@192.0.2.10\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)
SEC = 1_700_000_123
USEC = 456_789
TS_NS = SEC * 1_000_000_000 + USEC * 1000


def chunk(ctype: int, value: bytes, vendor: int = 0) -> bytes:
    """One HEPv3 chunk: vendor id, type id, length (header included), value."""
    return struct.pack("!HHH", vendor, ctype, 6 + len(value)) + value


def hep3(chunks: list[bytes], *, length: int | None = None) -> bytes:
    body = b"".join(chunks)
    total = 6 + len(body) if length is None else length
    return b"HEP3" + struct.pack("!H", total) + body


def v3_chunks(
    *,
    ipv6: bool = False,
    proto: int = 17,
    payload: bytes = SIP,
    payload_type: int = 15,
    extra: list[bytes] | None = None,
) -> list[bytes]:
    if ipv6:
        addresses = [
            chunk(1, b"\x0a"),
            chunk(5, ipaddress.IPv6Address("2001:db8::1").packed),
            chunk(6, ipaddress.IPv6Address("2001:db8::2").packed),
        ]
    else:
        addresses = [
            chunk(1, b"\x02"),
            chunk(3, ipaddress.IPv4Address("192.0.2.10").packed),
            chunk(4, ipaddress.IPv4Address("192.0.2.20").packed),
        ]
    return [
        *addresses,
        chunk(2, bytes([proto])),
        chunk(7, struct.pack("!H", 5060)),
        chunk(8, struct.pack("!H", 5080)),
        chunk(9, struct.pack("!I", SEC)),
        chunk(10, struct.pack("!I", USEC)),
        chunk(11, b"\x01"),
        chunk(12, struct.pack("!I", 2001)),
        chunk(14, b"secret-password"),
        *(extra or []),
        chunk(payload_type, payload),
    ]


def hep2(*, ipv6: bool = False, version: int = 2, payload: bytes = SIP, hlen: int | None = None) -> bytes:
    """Kamailio sipcapture HEPv1/v2: struct hep_hdr, addresses, struct hep_timehdr."""
    family = 10 if ipv6 else 2
    if ipv6:
        addrs = ipaddress.IPv6Address("2001:db8::1").packed + ipaddress.IPv6Address("2001:db8::2").packed
    else:
        addrs = ipaddress.IPv4Address("192.0.2.10").packed + ipaddress.IPv4Address("192.0.2.20").packed
    length = 8 + len(addrs) if hlen is None else hlen
    out = struct.pack("!BBBBHH", version, length, family, 17, 5060, 5080) + addrs
    if version == 2:
        out += struct.pack("<IIH2x", SEC, USEC, 7)
    return out + payload


# ------------------------------------------------------------------ HEPv3


def test_hep3_ipv4_udp() -> None:
    packet = hep3(v3_chunks(extra=[chunk(17, b"3848276298220188511@192.0.2.10")]))
    assert looks_like_hep(packet)
    hep = decode_hep(packet)
    assert hep == HepPacket(
        version=3,
        transport="udp",
        src="192.0.2.10",
        sport=5060,
        dst="192.0.2.20",
        dport=5080,
        ts_ns=TS_NS,
        proto_type=1,
        payload=SIP,
        capture_id=2001,
        correlation_id="3848276298220188511@192.0.2.10",
    )
    assert b"secret" not in repr(hep).encode()  # the auth key is never kept
    assert parse_message(hep.payload).method == "INVITE"


def test_hep3_ipv6_tcp() -> None:
    hep = decode_hep(hep3(v3_chunks(ipv6=True, proto=6)))
    assert (hep.transport, hep.src, hep.dst) == ("tcp", "2001:db8::1", "2001:db8::2")
    assert hep.correlation_id is None
    assert hep.payload == SIP


@pytest.mark.parametrize("proto", [(17, "udp"), (6, "tcp"), (132, "sctp"), (22, "tls"), (50, "ip-proto-50")])
def test_hep3_transports(proto: tuple[int, str]) -> None:
    assert decode_hep(hep3(v3_chunks(proto=proto[0]))).transport == proto[1]


@pytest.mark.parametrize("compress", [zlib.compress, gzip.compress], ids=["zlib", "gzip"])
@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_hep3_compressed_payload(compress: object, ipv6: bool) -> None:
    assert callable(compress)
    packed = compress(SIP)
    assert isinstance(packed, bytes)
    hep = decode_hep(hep3(v3_chunks(ipv6=ipv6, payload=packed, payload_type=16)))
    assert hep.payload == SIP


def test_hep3_compressed_payload_is_bounded() -> None:
    bomb = zlib.compress(b"\0" * 100_000)
    packet = hep3(v3_chunks(payload=bomb, payload_type=16))
    with pytest.raises(SipParseError, match="expands beyond") as info:
        decode_hep(packet, max_payload=10_000)
    assert info.value.code == "hep-too-large"
    assert len(decode_hep(packet, max_payload=100_000).payload) == 100_000


@pytest.mark.parametrize(
    ("value", "match"),
    [(b"not compressed at all", "compressed payload"), (zlib.compress(SIP)[:-8], "truncated")],
)
def test_hep3_bad_compressed_payload(value: bytes, match: str) -> None:
    with pytest.raises(SipParseError, match=match) as info:
        decode_hep(hep3(v3_chunks(payload=value, payload_type=16)))
    assert info.value.code == "hep-compressed"


def test_hep3_skips_vendor_and_unknown_chunks() -> None:
    extra = [chunk(0x12, struct.pack("!H", 42)), chunk(0x13, b"node-1"), chunk(7, b"\xff\xff\xff", vendor=0x0301)]
    hep = decode_hep(hep3(v3_chunks(extra=extra)))
    assert hep.sport == 5060  # the vendor chunk of type 7 is not a port
    assert hep.payload == SIP


def test_hep3_optional_chunks_absent() -> None:
    chunks = [c for c in v3_chunks() if struct.unpack_from("!H", c, 2)[0] not in (1, 9, 10, 11, 12)]
    hep = decode_hep(hep3(chunks))
    assert (hep.ts_ns, hep.proto_type, hep.capture_id) == (None, None, None)
    assert hep.src == "192.0.2.10"  # the family follows from the address chunks
    old_agent = decode_hep(hep3([*chunks[:-1], chunk(12, struct.pack("!H", 9)), chunks[-1]]))
    assert old_agent.capture_id == 9


def test_hep3_truncated_chunk() -> None:
    packet = hep3(v3_chunks())
    cut = packet[:-5]
    with pytest.raises(SipParseError, match="truncated") as info:
        decode_hep(cut)
    assert info.value.code == "hep-truncated"
    # the total length fixed up, the last chunk still runs past the end
    with pytest.raises(SipParseError, match="runs past the packet end") as info:
        decode_hep(cut[:4] + struct.pack("!H", len(cut)) + cut[6:])
    assert info.value.code == "hep-truncated"
    # a chunk header cut short
    with pytest.raises(SipParseError, match="chunk header truncated"):
        decode_hep(hep3([*v3_chunks(), b"\x00\x00\x00"]))


@pytest.mark.parametrize(
    ("packet", "code", "match"),
    [
        (hep3(v3_chunks(), length=3), "hep-length", "shorter than its header"),
        (hep3(v3_chunks()) + b"junk", "hep-length", "trailing"),
        (hep3([chunk(1, b"\x02")[:4] + b"\x00\x04", *v3_chunks()]), "hep-chunk", "less than its 6-octet header"),
        (hep3([chunk(7, b"\x13\xc4\x00"), *v3_chunks()[1:]]), "hep-chunk", "source port"),
        (hep3([chunk(3, b"\xc0\x00\x02"), *v3_chunks()[1:]]), "hep-chunk", "IPv4 source"),
        (hep3(v3_chunks()[:-1]), "hep-missing", "payload"),
        (hep3([c for c in v3_chunks() if c[3] != 7]), "hep-missing", "source port"),
        (hep3([c for c in v3_chunks() if c[3] != 4]), "hep-missing", "IPv4 destination"),
        (hep3([chunk(1, b"\x1c"), *v3_chunks()[1:]]), "hep-family", "unknown IP family 28"),
        (hep3([*v3_chunks(), chunk(15, b"again")]), "hep-chunk", "two payload"),
        (b"HEP", "hep-version", "not HEP"),
        (b"HEP3\x00", "hep-truncated", "header truncated"),
        (b"", "hep-version", "not HEP"),
    ],
)
def test_hep3_malformed(packet: bytes, code: str, match: str) -> None:
    with pytest.raises(SipParseError, match=match) as info:
        decode_hep(packet)
    assert info.value.code == code


def test_hep3_bad_length_bigger_than_data() -> None:
    packet = hep3(v3_chunks())
    with pytest.raises(SipParseError, match="total length") as info:
        decode_hep(packet[:4] + struct.pack("!H", len(packet) + 10) + packet[6:])
    assert info.value.code == "hep-truncated"
    assert info.value.offset == 4


# ------------------------------------------------------------------ HEPv1/v2


def test_hep2_ipv4() -> None:
    packet = hep2()
    assert looks_like_hep(packet)
    assert decode_hep(packet) == HepPacket(
        version=2,
        transport="udp",
        src="192.0.2.10",
        sport=5060,
        dst="192.0.2.20",
        dport=5080,
        ts_ns=TS_NS,
        proto_type=None,
        payload=SIP,
        capture_id=7,
        correlation_id=None,
    )


def test_hep2_ipv6() -> None:
    hep = decode_hep(hep2(ipv6=True))
    assert (hep.version, hep.src, hep.dst, hep.ts_ns, hep.payload) == (2, "2001:db8::1", "2001:db8::2", TS_NS, SIP)


def test_hep1_has_no_time() -> None:
    hep = decode_hep(hep2(version=1))
    assert (hep.version, hep.ts_ns, hep.capture_id, hep.payload) == (1, None, None, SIP)


@pytest.mark.parametrize(
    ("packet", "code"),
    [
        (hep2(hlen=28), "hep-length"),  # the length byte must be header + addresses
        (hep2(ipv6=True, hlen=16), "hep-length"),
        (hep2()[:20], "hep-truncated"),  # inside the time header
        (hep2()[:5], "hep-truncated"),
        (b"\x02\x10\x07\x11" + b"\x00" * 30, "hep-family"),
    ],
)
def test_hep2_malformed(packet: bytes, code: str) -> None:
    with pytest.raises(SipParseError) as info:
        decode_hep(packet)
    assert info.value.code == code


def test_looks_like_hep() -> None:
    assert looks_like_hep(hep3(v3_chunks()))
    assert looks_like_hep(hep2())
    assert looks_like_hep(hep2(ipv6=True, version=1))
    assert not looks_like_hep(SIP)
    assert not looks_like_hep(b"HEP3\x00\x02")
    assert not looks_like_hep(hep2(hlen=99))
    assert not looks_like_hep(b"\x02\x10\x02\x11")  # too short for the addresses
    assert not looks_like_hep(b"")


# ------------------------------------------------------------------ HEP over TCP


def _packets() -> list[bytes]:
    return [
        hep3(v3_chunks()),
        hep3(v3_chunks(ipv6=True, proto=6, payload=zlib.compress(SIP), payload_type=16)),
        hep3(v3_chunks(payload=SIP.replace(b"INVITE", b"BYE"))),
    ]


def test_splitter_whole() -> None:
    packets = _packets()
    s = HepStreamSplitter()
    s.receive_data(b"".join(packets))
    pos = 0
    for p in packets:
        assert s.next_packet() == (p, pos, pos + len(p))
        pos += len(p)
    assert s.next_packet() is NEED_DATA
    assert s.buffered == 0


def test_splitter_byte_by_byte() -> None:
    packets = _packets()
    data = b"".join(packets)
    ends = {sum(len(p) for p in packets[: i + 1]) for i in range(len(packets))}
    s = HepStreamSplitter()
    got = []
    for i in range(len(data)):
        s.receive_data(data[i : i + 1])
        item = s.next_packet()
        if i + 1 in ends:
            assert item is not NEED_DATA
            got.append(item)
            assert s.next_packet() is NEED_DATA
        else:
            assert item is NEED_DATA
    assert [g[0] for g in got] == packets
    assert [decode_hep(g[0]).payload for g in got] == [SIP, SIP, SIP.replace(b"INVITE", b"BYE")]


def test_splitter_skips_garbage_to_the_next_packet() -> None:
    packets = _packets()
    s = HepStreamSplitter()
    s.receive_data(b"garbage!" + packets[0] + b"HE")
    with pytest.raises(SipParseError, match="8 octets before") as info:
        s.next_packet()
    assert info.value.code == "hep-sync"
    assert s.next_packet() == (packets[0], 8, 8 + len(packets[0]))
    assert s.next_packet() is NEED_DATA  # "HE" may start the next magic
    s.receive_data(b"xx" + packets[1])
    with pytest.raises(SipParseError, match="4 octets before"):
        s.next_packet()
    start = 8 + len(packets[0]) + 4
    assert s.next_packet() == (packets[1], start, start + len(packets[1]))
    assert s.skipped == 12


def test_splitter_bad_total_length() -> None:
    s = HepStreamSplitter()
    s.receive_data(b"HEP3\x00\x02" + _packets()[0])
    with pytest.raises(SipParseError, match="shorter than its header") as info:
        s.next_packet()
    assert info.value.code == "hep-length"
    with pytest.raises(SipParseError, match="2 octets before"):
        s.next_packet()
    item = s.next_packet()
    assert item is not NEED_DATA
    assert item[1] == 6


# ------------------------------------------------------------------ properties


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_property_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        assert decode_hep(data).version in (1, 2, 3)


@settings(max_examples=500)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 20), st.binary(max_size=20)),
        max_size=12,
    ),
    st.integers(0, 40),
)
def test_property_hep3_shaped_garbage_raises_only_parse_errors(
    raw_chunks: list[tuple[int, int, bytes]], fudge: int
) -> None:
    chunks = [chunk(ctype, value, vendor=vendor % 2) for vendor, ctype, value in raw_chunks]
    packet = hep3(chunks)
    for candidate in (packet, packet[: max(0, len(packet) - fudge)], packet + bytes(fudge)):
        with contextlib.suppress(SipParseError):
            decode_hep(candidate)


@settings(max_examples=200)
@given(st.binary(max_size=300), st.lists(st.integers(1, 50), min_size=1, max_size=10))
def test_property_splitter_on_garbage_raises_only_parse_errors(data: bytes, sizes: list[int]) -> None:
    s = HepStreamSplitter()
    pos = i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        s.receive_data(data[pos : pos + n])
        pos += n
        i += 1
        for _ in range(len(data) + 2):
            try:
                item = s.next_packet()
            except SipParseError:
                continue
            if item is NEED_DATA:
                break
            assert item[0].startswith(b"HEP3")
    assert s.buffered <= 65535 + 50
