"""HEP, the Homer Encapsulation Protocol (versions 1, 2 and 3), sans-IO.

Capture agents (heplify, captagent, Kamailio ``siptrace``/``sipcapture``,
OpenSIPS ``proto_hep``, FreeSWITCH, Asterisk ``res_hep``) mirror SIP to a
collector in HEP over UDP or TCP. :func:`decode_hep` reads one packet;
:class:`HepStreamSplitter` cuts HEPv3 packets out of a TCP byte stream.

HEPv3 (the "HEP3" draft, sipcapture.org, "HEP/EEP Encapsulation Protocol
Version 3"): every integer is in network byte order::

    "HEP3" | total length (2, whole packet) | chunk | chunk | ...
    chunk = vendor id (2) | type id (2) | length (2, chunk header included) | value

Generic chunks (vendor 0) used here: 1 IP family (1 octet: 2 IPv4, 10 IPv6),
2 IP protocol (1), 3/4 IPv4 source/destination (4), 5/6 IPv6
source/destination (16), 7/8 source/destination port (2), 9 timestamp seconds
(4), 10 timestamp microseconds (4), 11 protocol type (1; 1 = SIP), 12 capture
agent id (4, or 2 from old agents), 14 authentication key (never kept),
15 payload, 16 compressed payload (zlib or gzip), 17 correlation id (text).
Others (13 keep-alive, 0x12 VLAN, 0x13 node name, ..., and every chunk of a
non-zero vendor) are skipped by their length.

HEPv1 and HEPv2 (Kamailio ``sipcapture`` ``struct hep_hdr``)::

    version (1: 1 or 2) | header length (1) | family (1) | protocol (1)
    | source port (2) | destination port (2)
    | source address, destination address (4 + 4 for IPv4, 16 + 16 for IPv6)
    | v2 only: seconds (4) | microseconds (4) | capture id (2) | padding (2)
    | payload

The header length counts the fixed header and the addresses (16 or 40). The
v2 time header is ``struct hep_timehdr`` copied in the sender's byte order,
which is little-endian on every platform these agents run on, padded to 12
octets by the C compiler.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from typing import Final, Literal, NamedTuple

from sipchain.errors import SipParseError
from sipchain.wire import NEED_DATA
from sipchain.wire._stream import _Sentinel

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "HepPacket",
    "HepStreamSplitter",
    "decode_hep",
    "looks_like_hep",
]

#: Default bound on a (decompressed) HEP payload, in octets.
DEFAULT_MAX_PAYLOAD: Final = 1 << 20

_MAGIC: Final = b"HEP3"
_V3_HEADER: Final = 6  # "HEP3" + total length
_CHUNK_HEADER: Final = 6  # vendor id, type id, length

# HEPv3 generic chunk types (vendor 0)
_IP_FAMILY: Final = 0x01
_IP_PROTO: Final = 0x02
_IPV4_SRC: Final = 0x03
_IPV4_DST: Final = 0x04
_IPV6_SRC: Final = 0x05
_IPV6_DST: Final = 0x06
_SRC_PORT: Final = 0x07
_DST_PORT: Final = 0x08
_TS_SEC: Final = 0x09
_TS_USEC: Final = 0x0A
_PROTO_TYPE: Final = 0x0B
_CAPTURE_ID: Final = 0x0C
_PAYLOAD: Final = 0x0F
_COMPRESSED: Final = 0x10
_CORRELATION: Final = 0x11

_CHUNK_NAMES: Final = {
    _IP_FAMILY: "IP family",
    _IP_PROTO: "IP protocol",
    _IPV4_SRC: "IPv4 source",
    _IPV4_DST: "IPv4 destination",
    _IPV6_SRC: "IPv6 source",
    _IPV6_DST: "IPv6 destination",
    _SRC_PORT: "source port",
    _DST_PORT: "destination port",
    _TS_SEC: "timestamp seconds",
    _TS_USEC: "timestamp microseconds",
    _PROTO_TYPE: "protocol type",
    _CAPTURE_ID: "capture agent id",
}

# Value sizes of the fixed-size generic chunks (HEP3 draft, chunk table).
_FIXED_SIZES: Final[dict[int, tuple[int, ...]]] = {
    _IP_FAMILY: (1,),
    _IP_PROTO: (1,),
    _IPV4_SRC: (4,),
    _IPV4_DST: (4,),
    _IPV6_SRC: (16,),
    _IPV6_DST: (16,),
    _SRC_PORT: (2,),
    _DST_PORT: (2,),
    _TS_SEC: (4,),
    _TS_USEC: (4,),
    _PROTO_TYPE: (1,),
    _CAPTURE_ID: (4, 2),
}

# Address families as HEP carries them: Linux AF_INET and AF_INET6.
_AF_INET: Final = 2
_AF_INET6: Final = 10

# IP protocol numbers (IANA): 6 TCP, 17 UDP, 132 SCTP. Kamailio marks TLS with
# IPPROTO_IDP (22), a "fake protocol" in its sipcapture/siptrace modules.
_TRANSPORTS: Final = {6: "tcp", 17: "udp", 132: "sctp", 22: "tls"}

# HEPv1/v2 layout
_V12_HEADER: Final = struct.Struct("!BBBBHH")  # version, length, family, protocol, ports
_V2_TIME: Final = struct.Struct("<IIH2x")  # struct hep_timehdr, little-endian, padded
_V12_ADDR_LEN: Final = {_AF_INET: 4, _AF_INET6: 16}


class HepPacket(NamedTuple):
    """One decoded HEP packet."""

    version: int  # 1, 2 or 3
    transport: str  # "udp", "tcp", "sctp", "tls", or "ip-proto-N"
    src: str
    sport: int
    dst: str
    dport: int
    ts_ns: int | None  # capture time from the agent, integer nanoseconds since the epoch
    proto_type: int | None  # HEPv3 chunk 11 (1 = SIP); None for v1/v2 or when absent
    payload: bytes  # decompressed when it came in chunk 16
    capture_id: int | None
    correlation_id: str | None


def looks_like_hep(data: bytes) -> bool:
    """Whether ``data`` plausibly starts with a HEP packet (v3, or v1/v2).

    HEPv3: the "HEP3" magic and a total length of at least 6. HEPv1/v2: a
    version of 1 or 2, a family of 2 or 10, a known IP protocol and the header
    length that family implies (16 or 40), with room for the addresses.
    """
    if data[:4] == _MAGIC:
        return len(data) >= _V3_HEADER and int.from_bytes(data[4:6], "big") >= _V3_HEADER
    if len(data) < _V12_HEADER.size:
        return False
    version, hlen, family, proto = data[0], data[1], data[2], data[3]
    if version not in (1, 2) or proto not in _TRANSPORTS:
        return False
    addr = _V12_ADDR_LEN.get(family)
    if addr is None or hlen != _V12_HEADER.size + 2 * addr:
        return False
    return len(data) >= hlen + (_V2_TIME.size if version == 2 else 0)


def decode_hep(data: bytes, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> HepPacket:
    """Decode one HEP packet (v1, v2 or v3).

    Raises :class:`~sipchain.SipParseError` naming the offset and the reason
    when the packet is malformed or truncated. ``max_payload`` bounds the
    payload after decompression.
    """
    data = bytes(data)
    if data[:4] == _MAGIC:
        return _decode_v3(data, max_payload)
    if data[:1] in (b"\x01", b"\x02"):
        return _decode_v12(data)
    raise SipParseError("not HEP: neither 'HEP3' nor version 1 or 2", code="hep-version", offset=0)


def _transport(proto: int) -> str:
    return _TRANSPORTS.get(proto, f"ip-proto-{proto}")


def _decode_v12(data: bytes) -> HepPacket:
    """HEPv1/v2: Kamailio sipcapture ``struct hep_hdr`` (+ ``hep_timehdr`` in v2)."""
    if len(data) < _V12_HEADER.size:
        raise SipParseError(
            f"HEPv{data[0]} header truncated: {len(data)} of {_V12_HEADER.size} octets", code="hep-truncated", offset=0
        )
    version, hlen, family, proto, sport, dport = _V12_HEADER.unpack_from(data)
    addr = _V12_ADDR_LEN.get(family)
    if addr is None:
        raise SipParseError(
            f"HEPv{version}: unknown address family {family} (2 IPv4, 10 IPv6)", code="hep-family", offset=2
        )
    expected = _V12_HEADER.size + 2 * addr
    if hlen != expected:
        raise SipParseError(
            f"HEPv{version}: header length {hlen}, expected {expected} for {'IPv4' if addr == 4 else 'IPv6'}",
            code="hep-length",
            offset=1,
        )
    pos = _V12_HEADER.size
    need = expected + (_V2_TIME.size if version == 2 else 0)
    if len(data) < need:
        raise SipParseError(
            f"HEPv{version} header truncated: {len(data)} of {need} octets", code="hep-truncated", offset=len(data)
        )
    src = str(ipaddress.ip_address(data[pos : pos + addr]))
    dst = str(ipaddress.ip_address(data[pos + addr : pos + 2 * addr]))
    pos += 2 * addr
    ts_ns: int | None = None
    capture_id: int | None = None
    if version == 2:
        sec, usec, capture_id = _V2_TIME.unpack_from(data, pos)
        ts_ns = sec * 1_000_000_000 + usec * 1000
        pos += _V2_TIME.size
    return HepPacket(version, _transport(proto), src, sport, dst, dport, ts_ns, None, data[pos:], capture_id, None)


def _decode_v3(data: bytes, max_payload: int) -> HepPacket:
    """HEPv3: "HEP3", total length, then chunks (vendor, type, length, value)."""
    if len(data) < _V3_HEADER:
        raise SipParseError(
            f"HEP3 header truncated: {len(data)} of {_V3_HEADER} octets", code="hep-truncated", offset=0
        )
    total = int.from_bytes(data[4:6], "big")
    if total < _V3_HEADER:
        raise SipParseError(f"HEP3 total length {total} is shorter than its header", code="hep-length", offset=4)
    if total > len(data):
        raise SipParseError(
            f"HEP3 packet truncated: total length {total}, {len(data)} octets present", code="hep-truncated", offset=4
        )
    if total < len(data):
        raise SipParseError(
            f"HEP3 total length {total} but {len(data)} octets: {len(data) - total} trailing",
            code="hep-length",
            offset=total,
        )
    values: dict[int, bytes] = {}
    payload: bytes | None = None
    pos = _V3_HEADER
    while pos < total:
        if total - pos < _CHUNK_HEADER:
            raise SipParseError(
                f"HEP3 chunk header truncated: {total - pos} octets left", code="hep-truncated", offset=pos
            )
        vendor, ctype, clen = struct.unpack_from("!HHH", data, pos)
        if clen < _CHUNK_HEADER:
            raise SipParseError(
                f"HEP3 chunk type {ctype} has length {clen}, less than its 6-octet header", code="hep-chunk", offset=pos
            )
        if pos + clen > total:
            raise SipParseError(
                f"HEP3 chunk type {ctype} of {clen} octets runs past the packet end ({total - pos} left)",
                code="hep-truncated",
                offset=pos,
            )
        value = data[pos + _CHUNK_HEADER : pos + clen]
        if vendor == 0:
            sizes = _FIXED_SIZES.get(ctype)
            if sizes is not None and len(value) not in sizes:
                raise SipParseError(
                    f"HEP3 chunk {ctype} ({_CHUNK_NAMES[ctype]}) has {len(value)} octets, expected {sizes[0]}",
                    code="hep-chunk",
                    offset=pos,
                )
            if ctype in (_PAYLOAD, _COMPRESSED):
                if payload is not None:
                    raise SipParseError("HEP3 packet with two payload chunks", code="hep-chunk", offset=pos)
                payload = value if ctype == _PAYLOAD else _inflate(value, max_payload, pos)
                if len(payload) > max_payload:
                    raise SipParseError(
                        f"HEP3 payload of {len(payload)} octets exceeds the limit of {max_payload}",
                        code="hep-too-large",
                        offset=pos,
                    )
            else:
                values[ctype] = value
        pos += clen
    return _assemble_v3(values, payload)


def _inflate(value: bytes, limit: int, offset: int) -> bytes:
    """Chunk 16: zlib (RFC 1950) or gzip (RFC 1952) data, inflated at most to ``limit``."""
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: detect the zlib or gzip header
    try:
        out = inflater.decompress(value, limit + 1)
    except zlib.error as exc:
        raise SipParseError(f"HEP3 compressed payload: {exc}", code="hep-compressed", offset=offset) from exc
    if len(out) > limit:
        raise SipParseError(
            f"HEP3 compressed payload expands beyond {limit} octets", code="hep-too-large", offset=offset
        )
    if not inflater.eof:
        raise SipParseError("HEP3 compressed payload is truncated", code="hep-compressed", offset=offset)
    return out


def _assemble_v3(values: dict[int, bytes], payload: bytes | None) -> HepPacket:
    def need(ctype: int) -> bytes:
        value = values.get(ctype)
        if value is None:
            raise SipParseError(f"HEP3 packet without chunk {ctype} ({_CHUNK_NAMES[ctype]})", code="hep-missing")
        return value

    family_raw = values.get(_IP_FAMILY)
    family = family_raw[0] if family_raw is not None else None
    if family is None:
        # no family chunk: the address chunks present say it
        family = _AF_INET6 if _IPV6_SRC in values and _IPV4_SRC not in values else _AF_INET
    if family == _AF_INET:
        src_raw, dst_raw = need(_IPV4_SRC), need(_IPV4_DST)
    elif family == _AF_INET6:
        src_raw, dst_raw = need(_IPV6_SRC), need(_IPV6_DST)
    else:
        raise SipParseError(f"HEP3 unknown IP family {family} (2 IPv4, 10 IPv6)", code="hep-family")
    if payload is None:
        raise SipParseError("HEP3 packet without payload chunk (15 or 16)", code="hep-missing")
    proto = need(_IP_PROTO)[0]
    sport = int.from_bytes(need(_SRC_PORT), "big")
    dport = int.from_bytes(need(_DST_PORT), "big")
    ts_ns: int | None = None
    sec = values.get(_TS_SEC)
    if sec is not None:
        usec = values.get(_TS_USEC)
        ts_ns = int.from_bytes(sec, "big") * 1_000_000_000
        if usec is not None:
            ts_ns += int.from_bytes(usec, "big") * 1000
    proto_type = values.get(_PROTO_TYPE)
    capture = values.get(_CAPTURE_ID)
    correlation = values.get(_CORRELATION)
    return HepPacket(
        3,
        _transport(proto),
        str(ipaddress.ip_address(src_raw)),
        sport,
        str(ipaddress.ip_address(dst_raw)),
        dport,
        ts_ns,
        proto_type[0] if proto_type is not None else None,
        payload,
        int.from_bytes(capture, "big") if capture is not None else None,
        correlation.decode("utf-8", "backslashreplace") if correlation is not None else None,
    )


class HepStreamSplitter:
    """Cut HEPv3 packets out of a TCP byte stream (agents send them back to back).

    Each packet is framed by its own total length (octets 4-5 after "HEP3").
    Bytes that do not start with "HEP3" raise :class:`~sipchain.SipParseError`
    once consumed: the splitter skips to the next "HEP3" (code ``"hep-sync"``).
    The buffer never holds more than one packet (at most 65535 octets) plus
    what was fed since the last call.

    Attributes:
        consumed: stream offset of the next byte to read.
        skipped: octets skipped to find a packet start.
    """

    def __init__(self, *, start_offset: int = 0) -> None:
        self.consumed = start_offset
        self.skipped = 0
        self._buf = bytearray()

    def receive_data(self, data: bytes) -> None:
        """Append in-order bytes of the stream."""
        self._buf += data

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of a packet."""
        return len(self._buf)

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self.consumed += n
        return data

    def next_packet(self) -> tuple[bytes, int, int] | Literal[_Sentinel.NEED_DATA]:
        """The next packet with its start and end stream offsets, or :data:`NEED_DATA`."""
        buf = self._buf
        if len(buf) < 4:
            if buf and not _MAGIC.startswith(bytes(buf)):
                self._resync()
            return NEED_DATA
        if buf[:4] != _MAGIC:
            self._resync()
        if len(buf) < _V3_HEADER:
            return NEED_DATA
        total = int.from_bytes(buf[4:6], "big")
        start = self.consumed
        if total < _V3_HEADER:
            self._take(4)
            self.skipped += 4
            raise SipParseError(
                f"HEP3 total length {total} is shorter than its header; skipped", code="hep-length", offset=start
            )
        if len(buf) < total:
            return NEED_DATA
        packet = self._take(total)
        return packet, start, self.consumed

    def _resync(self) -> None:
        """Drop bytes up to the next "HEP3" (or all but a possible partial magic)."""
        buf = self._buf
        found = buf.find(_MAGIC, 1)
        if found < 0:
            keep = 0
            for k in (3, 2, 1):
                if len(buf) >= k and buf[-k:] == _MAGIC[:k]:
                    keep = k
                    break
            found = len(buf) - keep
        start = self.consumed
        self._take(found)
        self.skipped += found
        raise SipParseError(f"{found} octets before the HEP3 magic; skipped", code="hep-sync", offset=start)
