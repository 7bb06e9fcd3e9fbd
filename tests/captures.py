"""Writers for small synthetic captures used by the tests (pcap and pcapng).

Hand-written with ``struct`` so the tests control every field: byte order,
timestamp resolution, interfaces, sections, block types, damage.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

# A packet to write: (timestamp in ns, link-layer bytes) or with an interface id.
Packet = tuple[int, bytes]


def pcap(
    packets: Iterable[Packet],
    *,
    linktype: int = 1,
    nanos: bool = False,
    big_endian: bool = False,
    snaplen: int = 65535,
    orig_lens: Sequence[int] | None = None,
) -> bytes:
    """A pcap file (microsecond or nanosecond timestamps, either byte order)."""
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for i, (ts, data) in enumerate(packets):
        sec, rest = divmod(ts, 1_000_000_000)
        frac = rest if nanos else rest // 1000
        orig = orig_lens[i] if orig_lens is not None else len(data)
        out.append(struct.pack(order + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


def _block(btype: int, body: bytes, order: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def _option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(order: str = "<") -> bytes:
    """A Section Header Block (version 1.0, unknown section length)."""
    return _block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def idb(linktype: int = 1, *, tsresol: int | None = None, tsoffset: int | None = None, order: str = "<", snaplen: int = 0) -> bytes:
    """An Interface Description Block with optional if_tsresol / if_tsoffset."""
    opts = b""
    if tsresol is not None:
        opts += _option(9, bytes([tsresol]), order)
    if tsoffset is not None:
        opts += _option(14, struct.pack(order + "q", tsoffset), order)
    if opts:
        opts += _option(0, b"", order)
    return _block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts, order)


def epb(iface: int, ts_units: int, data: bytes, *, orig: int | None = None, order: str = "<") -> bytes:
    """An Enhanced Packet Block; ``ts_units`` in the interface's resolution."""
    body = struct.pack(
        order + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), orig or len(data)
    )
    return _block(6, body + data, order)


def spb(data: bytes, *, order: str = "<") -> bytes:
    """A Simple Packet Block (interface 0, no timestamp)."""
    return _block(3, struct.pack(order + "I", len(data)) + data, order)


def opb(iface: int, ts_units: int, data: bytes, *, order: str = "<") -> bytes:
    """An obsolete Packet Block (type 2)."""
    body = struct.pack(order + "HHIIII", iface, 0, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), len(data))
    return _block(2, body + data, order)


def nrb(order: str = "<") -> bytes:
    """An empty Name Resolution Block (skipped by readers)."""
    return _block(4, struct.pack(order + "HH", 0, 0), order)


# --------------------------------------------------------------------------
# Packets (Ethernet / IPv4 / IPv6 / UDP / TCP), checksums left at zero
# --------------------------------------------------------------------------

ETH_IPV4 = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
ETH_IPV6 = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x86\xdd"


def _ip4(addr: str) -> bytes:
    return bytes(int(x) for x in addr.split("."))


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 1, frag_offset: int = 0, more: bool = False) -> bytes:
    """An IPv4 header (no options) and payload; ``frag_offset`` in bytes (multiple of 8)."""
    flags_frag = (0x2000 if more else 0) | (frag_offset // 8)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_frag, 64, proto, 0, _ip4(src), _ip4(dst)) + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes) -> bytes:
    """An IPv6 header and payload."""
    import ipaddress

    return (
        struct.pack("!IHBB", 0x60000000, len(payload), next_header, 64)
        + ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + payload
    )


def ipv6_fragment(next_header: int, offset: int, more: bool, ident: int, data: bytes) -> bytes:
    """An IPv6 fragment extension header (RFC 8200 §4.5) followed by ``data``."""
    return struct.pack("!BBHI", next_header, 0, (offset // 8) << 3 | (1 if more else 0), ident) + data


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP header and payload."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport: int, dport: int, seq: int, payload: bytes = b"", *, flags: int = 0x18) -> bytes:
    """A TCP header (no options) and payload; default flags PSH|ACK."""
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 5 << 4, flags, 65535, 0, 0) + payload


def eth_udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """Ethernet/IPv4/UDP."""
    return ETH_IPV4 + ipv4(src, dst, 17, udp(sport, dport, payload))


def eth_tcp(src: str, dst: str, sport: int, dport: int, seq: int, payload: bytes = b"", *, flags: int = 0x18) -> bytes:
    """Ethernet/IPv4/TCP."""
    return ETH_IPV4 + ipv4(src, dst, 6, tcp(sport, dport, seq, payload, flags=flags))


def ws_frame(payload: bytes, *, opcode: int = 1, fin: bool = True, mask: bytes | None = b"\x11\x22\x33\x44") -> bytes:
    """A WebSocket frame (RFC 6455 §5.2), masked when ``mask`` is given."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def hep3(payload: bytes, *, src: str, dst: str, sport: int, dport: int, ts_ns: int, proto: int = 17) -> bytes:
    """A HEPv3 packet carrying ``payload`` (IPv4 addresses)."""

    def chunk(ctype: int, value: bytes) -> bytes:
        return struct.pack("!HHH", 0, ctype, 6 + len(value)) + value

    sec, rest = divmod(ts_ns, 1_000_000_000)
    body = (
        chunk(1, b"\x02")
        + chunk(2, bytes([proto]))
        + chunk(3, _ip4(src))
        + chunk(4, _ip4(dst))
        + chunk(7, struct.pack("!H", sport))
        + chunk(8, struct.pack("!H", dport))
        + chunk(9, struct.pack("!I", sec))
        + chunk(10, struct.pack("!I", rest // 1000))
        + chunk(11, b"\x01")
        + chunk(12, struct.pack("!I", 2001))
        + chunk(15, payload)
    )
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body
