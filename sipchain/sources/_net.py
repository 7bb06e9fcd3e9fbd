"""Link and network layers of capture ingestion: one frame in, transport payloads out.

:class:`NetDecoder` walks a captured frame from its link layer (pcap
``LINKTYPE_*``) through VLAN/MPLS/PPPoE, IPv4/IPv6 (with extension headers and
fragment reassembly) and IP tunnels (IP-in-IP, GRE, ERSPAN) down to UDP, TCP or
SCTP, and returns what it found as the plain values of
:mod:`sipchain.sources._packets`:

* ``list[Segment]``: transport payloads (one, or one per SCTP DATA chunk);
* :class:`Skip`: the frame carries no transport payload; ``problem`` tells a
  malformed, truncated or unsupported frame from ordinary non-SIP traffic;
* :class:`Pending`: an IP fragment held until its datagram is complete.

It never raises on input bytes. Every frame that returned :class:`Pending` is
later named exactly once: in the ``frames`` of the :class:`Segment` of the
completed datagram, or in one :class:`GaveUp`. ``Skip.chain`` lists the layers
decoded successfully before the one that stopped the walk.

For SCTP, ``Segment.seq`` carries the TSN of the DATA chunk and
``Segment.flags`` its chunk flags (U/B/E/I), so that fragmented user messages
can be put back together above this layer.

Reassembly of IP fragments (RFC 791 §3.2, RFC 8200 §4.5) keeps, per
datagram, the disjoint byte ranges received so far, sorted by offset. An
identical retransmitted fragment is ignored (its frame is still recorded as
part of the datagram). Overlapping fragments keep the first bytes received for
a range; when an overlap carries *different* bytes the datagram is ambiguous
(the classic fragment-overlap evasion), so the whole group is given up with the
reason "overlapping IPv4 fragments with different content" instead of
producing a message. A fragment identical to one of a datagram reassembled
within the timeout is reported as ``Skip("duplicate ... fragment ...",
problem=False)`` rather than starting a group that could never complete.

Groups given up *inside* :meth:`NetDecoder.decode` (group or byte limit
reached, conflicting fragments, a group found stale when a new fragment for it
arrives) are queued and returned by the next :meth:`NetDecoder.expire` or
:meth:`NetDecoder.flush` call, which drain the queue.
"""

from __future__ import annotations

import ipaddress
import struct
from bisect import bisect_right
from collections.abc import Callable

from ._packets import GaveUp, Pending, Segment, Skip

__all__ = ["NetDecoder", "Result"]

Result = list[Segment] | Skip | Pending

# Link-layer handler: (data, frames) -> result.
_LinkHandler = Callable[[bytes, tuple[int, ...]], Result]
# Ethertype-level handler: (data, offset, end, chain, depth, frames) -> result.
_EtherHandler = Callable[[bytes, int, int, str, int, tuple[int, ...]], Result]
# IP-protocol handler: (data, offset, end, src, dst, chain, depth, frames) -> result.
_ProtoHandler = Callable[[bytes, int, int, str, str, str, int, tuple[int, ...]], Result]

# A fragment group key: (4, src, dst, protocol, id) or (6, src, dst, identification).
_Key = tuple[int, int | bytes, int | bytes, int] | tuple[int, int | bytes, int | bytes, int, int]
# What identifies one received fragment: (first byte, end, more fragments, hash of the bytes).
_Sig = tuple[int, int, bool, int]

MAX_ENCAPSULATIONS = 8  # nested tunnels (IP-in-IP, GRE, ...) before a frame is refused
_NOLIMIT = 1 << 62  # "no enclosing length" for the outermost network layer
_ADDR_CACHE_MAX = 1 << 16  # address -> text entries kept before the cache is reset
_MAX_DATAGRAM = 65535  # largest reassembled IP payload (no jumbograms)

_VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))  # IEEE 802.1Q, 802.1ad, legacy QinQ
_IPV6_FAMILIES = frozenset((24, 28, 30))  # AF_INET6 on NetBSD/OpenBSD, FreeBSD, Darwin

# IP protocol numbers that are ordinary non-SIP traffic, with the reason given.
_NON_SIP_PROTOCOLS: dict[int, str] = {
    1: "ICMP",
    58: "ICMPv6",
    50: "encrypted (ESP)",
    59: "IPv6 no next header",
}
_IPV6_EXT_NAMES: dict[int, str] = {0: "hopopts", 43: "routing", 60: "dstopts", 51: "ah"}

# Pre-compiled header layouts (network byte order).
_IP4 = struct.Struct("!BxHHHxBxxII")  # ver/IHL, total length, id, flags/offset, protocol, src, dst
_IP6 = struct.Struct("!IHBx16s16s")  # ver/class/flow, payload length, next header, src, dst
_FRAG6 = struct.Struct("!BxHI")  # next header, offset/flags, identification
_UDP = struct.Struct("!HHH")  # source port, destination port, length
_TCP = struct.Struct("!HHIxxxxBB")  # ports, sequence number, data offset, flags
_HH = struct.Struct("!HH")
_CHUNK = struct.Struct("!BBH")  # SCTP chunk type, flags, length
# Fast path: ethertype, then IPv4 (20 bytes) and UDP fields, with or without one 802.1Q tag.
_FAST = struct.Struct("!12xHBxHxxHxBxxIIHHH")
_FAST_VLAN = struct.Struct("!16xHBxHxxHxBxxIIHHH")
_U32 = struct.Struct("!I")


# Building a NamedTuple through tuple.__new__ with every field given skips the
# generated Python-level __new__ (about half the cost of a Segment on the hot path).
_new = tuple.__new__


def _secs(ns: int) -> str:
    """A duration as text: 30_000_000_000 -> "30 s", 1_500 -> "0.0000015 s"."""
    whole, frac = divmod(ns, 1_000_000_000)
    return f"{whole}.{frac:09d}".rstrip("0").rstrip(".") + " s"


class _Group:
    """One IP datagram being reassembled: disjoint byte ranges sorted by start."""

    __slots__ = (
        "conflict",
        "data",
        "first_ts",
        "frames",
        "have",
        "label",
        "max_end",
        "proto",
        "sigs",
        "starts",
        "total",
    )

    def __init__(self, label: str, first_ts: int, proto: int | None) -> None:
        self.label = label  # "IPv4" or "IPv6"
        self.first_ts = first_ts
        self.proto = proto  # transport protocol / next header of the datagram
        self.frames: list[int] = []
        self.starts: list[int] = []
        self.data: list[bytes] = []
        self.have = 0  # bytes held (ranges are disjoint)
        self.max_end = 0
        self.total: int | None = None  # datagram payload length, once the last fragment came
        self.conflict: str | None = None
        self.sigs: set[_Sig] = set()

    def add(self, start: int, chunk: bytes) -> int:
        """Store the parts of ``chunk`` not yet held; return the bytes added.

        Bytes already held for a range win over new ones; a difference sets
        :attr:`conflict`.
        """
        end = start + len(chunk)
        if end > self.max_end:
            self.max_end = end
        if not chunk:
            return 0
        starts, data = self.starts, self.data
        i = bisect_right(starts, start) - 1
        if i < 0 or starts[i] + len(data[i]) <= start:
            i += 1
        j = i
        pos = start
        new_starts: list[int] = []
        new_data: list[bytes] = []
        while j < len(starts) and starts[j] < end:
            cs = starts[j]
            cb = data[j]
            ce = cs + len(cb)
            if pos < cs:
                new_starts.append(pos)
                new_data.append(chunk[pos - start : cs - start])
            lo, hi = max(cs, start), min(ce, end)
            if chunk[lo - start : hi - start] != cb[lo - cs : hi - cs] and self.conflict is None:
                self.conflict = f"overlapping {self.label} fragments with different content"
            new_starts.append(cs)
            new_data.append(cb)
            pos = max(pos, ce)
            j += 1
        if pos < end:
            new_starts.append(pos)
            new_data.append(chunk[pos - start :] if pos > start else chunk)
        added = sum(map(len, new_data)) - sum(map(len, data[i:j]))
        starts[i:j] = new_starts
        data[i:j] = new_data
        self.have += added
        return added


class NetDecoder:
    """Decode captured frames from the link layer down to UDP/TCP/SCTP payloads.

    One decoder per capture: it holds the IP fragments of incomplete
    datagrams, bounded by ``max_fragment_groups`` datagrams and
    ``max_fragment_bytes`` bytes (the oldest group is given up when either is
    exceeded) and by ``fragment_timeout_ns`` of capture time, counted from the
    first fragment of a group.
    """

    __slots__ = (
        "_done",
        "_ether",
        "_frame",
        "_gave_up",
        "_groups",
        "_held",
        "_links",
        "_max_bytes",
        "_max_groups",
        "_protos",
        "_timeout",
        "_ts",
        "_v4",
        "_v6",
        "_wire",
    )

    def __init__(
        self,
        *,
        fragment_timeout_ns: int = 30_000_000_000,
        max_fragment_groups: int = 4096,
        max_fragment_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if fragment_timeout_ns < 0:
            raise ValueError("fragment_timeout_ns must not be negative")
        if max_fragment_groups < 1 or max_fragment_bytes < 1:
            raise ValueError("max_fragment_groups and max_fragment_bytes must be positive")
        self._timeout = fragment_timeout_ns
        self._max_groups = max_fragment_groups
        self._max_bytes = max_fragment_bytes
        self._groups: dict[_Key, _Group] = {}  # insertion order = creation order
        self._held = 0
        self._gave_up: list[GaveUp] = []
        # Recently reassembled datagrams: key -> (completion time, fragment signatures).
        self._done: dict[_Key, tuple[int, frozenset[_Sig]]] = {}
        self._v4: dict[int, str] = {}
        self._v6: dict[bytes, str] = {}
        self._frame = 0
        self._ts = 0
        self._wire = 0
        self._links: dict[int, _LinkHandler] = {
            1: self._link_ethernet,
            113: self._link_sll,
            276: self._link_sll2,
            101: self._link_raw,
            12: self._link_raw,
            14: self._link_raw,
            228: self._link_raw4,
            229: self._link_raw6,
            0: self._link_null,
            108: self._link_loop,
            9: self._link_ppp,
            50: self._link_ppp,
        }
        self._ether: dict[int, _EtherHandler] = {
            0x0800: self._ipv4,
            0x86DD: self._ipv6,
            0x8100: self._vlan,
            0x88A8: self._vlan,
            0x9100: self._vlan,
            0x8847: self._mpls,
            0x8848: self._mpls,
            0x8864: self._pppoe,
        }
        self._protos: dict[int, _ProtoHandler] = {
            17: self._udp,
            6: self._tcp,
            132: self._sctp,
            4: self._tunnel_ipv4,
            41: self._tunnel_ipv6,
            47: self._gre,
            51: self._ah,
        }

    # ------------------------------------------------------------------ API
    def decode(self, linktype: int, data: bytes, frame: int, ts_ns: int, wire_len: int) -> Result:
        """Decode one captured frame.

        Args:
            linktype: the pcap ``LINKTYPE_*`` value of the frame's interface.
            data: the captured bytes.
            frame: the frame's number (recorded in ``Segment.frames``).
            ts_ns: capture time in ns (fragment timeouts are in capture time).
            wire_len: the frame's original length (``len(data) < wire_len``
                when the capture's snaplen cut it).

        Returns:
            One or more :class:`Segment` (never an empty list), a
            :class:`Skip`, or :class:`Pending` for a held IP fragment.
        """
        if linktype == 1:
            # Fast path: Ethernet [/ one 802.1Q tag] / IPv4 without options,
            # unfragmented / UDP, complete in the capture, read with a single
            # struct call. Anything else falls through to the layer-by-layer
            # walk, which gives the same result for these frames.
            n = len(data)
            if n >= 42:
                if data[12] == 0x81 and data[13] == 0 and n >= 46:
                    et, vihl, tlen, frag, proto, s, d, sport, dport, ulen = _FAST_VLAN.unpack_from(
                        data
                    )
                    off = 18
                    chain = "ethernet/vlan/ipv4/udp"
                else:
                    et, vihl, tlen, frag, proto, s, d, sport, dport, ulen = _FAST.unpack_from(data)
                    off = 14
                    chain = "ethernet/ipv4/udp"
                if (
                    et == 0x0800
                    and vihl == 0x45
                    and proto == 17
                    and not frag & 0x3FFF
                    and 8 <= ulen <= tlen - 20
                    and off + tlen <= n
                ):
                    v4 = self._v4
                    src = v4.get(s) or self._ipv4_text(s)
                    dst = v4.get(d) or self._ipv4_text(d)
                    u = off + 28
                    return [
                        _new(
                            Segment,
                            (
                                "udp",
                                src,
                                sport,
                                dst,
                                dport,
                                data[u : u + ulen - 8],
                                chain,
                                (frame,),
                                0,
                                0,
                                False,
                            ),
                        )
                    ]
        self._frame = frame
        self._ts = ts_ns
        self._wire = wire_len
        handler = self._links.get(linktype)
        if handler is None:
            return Skip(f"unknown link type {linktype}", True, "")
        try:
            return handler(data, (frame,))
        except Exception as exc:  # never raise on input bytes
            return Skip(f"internal decoder error ({type(exc).__name__}: {exc})", True, "")

    def expire(self, now_ns: int) -> list[GaveUp]:
        """Give up fragment groups whose first fragment is older than the timeout.

        Also returns (and clears) the groups given up inside :meth:`decode`.
        Groups are examined in creation order and the scan stops at the first
        one still young, so a capture whose timestamps go backwards may see a
        group expire a little late (never early).
        """
        out = self._gave_up
        self._gave_up = []
        limit = now_ns - self._timeout
        groups = self._groups
        while groups:
            key = next(iter(groups))
            group = groups[key]
            if group.first_ts >= limit:
                break
            out.append(self._give_up(key, self._timeout_reason(group)))
        done = self._done
        while done:
            key = next(iter(done))
            if done[key][0] >= limit:
                break
            del done[key]
        return out

    def flush(self) -> list[GaveUp]:
        """End of capture: give up every incomplete fragment group (plus any queued)."""
        out = self._gave_up
        self._gave_up = []
        for key in list(self._groups):
            group = self._groups[key]
            reason = (
                group.conflict or f"{group.label} fragments incomplete at the end of the capture"
            )
            out.append(self._give_up(key, reason))
        self._done.clear()
        return out

    # ------------------------------------------------------------ helpers
    def _ipv4_text(self, addr: int) -> str:
        cache = self._v4
        if len(cache) >= _ADDR_CACHE_MAX:
            cache.clear()
        text = cache[addr] = f"{addr >> 24}.{addr >> 16 & 255}.{addr >> 8 & 255}.{addr & 255}"
        return text

    def _ipv6_text(self, addr: bytes) -> str:
        cache = self._v6
        text = cache.get(addr)
        if text is None:
            if len(cache) >= _ADDR_CACHE_MAX:
                cache.clear()
            text = cache[addr] = str(ipaddress.IPv6Address(addr))
        return text

    def _cut(self, data: bytes, what: str) -> str:
        """Reason for a layer the capture's snaplen cut short."""
        return f"captured length cut the {what} (caplen {len(data)} < {self._wire})"

    # ------------------------------------------------------------ link layers
    def _link_ethernet(self, data: bytes, frames: tuple[int, ...]) -> Result:
        return self._ethernet(data, 0, _NOLIMIT, "", 0, frames)

    def _ethernet(
        self, data: bytes, off: int, end: int, chain: str, depth: int, frames: tuple[int, ...]
    ) -> Result:
        # Ethernet II (RFC 894) / IEEE 802.3: dst(6) src(6) ethertype-or-length(2).
        have = min(end, len(data)) - off
        if have < 14:
            return Skip(f"Ethernet header truncated: {max(have, 0)} of 14 bytes", True, chain)
        et = data[off + 12] << 8 | data[off + 13]
        chain = f"{chain}/ethernet" if chain else "ethernet"
        return self._ethertype(et, data, off + 14, end, chain, depth, frames)

    def _ethertype(
        self,
        et: int,
        data: bytes,
        off: int,
        end: int,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
        label: str = "ethertype",
    ) -> Result:
        handler = self._ether.get(et)
        if handler is not None:
            return handler(data, off, end, chain, depth, frames)
        if et <= 1500 and label == "ethertype":
            # IEEE 802.3 length field: an LLC (and maybe SNAP) header follows.
            return Skip(f"not IP (IEEE 802.3 length {et}, LLC)", False, chain)
        return Skip(f"not IP ({label} 0x{et:04x})", False, chain)

    def _link_sll(self, data: bytes, frames: tuple[int, ...]) -> Result:
        # Linux cooked capture v1 (LINKTYPE_LINUX_SLL): packet type(2) ARPHRD(2)
        # address length(2) address(8) protocol(2).
        if len(data) < 16:
            return Skip(f"Linux cooked (SLL) header truncated: {len(data)} of 16 bytes", True, "")
        return self._sll_protocol(data[14] << 8 | data[15], data, 16, "sll", frames)

    def _link_sll2(self, data: bytes, frames: tuple[int, ...]) -> Result:
        # Linux cooked capture v2 (LINKTYPE_LINUX_SLL2): protocol(2) reserved(2)
        # interface index(4) ARPHRD(2) packet type(1) address length(1) address(8).
        if len(data) < 20:
            return Skip(f"Linux cooked (SLL2) header truncated: {len(data)} of 20 bytes", True, "")
        return self._sll_protocol(data[0] << 8 | data[1], data, 20, "sll2", frames)

    def _sll_protocol(
        self, proto: int, data: bytes, off: int, chain: str, frames: tuple[int, ...]
    ) -> Result:
        if proto < 0x0600:
            # Linux ETH_P_* pseudo-protocols (802.3, 802.2 LLC, CAN, ...).
            return Skip(f"not IP ({chain.upper()} protocol 0x{proto:04x})", False, chain)
        return self._ethertype(proto, data, off, _NOLIMIT, chain, 0, frames)

    def _link_raw(self, data: bytes, frames: tuple[int, ...]) -> Result:
        # LINKTYPE_RAW (101; DLT 12/14 on some systems): IPv4 or IPv6, no header.
        return self._ip_by_version(data, 0, _NOLIMIT, "raw", 0, frames, "raw IP packet")

    def _link_raw4(self, data: bytes, frames: tuple[int, ...]) -> Result:
        return self._ipv4(data, 0, _NOLIMIT, "raw", 0, frames)

    def _link_raw6(self, data: bytes, frames: tuple[int, ...]) -> Result:
        return self._ipv6(data, 0, _NOLIMIT, "raw", 0, frames)

    def _ip_by_version(
        self,
        data: bytes,
        off: int,
        end: int,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
        what: str,
    ) -> Result:
        if min(end, len(data)) <= off:
            return Skip(f"{what} is empty", True, chain)
        version = data[off] >> 4
        if version == 4:
            return self._ipv4(data, off, end, chain, depth, frames)
        if version == 6:
            return self._ipv6(data, off, end, chain, depth, frames)
        return Skip(f"{what} has IP version {version} (expected 4 or 6)", True, chain)

    def _link_null(self, data: bytes, frames: tuple[int, ...]) -> Result:
        # BSD loopback (LINKTYPE_NULL): 4-byte address family in the capturing
        # host's byte order; small values tell which order it was.
        if len(data) < 4:
            return Skip(f"NULL/loopback header truncated: {len(data)} of 4 bytes", True, "")
        family = int.from_bytes(data[:4], "little")
        if family > 0xFFFF:
            family = int.from_bytes(data[:4], "big")
        return self._address_family(family, data, "null", frames)

    def _link_loop(self, data: bytes, frames: tuple[int, ...]) -> Result:
        # OpenBSD loopback (LINKTYPE_LOOP): 4-byte address family, big-endian.
        if len(data) < 4:
            return Skip(f"LOOP header truncated: {len(data)} of 4 bytes", True, "")
        return self._address_family(int.from_bytes(data[:4], "big"), data, "loop", frames)

    def _address_family(
        self, family: int, data: bytes, chain: str, frames: tuple[int, ...]
    ) -> Result:
        if family == 2:
            return self._ipv4(data, 4, _NOLIMIT, chain, 0, frames)
        if family in _IPV6_FAMILIES:
            return self._ipv6(data, 4, _NOLIMIT, chain, 0, frames)
        return Skip(f"not IP (address family {family})", False, chain)

    def _link_ppp(self, data: bytes, frames: tuple[int, ...]) -> Result:
        return self._ppp(data, 0, _NOLIMIT, "", 0, frames)

    def _ppp(
        self, data: bytes, off: int, end: int, chain: str, depth: int, frames: tuple[int, ...]
    ) -> Result:
        # PPP (RFC 1661), optionally in HDLC-like framing (RFC 1662: address 0xff,
        # control 0x03), protocol field 2 bytes or 1 when compressed (RFC 1661 §6.5).
        lim = min(end, len(data))
        if lim - off >= 2 and data[off] == 0xFF and data[off + 1] == 0x03:
            off += 2
        if lim - off < 1:
            return Skip("PPP header truncated: 0 of 2 bytes", True, chain)
        proto = data[off]
        if proto & 1:
            off += 1
        elif lim - off < 2:
            return Skip("PPP header truncated: 1 of 2 bytes", True, chain)
        else:
            proto = proto << 8 | data[off + 1]
            off += 2
        chain = f"{chain}/ppp" if chain else "ppp"
        if proto == 0x0021:
            return self._ipv4(data, off, end, chain, depth, frames)
        if proto == 0x0057:
            return self._ipv6(data, off, end, chain, depth, frames)
        if proto in (0x0281, 0x0283):  # MPLS unicast / multicast (RFC 3032 §4)
            return self._mpls(data, off, end, chain, depth, frames)
        return Skip(f"not IP (PPP protocol 0x{proto:04x})", False, chain)

    # ------------------------------------------------------------ below Ethernet
    def _vlan(
        self, data: bytes, off: int, end: int, chain: str, depth: int, frames: tuple[int, ...]
    ) -> Result:
        # IEEE 802.1Q / 802.1ad tags: TCI(2) then the next ethertype(2); tags stack.
        lim = min(end, len(data))
        et = 0x8100
        while et in _VLAN_TPIDS:
            if lim - off < 4:
                return Skip(
                    f"802.1Q VLAN tag truncated: {max(lim - off, 0)} of 4 bytes", True, chain
                )
            et = data[off + 2] << 8 | data[off + 3]
            off += 4
            chain += "/vlan"
        return self._ethertype(et, data, off, end, chain, depth, frames)

    def _mpls(
        self, data: bytes, off: int, end: int, chain: str, depth: int, frames: tuple[int, ...]
    ) -> Result:
        # MPLS label stack (RFC 3032): 4-byte entries until the bottom-of-stack bit;
        # the payload is guessed from its first nibble (IPv4 or IPv6).
        lim = min(end, len(data))
        chain += "/mpls"
        while True:
            if lim - off < 4:
                return Skip("MPLS label stack truncated before its bottom entry", True, chain)
            bottom = data[off + 2] & 1
            off += 4
            if bottom:
                break
        if lim <= off:
            return Skip("MPLS payload missing after the label stack", True, chain)
        version = data[off] >> 4
        if version == 4:
            return self._ipv4(data, off, end, chain, depth, frames)
        if version == 6:
            return self._ipv6(data, off, end, chain, depth, frames)
        return Skip(f"not IP (MPLS payload starts with nibble {version})", False, chain)

    def _pppoe(
        self, data: bytes, off: int, end: int, chain: str, depth: int, frames: tuple[int, ...]
    ) -> Result:
        # PPPoE session stage (RFC 2516 §4): ver/type(1)=0x11 code(1)=0 session(2)
        # length(2), then a PPP protocol field and the PPP payload.
        lim = min(end, len(data))
        if lim - off < 6:
            return Skip(f"PPPoE header truncated: {max(lim - off, 0)} of 6 bytes", True, chain)
        if data[off] != 0x11:
            return Skip(f"PPPoE version/type 0x{data[off]:02x} is not 0x11", True, chain)
        if data[off + 1] != 0:
            return Skip(f"PPPoE session frame with code 0x{data[off + 1]:02x}", True, chain)
        return self._ppp(data, off + 6, end, chain + "/pppoe", depth, frames)

    # ------------------------------------------------------------ IP
    def _ipv4(
        self, data: bytes, off: int, end: int, chain: str, depth: int, frames: tuple[int, ...]
    ) -> Result:
        # IPv4 header (RFC 791 §3.1): IHL gives the header length (options are
        # skipped), total length bounds the payload (Ethernet padding is ignored).
        n = len(data)
        have = min(end, n) - off
        if have < 20:
            return Skip(f"IPv4 header truncated: {max(have, 0)} of 20 bytes", True, chain)
        vihl, tlen, ident, frag, proto, s, d = _IP4.unpack_from(data, off)
        if vihl >> 4 != 4:
            return Skip(f"IPv4 header has version {vihl >> 4}", True, chain)
        hl = (vihl & 15) << 2
        if hl < 20:
            return Skip(
                f"IPv4 header length {hl} bytes is less than 20 (IHL {hl >> 2})", True, chain
            )
        if have < hl:
            return Skip(f"IPv4 header truncated: {have} of {hl} bytes", True, chain)
        if tlen == 0:
            # Left zero by TCP segmentation offload on the capturing host.
            pend = min(end, n)
        elif tlen < hl:
            return Skip(
                f"IPv4 total length {tlen} is less than its header length {hl}", True, chain
            )
        else:
            pend = min(off + tlen, end)
        chain = f"{chain}/ipv4" if chain else "ipv4"
        v4 = self._v4
        src = v4.get(s) or self._ipv4_text(s)
        dst = v4.get(d) or self._ipv4_text(d)
        if frag & 0x3FFF:
            # More-fragments flag (0x2000) or a fragment offset (RFC 791 §3.2).
            return self._fragment(
                (4, s, d, proto, ident),
                "IPv4",
                proto,
                (frag & 0x1FFF) << 3,
                bool(frag & 0x2000),
                data,
                off + hl,
                pend,
                src,
                dst,
                chain + "/fragment",
                depth,
                frames,
            )
        return self._ip_payload(proto, data, off + hl, pend, src, dst, chain, depth, frames)

    def _ipv6(
        self, data: bytes, off: int, end: int, chain: str, depth: int, frames: tuple[int, ...]
    ) -> Result:
        # IPv6 header (RFC 8200 §3) and extension headers (RFC 8200 §4; AH is
        # RFC 4302, with its length in 4-byte units).
        n = len(data)
        have = min(end, n) - off
        if have < 40:
            return Skip(f"IPv6 header truncated: {max(have, 0)} of 40 bytes", True, chain)
        vtf, plen, nh, s, d = _IP6.unpack_from(data, off)
        if vtf >> 28 != 6:
            return Skip(f"IPv6 header has version {vtf >> 28}", True, chain)
        chain = f"{chain}/ipv6" if chain else "ipv6"
        src = self._v6.get(s) or self._ipv6_text(s)
        dst = self._v6.get(d) or self._ipv6_text(d)
        p = off + 40
        # A zero payload length (jumbogram, or segmentation offload on the
        # capturing host) means: use what is there.
        pend = min(end, n) if plen == 0 and nh != 59 else min(p + plen, end)
        return self._ipv6_ext(nh, data, p, pend, s, d, src, dst, chain, depth, frames)

    def _ipv6_ext(
        self,
        nh: int,
        data: bytes,
        p: int,
        pend: int,
        s: bytes | None,
        d: bytes,
        src: str,
        dst: str,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        # IPv6 extension headers (RFC 8200 §4): hop-by-hop options, routing,
        # destination options ((length + 1) * 8 bytes), AH (RFC 4302:
        # (length + 2) * 4 bytes) and the fragment header. ``s`` is None for the
        # payload of a reassembled datagram, where a fragment header is refused.
        lim = min(pend, len(data))
        while True:
            name = _IPV6_EXT_NAMES.get(nh)
            if name is not None:
                if lim - p < 2:
                    return Skip(
                        f"IPv6 {name} header truncated: {max(lim - p, 0)} of 8 bytes", True, chain
                    )
                hlen = (data[p + 1] + 2) << 2 if nh == 51 else (data[p + 1] + 1) << 3
                if lim - p < hlen:
                    return Skip(
                        f"IPv6 {name} header truncated: {lim - p} of {hlen} bytes", True, chain
                    )
                nh = data[p]
                p += hlen
                chain += "/" + name
                continue
            if nh == 44:
                # Fragment header (RFC 8200 §4.5): next header, offset/M flag, id.
                if lim - p < 8:
                    return Skip(
                        f"IPv6 fragment header truncated: {max(lim - p, 0)} of 8 bytes", True, chain
                    )
                nh, offm, ident = _FRAG6.unpack_from(data, p)
                p += 8
                chain += "/fragment"
                if offm & 0xFFF9 == 0:
                    continue  # atomic fragment (RFC 6946): a whole datagram
                if s is None:
                    return Skip("IPv6 fragment header inside a reassembled datagram", True, chain)
                return self._fragment(
                    (6, s, d, ident),
                    "IPv6",
                    nh,
                    offm & 0xFFF8,
                    bool(offm & 1),
                    data,
                    p,
                    pend,
                    src,
                    dst,
                    chain,
                    depth,
                    frames,
                )
            return self._ip_payload(nh, data, p, pend, src, dst, chain, depth, frames)

    def _ip_payload(
        self,
        proto: int,
        data: bytes,
        off: int,
        end: int,
        src: str,
        dst: str,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        handler = self._protos.get(proto)
        if handler is not None:
            return handler(data, off, end, src, dst, chain, depth, frames)
        name = _NON_SIP_PROTOCOLS.get(proto)
        if name is not None:
            return Skip(name, False, chain)
        return Skip(f"not UDP/TCP/SCTP (IP protocol {proto})", False, chain)

    def _ah(
        self,
        data: bytes,
        off: int,
        end: int,
        src: str,
        dst: str,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        # IP Authentication Header in IPv4 (RFC 4302 §2): next header(1), payload
        # length in 4-byte units minus 2 (1); the protected payload is in the clear.
        lim = min(end, len(data))
        if lim - off < 2:
            return Skip(f"AH header truncated: {max(lim - off, 0)} of 12 bytes", True, chain)
        hlen = (data[off + 1] + 2) << 2
        if lim - off < hlen:
            return Skip(f"AH header truncated: {lim - off} of {hlen} bytes", True, chain)
        nxt = data[off]
        if nxt == 51:
            return Skip("AH header followed by another AH header", True, chain)
        return self._ip_payload(nxt, data, off + hlen, end, src, dst, chain + "/ah", depth, frames)

    # ------------------------------------------------------------ tunnels
    def _tunnel_ipv4(
        self,
        data: bytes,
        off: int,
        end: int,
        src: str,
        dst: str,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        # IPv4 encapsulated in IP (RFC 2003; IP protocol 4).
        if depth >= MAX_ENCAPSULATIONS:
            return Skip(f"more than {MAX_ENCAPSULATIONS} nested encapsulations", True, chain)
        return self._ipv4(data, off, end, chain, depth + 1, frames)

    def _tunnel_ipv6(
        self,
        data: bytes,
        off: int,
        end: int,
        src: str,
        dst: str,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        # IPv6 encapsulated in IP (RFC 4213 §3.5, RFC 2473; IP protocol 41).
        if depth >= MAX_ENCAPSULATIONS:
            return Skip(f"more than {MAX_ENCAPSULATIONS} nested encapsulations", True, chain)
        return self._ipv6(data, off, end, chain, depth + 1, frames)

    def _gre(
        self,
        data: bytes,
        off: int,
        end: int,
        src: str,
        dst: str,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        # GRE (RFC 2784, key and sequence number from RFC 2890; the routing field
        # of RFC 1701): flags/version(2) protocol type(2) [checksum(2)
        # offset(2)] [key(4)] [sequence(4)] [routing SREs].
        if depth >= MAX_ENCAPSULATIONS:
            return Skip(f"more than {MAX_ENCAPSULATIONS} nested encapsulations", True, chain)
        lim = min(end, len(data))
        if lim - off < 4:
            return Skip(f"GRE header truncated: {max(lim - off, 0)} of 4 bytes", True, chain)
        flags, proto = _HH.unpack_from(data, off)
        chain += "/gre"
        version = flags & 7
        if version == 1:
            return self._pptp(flags, proto, data, off, end, chain, depth + 1, frames)
        if version:
            return Skip(f"GRE version {version} is not supported", True, chain)
        hl = 4
        if flags & 0xC000:  # checksum or routing present: checksum(2) + offset(2)
            hl += 4
        if flags & 0x2000:  # key
            hl += 4
        if flags & 0x1000:  # sequence number
            hl += 4
        if lim - off < hl:
            return Skip(f"GRE header truncated: {lim - off} of {hl} bytes", True, chain)
        p = off + hl
        if flags & 0x4000:
            # RFC 1701 source route entries: family(2) offset(1) length(1) data,
            # ending with a NULL entry (family 0, length 0).
            while True:
                if lim - p < 4:
                    return Skip("GRE routing field truncated", True, chain)
                family, length = data[p] << 8 | data[p + 1], data[p + 3]
                p += 4 + length
                if family == 0 and length == 0:
                    break
        if proto == 0x6558:  # transparent Ethernet bridging
            return self._ethernet(data, p, end, chain, depth + 1, frames)
        if proto == 0x88BE:
            return self._erspan2(bool(flags & 0x1000), data, p, end, chain, depth + 1, frames)
        if proto == 0x22EB:
            return self._erspan3(data, p, end, chain, depth + 1, frames)
        return self._ethertype(proto, data, p, end, chain, depth + 1, frames, "GRE protocol")

    def _pptp(
        self,
        flags: int,
        proto: int,
        data: bytes,
        off: int,
        end: int,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        # Enhanced GRE of PPTP (RFC 2637 §4.1): flags/version(2) protocol(2)=0x880b
        # payload length(2) call id(2) [sequence(4)] [acknowledgment(4)], then PPP.
        if proto != 0x880B:
            return Skip(
                f"GRE version 1 with protocol 0x{proto:04x} (expected PPP 0x880b)", True, chain
            )
        hl = 8 + (4 if flags & 0x1000 else 0) + (4 if flags & 0x0080 else 0)
        lim = min(end, len(data))
        if lim - off < hl:
            return Skip(f"GRE header truncated: {max(lim - off, 0)} of {hl} bytes", True, chain)
        length = data[off + 4] << 8 | data[off + 5]
        if length == 0:
            return Skip("GRE (PPTP) acknowledgement without payload", False, chain)
        p = off + hl
        return self._ppp(data, p, min(end, p + length), chain, depth, frames)

    def _erspan2(
        self,
        has_seq: bool,
        data: bytes,
        off: int,
        end: int,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        # ERSPAN type II (draft-foschiano-erspan §4.2): 8-byte header
        # (version, VLAN, CoS, session id, index), then the mirrored Ethernet frame.
        # Type I has no header at all and GRE carries no sequence number then.
        chain += "/erspan"
        if not has_seq:
            return self._ethernet(data, off, end, chain, depth, frames)
        have = min(end, len(data)) - off
        if have < 8:
            return Skip(f"ERSPAN type II header truncated: {max(have, 0)} of 8 bytes", True, chain)
        return self._ethernet(data, off + 8, end, chain, depth, frames)

    def _erspan3(
        self, data: bytes, off: int, end: int, chain: str, depth: int, frames: tuple[int, ...]
    ) -> Result:
        # ERSPAN type III (draft-foschiano-erspan §4.3): 12-byte header; the last
        # 16-bit word holds P(1) FT(5) HW ID(6) D(1) Gra(2) O(1); O means an
        # 8-byte platform-specific subheader follows. FT 0 = Ethernet, 2 = IP.
        chain += "/erspan"
        have = min(end, len(data)) - off
        if have < 12:
            return Skip(
                f"ERSPAN type III header truncated: {max(have, 0)} of 12 bytes", True, chain
            )
        word = data[off + 10] << 8 | data[off + 11]
        hl = 20 if word & 1 else 12
        if have < hl:
            return Skip(f"ERSPAN type III header truncated: {have} of {hl} bytes", True, chain)
        frame_type = word >> 10 & 0x1F
        if frame_type == 0:
            return self._ethernet(data, off + hl, end, chain, depth, frames)
        if frame_type == 2:
            return self._ip_by_version(data, off + hl, end, chain, depth, frames, "ERSPAN IP frame")
        return Skip(f"ERSPAN type III frame type {frame_type} is not supported", True, chain)

    # ------------------------------------------------------------ transports
    def _udp(
        self,
        data: bytes,
        off: int,
        end: int,
        src: str,
        dst: str,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        # UDP (RFC 768): source port(2) destination port(2) length(2) checksum(2).
        n = len(data)
        have = min(end, n) - off
        if have < 8:
            return Skip(f"UDP header truncated: {max(have, 0)} of 8 bytes", True, chain)
        sport, dport, ulen = _UDP.unpack_from(data, off)
        # The UDP length and the IP payload length may disagree: trust the
        # smaller (a UDP length below 8 is meaningless: use the IP length).
        pend = off + ulen if ulen >= 8 and off + ulen < end else end
        return [
            Segment(
                "udp",
                src,
                sport,
                dst,
                dport,
                data[off + 8 : pend],
                chain + "/udp",
                frames,
                truncated=pend > n,
            )
        ]

    def _tcp(
        self,
        data: bytes,
        off: int,
        end: int,
        src: str,
        dst: str,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        # TCP (RFC 9293 §3.1): ports(4) sequence(4) acknowledgment(4) data
        # offset(4 bits) ... flags(8) ...; options up to the data offset.
        n = len(data)
        have = min(end, n) - off
        if have < 20:
            return Skip(f"TCP header truncated: {max(have, 0)} of 20 bytes", True, chain)
        sport, dport, seq, doff, flags = _TCP.unpack_from(data, off)
        hl = doff >> 4 << 2
        if hl < 20:
            return Skip(f"TCP data offset {hl} bytes is less than 20", True, chain)
        if have < hl:
            return Skip(f"TCP header truncated: {have} of {hl} bytes", True, chain)
        return [
            Segment(
                "tcp",
                src,
                sport,
                dst,
                dport,
                data[off + hl : end],
                chain + "/tcp",
                frames,
                seq,
                flags,
                end > n,
            )
        ]

    def _sctp(
        self,
        data: bytes,
        off: int,
        end: int,
        src: str,
        dst: str,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        # SCTP (RFC 9260 §3): common header ports(4) verification tag(4)
        # checksum(4), then chunks type(1) flags(1) length(2) padded to 4 bytes.
        # DATA (type 0, §3.3.1) has TSN(4) stream(2) SSN(2) PPID(4) before the
        # user data; I-DATA (type 64, RFC 8260 §2.1) has TSN, stream, reserved,
        # MID and PPID/FSN (16 bytes). For SCTP segments ``seq`` is the TSN and
        # ``flags`` the chunk flags (U, B, E, I).
        n = len(data)
        lim = min(end, n)
        if lim - off < 12:
            return Skip(
                f"SCTP common header truncated: {max(lim - off, 0)} of 12 bytes", True, chain
            )
        sport, dport = _HH.unpack_from(data, off)
        chain += "/sctp"
        segments: list[Segment] = []
        problem: str | None = None
        p = off + 12
        while p < end:
            if p + 4 > n and end > n:
                problem = (
                    self._cut(data, "SCTP chunks") if self._wire > n else "SCTP chunks truncated"
                )
                break
            if lim - p < 4:
                problem = f"SCTP chunk header truncated: {lim - p} of 4 bytes"
                break
            ctype, cflags, clen = _CHUNK.unpack_from(data, p)
            if clen < 4:
                problem = f"SCTP chunk length {clen} is less than 4"
                break
            cend = p + clen
            if cend > end:
                problem = f"SCTP chunk length {clen} runs past the end of the packet ({end - p} bytes left)"
                break
            if ctype == 0 or ctype == 64:
                hl = 16 if ctype == 0 else 20
                kind = "DATA" if ctype == 0 else "I-DATA"
                if clen < hl:
                    problem = f"SCTP {kind} chunk length {clen} is less than {hl}"
                    break
                if n - p < hl:
                    problem = self._cut(data, f"SCTP {kind} chunk header")
                    break
                tsn = _U32.unpack_from(data, p + 4)[0]
                segments.append(
                    Segment(
                        "sctp",
                        src,
                        sport,
                        dst,
                        dport,
                        data[p + hl : cend],
                        chain,
                        frames,
                        tsn,
                        cflags,
                        cend > n,
                    )
                )
            p += (clen + 3) & ~3
        if segments:
            return segments
        if problem is not None:
            return Skip(problem, True, chain)
        return Skip("SCTP without DATA chunks", False, chain)

    # ------------------------------------------------------------ fragments
    def _fragment(
        self,
        key: _Key,
        label: str,
        proto: int,
        start: int,
        more: bool,
        data: bytes,
        off: int,
        end: int,
        src: str,
        dst: str,
        chain: str,
        depth: int,
        frames: tuple[int, ...],
    ) -> Result:
        """Hold one fragment; decode the datagram when it is complete."""
        n = len(data)
        if end > n:
            if self._wire > n:
                return Skip(self._cut(data, f"{label} fragment"), True, chain)
            return Skip(
                f"{label} fragment truncated: {max(n - off, 0)} of {end - off} bytes", True, chain
            )
        chunk = data[off:end]
        fend = start + len(chunk)
        if fend > _MAX_DATAGRAM:
            return Skip(
                f"{label} fragment ends beyond {_MAX_DATAGRAM} bytes (offset {start}, {len(chunk)} bytes)",
                True,
                chain,
            )
        sig: _Sig = (start, fend, more, hash(chunk))
        ts = self._ts
        groups = self._groups
        group = groups.get(key)
        if group is not None and ts - group.first_ts > self._timeout:
            self._gave_up.append(self._give_up(key, self._timeout_reason(group)))
            group = None
        if group is None:
            done = self._done.get(key)
            if done is not None and sig in done[1] and ts - done[0] <= self._timeout:
                return Skip(
                    f"duplicate {label} fragment of a datagram already reassembled", False, chain
                )
            while len(groups) >= self._max_groups:
                oldest = next(iter(groups))
                self._gave_up.append(
                    self._give_up(
                        oldest, f"fragment group limit reached ({self._max_groups} datagrams)"
                    )
                )
            group = groups[key] = _Group(label, ts, proto if label == "IPv4" else None)
        group.frames.extend(frames)
        if sig in group.sigs:
            return Pending(chain)  # an identical retransmission: nothing new
        group.sigs.add(sig)
        if start == 0 and group.proto is None:
            group.proto = proto
        if not more:
            if group.total is None:
                group.total = fend
            elif group.total != fend and group.conflict is None:
                group.conflict = f"{label} fragments disagree on the datagram length"
        self._held += group.add(start, chunk)
        if group.total is not None and group.max_end > group.total and group.conflict is None:
            group.conflict = f"{label} fragments disagree on the datagram length"
        while self._held > self._max_bytes and groups:
            oldest = next(iter(groups))
            self._gave_up.append(
                self._give_up(oldest, f"fragment memory limit reached ({self._max_bytes} bytes)")
            )
        if groups.get(key) is not group:
            return Pending(chain)  # given up just now for a limit
        total = group.total
        if total is None or group.have != total or group.max_end != total:
            return Pending(chain)
        if group.conflict is not None:
            self._gave_up.append(self._give_up(key, group.conflict))
            return Pending(chain)
        del groups[key]
        self._held -= group.have
        done_map = self._done
        done_map.pop(key, None)
        while len(done_map) >= self._max_groups:
            del done_map[next(iter(done_map))]
        done_map[key] = (ts, frozenset(group.sigs))
        payload = b"".join(group.data)
        proto = group.proto if group.proto is not None else 59
        if label == "IPv6":
            # Headers after the fragment header belong to the fragmentable part.
            return self._ipv6_ext(
                proto,
                payload,
                0,
                len(payload),
                None,
                b"",
                src,
                dst,
                chain,
                depth,
                tuple(group.frames),
            )
        return self._ip_payload(
            proto, payload, 0, len(payload), src, dst, chain, depth, tuple(group.frames)
        )

    def _give_up(self, key: _Key, reason: str) -> GaveUp:
        group = self._groups.pop(key)
        self._held -= group.have
        return GaveUp(tuple(group.frames), reason)

    def _timeout_reason(self, group: _Group) -> str:
        return group.conflict or f"{group.label} fragments incomplete after {_secs(self._timeout)}"
