"""Link and network layers: link types, tunnels, IP fragments, transports, real captures."""

from __future__ import annotations

import csv
import functools
import itertools
import json
import struct
from collections import Counter
from collections.abc import Iterator, Sequence
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipchain.sources._net import MAX_ENCAPSULATIONS, NetDecoder, Result
from sipchain.sources._packets import ACK, FIN, PSH, SYN, GaveUp, Pending, Segment, Skip

SIP = b"OPTIONS sip:bob@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n"
SRC4, DST4 = "192.0.2.10", "198.51.100.20"
SRC6, DST6 = "2001:db8::10", "2001:db8:0:1::20"
MAC = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"  # dst + src

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PCAP_DIR = CORPUS / "pcap"


# --------------------------------------------------------------------- builders
def a4(text: str) -> bytes:
    return ip_address(text).packed


def udp(payload: bytes = SIP, sport: int = 5060, dport: int = 5080) -> dpkt.udp.UDP:
    return dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)


def ip4(
    inner: bytes | dpkt.Packet, proto: int = 17, src: str = SRC4, dst: str = DST4, **kw: int
) -> bytes:
    """An IPv4 packet built by dpkt (total length and checksum computed)."""
    pkt = dpkt.ip.IP(src=a4(src), dst=a4(dst), p=proto, ttl=64, data=inner, **kw)
    return bytes(pkt)


def ip6(inner: bytes | dpkt.Packet, nxt: int = 17, src: str = SRC6, dst: str = DST6) -> bytes:
    body = bytes(inner)
    pkt = dpkt.ip6.IP6(src=a4(src), dst=a4(dst), nxt=nxt, hlim=64, plen=len(body))
    return bytes(pkt) + body


def eth(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return MAC + struct.pack("!H", ethertype) + payload


def udp4() -> bytes:
    return ip4(udp())


def decode(
    data: bytes, linktype: int = 1, frame: int = 1, ts: int = 0, wire: int | None = None
) -> Result:
    return NetDecoder().decode(linktype, data, frame, ts, len(data) if wire is None else wire)


def one(result: Result) -> Segment:
    assert isinstance(result, list), result
    assert len(result) == 1, result
    return result[0]


def check_udp4(result: Result, chain: str) -> Segment:
    seg = one(result)
    assert (seg.transport, seg.src, seg.sport, seg.dst, seg.dport) == (
        "udp",
        SRC4,
        5060,
        DST4,
        5080,
    )
    assert seg.payload == SIP
    assert seg.chain == chain
    assert not seg.truncated
    return seg


def check_udp6(result: Result, chain: str) -> Segment:
    seg = one(result)
    assert (seg.transport, seg.src, seg.sport, seg.dst, seg.dport) == (
        "udp",
        SRC6,
        5060,
        DST6,
        5080,
    )
    assert seg.payload == SIP
    assert seg.chain == chain
    return seg


def skip(result: Result, reason: str, problem: bool, chain: str | None = None) -> Skip:
    assert isinstance(result, Skip), result
    assert result.reason == reason
    assert result.problem is problem
    if chain is not None:
        assert result.chain == chain
    return result


# --------------------------------------------------------------------- Ethernet path
def test_ethernet_ipv4_udp() -> None:
    seg = check_udp4(decode(eth(udp4()), frame=7), "ethernet/ipv4/udp")
    assert seg.frames == (7,)
    assert (seg.seq, seg.flags) == (0, 0)


def test_ethernet_padding_beyond_total_length_is_ignored() -> None:
    short = ip4(udp(b"hi"))
    frame = eth(short) + b"\x00" * (60 - 14 - len(short)) + b"FCS!"
    assert one(decode(frame)).payload == b"hi"


def test_ipv4_options_are_skipped() -> None:
    body = bytes(udp())
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x47, 0, 28 + len(body), 1, 0, 64, 17, 0, a4(SRC4), a4(DST4)
    )
    options = b"\x01" * 7 + b"\x00"  # NOPs then end of options list
    check_udp4(decode(eth(header + options + body)), "ethernet/ipv4/udp")


def test_udp_length_and_ip_length_disagree_trust_the_smaller() -> None:
    body = bytearray(bytes(udp()))
    struct.pack_into("!H", body, 4, 8 + len(SIP) + 100)  # UDP length too large
    assert one(decode(eth(ip4(bytes(body))))).payload == SIP
    short = bytearray(bytes(udp()))
    struct.pack_into("!H", short, 4, 8 + 7)  # UDP length shorter than the IP payload
    seg = one(decode(eth(ip4(bytes(short)))))
    assert seg.payload == SIP[:7]
    assert not seg.truncated
    bogus = bytearray(bytes(udp()))
    struct.pack_into("!H", bogus, 4, 3)  # below 8: meaningless, the IP length rules
    assert one(decode(eth(ip4(bytes(bogus))))).payload == SIP


def test_ip_total_length_zero_uses_captured_bytes() -> None:
    packet = bytearray(udp4())
    struct.pack_into("!H", packet, 2, 0)  # left zero by segmentation offload
    check_udp4(decode(eth(bytes(packet))), "ethernet/ipv4/udp")


@pytest.mark.parametrize(
    ("tags", "chain"),
    [
        ([0x8100], "ethernet/vlan/ipv4/udp"),
        ([0x88A8, 0x8100], "ethernet/vlan/vlan/ipv4/udp"),
        ([0x9100, 0x8100], "ethernet/vlan/vlan/ipv4/udp"),
        ([0x88A8, 0x8100, 0x8100], "ethernet/vlan/vlan/vlan/ipv4/udp"),
    ],
)
def test_vlan_tags(tags: list[int], chain: str) -> None:
    body = b""
    types = [*tags[1:], 0x0800]
    for vid, next_type in enumerate(types, start=100):
        body += struct.pack("!HH", vid, next_type)
    check_udp4(decode(eth(body + udp4(), tags[0])), chain)


def test_vlan_with_ipv6() -> None:
    check_udp6(
        decode(eth(struct.pack("!HH", 5, 0x86DD) + ip6(udp()), 0x8100)), "ethernet/vlan/ipv6/udp"
    )


def test_vlan_tag_truncated() -> None:
    skip(decode(eth(b"\x00", 0x8100)), "802.1Q VLAN tag truncated: 1 of 4 bytes", True, "ethernet")


@pytest.mark.parametrize("ethertype", [0x8847, 0x8848])
def test_mpls_label_stack(ethertype: int) -> None:
    labels = struct.pack("!II", 16 << 12 | 64, 17 << 12 | 0x100 | 64)  # two labels, S on the second
    check_udp4(decode(eth(labels + udp4(), ethertype)), "ethernet/mpls/ipv4/udp")
    check_udp6(decode(eth(labels + ip6(udp()), ethertype)), "ethernet/mpls/ipv6/udp")


def test_mpls_non_ip_payload_and_truncation() -> None:
    label = struct.pack("!I", 16 << 12 | 0x100 | 64)
    skip(
        decode(eth(label + b"\x00" * 30, 0x8847)),
        "not IP (MPLS payload starts with nibble 0)",
        False,
    )
    no_bottom = struct.pack("!I", 16 << 12 | 64)
    result = decode(eth(no_bottom, 0x8847))
    skip(result, "MPLS label stack truncated before its bottom entry", True, "ethernet/mpls")


def pppoe(ppp_proto: int, payload: bytes) -> bytes:
    return struct.pack("!BBHHH", 0x11, 0, 0x1234, len(payload) + 2, ppp_proto) + payload


def test_pppoe_session() -> None:
    check_udp4(decode(eth(pppoe(0x0021, udp4()), 0x8864)), "ethernet/pppoe/ppp/ipv4/udp")
    check_udp6(decode(eth(pppoe(0x0057, ip6(udp())), 0x8864)), "ethernet/pppoe/ppp/ipv6/udp")


def test_pppoe_built_by_dpkt() -> None:
    frame = dpkt.pppoe.PPPoE(session=7, data=dpkt.pppoe.PPP(p=0x21, data=dpkt.ip.IP(udp4())))
    check_udp4(decode(eth(bytes(frame), 0x8864)), "ethernet/pppoe/ppp/ipv4/udp")


def test_pppoe_non_ip_and_discovery() -> None:
    lcp = pppoe(0xC021, b"\x01\x01\x00\x04")
    skip(decode(eth(lcp, 0x8864)), "not IP (PPP protocol 0xc021)", False, "ethernet/pppoe/ppp")
    skip(decode(eth(b"\x11\x09\x00\x00\x00\x00", 0x8863)), "not IP (ethertype 0x8863)", False)
    skip(decode(eth(b"\x22" + b"\x00" * 7, 0x8864)), "PPPoE version/type 0x22 is not 0x11", True)


def test_not_ip_frames_are_ordinary() -> None:
    arp = bytes(dpkt.arp.ARP())
    skip(decode(eth(arp, 0x0806)), "not IP (ethertype 0x0806)", False, "ethernet")
    llc = b"\x42\x42\x03" + b"\x00" * 35  # spanning tree BPDU: 802.3 length + LLC
    skip(
        decode(eth(llc, len(llc))), f"not IP (IEEE 802.3 length {len(llc)}, LLC)", False, "ethernet"
    )
    snap = b"\xaa\xaa\x03\x00\x00\x0c\x20\x00" + b"\x00" * 30  # CDP in SNAP
    skip(decode(eth(snap, len(snap))), f"not IP (IEEE 802.3 length {len(snap)}, LLC)", False)


# --------------------------------------------------------------------- other link types
def sll(payload: bytes, protocol: int = 0x0800) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\x00\x00", protocol) + payload


def sll2(payload: bytes, protocol: int = 0x0800) -> bytes:
    return struct.pack("!HHiHBB8s", protocol, 0, 3, 1, 0, 6, b"\x02" * 6 + b"\x00\x00") + payload


@pytest.mark.parametrize(
    ("linktype", "frame", "chain"),
    [
        (1, eth(udp4()), "ethernet/ipv4/udp"),
        (113, sll(udp4()), "sll/ipv4/udp"),
        (276, sll2(udp4()), "sll2/ipv4/udp"),
        (101, udp4(), "raw/ipv4/udp"),
        (12, udp4(), "raw/ipv4/udp"),
        (14, udp4(), "raw/ipv4/udp"),
        (228, udp4(), "raw/ipv4/udp"),
        (0, struct.pack("<I", 2) + udp4(), "null/ipv4/udp"),
        (0, struct.pack(">I", 2) + udp4(), "null/ipv4/udp"),
        (108, struct.pack(">I", 2) + udp4(), "loop/ipv4/udp"),
        (9, b"\xff\x03\x00\x21" + udp4(), "ppp/ipv4/udp"),
        (9, b"\x00\x21" + udp4(), "ppp/ipv4/udp"),
        (9, b"\x21" + udp4(), "ppp/ipv4/udp"),  # protocol field compression
        (50, b"\xff\x03\x00\x21" + udp4(), "ppp/ipv4/udp"),
    ],
)
def test_link_types_ipv4(linktype: int, frame: bytes, chain: str) -> None:
    check_udp4(decode(frame, linktype), chain)


@pytest.mark.parametrize(
    ("linktype", "frame", "chain"),
    [
        (113, sll(ip6(udp()), 0x86DD), "sll/ipv6/udp"),
        (276, sll2(ip6(udp()), 0x86DD), "sll2/ipv6/udp"),
        (101, ip6(udp()), "raw/ipv6/udp"),
        (229, ip6(udp()), "raw/ipv6/udp"),
        (0, struct.pack("<I", 24) + ip6(udp()), "null/ipv6/udp"),
        (0, struct.pack(">I", 28) + ip6(udp()), "null/ipv6/udp"),
        (0, struct.pack("<I", 30) + ip6(udp()), "null/ipv6/udp"),
        (108, struct.pack(">I", 24) + ip6(udp()), "loop/ipv6/udp"),
        (50, b"\xff\x03\x00\x57" + ip6(udp()), "ppp/ipv6/udp"),
    ],
)
def test_link_types_ipv6(linktype: int, frame: bytes, chain: str) -> None:
    check_udp6(decode(frame, linktype), chain)


def test_sll_built_by_dpkt() -> None:
    frame = bytes(dpkt.sll.SLL(type=0, hrd=1, hlen=6, hdr=b"\x02" * 6, ethtype=0x0800, data=udp4()))
    check_udp4(decode(frame, 113), "sll/ipv4/udp")


def test_link_type_odd_cases() -> None:
    skip(decode(udp4(), 147), "unknown link type 147", True, "")
    skip(decode(b"\x00" * 16, 113), "not IP (SLL protocol 0x0000)", False, "sll")
    skip(decode(sll(bytes(dpkt.arp.ARP()), 0x0806), 113), "not IP (ethertype 0x0806)", False, "sll")
    skip(decode(struct.pack("<I", 7) + udp4(), 0), "not IP (address family 7)", False, "null")
    skip(
        decode(b"\x50" + udp4()[1:], 101), "raw IP packet has IP version 5 (expected 4 or 6)", True
    )
    skip(decode(b"", 101), "raw IP packet is empty", True, "raw")
    skip(decode(b"\x00", 1), "Ethernet header truncated: 1 of 14 bytes", True, "")
    skip(decode(b"\x00" * 10, 113), "Linux cooked (SLL) header truncated: 10 of 16 bytes", True)
    skip(decode(ip6(udp()), 228), "IPv4 header has version 6", True, "raw")
    skip(decode(b"\xff\x03\xc0\x21\x01", 9), "not IP (PPP protocol 0xc021)", False, "ppp")


# --------------------------------------------------------------------- IP and tunnels
def test_ip_protocols_that_are_not_sip() -> None:
    icmp = bytes(dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=1, seq=1)))
    skip(decode(eth(ip4(icmp, proto=1))), "ICMP", False, "ethernet/ipv4")
    skip(decode(eth(ip6(b"\x80\x00\x00\x00", nxt=58), 0x86DD)), "ICMPv6", False, "ethernet/ipv6")
    skip(decode(eth(ip4(b"\x00" * 40, proto=89))), "not UDP/TCP/SCTP (IP protocol 89)", False)
    skip(decode(eth(ip4(b"\x00" * 40, proto=50))), "encrypted (ESP)", False)


def test_ipv4_header_errors() -> None:
    packet = udp4()
    skip(
        decode(eth(packet[:12]), wire=200),
        "IPv4 header truncated: 12 of 20 bytes",
        True,
        "ethernet",
    )
    bad_ihl = bytes([0x44]) + packet[1:]
    skip(decode(eth(bad_ihl)), "IPv4 header length 16 bytes is less than 20 (IHL 4)", True)
    bad_len = bytearray(packet)
    struct.pack_into("!H", bad_len, 2, 10)
    skip(
        decode(eth(bytes(bad_len))), "IPv4 total length 10 is less than its header length 20", True
    )
    skip(decode(eth(b"\x65" + packet[1:])), "IPv4 header has version 6", True)


def test_ip_in_ip() -> None:
    outer = ip4(udp4(), proto=4, src="203.0.113.1", dst="203.0.113.2")
    check_udp4(decode(outer, 101), "raw/ipv4/ipv4/udp")
    six_in_four = ip4(ip6(udp()), proto=41, src="203.0.113.1", dst="203.0.113.2")
    check_udp6(decode(eth(six_in_four)), "ethernet/ipv4/ipv6/udp")
    four_in_six = ip6(udp4(), nxt=4)
    check_udp4(decode(eth(four_in_six, 0x86DD)), "ethernet/ipv6/ipv4/udp")


def test_ip_in_ip_tcp_matches_outer_bound() -> None:
    seg_bytes = bytes(dpkt.tcp.TCP(sport=5060, dport=5080, seq=9, flags=0x18, off=5, data=SIP))
    inner = ip4(seg_bytes, proto=6)
    seg = one(decode(ip4(inner, proto=4, src="203.0.113.1", dst="203.0.113.2"), 101))
    assert (seg.chain, seg.payload, seg.seq) == ("raw/ipv4/ipv4/tcp", SIP, 9)


def test_nesting_limit() -> None:
    packet = udp4()
    for _ in range(MAX_ENCAPSULATIONS):
        packet = ip4(packet, proto=4)
    assert one(decode(packet, 101)).payload == SIP
    deeper = ip4(packet, proto=4)
    result = decode(deeper, 101)
    skip(result, f"more than {MAX_ENCAPSULATIONS} nested encapsulations", True)


def gre(
    protocol: int,
    payload: bytes,
    *,
    checksum: bool = False,
    key: int | None = None,
    seq: int | None = None,
) -> bytes:
    flags = (
        (0x8000 if checksum else 0)
        | (0x2000 if key is not None else 0)
        | (0x1000 if seq is not None else 0)
    )
    header = struct.pack("!HH", flags, protocol)
    if checksum:
        header += b"\x12\x34\x00\x00"
    if key is not None:
        header += struct.pack("!I", key)
    if seq is not None:
        header += struct.pack("!I", seq)
    return header + payload


def outer4(payload: bytes, proto: int) -> bytes:
    return eth(ip4(payload, proto=proto, src="203.0.113.1", dst="203.0.113.2"))


def test_gre_ipv4_and_ipv6() -> None:
    check_udp4(decode(outer4(gre(0x0800, udp4()), 47)), "ethernet/ipv4/gre/ipv4/udp")
    check_udp6(decode(outer4(gre(0x86DD, ip6(udp())), 47)), "ethernet/ipv4/gre/ipv6/udp")
    full = gre(0x0800, udp4(), checksum=True, key=99, seq=5)
    check_udp4(decode(outer4(full, 47)), "ethernet/ipv4/gre/ipv4/udp")


def test_gre_built_by_dpkt() -> None:
    packet = dpkt.gre.GRE(p=0x0800, data=dpkt.ip.IP(udp4()))
    check_udp4(decode(outer4(bytes(packet), 47)), "ethernet/ipv4/gre/ipv4/udp")


def test_gre_transparent_ethernet_bridging() -> None:
    check_udp4(
        decode(outer4(gre(0x6558, eth(udp4()), key=1), 47)), "ethernet/ipv4/gre/ethernet/ipv4/udp"
    )


def test_gre_other_protocols_and_errors() -> None:
    skip(decode(outer4(gre(0x0806, b"\x00" * 28), 47)), "not IP (GRE protocol 0x0806)", False)
    skip(
        decode(outer4(b"\x00\x00", 47)), "GRE header truncated: 2 of 4 bytes", True, "ethernet/ipv4"
    )
    skip(
        decode(outer4(struct.pack("!HH", 0x3000, 0x0800) + b"\x00" * 4, 47)),
        "GRE header truncated: 8 of 12 bytes",
        True,
    )
    skip(
        decode(outer4(struct.pack("!HH", 2, 0x0800) + udp4(), 47)),
        "GRE version 2 is not supported",
        True,
    )


def test_gre_pptp_carries_ppp() -> None:
    ppp = b"\xff\x03\x00\x21" + udp4()
    header = struct.pack("!HHHHI", 0x3001, 0x880B, len(ppp), 7, 1)  # K, S, version 1
    check_udp4(decode(outer4(header + ppp, 47)), "ethernet/ipv4/gre/ppp/ipv4/udp")


def erspan2(frame: bytes) -> bytes:
    return struct.pack("!HHI", 0x1000 | 10, 0x0001, 0) + frame  # version 1 (type II), VLAN 10


def erspan3(frame: bytes, *, platform: bool) -> bytes:
    word = 0x0001 if platform else 0  # FT 0 (Ethernet), O bit last
    header = struct.pack("!HHIHH", 0x2000 | 10, 0x0001, 123456, 0, word)
    if platform:
        header += struct.pack("!II", 0x0800_0000, 42)
    return header + frame


def test_erspan_type_ii() -> None:
    result = decode(outer4(gre(0x88BE, erspan2(eth(udp4())), seq=1), 47))
    check_udp4(result, "ethernet/ipv4/gre/erspan/ethernet/ipv4/udp")


@pytest.mark.parametrize("platform", [False, True])
def test_erspan_type_iii(platform: bool) -> None:
    result = decode(outer4(gre(0x22EB, erspan3(eth(udp4()), platform=platform), seq=1), 47))
    check_udp4(result, "ethernet/ipv4/gre/erspan/ethernet/ipv4/udp")


def test_erspan_type_i_has_no_header() -> None:
    check_udp4(
        decode(outer4(gre(0x88BE, eth(udp4())), 47)), "ethernet/ipv4/gre/erspan/ethernet/ipv4/udp"
    )


def test_erspan_truncated_header() -> None:
    result = decode(outer4(gre(0x22EB, b"\x00" * 6, seq=1), 47))
    skip(
        result, "ERSPAN type III header truncated: 6 of 12 bytes", True, "ethernet/ipv4/gre/erspan"
    )


# --------------------------------------------------------------------- IPv6 extension headers
def ext(next_header: int, length_units: int = 0) -> bytes:
    return (
        struct.pack("!BB", next_header, length_units)
        + b"\x01\x04\x00\x00\x00\x00"
        + b"\x00" * 8 * length_units
    )


def test_ipv6_extension_headers() -> None:
    chain_bytes = (
        ext(43) + ext(60, 1) + ext(17) + bytes(udp())
    )  # hop-by-hop -> routing -> dest opts -> UDP
    result = decode(eth(ip6(chain_bytes, nxt=0), 0x86DD))
    check_udp6(result, "ethernet/ipv6/hopopts/routing/dstopts/udp")


def test_ipv6_authentication_header() -> None:
    ah = struct.pack("!BBHII", 17, 4, 0, 0x100, 1) + b"\x00" * 12  # (4 + 2) * 4 = 24 bytes
    check_udp6(decode(eth(ip6(ah + bytes(udp()), nxt=51), 0x86DD)), "ethernet/ipv6/ah/udp")
    check_udp4(decode(eth(ip4(ah + bytes(udp()), proto=51))), "ethernet/ipv4/ah/udp")


def test_ipv6_esp_and_no_next_header() -> None:
    skip(decode(eth(ip6(b"\x00" * 40, nxt=50), 0x86DD)), "encrypted (ESP)", False, "ethernet/ipv6")
    skip(
        decode(eth(ip6(ext(50), nxt=60), 0x86DD)), "encrypted (ESP)", False, "ethernet/ipv6/dstopts"
    )
    skip(decode(eth(ip6(b"", nxt=59), 0x86DD)), "IPv6 no next header", False)


def test_ipv6_extension_header_truncated() -> None:
    result = decode(eth(ip6(ext(17, 2)[:12], nxt=0), 0x86DD))
    skip(result, "IPv6 hopopts header truncated: 12 of 24 bytes", True, "ethernet/ipv6")


def test_ipv6_atomic_fragment_is_a_whole_datagram() -> None:
    header = struct.pack("!BxHI", 17, 0, 0xABCD)
    result = decode(eth(ip6(header + bytes(udp()), nxt=44), 0x86DD))
    check_udp6(result, "ethernet/ipv6/fragment/udp")


# --------------------------------------------------------------------- TCP and SCTP
def test_tcp_segments_without_payload_are_kept() -> None:
    syn = dpkt.tcp.TCP(sport=5060, dport=5080, seq=1000, flags=SYN, off=5)
    seg = one(decode(eth(ip4(syn, proto=6))))
    assert (seg.transport, seg.payload, seg.seq, seg.flags, seg.chain) == (
        "tcp",
        b"",
        1000,
        SYN,
        "ethernet/ipv4/tcp",
    )
    fin = dpkt.tcp.TCP(sport=5080, dport=5060, seq=7, flags=FIN | ACK, off=5)
    assert one(decode(eth(ip4(fin, proto=6)))).flags == FIN | ACK


def test_tcp_options_and_payload() -> None:
    options = b"\x02\x04\x05\xb4\x01\x01\x04\x02"  # MSS, NOP, NOP, SACK permitted
    segment = dpkt.tcp.TCP(
        sport=5060, dport=5080, seq=2**32 - 3, flags=PSH | ACK, off=7, opts=options, data=SIP
    )
    seg = one(decode(eth(ip6(segment, nxt=6), 0x86DD)))
    assert (seg.src, seg.dst, seg.payload, seg.seq, seg.flags) == (
        SRC6,
        DST6,
        SIP,
        2**32 - 3,
        PSH | ACK,
    )
    assert seg.chain == "ethernet/ipv6/tcp"


def test_tcp_header_errors() -> None:
    bad = bytes(dpkt.tcp.TCP(sport=1, dport=2, off=4))
    skip(decode(eth(ip4(bad, proto=6))), "TCP data offset 16 bytes is less than 20", True)
    long_header = bytes(dpkt.tcp.TCP(sport=1, dport=2, off=8))
    skip(decode(eth(ip4(long_header, proto=6))), "TCP header truncated: 20 of 32 bytes", True)


def chunk(ctype: int, flags: int, body: bytes) -> bytes:
    raw = struct.pack("!BBH", ctype, flags, 4 + len(body)) + body
    return raw + b"\x00" * (-len(raw) % 4)


def data_chunk(tsn: int, user: bytes, flags: int = 3) -> bytes:
    return chunk(0, flags, struct.pack("!IHHI", tsn, 0, tsn, 0) + user)


def sctp(*chunks: bytes, sport: int = 5060, dport: int = 5080) -> bytes:
    return struct.pack("!HHII", sport, dport, 0xDEADBEEF, 0) + b"".join(chunks)


def test_sctp_two_data_chunks() -> None:
    other = SIP.replace(b"OPTIONS", b"MESSAGE")
    sack = chunk(3, 0, struct.pack("!IIHH", 1, 1000, 0, 0))
    packet = sctp(data_chunk(41, SIP[:-1]), sack, data_chunk(42, other))  # odd length: padded
    result = decode(sll(ip4(packet, proto=132)), 113, frame=3)
    assert isinstance(result, list)
    assert [s.payload for s in result] == [SIP[:-1], other]
    assert [s.seq for s in result] == [41, 42]
    for seg in result:
        assert (seg.transport, seg.src, seg.sport, seg.dst, seg.dport) == (
            "sctp",
            SRC4,
            5060,
            DST4,
            5080,
        )
        assert (seg.chain, seg.frames, seg.flags) == ("sll/ipv4/sctp", (3,), 3)


def test_sctp_i_data_chunk() -> None:
    i_data = chunk(64, 3, struct.pack("!IHHII", 5, 0, 0, 1, 0) + SIP)
    seg = one(decode(eth(ip4(sctp(i_data), proto=132))))
    assert (seg.payload, seg.seq) == (SIP, 5)


def test_sctp_without_data_and_malformed_chunks() -> None:
    init = chunk(1, 0, struct.pack("!IIHHI", 1, 65535, 10, 10, 1))
    skip(
        decode(eth(ip4(sctp(init), proto=132))),
        "SCTP without DATA chunks",
        False,
        "ethernet/ipv4/sctp",
    )
    skip(decode(eth(ip4(sctp(), proto=132))), "SCTP without DATA chunks", False)
    zero = struct.pack("!BBH", 0, 0, 2)
    skip(decode(eth(ip4(sctp(zero), proto=132))), "SCTP chunk length 2 is less than 4", True)
    short_data = chunk(0, 3, b"\x00" * 8)
    skip(
        decode(eth(ip4(sctp(short_data), proto=132))),
        "SCTP DATA chunk length 12 is less than 16",
        True,
    )
    overlong = struct.pack("!BBH", 0, 3, 400) + b"\x00" * 16
    result = decode(eth(ip4(sctp(overlong), proto=132)))
    skip(result, "SCTP chunk length 400 runs past the end of the packet (20 bytes left)", True)


# --------------------------------------------------------------------- snaplen truncation
def test_snaplen_cut_inside_the_udp_payload() -> None:
    frame = eth(udp4())
    seg = one(decode(frame[:60], wire=len(frame)))
    assert seg.truncated
    assert seg.payload == SIP[: 60 - 42]
    assert (seg.src, seg.dport) == (SRC4, 5080)


def test_snaplen_cut_inside_tcp_and_sctp_payloads() -> None:
    tcp_frame = eth(ip4(dpkt.tcp.TCP(sport=1, dport=2, off=5, data=SIP), proto=6))
    seg = one(decode(tcp_frame[:70], wire=len(tcp_frame)))
    assert seg.truncated
    assert seg.payload == SIP[: 70 - 54]
    sctp_frame = eth(ip4(sctp(data_chunk(1, SIP), data_chunk(2, SIP)), proto=132))
    result = decode(sctp_frame[:100], wire=len(sctp_frame))
    assert isinstance(result, list)
    assert len(result) == 1  # the second chunk is lost to the capture
    assert result[0].truncated


def test_snaplen_cut_inside_headers() -> None:
    frame = eth(udp4())
    skip(
        decode(frame[:38], wire=len(frame)),
        "UDP header truncated: 4 of 8 bytes",
        True,
        "ethernet/ipv4",
    )
    skip(
        decode(frame[:26], wire=len(frame)),
        "IPv4 header truncated: 12 of 20 bytes",
        True,
        "ethernet",
    )
    six = eth(ip6(udp()), 0x86DD)
    skip(decode(six[:40], wire=len(six)), "IPv6 header truncated: 26 of 40 bytes", True)


def test_snaplen_cut_sctp_before_any_chunk() -> None:
    frame = eth(ip4(sctp(data_chunk(1, SIP)), proto=132))
    result = decode(frame[:48], wire=len(frame))
    skip(result, f"captured length cut the SCTP chunks (caplen 48 < {len(frame)})", True)


# --------------------------------------------------------------------- fragments
IDENT = 0x4242


def frag4(
    payload: bytes,
    offset: int,
    more: bool,
    *,
    ident: int = IDENT,
    proto: int = 17,
    src: str = SRC4,
    dst: str = DST4,
) -> bytes:
    """An IPv4 fragment of ``payload`` (the whole datagram payload), Ethernet-framed."""
    piece = payload
    flags = (0x2000 if more else 0) | offset >> 3
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(piece), ident, flags, 64, proto, 0, a4(src), a4(dst)
    )
    return eth(header + piece)


def split4(datagram: bytes, cuts: Sequence[int], **kw: Any) -> list[bytes]:
    """Fragment a datagram payload at the given offsets (multiples of 8)."""
    bounds = [0, *cuts, len(datagram)]
    return [
        frag4(datagram[a:b], a, b != len(datagram), **kw) for a, b in itertools.pairwise(bounds)
    ]


def frag6(
    payload: bytes,
    offset: int,
    more: bool,
    *,
    ident: int = IDENT,
    nxt: int = 17,
    prefix: bytes = b"",
    first: int = 44,
) -> bytes:
    header = struct.pack("!BxHI", nxt, offset | int(more), ident)
    return eth(ip6(prefix + header + payload, nxt=first), 0x86DD)


def split6(datagram: bytes, cuts: Sequence[int], nxt: int = 17, ident: int = IDENT) -> list[bytes]:
    bounds = [0, *cuts, len(datagram)]
    return [
        frag6(datagram[a:b], a, b != len(datagram), nxt=nxt, ident=ident)
        for a, b in itertools.pairwise(bounds)
    ]


BIG = SIP + b"v=0\r\n" * 300  # about 1.5 kB of SIP
DATAGRAM = bytes(udp(BIG))  # the UDP header travels in the first fragment


def feed(
    decoder: NetDecoder, frames: Sequence[bytes], numbers: Sequence[int] | None = None, ts: int = 0
) -> list[Result]:
    numbers = list(numbers) if numbers is not None else list(range(1, len(frames) + 1))
    return [
        decoder.decode(1, frame, n, ts + n, len(frame))
        for frame, n in zip(frames, numbers, strict=True)
    ]


def check_big(
    result: Result, frames: tuple[int, ...], chain: str = "ethernet/ipv4/fragment/udp"
) -> None:
    seg = one(result)
    assert seg.payload == BIG
    assert seg.frames == frames
    assert seg.chain == chain
    assert (seg.sport, seg.dport) == (5060, 5080)


def test_ipv4_fragments_in_order() -> None:
    decoder = NetDecoder()
    results = feed(decoder, split4(DATAGRAM, [504, 1008]))
    assert results[:2] == [Pending("ethernet/ipv4/fragment")] * 2
    check_big(results[2], (1, 2, 3))
    assert decoder.flush() == []


def test_ipv4_fragments_out_of_order() -> None:
    parts = split4(DATAGRAM, [504, 1008])
    decoder = NetDecoder()
    results = feed(decoder, [parts[2], parts[0], parts[1]], [10, 11, 12])
    assert all(isinstance(r, Pending) for r in results[:2])
    check_big(results[2], (10, 11, 12))


def test_ipv4_fragments_last_first_then_hole_filled() -> None:
    parts = split4(DATAGRAM, [504, 1008])
    decoder = NetDecoder()
    results = feed(decoder, [parts[1], parts[2], parts[0]])
    check_big(results[2], (1, 2, 3))


def test_ipv4_duplicate_fragments_are_ignored() -> None:
    parts = split4(DATAGRAM, [504, 1008])
    decoder = NetDecoder()
    results = feed(decoder, [parts[0], parts[0], parts[1], parts[2], parts[2]])
    assert isinstance(results[1], Pending)
    check_big(results[3], (1, 2, 3, 4))
    skip(results[4], "duplicate IPv4 fragment of a datagram already reassembled", False)
    assert decoder.flush() == []


def test_ipv4_overlap_with_same_content() -> None:
    # Fragmented twice at different boundaries: the ranges overlap but agree.
    first = split4(DATAGRAM, [504, 1008])
    second = split4(DATAGRAM, [752])
    decoder = NetDecoder()
    results = feed(decoder, [first[0], second[1], first[1]])
    check_big(results[2], (1, 2, 3))


def test_ipv4_overlap_with_different_content_is_given_up() -> None:
    parts = split4(DATAGRAM, [504, 1008])
    tampered = bytearray(DATAGRAM)
    tampered[600] ^= 0xFF
    evil = split4(bytes(tampered), [496, 1008])[
        1
    ]  # overlaps parts[1] at 496..1008 with one byte changed
    decoder = NetDecoder()
    results = feed(decoder, [parts[0], parts[1], evil, parts[2]])
    assert all(isinstance(r, Pending) for r in results)
    assert decoder.expire(10) == [
        GaveUp((1, 2, 3, 4), "overlapping IPv4 fragments with different content")
    ]
    assert decoder.flush() == []


def test_ipv4_overlap_keeps_first_bytes_when_conflict_is_only_in_new_part() -> None:
    # A later fragment that overlaps with equal bytes and adds new ones is merged.
    parts = split4(DATAGRAM, [504, 1008])
    wide = split4(DATAGRAM, [256, 1200])[1]  # 256..1200 covers parts[0] tail and parts[1]
    decoder = NetDecoder()
    results = feed(decoder, [parts[0], wide, parts[2]])
    check_big(results[2], (1, 2, 3))


def test_ipv4_missing_fragment_expires() -> None:
    parts = split4(DATAGRAM, [504, 1008])
    decoder = NetDecoder(fragment_timeout_ns=1_000)
    decoder.decode(1, parts[0], 1, 100, len(parts[0]))
    decoder.decode(1, parts[2], 2, 500, len(parts[2]))
    assert decoder.expire(1_100) == []  # exactly the timeout: not older yet
    assert decoder.expire(1_101) == [GaveUp((1, 2), "IPv4 fragments incomplete after 0.000001 s")]
    assert decoder.expire(10_000) == []
    assert decoder.flush() == []


def test_default_timeout_reason_and_flush() -> None:
    parts = split4(DATAGRAM, [504])
    decoder = NetDecoder()
    decoder.decode(1, parts[0], 5, 0, len(parts[0]))
    assert decoder.expire(30_000_000_000) == []
    assert decoder.expire(30_000_000_001) == [GaveUp((5,), "IPv4 fragments incomplete after 30 s")]
    decoder.decode(1, parts[0], 6, 0, len(parts[0]))
    assert decoder.flush() == [GaveUp((6,), "IPv4 fragments incomplete at the end of the capture")]


def test_stale_group_is_replaced_when_a_fragment_arrives_late() -> None:
    parts = split4(DATAGRAM, [504])
    decoder = NetDecoder(fragment_timeout_ns=1_000)
    assert isinstance(decoder.decode(1, parts[0], 1, 0, len(parts[0])), Pending)
    assert isinstance(decoder.decode(1, parts[1], 2, 5_000, len(parts[1])), Pending)
    assert decoder.expire(5_000) == [GaveUp((1,), "IPv4 fragments incomplete after 0.000001 s")]
    assert decoder.flush() == [GaveUp((2,), "IPv4 fragments incomplete at the end of the capture")]


def test_fragment_group_limit_gives_up_the_oldest() -> None:
    decoder = NetDecoder(max_fragment_groups=2)
    firsts = [split4(DATAGRAM, [504], ident=i)[0] for i in (1, 2, 3)]
    assert all(isinstance(r, Pending) for r in feed(decoder, firsts))
    assert decoder.expire(0) == [GaveUp((1,), "fragment group limit reached (2 datagrams)")]
    rest = split4(DATAGRAM, [504], ident=3)[1]
    check_big(decoder.decode(1, rest, 4, 4, len(rest)), (3, 4))
    assert decoder.flush() == [GaveUp((2,), "IPv4 fragments incomplete at the end of the capture")]


def test_fragment_byte_limit_gives_up_the_oldest() -> None:
    decoder = NetDecoder(max_fragment_bytes=1_000)
    a = split4(DATAGRAM, [504], ident=1)[0]
    b = split4(DATAGRAM, [504], ident=2)[0]
    feed(decoder, [a, b])
    assert decoder.expire(0) == [GaveUp((1,), "fragment memory limit reached (1000 bytes)")]
    assert decoder.flush() == [GaveUp((2,), "IPv4 fragments incomplete at the end of the capture")]


def test_fragments_of_different_datagrams_do_not_mix() -> None:
    a = split4(DATAGRAM, [504], ident=1)
    b = split4(DATAGRAM, [504], ident=2)
    other_proto = split4(DATAGRAM, [504], ident=1, proto=132)
    decoder = NetDecoder()
    results = feed(decoder, [a[0], b[0], other_proto[1], b[1], a[1]])
    check_big(results[3], (2, 4))
    check_big(results[4], (1, 5))
    assert decoder.flush() == [GaveUp((3,), "IPv4 fragments incomplete at the end of the capture")]


def test_ipv4_fragment_carrying_tcp_and_sctp() -> None:
    tcp_dgram = bytes(
        dpkt.tcp.TCP(sport=5060, dport=5080, seq=77, flags=PSH | ACK, off=5, data=BIG)
    )
    decoder = NetDecoder()
    results = feed(decoder, split4(tcp_dgram, [1000], proto=6))
    seg = one(results[1])
    assert (seg.transport, seg.payload, seg.seq, seg.frames) == ("tcp", BIG, 77, (1, 2))
    sctp_dgram = sctp(data_chunk(1, BIG), data_chunk(2, SIP))
    results = feed(decoder, split4(sctp_dgram, [800], proto=132, ident=9), [3, 4])
    assert isinstance(results[1], list)
    assert [(s.payload, s.frames) for s in results[1]] == [(BIG, (3, 4)), (SIP, (3, 4))]


def test_fragment_truncated_by_snaplen_is_a_problem() -> None:
    part = split4(DATAGRAM, [504])[0]
    result = NetDecoder().decode(1, part[:100], 1, 0, len(part))
    skip(
        result,
        f"captured length cut the IPv4 fragment (caplen 100 < {len(part)})",
        True,
        "ethernet/ipv4/fragment",
    )


def test_fragment_beyond_64k_is_a_problem() -> None:
    part = frag4(b"\x00" * 16, 65528, False)
    result = decode(part)
    skip(result, "IPv4 fragment ends beyond 65535 bytes (offset 65528, 16 bytes)", True)


def test_fragments_disagreeing_on_length_are_given_up() -> None:
    decoder = NetDecoder()
    feed(
        decoder,
        [
            frag4(DATAGRAM[504:800], 504, False),
            frag4(DATAGRAM[504:600], 504, False),
            frag4(DATAGRAM[:504], 0, True),
        ],
    )
    assert decoder.flush() == [GaveUp((1, 2, 3), "IPv4 fragments disagree on the datagram length")]


def test_ipv6_fragments() -> None:
    parts = split6(DATAGRAM, [504, 1008])
    decoder = NetDecoder()
    results = feed(decoder, [parts[1], parts[2], parts[0]])
    assert results[:2] == [Pending("ethernet/ipv6/fragment")] * 2
    seg = one(results[2])
    assert (seg.payload, seg.frames, seg.chain, seg.src, seg.dst) == (
        BIG,
        (1, 2, 3),
        "ethernet/ipv6/fragment/udp",
        SRC6,
        DST6,
    )


def test_ipv6_fragments_with_headers_around_the_fragment_header() -> None:
    # Hop-by-hop before the fragment header (unfragmentable), destination options after it.
    dgram = ext(17) + DATAGRAM
    bounds = [0, 504, len(dgram)]
    frames = [
        frag6(dgram[a:b], a, b != len(dgram), nxt=60, prefix=ext(44), first=0)
        for a, b in itertools.pairwise(bounds)
    ]
    decoder = NetDecoder()
    results = feed(decoder, frames)
    seg = one(results[1])
    assert (seg.payload, seg.chain) == (BIG, "ethernet/ipv6/hopopts/fragment/dstopts/udp")


def test_ipv6_overlap_and_duplicates() -> None:
    parts = split6(DATAGRAM, [504, 1008])
    decoder = NetDecoder()
    results = feed(decoder, [parts[0], parts[0], parts[1], parts[2]])
    assert one(results[3]).frames == (1, 2, 3, 4)
    tampered = bytearray(DATAGRAM)
    tampered[700] ^= 1
    again = split6(DATAGRAM, [504, 1008], ident=7)
    evil = split6(bytes(tampered), [504, 1008], ident=7)[1]
    feed(decoder, [again[0], evil, again[1], again[2]], [5, 6, 7, 8], ts=100)
    assert decoder.flush() == [
        GaveUp((5, 6, 7, 8), "overlapping IPv6 fragments with different content")
    ]


def test_ipv6_fragment_keys_ignore_protocol() -> None:
    # RFC 8200 keys on (src, dst, id); the first fragment's next header wins.
    dgram = DATAGRAM
    frames = [frag6(dgram[:504], 0, True, nxt=17), frag6(dgram[504:], 504, False, nxt=6)]
    assert one(feed(NetDecoder(), frames)[1]).transport == "udp"


def test_fragmented_tunnel_outer_packet() -> None:
    # The outer IP-in-IP datagram is fragmented; the inner packet is whole after reassembly.
    inner = ip4(udp(BIG))
    parts = split4(inner, [504, 1008], proto=4, src="203.0.113.1", dst="203.0.113.2")
    results = feed(NetDecoder(), parts)
    seg = one(results[2])
    assert (seg.chain, seg.frames, seg.payload) == (
        "ethernet/ipv4/fragment/ipv4/udp",
        (1, 2, 3),
        BIG,
    )
    assert (seg.src, seg.dst) == (SRC4, DST4)


# --------------------------------------------------------------------- properties
VALID_RESULT = (list, Skip, Pending)


def assert_valid(result: Result) -> None:
    assert isinstance(result, VALID_RESULT)
    if isinstance(result, list):
        assert result, "empty list"
        assert all(isinstance(s, Segment) for s in result)
        for seg in result:
            assert seg.transport in ("udp", "tcp", "sctp")
            assert 0 <= seg.sport <= 65535
            assert 0 <= seg.dport <= 65535
            assert str(ip_address(seg.src)) == seg.src
            assert str(ip_address(seg.dst)) == seg.dst
            assert isinstance(seg.payload, bytes)
            assert seg.frames
    elif isinstance(result, Skip):
        assert result.reason
        assert not result.reason.startswith("internal decoder error"), result


LINKTYPES = st.one_of(
    st.sampled_from([0, 1, 9, 12, 14, 50, 101, 108, 113, 228, 229, 276]), st.integers(-5, 300)
)


@settings(max_examples=600, deadline=None)
@given(linktype=LINKTYPES, data=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(linktype: int, data: bytes) -> None:
    assert_valid(NetDecoder().decode(linktype, data, 1, 0, len(data)))


PREFIXES = [
    eth(b"", 0x0800),
    eth(b"", 0x86DD),
    eth(struct.pack("!HH", 1, 0x0800), 0x8100),
    eth(struct.pack("!I", 0x100), 0x8847),
    eth(struct.pack("!BBHHH", 0x11, 0, 1, 0, 0x21), 0x8864),
    struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 1, 0, 64, 17, 0, a4(SRC4), a4(DST4))[
        :9
    ],  # raw, proto byte next
]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(range(len(PREFIXES))),
    header=st.binary(min_size=0, max_size=60),
    tail=st.binary(max_size=120),
    wire_extra=st.integers(0, 100),
)
def test_structured_garbage_never_raises(
    prefix: int, header: bytes, tail: bytes, wire_extra: int
) -> None:
    data = PREFIXES[prefix] + header + tail
    linktype = 101 if prefix == len(PREFIXES) - 1 else 1
    assert_valid(NetDecoder().decode(linktype, data, 1, 0, len(data) + wire_extra))


@settings(max_examples=300, deadline=None)
@given(
    proto=st.sampled_from([4, 6, 17, 41, 47, 50, 51, 132, 0, 43, 44, 60]),
    version=st.sampled_from([4, 6]),
    body=st.binary(max_size=150),
)
def test_garbage_below_ip_never_raises(proto: int, version: int, body: bytes) -> None:
    packet = ip4(body, proto=proto) if version == 4 else ip6(body, nxt=proto)
    assert_valid(NetDecoder().decode(101, packet, 1, 0, len(packet)))


@settings(max_examples=300, deadline=None)
@given(
    vlan=st.booleans(),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
    payload=st.binary(max_size=100),
    ulen_delta=st.integers(-20, 20),
    padding=st.binary(max_size=20),
    cut=st.integers(0, 40),
    src=st.integers(0, 2**32 - 1),
    ident=st.integers(0, 65535),
)
def test_fast_path_equals_layer_walk(
    vlan: bool,
    sport: int,
    dport: int,
    payload: bytes,
    ulen_delta: int,
    padding: bytes,
    cut: int,
    src: int,
    ident: int,
) -> None:
    body = bytearray(bytes(udp(payload, sport, dport)))
    struct.pack_into("!H", body, 4, max(0, 8 + len(payload) + ulen_delta))
    packet = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(body),
        ident,
        0,
        64,
        17,
        0,
        src.to_bytes(4, "big"),
        a4(DST4),
    )
    frame = (
        eth(struct.pack("!HH", 3, 0x0800) + packet + bytes(body), 0x8100)
        if vlan
        else eth(packet + bytes(body))
    )
    frame = (frame + padding)[: max(0, len(frame) + len(padding) - cut)]
    fast = NetDecoder().decode(1, frame, 1, 0, len(frame) + cut)
    walked = NetDecoder()._link_ethernet(frame, (1,))  # the general layer-by-layer path
    assert fast == walked
    assert_valid(fast)


def fragment_stream(draw: st.DrawFn) -> list[bytes]:
    frames: list[bytes] = []
    for ident in range(draw(st.integers(1, 3))):
        dgram = bytes(udp(draw(st.binary(min_size=1, max_size=120))))
        cuts = sorted(
            set(draw(st.lists(st.integers(1, max(1, (len(dgram) - 1) // 8)), max_size=4)))
        )
        bounds = [0, *(c * 8 for c in cuts if c * 8 < len(dgram)), len(dgram)]
        for a, b in itertools.pairwise(bounds):
            if draw(st.booleans()) or a == 0:
                frames.append(frag4(dgram[a:b], a, b != len(dgram), ident=ident))
            if draw(st.integers(0, 4)) == 0:
                frames.append(frames[-1])  # duplicate
            if draw(st.integers(0, 6)) == 0:  # a conflicting overlap
                frames.append(frag4(bytes(b - a), a, b != len(dgram), ident=ident))
    return draw(st.permutations(frames))


@settings(max_examples=300, deadline=None)
@given(
    frames=st.composite(fragment_stream)(),
    max_groups=st.integers(1, 4),
    max_bytes=st.integers(50, 5000),
)
def test_every_fragment_frame_is_accounted_exactly_once(
    frames: list[bytes], max_groups: int, max_bytes: int
) -> None:
    decoder = NetDecoder(
        max_fragment_groups=max_groups, max_fragment_bytes=max_bytes, fragment_timeout_ns=50
    )
    seen: Counter[int] = Counter()
    for number, frame in enumerate(frames, start=1):
        result = decoder.decode(1, frame, number, number * 10, len(frame))
        assert_valid(result)
        if isinstance(result, list):
            assert result[0].frames[-1] == number
            seen.update(result[0].frames)
        elif isinstance(result, Skip):
            seen[number] += 1
        for gave_up in decoder.expire(number * 10):
            seen.update(gave_up.frames)
    for gave_up in decoder.flush():
        seen.update(gave_up.frames)
    assert seen == Counter(range(1, len(frames) + 1))


def test_expire_and_flush_without_state() -> None:
    decoder = NetDecoder()
    assert decoder.expire(10**18) == []
    assert decoder.flush() == []
    with pytest.raises(ValueError, match="positive"):
        NetDecoder(max_fragment_groups=0)


# --------------------------------------------------------------------- real captures
def _read(path: Path) -> Iterator[tuple[int, float, bytes, int]]:
    """(linktype, timestamp, bytes, wire length) for every frame of a pcap or pcapng file."""
    with path.open("rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        linktype = reader.datalink()
        for ts, buf in reader:
            yield linktype, float(ts), bytes(buf), len(buf)


# tshark's protocol stack names -> the layers of our chain ("ethertype" and what is above TCP drop out)
TSHARK_LAYERS = {
    "eth": "ethernet",
    "sll": "sll",
    "raw": "raw",
    "ip": "ipv4",
    "ipv6": "ipv6",
    "ipv6.fraghdr": "fragment",
    "pppoes": "pppoe",
    "ppp": "ppp",
    "gre": "gre",
    "udp": "udp",
    "tcp": "tcp",
    "sctp": "sctp",
}


def _chain_of(stack: str) -> str:
    return "/".join(TSHARK_LAYERS[p] for p in stack.split(":") if p in TSHARK_LAYERS)


def _manifest() -> list[dict[str, object]]:
    if not (PCAP_DIR / "MANIFEST.json").is_file():
        return [{"file": "corpus-absent"}]  # one placeholder, skipped with the reason below
    files: list[dict[str, object]] = json.loads((PCAP_DIR / "MANIFEST.json").read_text())["files"]
    return files


@functools.cache
def _sip_rows() -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = {}
    with (PCAP_DIR / "sip_messages.tsv").open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            rows.setdefault(row["file"], []).append(row)
    return rows


def _endpoint(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


@pytest.mark.corpus
@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"third-party corpus not present at {CORPUS}")
@pytest.mark.parametrize("entry", _manifest(), ids=lambda e: str(e["file"]))
def test_corpus_capture(entry: dict[str, object]) -> None:
    name = str(entry["file"])
    decoder = NetDecoder()
    results: dict[int, Result] = {}
    accounted: Counter[int] = Counter()
    for number, (linktype, ts, data, wire) in enumerate(_read(PCAP_DIR / name), start=1):
        result = decoder.decode(linktype, data, number, int(ts * 1e9), wire)
        assert_valid(result)
        results[number] = result
        if isinstance(result, list):
            accounted.update(result[0].frames)
        elif isinstance(result, Skip):
            assert not result.problem, (number, result)
            accounted[number] += 1
    assert decoder.flush() == []
    assert len(results) == entry["packets"]
    assert accounted == Counter(range(1, len(results) + 1))

    rows = _sip_rows()[name]
    assert len(rows) == entry["sip_frames"]
    chains: Counter[str] = Counter()
    for row in rows:
        result = results[int(row["frame"])]
        assert isinstance(result, list), (row["frame"], result)
        seg = result[0]
        transport = "tcp" if row["transport"] == "websocket" else row["transport"]
        assert seg.transport == transport, row
        assert (seg.src, seg.sport) == _endpoint(row["src"]), row
        assert (seg.dst, seg.dport) == _endpoint(row["dst"]), row
        chains[seg.chain] += 1
    stacks = entry["protocol_stacks_below_sip"]
    assert isinstance(stacks, dict)
    assert chains == Counter({_chain_of(stack): count for stack, count in stacks.items()})
