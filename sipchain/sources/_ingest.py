"""From capture records to SIP messages with provenance, accounting for every frame.

One :class:`CaptureIngest` reads one capture file:

    records (``_capture``) -> link/IP layers and fragments (``_net``) ->
    UDP/SCTP datagrams, HEP, or TCP streams (``_tcp``) -> SIP framing
    (``SipStreamParser``, WebSocket, HEP over TCP) -> ``SipMessage``

Every frame ends in exactly one bucket of the report: SIP (it supplied bytes of
at least one SIP message), non-SIP (ordinary other traffic, by reason) or
problem (it could not be used). Frames whose fate depends on later frames (IP
fragments, TCP segments) stay open until it is known, with a bound on how many.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from typing import BinaryIO, Literal

import attrs

from sipchain.errors import CaptureError, SipParseError
from sipchain.model import Defect, Endpoint, Problem, Provenance, SipMessage, SourceReport
from sipchain.sources._capture import CaptureReader
from sipchain.sources._hep import HepPacket, HepStreamSplitter, decode_hep, looks_like_hep
from sipchain.sources._limits import Limits
from sipchain.sources._net import NetDecoder
from sipchain.sources._packets import GaveUp, Pending, Segment, Skip
from sipchain.sources._tcp import StreamData, StreamEnd, StreamGap, TcpReassembler
from sipchain.sources._websocket import WebSocketDecoder, looks_like_websocket_handshake
from sipchain.wire import NEED_DATA, SipStreamParser, starts_like_sip
from sipchain.wire._message import parse_with_origin

__all__ = ["CaptureIngest", "Limits"]



_Bucket = Literal["sip", "non-sip", "problem"]


class _Open:
    """A frame whose bucket is not known yet (TCP data, IP fragments)."""

    __slots__ = ("buffered", "offset", "parts", "problem", "reason", "sip", "ts_ns")

    def __init__(self, offset: int, ts_ns: int) -> None:
        self.offset = offset
        self.ts_ns = ts_ns
        self.parts = 0  # outstanding pieces of its bytes
        self.buffered = False  # held out of order by TCP: one part already counted
        self.sip = False
        self.reason: str | None = None
        self.problem: tuple[str, str] | None = None


class _Stream:
    """One TCP direction (one generation): SIP, WebSocket or HEP framing."""

    __slots__ = ("base", "chain", "done", "dst", "hep", "key", "mode", "parser", "spans", "src", "ws")

    def __init__(self, seg_chain: str, src: Endpoint, dst: Endpoint) -> None:
        self.chain = seg_chain
        self.src = src
        self.dst = dst
        self.mode: str | None = None
        self.parser: SipStreamParser | None = None
        self.ws: WebSocketDecoder | None = None
        self.hep: HepStreamSplitter | None = None
        self.base = 0  # stream offset of the framer's position 0
        self.done = 0  # stream offset up to which every byte is accounted for
        self.spans: deque[list[int]] = deque()  # [start, end, frame]


class CaptureIngest:
    """Read one capture file into SIP messages and a :class:`SourceReport`.

    Iterate :meth:`messages` (capture order, as each message completes); the
    report is complete once the iteration has ended.
    """

    def __init__(
        self, f: BinaryIO, source: str, sha256: str, *, strict: bool = False, limits: Limits | None = None
    ) -> None:
        self.source = source
        self.sha256 = sha256
        self.strict = strict
        self.limits = limits or Limits()
        self.reader = CaptureReader(f, source, strict=strict)
        lim = self.limits
        self.net = NetDecoder(
            fragment_timeout_ns=lim.fragment_timeout_ns,
            max_fragment_groups=lim.max_fragment_groups,
            max_fragment_bytes=lim.max_fragment_bytes,
        )
        self.tcp = TcpReassembler(max_streams=lim.max_tcp_streams, max_pending_bytes=lim.max_tcp_pending)
        self.streams: dict[tuple[tuple[str, int, str, int], int], _Stream] = {}
        self.open: dict[int, _Open] = {}
        self.sip_frames = 0
        self.problem_frames = 0
        self.sip_messages = 0
        self.non_sip: Counter[str] = Counter()
        self.problems: list[Problem] = []
        self._endpoints: dict[tuple[str, int, str], Endpoint] = {}
        self._chains: dict[str, str] = {}
        self._pending_out: list[SipMessage] = []
        self._last_expire = 0
        self._chains_by_key: dict[tuple[str, int, str, int], str] = {}
        # SCTP direction -> (last TSN, payloads, frames) of a fragmented user message
        self._sctp: dict[tuple[str, int, str, int], tuple[int, list[bytes], list[int]]] = {}
        self._sctp_held: set[int] = set()

    # ------------------------------------------------------------ report
    def report(self) -> SourceReport:
        """What this source gave so far (complete after :meth:`messages` ended)."""
        problems = sorted(
            self.reader.problems + self.problems,
            key=lambda p: (p.frame if p.frame is not None else 0, p.offset or 0),
        )
        return SourceReport(
            source=self.source,
            sha256=self.sha256,
            format=self.reader.format,
            frames=self.reader.frames,
            sip_frames=self.sip_frames,
            sip_messages=self.sip_messages,
            non_sip=tuple(sorted(self.non_sip.items())),
            problem_frames=self.problem_frames + self._reader_problem_frames(),
            problems=tuple(problems),
            time_meaning=self.reader.time_meaning,
        )

    def _reader_problem_frames(self) -> int:
        return len({p.frame for p in self.reader.problems if p.frame is not None})

    # ------------------------------------------------------------ buckets
    def _problem(self, frame: int | None, offset: int | None, kind: str, reason: str) -> None:
        if self.strict:
            raise CaptureError(reason, source=self.source, frame=frame, offset=offset)
        self.problems.append(Problem(self.source, frame, offset, kind, reason))

    def _settle_problem(self, frame: int, offset: int | None, kind: str, reason: str) -> None:
        self.problem_frames += 1
        self._problem(frame, offset, kind, reason)

    def _settle(self, frame: int) -> None:
        state = self.open.pop(frame, None)
        if state is None:
            return
        if state.sip:
            self.sip_frames += 1
        elif state.problem is not None:
            self._settle_problem(frame, state.offset, *state.problem)
        else:
            self.non_sip[state.reason or "TCP data without SIP"] += 1

    def _open(self, frame: int, offset: int, ts_ns: int) -> _Open:
        state = self.open.get(frame)
        if state is None:
            state = self.open[frame] = _Open(offset, ts_ns)
        return state

    # ------------------------------------------------------------ origin
    def _endpoint(self, ip: str, port: int, transport: str) -> Endpoint:
        key = (ip, port, transport)
        ep = self._endpoints.get(key)
        if ep is None:
            if len(self._endpoints) > 65536:
                self._endpoints.clear()
            ep = self._endpoints[key] = Endpoint(ip, port, transport)
        return ep

    def _chain(self, *layers: str) -> str:
        key = "/".join(layers)
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = f"{self.reader.format.split('+')[0]}/{key}"
        return chain

    def _emit(
        self,
        payload: bytes,
        frames: tuple[int, ...],
        offset: int,
        ts_ns: int,
        src: Endpoint,
        dst: Endpoint,
        chain: str,
        time_meaning: str | None = None,
    ) -> SipMessage | None:
        """Parse one SIP message; a failure is a problem of its last frame."""
        provenance = Provenance(
            self.source,
            self.sha256,
            frames[-1],
            frames,
            offset,
            time_meaning or self.reader.time_meaning,
            chain,
        )
        try:
            message = parse_with_origin(
                payload, (provenance, ts_ns, src, dst, ()), strict=self.strict, max_size=self.limits.max_message
            )
        except SipParseError as exc:
            if self.strict:
                raise exc.with_context(source=self.source, frame=frames[-1], offset=offset) from None
            self.problems.append(
                Problem(self.source, frames[-1], offset, "malformed-sip", f"malformed SIP: {exc.reason}")
            )
            return None
        self.sip_messages += 1
        return message

    # ------------------------------------------------------------ the loop
    def messages(self) -> Iterator[SipMessage]:
        """SIP messages in the order they complete in the capture."""
        net = self.net
        out = self._pending_out
        for rec in self.reader:
            result = net.decode(rec.linktype, rec.data, rec.frame, rec.ts_ns, rec.wire_len)
            if type(result) is list:
                if len(result) == 1 and result[0].transport == "udp":
                    self._datagram(result[0], rec.frame, rec.offset, rec.ts_ns, single=True)
                else:
                    self._segments(result, rec.frame, rec.offset, rec.ts_ns)
            elif isinstance(result, Skip):
                if result.problem:
                    kind = "unknown-link-type" if result.reason.startswith("unknown link type") else "malformed-packet"
                    self._settle_problem(rec.frame, rec.offset, kind, result.reason)
                else:
                    self.non_sip[result.reason] += 1
            elif isinstance(result, Pending):
                self._open(rec.frame, rec.offset, rec.ts_ns).parts += 1
            if rec.ts_ns - self._last_expire > 1_000_000_000:
                self._expire(rec.ts_ns)
            if out:
                yield from out
                out.clear()
        self._finish()
        if out:
            yield from out
            out.clear()

    def _expire(self, now_ns: int) -> None:
        self._last_expire = now_ns
        for gave_up in self.net.expire(now_ns):
            self._gave_up(gave_up)
        for event in self.tcp.expire(now_ns):
            self._stream_event(event)

    def _gave_up(self, gave_up: GaveUp) -> None:
        for frame in gave_up.frames:
            state = self.open.get(frame)
            if state is not None:
                state.problem = ("reassembly", gave_up.reason)
                self._settle(frame)

    def _finish(self) -> None:
        for gave_up in self.net.flush():
            self._gave_up(gave_up)
        for key in list(self._sctp):
            self._sctp_give_up(key, "SCTP user message incomplete at the end of the capture")
        for event in self.tcp.flush():
            self._stream_event(event)
        for stream_key in list(self.streams):
            self._end_stream(stream_key, "end of capture")
        for frame in sorted(self.open):  # anything still open was never completed
            state = self.open[frame]
            if not state.sip and state.problem is None and state.reason is None:
                state.problem = ("reassembly", "data never completed before the end of the capture")
            self._settle(frame)

    # ------------------------------------------------------------ datagrams
    def _segments(self, segments: list[Segment], frame: int, offset: int, ts_ns: int) -> None:
        """Several segments from one frame (SCTP chunks) or a TCP segment."""
        state = self._open(frame, offset, ts_ns)
        state.parts += 1  # held while the segments are handled
        for seg in segments:
            if seg.transport == "tcp":
                self._tcp_segment(seg, frame, offset, ts_ns, state)
            elif seg.transport == "sctp":
                self._sctp_chunk(seg, frame, offset, ts_ns, state)
            else:
                self._datagram(seg, frame, offset, ts_ns, single=False)
        state.parts -= 1
        if state.parts <= 0:
            self._settle(frame)

    def _datagram(self, seg: Segment, frame: int, offset: int, ts_ns: int, *, single: bool) -> None:
        """A UDP or SCTP payload: one SIP message, HEP, or something else."""
        payload = seg.payload
        transport = seg.transport
        bucket: _Bucket
        reason: str
        if starts_like_sip(payload):
            src = self._endpoint(seg.src, seg.sport, transport)
            dst = self._endpoint(seg.dst, seg.dport, transport)
            message = self._emit(payload, seg.frames, offset, ts_ns, src, dst, self._chain(seg.chain, "sip"))
            if message is not None:
                self._pending_out.append(message)
                bucket, reason = "sip", ""
            else:
                bucket, reason = "problem", "malformed SIP"
            if seg.truncated and message is not None:
                self.problems.append(
                    Problem(self.source, frame, offset, "truncated", "SIP message cut by the capture length (snaplen)")
                )
        elif looks_like_hep(payload):
            bucket, reason = self._hep_datagram(seg, frame, offset, ts_ns)
        elif payload.strip(b"\r\n\x00") == b"":
            bucket, reason = "non-sip", f"{transport.upper()} keep-alive (CRLF or empty)"
        else:
            bucket, reason = "non-sip", f"{transport.upper()} without a SIP start line"
        self._bucket(seg.frames, frame, offset, ts_ns, bucket, reason, single=single)

    def _bucket(
        self,
        frames: tuple[int, ...],
        frame: int,
        offset: int,
        ts_ns: int,
        bucket: _Bucket,
        reason: str,
        *,
        single: bool,
    ) -> None:
        # earlier fragments of this datagram were held open: settle them alike
        for earlier in frames[:-1]:
            state = self.open.get(earlier)
            if state is not None:
                state.parts -= 1
                self._mark(state, bucket, reason)
                if state.parts <= 0:
                    self._settle(earlier)
        if single and frame not in self.open:
            if bucket == "sip":
                self.sip_frames += 1
            elif bucket == "problem":
                self.problem_frames += 1
            else:
                self.non_sip[reason] += 1
        else:
            self._mark(self._open(frame, offset, ts_ns), bucket, reason)

    @staticmethod
    def _mark(state: _Open, bucket: _Bucket, reason: str) -> None:
        if bucket == "sip":
            state.sip = True
        elif bucket == "problem":
            state.problem = state.problem or ("malformed-sip", reason)
        elif state.reason is None:
            state.reason = reason

    def _hep_datagram(self, seg: Segment, frame: int, offset: int, ts_ns: int) -> tuple[_Bucket, str]:
        try:
            hep = decode_hep(seg.payload)
        except SipParseError as exc:
            self._problem(frame, offset, "malformed-packet", f"malformed HEP: {exc.reason}")
            return "problem", "malformed HEP"
        return self._hep_payload(hep, seg.frames, offset, ts_ns, seg.chain)

    def _hep_payload(
        self, hep: HepPacket, frames: tuple[int, ...], offset: int, ts_ns: int, chain: str
    ) -> tuple[_Bucket, str]:
        if not starts_like_sip(hep.payload):
            return "non-sip", f"HEP{hep.version} without SIP"
        src = self._endpoint(hep.src, hep.sport, hep.transport)
        dst = self._endpoint(hep.dst, hep.dport, hep.transport)
        when = hep.ts_ns if hep.ts_ns is not None else ts_ns
        meaning = (
            "capture agent time, UTC, from the HEP timestamp chunks"
            if hep.ts_ns is not None
            else self.reader.time_meaning
        )
        message = self._emit(
            hep.payload, frames, offset, when, src, dst, self._chain(chain, f"hep{hep.version}", "sip"), meaning
        )
        if message is None:
            return "problem", "malformed SIP in HEP"
        self._pending_out.append(message)
        return "sip", ""

    # ------------------------------------------------------------ SCTP
    def _sctp_chunk(self, seg: Segment, frame: int, offset: int, ts_ns: int, state: _Open) -> None:
        """One DATA chunk; fragments of a user message (RFC 9260 §6.9) are joined.

        ``seg.seq`` is the TSN and ``seg.flags`` the chunk flags: B (0x02)
        begins a user message, E (0x01) ends it; its fragments carry
        consecutive TSNs, so each direction holds at most one message open.
        """
        flags = seg.flags & 0x03
        if flags == 0x03:  # an unfragmented user message
            self._datagram(seg, frame, offset, ts_ns, single=False)
            return
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        pending = self._sctp.get(key)
        if flags == 0x02:  # first fragment
            if pending is not None:
                self._sctp_give_up(key, "SCTP user message left incomplete by a new one")
            if frame not in self._sctp_held:
                state.parts += 1
            self._sctp[key] = (seg.seq, [seg.payload], [frame])
            self._sctp_held.add(frame)
            return
        if pending is None or seg.seq != (pending[0] + 1) & 0xFFFFFFFF:
            self._mark(state, "problem", "SCTP fragment without the start of its message")
            state.problem = ("reassembly", "SCTP fragment without the start of its user message")
            return
        _, payloads, frames = pending
        payloads.append(seg.payload)
        if frame not in frames:
            frames.append(frame)
        if flags == 0x00:  # a middle fragment
            if frame not in self._sctp_held:
                state.parts += 1
                self._sctp_held.add(frame)
            self._sctp[key] = (seg.seq, payloads, frames)
            return
        del self._sctp[key]  # the last fragment: the message is whole
        self._sctp_held.difference_update(frames)
        if frames[-1] != frame:
            frames.append(frame)
        whole = seg._replace(payload=b"".join(payloads), frames=tuple(frames))
        self._datagram(whole, frame, offset, ts_ns, single=False)

    def _sctp_give_up(self, key: tuple[str, int, str, int], reason: str) -> None:
        _, _, frames = self._sctp.pop(key)
        self._gave_up(GaveUp(tuple(frames), reason))
        self._sctp_held.difference_update(frames)

    # ------------------------------------------------------------ TCP
    def _tcp_segment(self, seg: Segment, frame: int, offset: int, ts_ns: int, state: _Open) -> None:
        self._chains_by_key[(seg.src, seg.sport, seg.dst, seg.dport)] = seg.chain
        events, disposition = self.tcp.feed(seg, ts_ns)
        if disposition == "buffered":
            state.parts += 1  # held until its bytes arrive in a later StreamData
            state.buffered = True
        elif disposition == "retransmission":
            state.reason = state.reason or "TCP retransmission"
        elif disposition == "late":  # its bytes fell in a hole already given up
            state.problem = state.problem or (
                "reassembly",
                "TCP segment arrived after its place in the stream was given up as missing",
            )
        elif disposition is not None:
            state.reason = state.reason or "TCP without payload"
        for event in events:
            self._stream_event(event)

    def _stream(self, key: tuple[str, int, str, int], generation: int) -> _Stream:
        stream = self.streams.get((key, generation))
        if stream is None:
            src, sport, dst, dport = key
            chain = self._chains_by_key.get(key, "tcp")
            stream = self.streams[(key, generation)] = _Stream(
                chain, self._endpoint(src, sport, "tcp"), self._endpoint(dst, dport, "tcp")
            )
        return stream

    def _stream_event(self, event: StreamData | StreamGap | StreamEnd) -> None:
        if isinstance(event, StreamData):
            stream = self._stream(event.key, event.generation)
            state = self.open.get(event.frame)
            if state is None:  # a frame settled already cannot take more bytes
                state = self._open(event.frame, 0, 0)
            if state.buffered:
                state.buffered = False
            else:
                state.parts += 1
            stream.spans.append([event.offset, event.offset + len(event.data), event.frame])
            self._feed(stream, event.data, event.offset)
        elif isinstance(event, StreamGap):
            stream = self._stream(event.key, event.generation)
            self._gap(stream, event)
        else:
            self._end_stream((event.key, event.generation), event.reason)

    def _feed(self, stream: _Stream, data: bytes, offset: int) -> None:
        if stream.mode is None:
            stream.base = offset
            if looks_like_websocket_handshake(data):
                stream.mode = "ws"
                stream.ws = WebSocketDecoder(max_message=self.limits.max_message)
            elif looks_like_hep(data):
                stream.mode = "hep"
                stream.hep = HepStreamSplitter()
            else:
                stream.mode = "sip"
                stream.parser = SipStreamParser(max_buffer=self.limits.max_stream_buffer)
        if stream.parser is not None:
            stream.parser.receive_data(data)
        elif stream.ws is not None:
            stream.ws.receive_data(data)
        elif stream.hep is not None:
            stream.hep.receive_data(data)
        self._drain(stream)

    def _drain(self, stream: _Stream) -> None:
        if stream.parser is not None:
            self._drain_sip(stream, stream.parser)
        elif stream.ws is not None:
            self._drain_ws(stream, stream.ws)
        elif stream.hep is not None:
            self._drain_hep(stream, stream.hep)

    def _frames_in(self, stream: _Stream, start: int, end: int) -> tuple[int, ...]:
        """Frames that supplied stream bytes ``[start, end)``, in capture order.

        The last one completed the message: it is the message's frame, as in
        Wireshark (out-of-order segments can make it differ from the frame of
        the last byte).
        """
        return tuple(sorted({f for s, e, f in stream.spans if s < end and e > start}))

    def _message_from_stream(
        self,
        stream: _Stream,
        payload: bytes,
        start: int,
        end: int,
        layers: tuple[str, ...],
        transport: str,
        framing_defect: Defect | None = None,
    ) -> None:
        frames = self._frames_in(stream, start, end) or (stream.spans[-1][2],)
        last = self.open.get(frames[-1])
        offset = last.offset if last is not None else 0
        ts_ns = last.ts_ns if last is not None else 0
        src, dst = stream.src, stream.dst
        if transport != "tcp":
            src = self._endpoint(src.ip, src.port, transport)
            dst = self._endpoint(dst.ip, dst.port, transport)
        message = self._emit(payload, frames, offset, ts_ns, src, dst, self._chain(stream.chain, *layers))
        if message is not None and framing_defect is not None:
            message = attrs.evolve(message, framing_defects=(*message.framing_defects, framing_defect))
        for frame in frames:
            state = self.open.get(frame)
            if state is not None:
                self._mark(state, "sip" if message is not None else "problem", "malformed SIP")
        if message is not None:
            self._pending_out.append(message)

    def _account(self, stream: _Stream, upto: int, reason: str) -> None:
        """Every byte before ``upto`` is used: settle the frames wholly before it."""
        spans = stream.spans
        while spans and spans[0][1] <= upto:
            _, _, frame = spans.popleft()
            state = self.open.get(frame)
            if state is not None:
                if state.reason is None:
                    state.reason = reason
                state.parts -= 1
                if state.parts <= 0:
                    self._settle(frame)
        stream.done = max(stream.done, upto)

    def _discard(self, stream: _Stream, start: int, end: int, reason: str, *, problem: bool) -> None:
        for s, e, frame in stream.spans:
            if s < end and e > start:
                state = self.open.get(frame)
                if state is not None and not state.sip:
                    if problem:
                        state.problem = state.problem or ("reassembly", reason)
                    elif state.reason is None:
                        state.reason = reason

    def _drain_sip(self, stream: _Stream, parser: SipStreamParser) -> None:
        base = stream.base
        while True:
            try:
                raw = parser.next_frame()
            except SipParseError as exc:  # the offending bytes are consumed
                end = base + parser.consumed
                self._discard(stream, stream.done, end, f"SIP over TCP: {exc.reason}", problem=True)
                self._account(stream, end, "SIP over TCP")
                continue
            self._flush_discarded(stream, parser)
            if raw is NEED_DATA:
                break
            start, end = base + parser.last_offset, base + parser.consumed
            self._message_from_stream(stream, raw, start, end, ("sip",), "tcp", parser.last_defect)
            self._account(stream, end, "SIP keep-alive (CRLF)")
        self._account(stream, base + parser.consumed, "SIP keep-alive (CRLF)")

    def _flush_discarded(self, stream: _Stream, parser: SipStreamParser) -> None:
        while parser.discarded:
            d = parser.discarded.pop(0)
            start = stream.base + d.offset
            end = start + len(d.data)
            incomplete = d.reason.startswith("stream ended")
            self._discard(
                stream,
                start,
                end,
                "TCP stream ended inside a SIP message" if incomplete else "TCP data without a SIP start line",
                problem=incomplete,
            )

    def _drain_ws(self, stream: _Stream, ws: WebSocketDecoder) -> None:
        base = stream.base
        while True:
            before = ws.consumed
            try:
                item = ws.next_event()
            except SipParseError as exc:  # the decoder skipped the bad bytes: go on
                end = base + ws.consumed
                self._discard(stream, stream.done, max(end, stream.done + 1), f"WebSocket: {exc.reason}", problem=True)
                self._account(stream, end, "WebSocket")
                if ws.consumed == before and not ws.buffered:
                    break
                continue
            if item is NEED_DATA:
                break
            start, end = base + item.start, base + item.end
            if item.opcode == -1:
                self._account(stream, end, "WebSocket handshake")
            elif item.opcode in (1, 2) and starts_like_sip(item.payload):
                self._message_from_stream(stream, item.payload, start, end, ("websocket", "sip"), "ws")
                self._account(stream, end, "WebSocket")
            else:
                self._account(stream, end, "WebSocket control or non-SIP frame")

    def _drain_hep(self, stream: _Stream, hep: HepStreamSplitter) -> None:
        base = stream.base
        while True:
            before = hep.consumed
            try:
                item = hep.next_packet()
            except SipParseError as exc:  # the splitter skipped to the next "HEP3": go on
                self._discard(stream, stream.done, stream.done + 1, f"HEP over TCP: {exc.reason}", problem=True)
                if hep.consumed == before:
                    break
                continue
            if item is NEED_DATA:
                break
            packet, start, end = item
            frames = self._frames_in(stream, base + start, base + end)
            try:
                decoded = decode_hep(packet)
            except SipParseError as exc:
                self._discard(stream, base + start, base + end, f"malformed HEP: {exc.reason}", problem=True)
                self._account(stream, base + end, "HEP")
                continue
            last = self.open.get(frames[-1]) if frames else None
            bucket, reason = self._hep_payload(
                decoded, frames, last.offset if last else 0, last.ts_ns if last else 0, stream.chain
            )
            for frame in frames:
                state = self.open.get(frame)
                if state is not None:
                    self._mark(state, bucket, reason)
            self._account(stream, base + end, reason or "HEP")

    def _gap(self, stream: _Stream, gap: StreamGap) -> None:
        # bytes buffered before the hole can never complete their message
        self._discard(
            stream,
            stream.done,
            gap.offset,
            f"TCP data missing ({gap.length} bytes at stream offset {gap.offset}: {gap.reason})",
            problem=True,
        )
        self._account(stream, gap.offset, "TCP data before a gap")
        stream.mode = None
        stream.parser = None
        stream.ws = None
        stream.hep = None
        stream.done = gap.offset + gap.length

    def _end_stream(self, key: tuple[tuple[str, int, str, int], int], reason: str) -> None:
        stream = self.streams.pop(key, None)
        if stream is None:
            return
        if stream.parser is not None:
            stream.parser.receive_eof()
            self._drain_sip(stream, stream.parser)
        pending_end = max((e for _, e, _ in stream.spans), default=stream.done)
        if pending_end > stream.done:
            self._discard(
                stream,
                stream.done,
                pending_end,
                f"TCP stream ended ({reason}) inside a SIP message",
                problem=True,
            )
        self._account(stream, pending_end, "TCP data without SIP")
