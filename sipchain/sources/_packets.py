"""Internal per-packet values passed between the capture layers.

These are plain ``NamedTuple`` values (cheap to build: one per frame on the hot
path), private to ``sipchain.sources``. Public, frozen model types are built from
them only once a SIP message exists.
"""

from __future__ import annotations

from typing import NamedTuple

# TCP flags (RFC 9293 §3.1)
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10


class Segment(NamedTuple):
    """A transport payload decoded from one frame (or from reassembled IP fragments)."""

    transport: str  # "udp", "tcp" or "sctp"
    src: str  # source IP address as text (IPv6 compressed, as ipaddress prints it)
    sport: int
    dst: str
    dport: int
    payload: bytes  # UDP/TCP payload, or the user data of one SCTP DATA chunk
    chain: str  # layers walked, e.g. "ethernet/vlan/ipv4/udp"
    frames: tuple[int, ...]  # frames that supplied it, in order; the last is the current frame
    seq: int = 0  # TCP sequence number of the first payload byte
    flags: int = 0  # TCP flags
    truncated: bool = False  # the capture cut this payload short (caplen < length)


class Skip(NamedTuple):
    """A frame that yields no transport payload, and why."""

    reason: str  # stable, readable: "not IP (ARP)", "ICMP", "unknown link type 147", ...
    problem: bool  # True: malformed/truncated/unsupported (a problem); False: ordinary non-SIP
    chain: str  # layers walked before giving up


class Pending(NamedTuple):
    """A frame held for reassembly (an IP fragment waiting for the others)."""

    chain: str


class GaveUp(NamedTuple):
    """Frames held for reassembly that will never complete."""

    frames: tuple[int, ...]
    reason: str  # e.g. "IPv4 fragments incomplete after 30 s", "fragment limit reached"
