"""Bounds on what ingestion holds in memory at once."""

from __future__ import annotations

import attrs

__all__ = ["Limits"]


@attrs.frozen
class Limits:
    """Bounds on what ingestion holds in memory at once (hostile or huge input).

    Attributes:
        max_tcp_streams: TCP directions tracked at once (least recently used
            beyond it are ended).
        max_tcp_pending: out-of-order bytes held per TCP direction before a
            hole is given up.
        max_stream_buffer: bytes of one incomplete SIP message held per stream.
        max_fragment_groups: IP datagrams being reassembled at once.
        max_fragment_bytes: bytes held for IP reassembly in all.
        fragment_timeout_ns: capture time after which an incomplete IP
            datagram is given up.
        max_message: largest SIP message read (bytes).
    """

    max_tcp_streams: int = 65536
    max_tcp_pending: int = 1 << 20
    max_stream_buffer: int = 1 << 20
    max_fragment_groups: int = 4096
    max_fragment_bytes: int = 64 << 20
    fragment_timeout_ns: int = 30_000_000_000
    max_message: int = 1 << 20
