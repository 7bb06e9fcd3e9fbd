"""TCP stream reassembly for captures (RFC 9293), sans-IO.

Feed one TCP :class:`~sipchain.sources._packets.Segment` at a time with
:meth:`TcpReassembler.feed`; it returns the events the segment caused, in the
order a consumer must apply them, plus a *disposition* when the frame delivered
no new byte now. Nothing here knows SIP: bytes flow, offsets are counted.

Each *direction* of a connection is one stream, keyed by
``(src, sport, dst, dport)``. A stream's bytes are numbered from offset 0: the
first byte after the SYN (RFC 9293 §3.4, the SYN occupies one sequence number),
or, when the capture starts mid-connection, the first payload byte seen.

Events:

- :class:`StreamData`: new in-order bytes at ``offset``, with the frame that
  carried them. A byte is delivered at most once.
- :class:`StreamGap`: bytes that never arrived and never will (the out-of-order
  buffer overflowed, the stream went idle, or the capture ended). What follows
  the hole is delivered next, so the consumer can resynchronise.
- :class:`StreamEnd`: the direction is over (FIN, RST, idle, end of capture,
  evicted, or reused by a new connection on the same 4-tuple).

Dispositions (the second item returned by :meth:`TcpReassembler.feed`):

- ``None``: the frame delivered new bytes now (it appears in a ``StreamData``).
- ``"no payload"``: a pure ACK, SYN, FIN or RST without data.
- ``"retransmission"``: every payload byte was already delivered or buffered.
- ``"buffered"``: held out of order; its bytes come later in a ``StreamData``
  carrying this frame's number (or are flushed at the end).
- ``"late"``: every new byte falls in a hole already reported by a
  ``StreamGap`` (or before offset 0 of a stream picked up mid-connection).

Memory is bounded: at most ``max_streams`` directions are tracked (least
recently used ones are ended with ``"evicted"``), and each holds at most
``max_pending_bytes`` octets in at most ``max_pending_segments`` pieces out of
order.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import OrderedDict
from typing import Final, NamedTuple

from sipchain.sources._packets import FIN, RST, SYN, Segment

__all__ = ["StreamData", "StreamEnd", "StreamEvent", "StreamGap", "StreamKey", "TcpReassembler"]

#: One direction of a TCP connection: (src, sport, dst, dport).
StreamKey = tuple[str, int, str, int]

# RFC 9293 §3.4: sequence numbers are 32-bit and compared modulo 2**32.
_MOD: Final = 1 << 32
_HALF: Final = 1 << 31

# Holes already reported by StreamGap, remembered per stream to recognise late
# arrivals (bounded: the oldest are forgotten).
_GAPS_REMEMBERED: Final = 16


class StreamData(NamedTuple):
    """In-order bytes of one stream direction, delivered exactly once."""

    key: StreamKey
    generation: int
    offset: int  # stream offset of data[0]
    data: bytes
    frame: int  # frame that carried these bytes


class StreamGap(NamedTuple):
    """Bytes of a stream that were never captured; delivery resumes after them."""

    key: StreamKey
    generation: int
    offset: int
    length: int
    reason: str  # "pending limit", "idle", "end of capture", "RST", "evicted", "reused"


class StreamEnd(NamedTuple):
    """The end of one stream direction (one generation of a 4-tuple)."""

    key: StreamKey
    generation: int
    reason: str  # "FIN", "RST", "idle", "end of capture", "evicted", "reused"


#: Anything :class:`TcpReassembler` emits.
StreamEvent = StreamData | StreamGap | StreamEnd


def _piece_start(piece: tuple[int, bytes, int]) -> int:
    return piece[0]


class _Stream:
    """Reassembly state of one direction."""

    __slots__ = (
        "base",
        "ended",
        "fin_off",
        "gaps",
        "generation",
        "isn",
        "key",
        "last_ts",
        "next_off",
        "pending",
        "pending_bytes",
        "started",
    )

    def __init__(self, key: StreamKey, generation: int, ts_ns: int) -> None:
        self.key = key
        self.generation = generation
        self.isn: int | None = None  # sequence number of the SYN, when seen
        self.base: int | None = None  # sequence number of stream offset 0
        self.next_off = 0  # next offset to deliver (everything below is done)
        # out-of-order pieces (offset, data, frame): sorted, disjoint, all >= next_off
        self.pending: list[tuple[int, bytes, int]] = []
        self.pending_bytes = 0
        self.fin_off: int | None = None  # offset of the FIN, once seen
        self.started = False  # SYN or payload seen: the consumer knows this stream
        self.ended = False
        self.last_ts = ts_ns
        self.gaps: list[tuple[int, int]] = []  # reported holes [start, end)

    def offset_of(self, seq: int) -> int:
        """Stream offset of sequence number ``seq``: the one congruent modulo
        2**32 nearest to the delivery point (RFC 9293 §3.4 wraparound)."""
        assert self.base is not None
        rel = (seq - self.base) % _MOD
        return self.next_off + ((rel - self.next_off + _HALF) % _MOD) - _HALF

    def in_gap(self, start: int, end: int) -> bool:
        """Whether [start, end) touches a reported hole or precedes offset 0."""
        if start < 0:
            return True
        return any(g0 < end and start < g1 for g0, g1 in self.gaps)


class TcpReassembler:
    """Rebuild the byte streams of TCP connections from captured segments.

    Args:
        max_streams: directions tracked at once; beyond it the least recently
            used one is ended with reason ``"evicted"``.
        max_pending_bytes: out-of-order octets held per direction; beyond it
            the oldest hole is declared lost (``StreamGap``, reason
            ``"pending limit"``) and what follows is delivered.
        idle_timeout_ns: :meth:`expire` ends directions silent for this long.
        max_pending_segments: out-of-order pieces held per direction (bounds
            bookkeeping on floods of tiny segments); beyond it, as above.

    Attributes:
        retransmissions: frames whose payload brought nothing new.
        gaps: ``StreamGap`` events emitted.
        evicted: directions ended because of ``max_streams``.
    """

    def __init__(
        self,
        *,
        max_streams: int = 65536,
        max_pending_bytes: int = 1 << 20,
        idle_timeout_ns: int = 300_000_000_000,
        max_pending_segments: int = 4096,
    ) -> None:
        if max_streams <= 0:
            raise ValueError("max_streams must be positive")
        if max_pending_bytes < 0 or max_pending_segments <= 0:
            raise ValueError("max_pending_bytes must be >= 0 and max_pending_segments positive")
        self.max_streams = max_streams
        self.max_pending_bytes = max_pending_bytes
        self.max_pending_segments = max_pending_segments
        self.idle_timeout_ns = idle_timeout_ns
        self.retransmissions = 0
        self.gaps = 0
        self.evicted = 0
        # least recently used first; feed() moves a stream to the end
        self._streams: OrderedDict[StreamKey, _Stream] = OrderedDict()
        # last generation of directions no longer tracked, so a reappearing
        # 4-tuple gets a fresh number (bounded like the table)
        self._retired: OrderedDict[StreamKey, int] = OrderedDict()

    def __len__(self) -> int:
        """Number of directions tracked (ended ones included until dropped)."""
        return len(self._streams)

    # ------------------------------------------------------------ input
    def feed(self, seg: Segment, ts_ns: int) -> tuple[list[StreamEvent], str | None]:
        """Apply one TCP segment captured at ``ts_ns``.

        Returns the events it caused, in order, and its disposition (``None``
        when it delivered new bytes now; see the module docstring).
        """
        if seg.transport != "tcp":
            raise ValueError(f"not a TCP segment: {seg.transport!r}")
        frame = seg.frames[-1] if seg.frames else 0
        flags = seg.flags
        payload = seg.payload
        events: list[StreamEvent] = []
        key: StreamKey = (seg.src, seg.sport, seg.dst, seg.dport)
        st = self._lookup(key, ts_ns, events)

        seq = seg.seq % _MOD
        if flags & SYN:
            st = self._on_syn(st, seq, ts_ns, events)
            seq = (seq + 1) % _MOD  # RFC 9293 §3.4: the SYN occupies one sequence number

        if st.ended:
            # after FIN/RST: a copy of old bytes, or a new connection whose SYN was missed
            if payload:
                if st.base is not None and st.offset_of(seq) + len(payload) <= st.next_off:
                    return events, self._no_news(st, st.offset_of(seq), len(payload))
                st = self._reuse(st, None, ts_ns, events)
            else:
                return events, "no payload"

        if st.base is None:
            if payload:
                st.base = seq  # mid-stream start: the first data byte seen is offset 0
            elif flags & (FIN | RST):
                if flags & RST:
                    self._reset_reverse(key, events)
                st.ended = True  # nothing was delivered: end quietly
                return events, "no payload"
            else:
                return events, "no payload"
        st.started = True

        off = st.offset_of(seq)
        disposition: str | None = "no payload"
        if payload:
            disposition = self._accept(st, off, payload, frame, events)
        if flags & RST:
            # RFC 9293 §3.10.7.4: a reset aborts the connection, both directions
            self._finish(st, "RST", "RST", events)
            self._reset_reverse(key, events)
            return events, disposition
        if flags & FIN and st.fin_off is None:
            self._set_fin(st, off + len(payload))
        self._enforce_limits(st, events)
        self._check_fin(st, events)
        return events, disposition

    def expire(self, now_ns: int) -> list[StreamEvent]:
        """End the directions idle for ``idle_timeout_ns`` at capture time ``now_ns``.

        Their held bytes are delivered after a ``StreamGap`` (reason ``"idle"``).
        Streams are visited least recently fed first and the walk stops at the
        first one still active, so the cost is proportional to what expires
        (exact when capture timestamps do not go backwards).
        """
        events: list[StreamEvent] = []
        cutoff = now_ns - self.idle_timeout_ns
        while self._streams:
            key, st = next(iter(self._streams.items()))
            if st.last_ts > cutoff:
                break
            del self._streams[key]
            self._finish(st, "idle", "idle", events)
            self._retire(st)
        return events

    def flush(self) -> list[StreamEvent]:
        """End every direction at the end of the capture; held bytes are delivered."""
        events: list[StreamEvent] = []
        while self._streams:
            _, st = self._streams.popitem(last=False)
            self._finish(st, "end of capture", "end of capture", events)
            self._retire(st)
        return events

    # ------------------------------------------------------------ table
    def _lookup(self, key: StreamKey, ts_ns: int, events: list[StreamEvent]) -> _Stream:
        st = self._streams.get(key)
        if st is not None:
            self._streams.move_to_end(key)
            st.last_ts = ts_ns
            return st
        while len(self._streams) >= self.max_streams:
            _, old = self._streams.popitem(last=False)
            if old.started and not old.ended:
                self.evicted += 1
            self._finish(old, "evicted", "evicted", events)
            self._retire(old)
        st = _Stream(key, self._retired.pop(key, -1) + 1, ts_ns)
        self._streams[key] = st
        return st

    def _retire(self, st: _Stream) -> None:
        self._retired[st.key] = st.generation
        self._retired.move_to_end(st.key)
        while len(self._retired) > self.max_streams:
            self._retired.popitem(last=False)

    def _reuse(self, st: _Stream, isn: int | None, ts_ns: int, events: list[StreamEvent]) -> _Stream:
        """End ``st`` and start the next generation of its 4-tuple."""
        self._finish(st, "reused", "reused", events)
        new = _Stream(st.key, st.generation + 1, ts_ns)
        if isn is not None:
            new.isn = isn
            new.base = (isn + 1) % _MOD
            new.started = True
        self._streams[st.key] = new
        return new

    def _reset_reverse(self, key: StreamKey, events: list[StreamEvent]) -> None:
        reverse = self._streams.get((key[2], key[3], key[0], key[1]))
        if reverse is not None and not reverse.ended:
            self._finish(reverse, "RST", "RST", events)

    # ------------------------------------------------------------ SYN / FIN
    def _on_syn(self, st: _Stream, seq: int, ts_ns: int, events: list[StreamEvent]) -> _Stream:
        """RFC 9293 §3.5: a SYN opens a connection; a new ISN on a known
        4-tuple is a new connection (stream reuse), the same ISN a copy."""
        if st.isn is not None:
            return st if seq == st.isn else self._reuse(st, seq, ts_ns, events)
        if st.ended:
            return self._reuse(st, seq, ts_ns, events)
        if st.base is None:
            st.isn = seq
            st.base = (seq + 1) % _MOD
            st.started = True
            return st
        # picked up mid-stream, then a SYN: this connection's own handshake
        # captured late (it lands at or just before offset 0), or a new one
        first = st.offset_of((seq + 1) % _MOD)
        if -self.max_pending_bytes <= first <= 0:
            st.isn = seq
            return st
        return self._reuse(st, seq, ts_ns, events)

    def _set_fin(self, st: _Stream, fin_off: int) -> None:
        """Record the FIN (RFC 9293 §3.6); nothing after it belongs to the stream."""
        st.fin_off = max(fin_off, st.next_off)
        if st.pending and st.pending[-1][0] + len(st.pending[-1][1]) > st.fin_off:
            kept: list[tuple[int, bytes, int]] = []
            for start, data, frame in st.pending:
                if start < st.fin_off:
                    kept.append((start, data[: st.fin_off - start], frame))
            st.pending = kept
            st.pending_bytes = sum(len(d) for _, d, _ in kept)

    def _check_fin(self, st: _Stream, events: list[StreamEvent]) -> None:
        if st.fin_off is not None and not st.ended and st.next_off >= st.fin_off:
            events.append(StreamEnd(st.key, st.generation, "FIN"))
            st.ended = True

    # ------------------------------------------------------------ data
    def _no_news(self, st: _Stream, start: int, length: int) -> str:
        if st.in_gap(start, start + length):
            return "late"
        self.retransmissions += 1
        return "retransmission"

    def _accept(self, st: _Stream, off: int, payload: bytes, frame: int, events: list[StreamEvent]) -> str | None:
        """Deliver or hold the new bytes of one segment; return its disposition."""
        end = off + len(payload)
        if st.fin_off is not None and end > st.fin_off:
            end = max(off, st.fin_off)
            payload = payload[: end - off]
        if end <= st.next_off:
            return self._no_news(st, off, len(payload))
        if off < st.next_off:  # partial overlap with delivered bytes: keep only the new ones
            payload = payload[st.next_off - off :]
            off = st.next_off
        pieces = self._subtract_pending(st, off, payload)
        if not pieces:
            self.retransmissions += 1
            return "retransmission"
        deliverable = pieces[0][0] == st.next_off
        for start, data in pieces:
            insort(st.pending, (start, data, frame), key=_piece_start)
            st.pending_bytes += len(data)
        if deliverable:
            self._release(st, events)
            return None
        return "buffered"

    @staticmethod
    def _subtract_pending(st: _Stream, off: int, data: bytes) -> list[tuple[int, bytes]]:
        """The parts of [off, off+len(data)) not already held, in order."""
        end = off + len(data)
        pending = st.pending
        out: list[tuple[int, bytes]] = []
        cursor = off
        i = max(0, bisect_right(pending, off, key=_piece_start) - 1)
        while i < len(pending) and cursor < end:
            p_start, p_data, _ = pending[i]
            if p_start >= end:
                break
            p_end = p_start + len(p_data)
            if p_end > cursor:
                if p_start > cursor:
                    out.append((cursor, data[cursor - off : p_start - off]))
                cursor = p_end
            i += 1
        if cursor < end:
            out.append((cursor, data[cursor - off :]))
        return out

    @staticmethod
    def _release(st: _Stream, events: list[StreamEvent]) -> None:
        """Deliver the held pieces that are now contiguous with the stream."""
        pending = st.pending
        i = 0
        while i < len(pending) and pending[i][0] == st.next_off:
            start, data, frame = pending[i]
            events.append(StreamData(st.key, st.generation, start, data, frame))
            st.next_off += len(data)
            st.pending_bytes -= len(data)
            i += 1
        if i:
            del pending[:i]

    def _skip_hole(self, st: _Stream, reason: str, events: list[StreamEvent], upto: int | None = None) -> None:
        """Declare the hole before the first held piece (or before ``upto``) lost."""
        target = st.pending[0][0] if upto is None else upto
        if target > st.next_off:
            events.append(StreamGap(st.key, st.generation, st.next_off, target - st.next_off, reason))
            self.gaps += 1
            st.gaps.append((st.next_off, target))
            if len(st.gaps) > _GAPS_REMEMBERED:
                del st.gaps[0]
            st.next_off = target
        self._release(st, events)

    def _enforce_limits(self, st: _Stream, events: list[StreamEvent]) -> None:
        while st.pending and (
            st.pending_bytes > self.max_pending_bytes or len(st.pending) > self.max_pending_segments
        ):
            self._skip_hole(st, "pending limit", events)

    def _finish(self, st: _Stream, gap_reason: str, end_reason: str, events: list[StreamEvent]) -> None:
        """Deliver everything held (after gaps), then end the direction."""
        if st.ended:
            return
        while st.pending:
            self._skip_hole(st, gap_reason, events)
        if st.fin_off is not None:
            if st.fin_off > st.next_off:
                self._skip_hole(st, gap_reason, events, upto=st.fin_off)
            if end_reason in ("idle", "end of capture"):
                end_reason = "FIN"  # the FIN was seen; only bytes before it were missing
        st.ended = True
        if st.started:
            events.append(StreamEnd(st.key, st.generation, end_reason))
