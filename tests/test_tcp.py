"""TCP stream reassembly (RFC 9293): order, overlap, gaps, ends, reuse, limits, properties."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipchain import NEED_DATA, SipStreamParser
from sipchain.sources._packets import ACK, FIN, PSH, RST, SYN, Segment
from sipchain.sources._tcp import (
    StreamData,
    StreamEnd,
    StreamEvent,
    StreamGap,
    StreamKey,
    TcpReassembler,
)

A: StreamKey = ("192.0.2.1", 40000, "192.0.2.2", 5060)
B: StreamKey = ("192.0.2.2", 5060, "192.0.2.1", 40000)  # the reverse direction of A
ISN = 1000
T0 = 1_700_000_000_000_000_000

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 192.0.2.1:40000;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"From: <sip:alice@example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.1:40000;transport=tcp>\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)
BYE = INVITE.replace(b"INVITE sip", b"BYE sip").replace(b"314159 INVITE", b"314160 BYE")


def seg(seq: int, payload: bytes = b"", flags: int = ACK | PSH, frame: int = 1, key: StreamKey = A) -> Segment:
    return Segment("tcp", key[0], key[1], key[2], key[3], payload, "ethernet/ipv4/tcp", (frame,), seq % (1 << 32), flags)


def syn(isn: int = ISN, frame: int = 1, key: StreamKey = A, payload: bytes = b"") -> Segment:
    return seg(isn, payload, SYN, frame, key)


def data_at(offset: int, payload: bytes, frame: int, isn: int = ISN, flags: int = ACK | PSH, key: StreamKey = A) -> Segment:
    """A data segment whose first byte has stream offset ``offset`` (after a SYN with ``isn``)."""
    return seg(isn + 1 + offset, payload, flags, frame, key)


def feed_all(r: TcpReassembler, segs: Iterable[Segment]) -> tuple[list[StreamEvent], dict[int, str | None]]:
    events: list[StreamEvent] = []
    dispositions: dict[int, str | None] = {}
    for i, s in enumerate(segs):
        ev, disp = r.feed(s, T0 + i)
        events.extend(ev)
        dispositions[s.frames[-1]] = disp
    return events, dispositions


def stream_bytes(events: Iterable[StreamEvent], key: StreamKey = A, generation: int = 0) -> bytes:
    """Join a stream's StreamData, checking that offsets are contiguous from 0."""
    out = bytearray()
    for e in events:
        if isinstance(e, StreamData) and e.key == key and e.generation == generation:
            assert e.offset == len(out), f"offset {e.offset} after {len(out)} bytes"
            out += e.data
    return bytes(out)


def data_events(events: Iterable[StreamEvent]) -> list[tuple[int, bytes, int]]:
    return [(e.offset, e.data, e.frame) for e in events if isinstance(e, StreamData)]


# ------------------------------------------------------------------ order


def test_in_order_delivery() -> None:
    r = TcpReassembler()
    ev, disp = r.feed(syn(), T0)
    assert (ev, disp) == ([], "no payload")
    ev, disp = r.feed(data_at(0, b"hello ", 2), T0 + 1)
    assert disp is None
    assert ev == [StreamData(A, 0, 0, b"hello ", 2)]
    ev, disp = r.feed(data_at(6, b"world", 3), T0 + 2)
    assert disp is None
    assert ev == [StreamData(A, 0, 6, b"world", 3)]
    ev, disp = r.feed(seg(ISN + 12, b"", ACK, 4), T0 + 3)  # a pure ACK
    assert (ev, disp) == ([], "no payload")


def test_out_of_order_3_1_2() -> None:
    r = TcpReassembler()
    r.feed(syn(), T0)
    ev, disp = r.feed(data_at(8, b"third", 3), T0)
    assert (ev, disp) == ([], "buffered")
    ev, disp = r.feed(data_at(0, b"first", 1), T0)
    assert disp is None
    assert data_events(ev) == [(0, b"first", 1)]
    ev, disp = r.feed(data_at(5, b"2nd", 2), T0)
    assert disp is None
    # the held segment comes out with its own frame number once the hole fills
    assert data_events(ev) == [(5, b"2nd", 2), (8, b"third", 3)]
    ev, disp = r.feed(data_at(13, b"!", 4), T0)
    assert data_events(ev) == [(13, b"!", 4)]


def test_first_segment_releases_held_ones() -> None:
    r = TcpReassembler()
    r.feed(syn(), T0)
    assert r.feed(data_at(10, b"CCCCC", 13), T0) == ([], "buffered")
    assert r.feed(data_at(5, b"BBBBB", 12), T0) == ([], "buffered")
    ev, disp = r.feed(data_at(0, b"AAAAA", 11), T0)
    assert disp is None
    assert data_events(ev) == [(0, b"AAAAA", 11), (5, b"BBBBB", 12), (10, b"CCCCC", 13)]


def test_retransmission() -> None:
    r = TcpReassembler()
    r.feed(syn(), T0)
    r.feed(data_at(0, b"abcdef", 2), T0)
    ev, disp = r.feed(data_at(0, b"abcdef", 3), T0)
    assert (ev, disp) == ([], "retransmission")
    ev, disp = r.feed(data_at(2, b"cd", 4), T0)  # a smaller piece of it
    assert (ev, disp) == ([], "retransmission")
    # a retransmission of bytes that are only buffered so far
    r.feed(data_at(10, b"klm", 5), T0)
    ev, disp = r.feed(data_at(10, b"klm", 6), T0)
    assert (ev, disp) == ([], "retransmission")
    ev, disp = r.feed(data_at(6, b"ghij", 7), T0)
    assert data_events(ev) == [(6, b"ghij", 7), (10, b"klm", 5)]
    assert r.retransmissions == 3


def test_partial_overlap_delivers_only_new_bytes() -> None:
    r = TcpReassembler()
    r.feed(syn(), T0)
    r.feed(data_at(0, b"0123456789", 2), T0)
    ev, disp = r.feed(data_at(5, b"56789ABCDE", 3), T0)
    assert disp is None
    assert data_events(ev) == [(10, b"ABCDE", 3)]
    # overlapping both delivered bytes and a held piece: only the holes are new
    r.feed(data_at(20, b"KLMNO", 4), T0)
    ev, disp = r.feed(data_at(12, b"CDEFGHIJKLMNOPQRS", 5), T0)
    assert disp is None
    assert data_events(ev) == [(15, b"FGHIJ", 5), (20, b"KLMNO", 4), (25, b"PQRS", 5)]
    assert stream_bytes(r.flush()) == b""  # nothing left


def test_message_split_in_three() -> None:
    r = TcpReassembler()
    cuts = [0, 40, 150, len(INVITE)]
    segs = [syn()] + [data_at(a, INVITE[a:b], i + 2) for i, (a, b) in enumerate(pairwise(cuts))]
    events, dispositions = feed_all(r, segs)
    assert [dispositions[f] for f in (2, 3, 4)] == [None, None, None]
    joined = stream_bytes(events)
    assert joined == INVITE
    parser = SipStreamParser(strict=True)
    for e in events:
        if isinstance(e, StreamData):
            parser.receive_data(e.data)
    m = parser.next_message()
    assert m is not NEED_DATA
    assert m.method == "INVITE"
    assert parser.next_message() is NEED_DATA


def test_two_messages_in_one_segment() -> None:
    r = TcpReassembler()
    events, _ = feed_all(r, [syn(), data_at(0, INVITE + BYE, 2)])
    assert data_events(events) == [(0, INVITE + BYE, 2)]
    parser = SipStreamParser(strict=True)
    parser.receive_data(stream_bytes(events))
    methods = []
    while (m := parser.next_message()) is not NEED_DATA:
        methods.append(m.method)
    assert methods == ["INVITE", "BYE"]


def test_mid_stream_start() -> None:
    r = TcpReassembler()
    ev, disp = r.feed(seg(5000, b"", ACK, 1), T0)  # an ACK alone says nothing
    assert (ev, disp) == ([], "no payload")
    ev, disp = r.feed(seg(5000, b"first", ACK, 2), T0)
    assert disp is None
    assert ev == [StreamData(A, 0, 0, b"first", 2)]
    ev, disp = r.feed(seg(5005, b"second", ACK, 3), T0)
    assert ev == [StreamData(A, 0, 5, b"second", 3)]
    # bytes from before the capture started can never be placed
    ev, disp = r.feed(seg(4990, b"0123456789", ACK, 4), T0)
    assert (ev, disp) == ([], "late")
    assert r.flush() == [StreamEnd(A, 0, "end of capture")]


def test_syn_with_data() -> None:
    r = TcpReassembler()
    ev, disp = r.feed(syn(payload=b"early data"), T0)
    assert disp is None
    assert ev == [StreamData(A, 0, 0, b"early data", 1)]
    ev, disp = r.feed(data_at(10, b"more", 2), T0)
    assert ev == [StreamData(A, 0, 10, b"more", 2)]
    # the SYN retransmitted: the same ISN is not a new connection
    ev, disp = r.feed(syn(payload=b"early data", frame=3), T0)
    assert (ev, disp) == ([], "retransmission")


# ------------------------------------------------------------------ ends


def test_fin_ends_after_data() -> None:
    r = TcpReassembler()
    r.feed(syn(), T0)
    ev, disp = r.feed(data_at(0, b"bye", 2, flags=ACK | FIN), T0)
    assert disp is None
    assert ev == [StreamData(A, 0, 0, b"bye", 2), StreamEnd(A, 0, "FIN")]
    ev, disp = r.feed(data_at(0, b"bye", 3, flags=ACK | FIN), T0)  # retransmitted FIN
    assert (ev, disp) == ([], "retransmission")
    ev, disp = r.feed(seg(ISN + 4, b"", ACK, 4), T0)
    assert (ev, disp) == ([], "no payload")
    assert r.flush() == []  # already ended


def test_fin_before_missing_data_waits() -> None:
    r = TcpReassembler()
    r.feed(syn(), T0)
    ev, disp = r.feed(data_at(5, b"tail", 3, flags=ACK | FIN), T0)
    assert (ev, disp) == ([], "buffered")
    ev, disp = r.feed(data_at(0, b"head ", 2), T0)
    assert ev == [StreamData(A, 0, 0, b"head ", 2), StreamData(A, 0, 5, b"tail", 3), StreamEnd(A, 0, "FIN")]
    # a pure FIN whose last data segment is missing
    r = TcpReassembler()
    r.feed(syn(), T0)
    r.feed(data_at(0, b"abc", 2), T0)
    ev, disp = r.feed(seg(ISN + 1 + 10, b"", ACK | FIN, 3), T0)
    assert (ev, disp) == ([], "no payload")
    assert r.flush() == [StreamGap(A, 0, 3, 7, "end of capture"), StreamEnd(A, 0, "FIN")]


def test_rst_ends_both_directions_after_held_data() -> None:
    r = TcpReassembler()
    r.feed(syn(), T0)
    r.feed(syn(isn=7000, key=B, frame=2), T0)
    r.feed(data_at(0, b"abc", 3), T0)
    r.feed(data_at(0, b"reply", 4, isn=7000, key=B), T0)
    r.feed(data_at(6, b"held", 5), T0)  # a hole at 3..6 before it
    ev, disp = r.feed(seg(ISN + 1 + 10, b"", ACK | RST, 6), T0)
    assert disp == "no payload"
    assert ev == [
        StreamGap(A, 0, 3, 3, "RST"),
        StreamData(A, 0, 6, b"held", 5),
        StreamEnd(A, 0, "RST"),
        StreamEnd(B, 0, "RST"),
    ]
    assert r.flush() == []


def test_stream_reuse_new_generation() -> None:
    r = TcpReassembler()
    first = [syn(), data_at(0, b"one", 2), data_at(3, b"", 3, flags=ACK | FIN)]
    events, _ = feed_all(r, first)
    assert events[-1] == StreamEnd(A, 0, "FIN")
    # the same 4-tuple, a new connection: new ISN, new generation, offsets from 0
    isn2 = 900_000
    ev, disp = r.feed(syn(isn=isn2, frame=4), T0)
    assert (ev, disp) == ([], "no payload")
    ev, disp = r.feed(data_at(0, b"two", 5, isn=isn2), T0)
    assert ev == [StreamData(A, 1, 0, b"two", 5)]
    # a SYN with a clearly different ISN on a live stream ends it first
    ev, disp = r.feed(syn(isn=123, frame=6), T0)
    assert ev == [StreamEnd(A, 1, "reused")]
    ev, disp = r.feed(data_at(0, b"three", 7, isn=123), T0)
    assert ev == [StreamData(A, 2, 0, b"three", 7)]


def test_new_data_after_fin_without_syn_is_a_new_generation() -> None:
    r = TcpReassembler()
    feed_all(r, [syn(), data_at(0, b"one", 2, flags=ACK | FIN)])
    ev, disp = r.feed(seg(3_000_000, b"other connection", ACK, 3), T0)
    assert disp is None
    assert ev == [StreamData(A, 1, 0, b"other connection", 3)]


@pytest.mark.parametrize("isn", [(1 << 32) - 1, (1 << 32) - 4, (1 << 32) - 7])
def test_sequence_wraparound(isn: int) -> None:
    r = TcpReassembler()
    payload = b"0123456789abcdefghij"
    pieces = [(0, 5), (5, 12), (12, 20)]
    segs = [syn(isn=isn)] + [data_at(a, payload[a:b], i + 2, isn=isn) for i, (a, b) in enumerate(pieces)]
    # deliver the last two first: they sit on the far side of 2**32
    events, dispositions = feed_all(r, [segs[0], segs[3], segs[2], segs[1]])
    assert stream_bytes(events) == payload
    assert dispositions == {1: "no payload", 4: "buffered", 3: "buffered", 2: None}
    ev, disp = r.feed(segs[2], T0)
    assert (ev, disp) == ([], "retransmission")


def test_wraparound_mid_stream() -> None:
    r = TcpReassembler()
    start = (1 << 32) - 3
    events, _ = feed_all(r, [seg(start, b"abc", ACK, 1), seg(0, b"def", ACK, 2), seg(3, b"g", ACK, 3)])
    assert data_events(events) == [(0, b"abc", 1), (3, b"def", 2), (6, b"g", 3)]


# ------------------------------------------------------------------ limits


def test_permanent_hole_gap_at_pending_limit_and_at_flush() -> None:
    r = TcpReassembler(max_pending_bytes=10)
    r.feed(syn(), T0)
    r.feed(data_at(0, b"abcde", 2), T0)
    assert r.feed(data_at(10, b"KLMNOP", 3), T0) == ([], "buffered")  # hole 5..10
    ev, disp = r.feed(data_at(16, b"QRSTUV", 4), T0)  # 12 held > 10
    assert disp == "buffered"
    assert ev == [
        StreamGap(A, 0, 5, 5, "pending limit"),
        StreamData(A, 0, 10, b"KLMNOP", 3),
        StreamData(A, 0, 16, b"QRSTUV", 4),
    ]
    # the missing bytes turn up after all: too late, they were reported lost
    assert r.feed(data_at(5, b"fghij", 5), T0) == ([], "late")
    # a second hole that never fills is reported at the end of the capture
    assert r.feed(data_at(30, b"xyz", 6), T0) == ([], "buffered")
    assert r.flush() == [
        StreamGap(A, 0, 22, 8, "end of capture"),
        StreamData(A, 0, 30, b"xyz", 6),
        StreamEnd(A, 0, "end of capture"),
    ]
    assert r.gaps == 2


def test_pending_segment_count_is_bounded() -> None:
    r = TcpReassembler(max_pending_segments=3)
    r.feed(syn(), T0)
    for i in range(4):  # four one-byte pieces, each after its own hole
        ev, disp = r.feed(data_at(2 * i + 1, b"x", i + 2), T0)
    assert disp == "buffered"
    assert ev[0] == StreamGap(A, 0, 0, 1, "pending limit")
    assert ev[1] == StreamData(A, 0, 1, b"x", 2)


def test_expire_idle_streams() -> None:
    r = TcpReassembler(idle_timeout_ns=10)
    r.feed(syn(), 0)
    r.feed(data_at(0, b"abc", 2), 0)
    r.feed(data_at(5, b"fg", 3), 1)  # held behind a hole
    r.feed(syn(isn=5, key=B, frame=4), 8)
    assert r.expire(9) == []
    assert r.expire(11) == [StreamGap(A, 0, 3, 2, "idle"), StreamData(A, 0, 5, b"fg", 3), StreamEnd(A, 0, "idle")]
    assert len(r) == 1
    assert r.expire(18) == [StreamEnd(B, 0, "idle")]
    assert len(r) == 0
    # the 4-tuple comes back: a new generation, not a clash with the old one
    ev, _ = r.feed(syn(isn=77, frame=5), 20)
    ev, _ = r.feed(data_at(0, b"again", 6, isn=77), 20)
    assert ev == [StreamData(A, 1, 0, b"again", 6)]


def test_eviction_beyond_max_streams() -> None:
    r = TcpReassembler(max_streams=2)
    keys: list[StreamKey] = [("192.0.2.1", 40000 + i, "192.0.2.2", 5060) for i in range(3)]
    r.feed(syn(key=keys[0]), T0)
    r.feed(data_at(0, b"zero", 2, key=keys[0]), T0)
    r.feed(data_at(10, b"held", 3, key=keys[0]), T0)
    r.feed(syn(key=keys[1], frame=4), T0)
    r.feed(data_at(0, b"one", 5, key=keys[0]), T0)  # ... keys[0] was used last (a retransmission)
    ev, _ = r.feed(syn(key=keys[2], frame=6), T0)
    assert ev == [StreamEnd(keys[1], 0, "evicted")]
    ev, _ = r.feed(syn(isn=50, key=keys[1], frame=7), T0)
    assert ev == [
        StreamGap(keys[0], 0, 4, 6, "evicted"),
        StreamData(keys[0], 0, 10, b"held", 3),
        StreamEnd(keys[0], 0, "evicted"),
    ]
    ev, _ = r.feed(data_at(0, b"back", 8, isn=50, key=keys[1]), T0)
    assert ev == [StreamData(keys[1], 1, 0, b"back", 8)]
    assert len(r) == 2
    assert r.evicted == 2


def test_non_tcp_segment_is_refused() -> None:
    r = TcpReassembler()
    with pytest.raises(ValueError, match="not a TCP segment"):
        r.feed(Segment("udp", "192.0.2.1", 1, "192.0.2.2", 2, b"x", "ipv4/udp", (1,)), T0)


# ------------------------------------------------------------------ properties


@st.composite
def shuffled_segments(draw: st.DrawFn) -> tuple[bytes, int, list[tuple[int, bytes, bool]], bool]:
    """A byte string, an ISN, and (offset, payload, fin) segments covering it in
    any order, with duplicates and re-cut retransmissions mixed in."""
    data = draw(st.binary(min_size=1, max_size=400))
    isn = draw(st.one_of(st.integers(0, (1 << 32) - 1), st.integers((1 << 32) - 400, (1 << 32) - 1)))
    cuts = sorted(draw(st.sets(st.integers(1, len(data) - 1), max_size=12))) if len(data) > 1 else []
    bounds = [0, *cuts, len(data)]
    fin = draw(st.booleans())
    segments = [
        (a, data[a:b], fin and b == len(data)) for a, b in pairwise(bounds)
    ]
    extra = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 50)), max_size=6))
    for a, n in extra:
        segments.append((a, data[a : a + n], fin and a + n >= len(data)))
    dups = draw(st.lists(st.sampled_from(segments), max_size=5))
    segments = draw(st.permutations(segments + dups))
    return data, isn, segments, fin


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(shuffled_segments())
def test_property_any_order_delivers_each_byte_once(case: tuple[bytes, int, list[tuple[int, bytes, bool]], bool]) -> None:
    data, isn, segments, fin = case
    r = TcpReassembler()
    events: list[StreamEvent] = []
    dispositions: dict[int, str | None] = {}
    delivered_now: set[int] = set()
    ev, disp = r.feed(syn(isn=isn, frame=1), T0)
    assert disp == "no payload"
    for i, (offset, payload, has_fin) in enumerate(segments, start=2):
        flags = ACK | FIN if has_fin else ACK | PSH
        ev, disp = r.feed(data_at(offset, payload, i, isn=isn, flags=flags), T0 + i)
        dispositions[i] = disp
        if disp is None:  # new bytes now: the frame is in this call's StreamData
            assert i in {e.frame for e in ev if isinstance(e, StreamData)}
            delivered_now.add(i)
        else:
            assert disp in ("buffered", "retransmission")
        events.extend(ev)
    tail = r.flush()
    events.extend(tail)
    assert not any(isinstance(e, StreamGap) for e in events)
    assert stream_bytes(events) == data  # once each, in order, offsets contiguous
    for e in events:
        if isinstance(e, StreamData):
            assert data[e.offset : e.offset + len(e.data)] == e.data
    framed = {e.frame for e in events if isinstance(e, StreamData)}
    for frame, disp in dispositions.items():
        if disp == "buffered":
            assert frame in framed
        elif disp == "retransmission":
            assert frame not in framed
        else:
            assert frame in delivered_now
    ends = [e for e in events if isinstance(e, StreamEnd)]
    assert len(ends) == 1
    assert events[-1] == ends[0]
    assert ends[0].reason == ("FIN" if fin else "end of capture")
    if fin:
        assert tail == []  # the FIN closed the stream as soon as the bytes were in


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.integers(0, (1 << 32) - 1), st.binary(max_size=20), st.sampled_from([ACK, SYN, FIN | ACK, RST, ACK | PSH])),
        max_size=40,
    )
)
def test_property_arbitrary_segments_stay_consistent(items: list[tuple[int, bytes, int]]) -> None:
    """Garbage sequence numbers and flags never break the invariants."""
    r = TcpReassembler(max_pending_bytes=64, max_streams=4)
    events: list[StreamEvent] = []
    for i, (seq, payload, flags) in enumerate(items):
        key = A if i % 3 else B
        ev, disp = r.feed(seg(seq, payload, flags, i + 1, key), T0 + i)
        assert disp in (None, "no payload", "retransmission", "buffered", "late")
        events.extend(ev)
    events.extend(r.flush())
    assert len(r) == 0
    # per (key, generation): offsets only move forward, nothing after the end
    cursor: dict[tuple[StreamKey, int], int] = {}
    ended: set[tuple[StreamKey, int]] = set()
    for e in events:
        k = (e.key, e.generation)
        assert k not in ended
        if isinstance(e, StreamData):
            assert e.data
            assert e.offset == cursor.get(k, 0)
            cursor[k] = e.offset + len(e.data)
        elif isinstance(e, StreamGap):
            assert e.length > 0
            assert e.offset == cursor.get(k, 0)
            cursor[k] = e.offset + e.length
        else:
            ended.add(k)
