"""load() end to end on small synthetic captures, one reassembly case each."""

from __future__ import annotations

from pathlib import Path

import pytest
from captures import (
    ETH_IPV4,
    ETH_IPV6,
    eth_tcp,
    eth_udp,
    hep3,
    ipv4,
    ipv6,
    ipv6_fragment,
    pcap,
    udp,
    ws_frame,
)

from sipchain import CaptureError, IngestError, Limits, Trace, build_message, iter_messages, load
from sipchain.errors import UnsupportedFormatError

T0 = 1_700_000_000_000_000_000
A, B = "192.0.2.10", "198.51.100.20"


def sip(n: int, *, body: bytes = b"", call: str = "call-1") -> bytes:
    """An OPTIONS request with CSeq ``n`` (a distinct message per ``n``)."""
    return build_message(
        f"OPTIONS sip:bob@{B} SIP/2.0",
        [
            ("Via", f"SIP/2.0/TCP {A}:5060;branch=z9hG4bK-{call}-{n}"),
            ("From", f"<sip:alice@{A}>;tag=a{n}"),
            ("To", f"<sip:bob@{B}>"),
            ("Call-ID", call),
            ("CSeq", f"{n} OPTIONS"),
            ("Max-Forwards", "70"),
            ("Content-Type", "text/plain"),
        ],
        body,
    ).raw


def write(tmp_path: Path, frames: list[bytes], *, linktype: int = 1, name: str = "t.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(pcap([(T0 + i * 1_000_000, f) for i, f in enumerate(frames)], linktype=linktype, nanos=True))
    return path


def cseqs(trace: Trace) -> list[int]:
    return [m.cseq.number for m in trace.messages if m.cseq is not None]


def frames_of(trace: Trace) -> list[tuple[int, ...]]:
    return [m.provenance.frames for m in trace.messages if m.provenance is not None]


def check_balanced(trace: Trace) -> None:
    assert trace.report.is_balanced(), str(trace.report)


def test_udp_datagrams_with_provenance(tmp_path: Path) -> None:
    path = write(tmp_path, [eth_udp(A, B, 5060, 5060, sip(1)), eth_udp(B, A, 5060, 5060, b"\x80\x00rtp-ish"), eth_udp(A, B, 5062, 5070, sip(2))])
    trace = load(path)
    assert cseqs(trace) == [1, 2]
    m = trace.messages[1]
    assert m.provenance is not None
    assert (m.provenance.frame, m.provenance.offset, m.provenance.parser_chain) == (3, 24 + 2 * 16 + len(eth_udp(A, B, 5060, 5060, sip(1))) + len(eth_udp(B, A, 5060, 5060, b"\x80\x00rtp-ish")), "pcap-ns/ethernet/ipv4/udp/sip")
    assert (str(m.src), str(m.dst)) == (f"{A}:5062/udp", f"{B}:5070/udp")
    assert m.timestamp_ns == T0 + 2_000_000
    report = trace.report
    assert (report.frames, report.sip_frames, report.non_sip) == (3, 2, {"UDP without a SIP start line": 1})
    check_balanced(trace)


def test_tcp_message_split_in_three(tmp_path: Path) -> None:
    data = sip(1, body=b"x" * 300)
    parts = [data[:100], data[100:250], data[250:]]
    seq = 1000
    frames = []
    for p in parts:
        frames.append(eth_tcp(A, B, 40000, 5060, seq, p))
        seq += len(p)
    trace = load(write(tmp_path, frames))
    (m,) = trace.messages
    assert m.raw == data
    assert m.provenance is not None
    assert (m.provenance.frame, m.provenance.frames) == (3, (1, 2, 3))
    assert m.provenance.parser_chain == "pcap-ns/ethernet/ipv4/tcp/sip"
    assert m.timestamp_ns == T0 + 2_000_000
    assert trace.report.sip_frames == 3
    check_balanced(trace)


def test_tcp_two_messages_in_one_segment(tmp_path: Path) -> None:
    trace = load(write(tmp_path, [eth_tcp(A, B, 40000, 5060, 1, sip(1) + sip(2))]))
    assert cseqs(trace) == [1, 2]
    assert frames_of(trace) == [(1,), (1,)]
    assert (trace.report.frames, trace.report.sip_frames) == (1, 1)
    check_balanced(trace)


def test_tcp_out_of_order_and_retransmission(tmp_path: Path) -> None:
    one, two = sip(1), sip(2)
    stream = one + two
    cut = len(one) + 20
    first, second = stream[:cut], stream[cut:]
    frames = [
        eth_tcp(A, B, 40000, 5060, 0, b"", flags=0x02),  # SYN
        eth_tcp(A, B, 40000, 5060, 1 + cut, second),  # arrives early
        eth_tcp(A, B, 40000, 5060, 1, first),
        eth_tcp(A, B, 40000, 5060, 1, first),  # retransmitted
        eth_tcp(B, A, 5060, 40000, 1, b"", flags=0x10),  # pure ACK
    ]
    trace = load(write(tmp_path, frames))
    assert cseqs(trace) == [1, 2]
    assert frames_of(trace) == [(3,), (2, 3)]
    report = trace.report
    assert report.sip_frames == 2
    assert report.non_sip == {"TCP retransmission": 1, "TCP without payload": 2}
    check_balanced(trace)


def test_tcp_capture_starting_mid_stream(tmp_path: Path) -> None:
    tail_of_previous = b"a=rtpmap:0 PCMU/8000\r\n"
    frames = [eth_tcp(A, B, 40000, 5060, 777, tail_of_previous + sip(5))]
    trace = load(write(tmp_path, frames))
    assert cseqs(trace) == [5]
    check_balanced(trace)


def test_tcp_stream_ending_inside_a_message_is_a_problem(tmp_path: Path) -> None:
    data = sip(1)
    frames = [eth_tcp(A, B, 40000, 5060, 1, sip(2)), eth_tcp(A, B, 40000, 5060, 1 + len(sip(2)), data[:50])]
    trace = load(write(tmp_path, frames))
    assert cseqs(trace) == [2]
    (problem,) = trace.report.problems
    assert problem.frame == 2
    assert problem.kind == "reassembly"
    check_balanced(trace)


def test_fragmented_udp_over_ipv4_out_of_order(tmp_path: Path) -> None:
    payload = udp(5060, 5060, sip(1, body=b"y" * 1500))
    pieces = [(0, payload[:800]), (800, payload[800:1600]), (1600, payload[1600:])]
    frames = [
        ETH_IPV4 + ipv4(A, B, 17, pieces[2][1], ident=7, frag_offset=pieces[2][0]),
        ETH_IPV4 + ipv4(A, B, 17, pieces[0][1], ident=7, frag_offset=0, more=True),
        ETH_IPV4 + ipv4(A, B, 17, pieces[1][1], ident=7, frag_offset=800, more=True),
    ]
    trace = load(write(tmp_path, frames))
    (m,) = trace.messages
    assert m.provenance is not None
    assert m.provenance.frame == 3
    assert sorted(m.provenance.frames) == [1, 2, 3]
    assert m.body == b"y" * 1500
    assert trace.report.sip_frames == 3
    check_balanced(trace)


def test_fragmented_udp_over_ipv6(tmp_path: Path) -> None:
    a6, b6 = "2001:db8::10", "2001:db8::20"
    payload = udp(5060, 5060, sip(3, body=b"z" * 1400))
    frames = [
        ETH_IPV6 + ipv6(a6, b6, 44, ipv6_fragment(17, 0, True, 99, payload[:1000])),
        ETH_IPV6 + ipv6(a6, b6, 44, ipv6_fragment(17, 1000, False, 99, payload[1000:])),
    ]
    trace = load(write(tmp_path, frames))
    (m,) = trace.messages
    assert m.src is not None
    assert m.src.ip == a6
    assert m.provenance is not None
    assert m.provenance.frames == (1, 2)
    assert m.provenance.parser_chain.endswith("/udp/sip")
    check_balanced(trace)


def test_missing_fragment_is_a_problem(tmp_path: Path) -> None:
    payload = udp(5060, 5060, sip(1, body=b"y" * 1500))
    frames = [ETH_IPV4 + ipv4(A, B, 17, payload[:800], ident=9, more=True)]
    trace = load(write(tmp_path, frames))
    assert trace.messages == ()
    (problem,) = trace.report.problems
    assert (problem.frame, problem.kind) == (1, "reassembly")
    check_balanced(trace)


def test_websocket_masked_and_fragmented(tmp_path: Path) -> None:
    handshake = (
        b"GET / HTTP/1.1\r\nHost: sip.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    one, two = sip(1), sip(2)
    stream = [
        handshake,
        ws_frame(one),
        ws_frame(two[:40], fin=False) + ws_frame(b"", opcode=9) + ws_frame(two[40:], opcode=0),
    ]
    seq = 1
    frames = []
    for chunk in stream:
        frames.append(eth_tcp(A, B, 50000, 443, seq, chunk))
        seq += len(chunk)
    trace = load(write(tmp_path, frames))
    assert cseqs(trace) == [1, 2]
    m = trace.messages[0]
    assert m.src is not None
    assert m.src.transport == "ws"
    assert m.provenance is not None
    assert m.provenance.parser_chain == "pcap-ns/ethernet/ipv4/tcp/websocket/sip"
    assert trace.report.non_sip == {"WebSocket handshake": 1}
    check_balanced(trace)


def test_hep3_over_udp_takes_the_original_hop_and_time(tmp_path: Path) -> None:
    inner_ts = T0 - 5_000_000_000 + 123_000
    packet = hep3(sip(1), src="10.1.1.1", dst="10.2.2.2", sport=5080, dport=5090, ts_ns=inner_ts)
    trace = load(write(tmp_path, [eth_udp("127.0.0.1", "127.0.0.2", 40000, 9060, packet)]))
    (m,) = trace.messages
    assert (str(m.src), str(m.dst)) == ("10.1.1.1:5080/udp", "10.2.2.2:5090/udp")
    assert m.timestamp_ns == inner_ts
    assert m.provenance is not None
    assert m.provenance.parser_chain == "pcap-ns/ethernet/ipv4/udp/hep3/sip"
    assert "HEP" in m.provenance.time_meaning
    check_balanced(trace)


def test_sip_recognised_on_any_port(tmp_path: Path) -> None:
    trace = load(write(tmp_path, [eth_udp(A, B, 12345, 23456, sip(1)), eth_tcp(A, B, 3333, 4444, 1, sip(2))]))
    assert cseqs(trace) == [1, 2]


def test_unknown_link_type_and_truncated_file(tmp_path: Path) -> None:
    path = write(tmp_path, [b"\x00" * 40], linktype=147)
    trace = load(path)
    (problem,) = trace.report.problems
    assert problem.kind == "unknown-link-type"
    check_balanced(trace)
    with pytest.raises(CaptureError) as info:
        load(path, strict=True)
    assert info.value.frame == 1
    good = write(tmp_path, [eth_udp(A, B, 5060, 5060, sip(1)), eth_udp(A, B, 5060, 5060, sip(2))], name="cut.pcap")
    good.write_bytes(good.read_bytes()[:-30])
    trace = load(good)
    assert cseqs(trace) == [1]
    assert trace.report.problems[0].kind == "truncated"
    assert trace.report.problems[0].frame == 2
    check_balanced(trace)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(UnsupportedFormatError, match=r"junk\.bin"):
        load(junk)  # the content says what a file is, never its name
    trace = load(junk, format="pcap")  # forced: the capture reader says why not
    assert trace.messages == ()
    assert "not a pcap or pcapng file" in trace.report.problems[0].reason
    with pytest.raises(CaptureError, match=r"junk\.bin"):
        load(junk, format="pcap", strict=True)
    with pytest.raises(IngestError, match="no such file"):
        load(tmp_path / "absent.pcap")


def test_directory_and_list_sources_merge_in_time(tmp_path: Path) -> None:
    d = tmp_path / "caps"
    d.mkdir()
    (d / "b.pcap").write_bytes(pcap([(T0 + 5, eth_udp(A, B, 5060, 5060, sip(2)))], nanos=True))
    (d / "a.pcap").write_bytes(pcap([(T0 + 9, eth_udp(A, B, 5060, 5060, sip(3)))], nanos=True))
    trace = load(d)
    assert cseqs(trace) == [2, 3]
    assert [s.source.rsplit("/", 1)[-1] for s in trace.report.sources] == ["a.pcap", "b.pcap"]
    assert cseqs(load([d / "a.pcap", d / "b.pcap"])) == [2, 3]


def test_iter_messages_streams_with_a_report(tmp_path: Path) -> None:
    path = write(tmp_path, [eth_udp(A, B, 5060, 5060, sip(n)) for n in range(1, 6)])
    stream = iter_messages(path, limits=Limits(max_tcp_streams=4))
    first = next(stream)
    assert first.cseq is not None
    assert first.cseq.number == 1
    rest = list(stream)
    assert len(rest) == 4
    assert stream.report.sip_messages == 5
    assert stream.report.is_balanced()
