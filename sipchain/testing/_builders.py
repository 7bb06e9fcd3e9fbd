"""Synthetic SIP calls across trunk failover, with exact ground truth.

A :class:`CallBuilder` writes the messages of ONE logical call as an edge
element (a record-routing proxy or a B2BUA) sees them: the inbound leg from
the caller and the outbound attempts towards the trunks, in order, each
attempt ending as scripted. Every message is RFC 3261-correct (Via branches
with the magic cookie, From/To tags, CSeq, Call-ID, Contact, Record-Route,
Max-Forwards, Content-Length, SDP offer/answer), optionally carrying RFC 7989
``Session-ID``, an ``X-CID`` correlation header and ``P-Charging-Vector``.

Alongside the messages the builder records what a correlator should find:
which logical call and which leg each message belongs to, each leg's role,
trunk, attempt and final status, and the failovers between attempts
(:class:`CallTruth`, JSON-serialisable through :meth:`CallTruth.to_json`).

Everything is deterministic: all randomness comes from the ``random.Random``
passed in, so the same seed gives the same bytes, times and truth.

The pieces compose: :class:`Node` names an address, :class:`Timing` holds the
delays, :meth:`CallBuilder.packets` gives unparsed :class:`Packet` values that
:func:`materialise` turns into :class:`~sipchain.model.SipMessage` values with
their provenance, for one call or for many calls merged into shared synthetic
sources (see ``sipchain.testing._crowd``).

Leg identifiers are ``"c<call>.in"`` for the inbound leg and
``"c<call>.out<attempt>"`` for outbound attempt ``attempt`` (1-based).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from sipchain.model import Endpoint, Provenance, SipMessage
from sipchain.wire._message import parse_with_origin

__all__ = [
    "ANSWER",
    "CANCEL_AFTER_180",
    "DEFAULT_T0_NS",
    "DEFAULT_TIMING",
    "DEFAULT_TRUNKS",
    "EDGE",
    "EDGE_MODES",
    "FAILURE_STATUSES",
    "LINK_MODES",
    "MAGIC_COOKIE",
    "NULL_UUID",
    "PLATFORM",
    "T1_NS",
    "TIMEOUT",
    "TIMER_B_NS",
    "BuiltCall",
    "CallBuilder",
    "CallTruth",
    "FailoverTruth",
    "LegTruth",
    "MessageKey",
    "MessageTruth",
    "Node",
    "Packet",
    "Timing",
    "failover_cause",
    "materialise",
    "timer_a_offsets",
]

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

#: RFC 3261 T1 (RTT estimate): timer A starts at T1 and doubles.
T1_NS: Final = 500_000_000
#: RFC 3261 timer B (INVITE transaction timeout): 64 * T1.
TIMER_B_NS: Final = 64 * T1_NS
#: RFC 7989 null UUID: "not yet known".
NULL_UUID: Final = "0" * 32
#: RFC 3261 §8.1.1.7 branch prefix.
MAGIC_COOKIE: Final = "z9hG4bK"
#: 2024-05-01T09:00:00Z, the default start of synthetic time.
DEFAULT_T0_NS: Final = 1_714_554_000 * 1_000_000_000

#: The attempt answers (200 OK, ACK, then the call is cleared by BYE).
ANSWER: Final = "answer"
#: The INVITE is retransmitted on timer A and never answered; the edge's own
#: timer gives up after ``Timing.invite_timeout_ns`` and moves on.
TIMEOUT: Final = "timeout"
#: The trunk rings (180) and never answers; the edge CANCELs after
#: ``Timing.ring_timeout_ns``; the trunk sends 200 (CANCEL) and 487, the
#: edge ACKs the 487.
CANCEL_AFTER_180: Final = "cancel-after-180"
#: Final failures the crowd uses; any status 400-699 is accepted as an outcome.
FAILURE_STATUSES: Final = ("503", "408", "480", "500", "502", "504", "486", "603")

#: ``"proxy"``: record-routing, transaction-stateful proxy (outbound legs keep
#: Call-ID and From-tag). ``"b2bua"``: each outbound attempt is a new dialog.
EDGE_MODES: Final = ("proxy", "b2bua")
#: Identifiers tying the outbound legs to the inbound leg besides Call-ID:
#: ``"none"``, ``"x-cid"`` (X-CID header carrying the inbound Call-ID),
#: ``"session-id"`` (RFC 7989, passed through the edge) or ``"both"``.
LINK_MODES: Final = ("none", "x-cid", "session-id", "both")

_REASONS: Final[dict[int, str]] = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
}


def _reason(status: int) -> str:
    return _REASONS.get(status, "Failure" if status >= 300 else "OK")


def failover_cause(outcome: str) -> str:
    """The failover cause a failed attempt's outcome gives (``Failover.cause``).

    A status outcome gives its status (``"503"``), ``"timeout"`` stays
    ``"timeout"``, ``"cancel-after-180"`` gives ``"cancelled"``.
    """
    if outcome == CANCEL_AFTER_180:
        return "cancelled"
    return outcome


def timer_a_offsets(limit_ns: int, *, t1_ns: int = T1_NS) -> tuple[int, ...]:
    """Offsets from the first INVITE of its retransmissions over UDP.

    RFC 3261 §17.1.1.2: timer A fires after T1, 2·T1, 4·T1 … (no T2 cap for
    INVITE), so the copies go out at T1, 3·T1, 7·T1 …; only those strictly
    before ``limit_ns`` (and before timer B) are returned.
    """
    out: list[int] = []
    offset, interval = t1_ns, t1_ns
    while offset < min(limit_ns, 64 * t1_ns):
        out.append(offset)
        interval *= 2
        offset += interval
    return tuple(out)


# ---------------------------------------------------------------------------
# Addresses and timing
# ---------------------------------------------------------------------------


@attrs.frozen
class Node:
    """A named SIP element: the caller platform, the edge, or a trunk.

    ``transport`` (``"udp"`` or ``"tcp"``) is the transport of the hop
    between this node and the edge (for the edge itself it is unused).
    """

    name: str
    ip: str
    port: int = 5060
    transport: str = "udp"

    def __attrs_post_init__(self) -> None:
        if self.transport not in ("udp", "tcp"):
            raise ValueError(f"transport must be 'udp' or 'tcp', not {self.transport!r}")

    @property
    def host(self) -> str:
        """The address as a URI host (IPv6 in brackets)."""
        return f"[{self.ip}]" if ":" in self.ip else self.ip

    @property
    def hostport(self) -> str:
        """``host:port`` for Via sent-by and URIs."""
        return f"{self.host}:{self.port}"


#: The contact-centre platform that places the calls.
PLATFORM: Final = Node("platform", "10.20.0.10")
#: The edge between the platform and the carriers.
EDGE: Final = Node("edge", "10.20.0.1")
#: Three carrier trunks in hunting order; carrier-c is reached over TCP.
DEFAULT_TRUNKS: Final = (
    Node("carrier-a", "192.0.2.10"),
    Node("carrier-b", "198.51.100.20"),
    Node("carrier-c", "203.0.113.30", transport="tcp"),
)

Range = tuple[int, int]


@attrs.frozen
class Timing:
    """Delays (nanoseconds) the builder draws from, uniformly within each range.

    Attributes:
        hop_ns: processing plus transit before a forwarded or answering message.
        trying_ns: INVITE to the trunk's 100 Trying.
        ring_ns: INVITE to the trunk's 180/183.
        answer_ns: 180/183 to 200 OK.
        fail_ns: INVITE to a final failure response from the trunk.
        talk_ns: 200 OK to BYE.
        failover_latency_ns: failure (or the edge's local timeout) to the next
            attempt's INVITE.
        invite_timeout_ns: how long the edge waits for any response before it
            abandons an attempt (Kamailio ``fr_timer``); the timer-A
            retransmissions stop there.
        ring_timeout_ns: 180 to the edge's CANCEL for ``cancel-after-180``
            (Kamailio ``fr_inv_timer``).
    """

    hop_ns: Range = (150_000, 2_500_000)
    trying_ns: Range = (1_000_000, 30_000_000)
    ring_ns: Range = (80_000_000, 2_500_000_000)
    answer_ns: Range = (1_000_000_000, 12_000_000_000)
    fail_ns: Range = (20_000_000, 2_000_000_000)
    talk_ns: Range = (3_000_000_000, 180_000_000_000)
    failover_latency_ns: Range = (20_000_000, 400_000_000)
    invite_timeout_ns: int = 4_000_000_000
    ring_timeout_ns: Range = (3_000_000_000, 8_000_000_000)


#: The default delays.
DEFAULT_TIMING: Final = Timing()


# ---------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------


@attrs.frozen
class MessageTruth:
    """What one message is: its call, its leg and that leg's facts.

    ``final_status`` is the leg's final status (``None`` for a timed-out
    attempt). ``retransmission`` marks a timer-A copy of an INVITE.
    """

    call: int
    leg: str
    role: str
    trunk: str | None
    attempt: int | None
    final_status: int | None
    retransmission: bool = False


@attrs.frozen
class LegTruth:
    """One leg as built.

    Attributes:
        leg: ``"c<call>.in"`` or ``"c<call>.out<attempt>"``.
        call: the logical call's index.
        role: ``"inbound"`` or ``"outbound"``.
        hop: ``"<uac node>><uas node>"`` (e.g. ``"edge>carrier-b"``).
        trunk: the trunk's name (``None`` for the inbound leg).
        attempt: 1-based outbound attempt (``None`` for the inbound leg).
        outcome: the scripted outcome (``"answer"``, ``"503"``, ``"timeout"``,
            ``"cancel-after-180"``); for the inbound leg ``"answer"`` or the
            status the caller got.
        end: as ``Leg.end``: ``"answered"``, ``"failed"``, ``"cancelled"``,
            ``"timeout"``.
        final_status: final response to the INVITE (``None`` for a timeout).
        call_id, from_tag, branch: the INVITE's identifiers on this hop.
        to_tag: the tag of the final (or, for a timeout, no) response.
        uac, uas: ``str(Endpoint)`` of the INVITE's sender and receiver.
        invite_at_ns: the first INVITE; ``ended_at_ns``: the leg's last message.
        messages: how many messages the leg has (retransmissions included).
    """

    leg: str
    call: int
    role: str
    hop: str
    trunk: str | None
    attempt: int | None
    outcome: str
    end: str
    final_status: int | None
    call_id: str
    from_tag: str
    to_tag: str | None
    branch: str
    uac: str
    uas: str
    invite_at_ns: int
    ended_at_ns: int
    messages: int


@attrs.frozen
class FailoverTruth:
    """A move from outbound attempt ``from_attempt`` to ``to_attempt``.

    Times follow :class:`sipchain.model.Failover`: ``failed_at_ns`` is the
    failure response, the CANCEL, or for a timeout the failed attempt's first
    INVITE (the edge's local timer is not on the wire);
    ``latency_ns = next_invite_at_ns - failed_at_ns``.
    """

    from_leg: str
    to_leg: str
    from_attempt: int
    to_attempt: int
    cause: str
    failed_at_ns: int
    next_invite_at_ns: int
    latency_ns: int
    original_trunk: str
    next_trunk: str


@attrs.frozen
class CallTruth:
    """One logical call as built: its legs, its failovers, how it ended.

    Attributes:
        call: index of the call (unique in a crowd).
        mode: ``"proxy"`` or ``"b2bua"``.
        link: identifiers besides Call-ID (see ``LINK_MODES``).
        caller_number, callee_number: the user parts of From and To.
        call_id, from_tag: the inbound leg's dialog identifiers.
        started_ns, ended_ns: first and last message of the call.
        outcome: ``"answered"`` or ``"failed"``; ``final_status`` what the
            caller got; ``answered_by`` the answering leg.
        legs: the inbound leg, then the outbound attempts in order.
        failovers: one per consecutive pair of attempts.
        reinvite: whether a mid-call re-INVITE was sent.
        reuses_call: the earlier call whose Call-ID this one reuses, if any;
            ``reuse`` says how: ``"new-from-tag"`` or ``"same-from-tag"``.
    """

    call: int
    mode: str
    link: str
    caller_number: str
    callee_number: str
    call_id: str
    from_tag: str
    started_ns: int
    ended_ns: int
    outcome: str
    final_status: int
    answered_by: str | None
    legs: tuple[LegTruth, ...]
    failovers: tuple[FailoverTruth, ...]
    reinvite: bool = False
    reuses_call: int | None = None
    reuse: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain dicts, lists, strings and numbers (``json.dumps`` ready)."""
        return attrs.asdict(self)

    def leg(self, leg_id: str) -> LegTruth:
        """The leg with that id."""
        for leg in self.legs:
            if leg.leg == leg_id:
                return leg
        raise KeyError(leg_id)


@attrs.frozen
class Packet:
    """One message before parsing: bytes, time, addresses and truth.

    ``seq`` is the packet's position in its call; packets are ordered by
    ``(timestamp_ns, truth.call, seq)``, so equal timestamps of different
    calls still sort the same way every time.
    """

    raw: bytes
    timestamp_ns: int
    src: Endpoint
    dst: Endpoint
    truth: MessageTruth
    seq: int


MessageKey = tuple[str, int]


@attrs.frozen
class BuiltCall:
    """One built call: messages (time-ordered), their truth, the call's truth.

    ``message_truth[i]`` is the truth of ``messages[i]``; ``packets`` are the
    same messages unparsed (for merging several calls with :func:`materialise`).
    """

    messages: tuple[SipMessage, ...]
    message_truth: tuple[MessageTruth, ...]
    truth: CallTruth
    packets: tuple[Packet, ...] = attrs.field(repr=False)

    def truth_of(self, message: SipMessage) -> MessageTruth:
        """The truth of ``message`` (found by its source and frame)."""
        key = _key_of(message)
        for m, t in zip(self.messages, self.message_truth, strict=True):
            if _key_of(m) == key:
                return t
        raise KeyError(key)

    def leg_messages(self, leg_id: str) -> tuple[SipMessage, ...]:
        """The messages of one leg, in time order."""
        return tuple(
            m for m, t in zip(self.messages, self.message_truth, strict=True) if t.leg == leg_id
        )

    def to_json(self) -> dict[str, Any]:
        """The call's truth plus, per message, ``[source, frame, leg]``."""
        out = self.truth.to_json()
        out["messages"] = [
            [*_key_of(m), t.leg] for m, t in zip(self.messages, self.message_truth, strict=True)
        ]
        return out


def _key_of(message: SipMessage) -> MessageKey:
    p = message.provenance
    if p is None:
        raise ValueError("message has no provenance")
    return (p.source, p.frame)


# ---------------------------------------------------------------------------
# Turning packets into messages
# ---------------------------------------------------------------------------


def _packet_order(p: Packet) -> tuple[int, int, int]:
    return (p.timestamp_ns, p.truth.call, p.seq)


def materialise(
    packets: Iterable[Packet], sources: str | Mapping[str, str] = "call"
) -> tuple[tuple[SipMessage, ...], tuple[MessageTruth, ...]]:
    """Parse packets into messages with synthetic provenance.

    ``sources`` is one source name for everything, or a mapping from leg role
    (``"inbound"``/``"outbound"``) to a source name; names get the
    ``"memory:"`` prefix. Each source numbers its frames from 1 in time order
    (ties by call, then by the call's own order). The result lists the
    sources one after the other, in the order their names first appear in
    ``sources`` — so with two sources it is NOT time-ordered as a whole.
    Returns the messages and, index for index, their truth.
    """
    if isinstance(sources, str):
        names = [sources]
        role_to_name: Mapping[str, str] = {"inbound": sources, "outbound": sources}
    else:
        role_to_name = sources
        names = list(dict.fromkeys(sources.values()))
    buckets: dict[str, list[Packet]] = {name: [] for name in names}
    for p in packets:
        try:
            buckets[role_to_name[p.truth.role]].append(p)
        except KeyError:
            raise ValueError(f"no source for leg role {p.truth.role!r}") from None
    messages: list[SipMessage] = []
    truth: list[MessageTruth] = []
    zeros = "0" * 64
    for name in names:
        source = f"memory:{name}"
        bucket = buckets[name]
        bucket.sort(key=_packet_order)
        for frame, p in enumerate(bucket, 1):
            provenance = Provenance(
                source=source,
                source_sha256=zeros,
                frame=frame,
                frames=(frame,),
                offset=None,
                time_meaning="synthetic",
                parser_chain="synthetic/sip",
            )
            messages.append(parse_with_origin(p.raw, (provenance, p.timestamp_ns, p.src, p.dst, ())))
            truth.append(p.truth)
    return tuple(messages), tuple(truth)


# ---------------------------------------------------------------------------
# Writing messages
# ---------------------------------------------------------------------------


def _wire(start: str, headers: list[str], body: bytes) -> bytes:
    if body:
        headers.append("Content-Type: application/sdp")
    headers.append(f"Content-Length: {len(body)}")
    return (start + "\r\n" + "\r\n".join(headers) + "\r\n\r\n").encode("utf-8") + body


def _sdp(node: Node, session: int, version: int, port: int) -> bytes:
    addr = "IP6" if ":" in node.ip else "IP4"
    return (
        f"v=0\r\no={node.name} {session} {version} IN {addr} {node.ip}\r\ns=-\r\n"
        f"c=IN {addr} {node.ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    ).encode("ascii")


def _uri(user: str | None, node: Node, transport: str) -> str:
    at = f"{user}@" if user else ""
    suffix = ";transport=tcp" if transport == "tcp" else ""
    return f"sip:{at}{node.hostport}{suffix}"


def _via(node: Node, transport: str, branch: str) -> str:
    return f"Via: SIP/2.0/{transport.upper()} {node.hostport};branch={branch}"


def _addr(uri: str, tag: str | None) -> str:
    return f"<{uri}>;tag={tag}" if tag else f"<{uri}>"


_ALLOW: Final = "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE"


def _request(
    method: str,
    ruri: str,
    vias: Sequence[str],
    max_forwards: int,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    *,
    route: str | None = None,
    record_route: str | None = None,
    contact: str | None = None,
    extra: Sequence[str] = (),
    body: bytes = b"",
) -> bytes:
    h = list(vias)
    if route:
        h.append(f"Route: {route}")
    if record_route:
        h.append(f"Record-Route: {record_route}")
    h.append(f"Max-Forwards: {max_forwards}")
    h.append(f"From: {from_}")
    h.append(f"To: {to}")
    h.append(f"Call-ID: {call_id}")
    h.append(f"CSeq: {cseq} {method}")
    if contact:
        h.append(f"Contact: {contact}")
    h.extend(extra)
    return _wire(f"{method} {ruri} SIP/2.0", h, body)


def _response(
    status: int,
    vias: Sequence[str],
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    method: str,
    *,
    record_route: str | None = None,
    contact: str | None = None,
    extra: Sequence[str] = (),
    body: bytes = b"",
) -> bytes:
    h = list(vias)
    if record_route:
        h.append(f"Record-Route: {record_route}")
    h.append(f"From: {from_}")
    h.append(f"To: {to}")
    h.append(f"Call-ID: {call_id}")
    h.append(f"CSeq: {cseq} {method}")
    if contact:
        h.append(f"Contact: {contact}")
    h.extend(extra)
    return _wire(f"SIP/2.0 {status} {_reason(status)}", h, body)


# ---------------------------------------------------------------------------
# The builder
# ---------------------------------------------------------------------------


def _check_outcome(outcome: str) -> None:
    if outcome in (ANSWER, TIMEOUT, CANCEL_AFTER_180):
        return
    if not (outcome.isdigit() and len(outcome) == 3 and 400 <= int(outcome) <= 699):
        raise ValueError(
            f"outcome {outcome!r} is not 'answer', 'timeout', 'cancel-after-180' "
            "or a failure status 400-699"
        )


class CallBuilder:
    """Builds the messages and the truth of one logical call.

    Args:
        rng: the only source of randomness (ids, numbers, delays).
        t0_ns: time of the caller's INVITE.
        caller, edge, trunks: the elements; attempt ``i`` (0-based) goes to
            ``trunks[i % len(trunks)]``.
        index: the call's index in the truth and in leg ids.
        mode: ``"proxy"`` or ``"b2bua"`` (see ``EDGE_MODES``).
        attempts: the outcome of each outbound attempt, in order:
            ``"answer"`` (only last), a failure status such as ``"503"``,
            ``"timeout"`` or ``"cancel-after-180"``.
        link: identifiers besides Call-ID (``LINK_MODES``); default ``"both"``
            for a B2BUA and ``"none"`` for a proxy. With ``"none"`` B2BUA legs
            are linkable by no identifier at all.
        charging_vector: the caller sends ``P-Charging-Vector``; a proxy passes
            it on, a B2BUA writes a fresh icid-value per outbound leg (so it
            never links across the B2BUA).
        early_media: the trunk rings with 183 and SDP instead of 180.
        reinvite: the caller sends a re-INVITE half-way through the call.
        bye_from: ``"caller"`` or ``"callee"`` (the trunk) clears the call.
        timing: the delays.
        call_id, from_tag, caller_number, callee_number: force the inbound
            identifiers (for Call-ID reuse); random when ``None``.
        reuses_call, reuse: recorded in the truth (see :meth:`reusing`).

    Build with :meth:`build` (messages with provenance) or :meth:`packets`
    (unparsed, for merging with other calls); the call is generated once, on
    first use, and both return the same call.
    """

    def __init__(
        self,
        rng: random.Random,
        t0_ns: int = DEFAULT_T0_NS,
        caller: Node = PLATFORM,
        edge: Node = EDGE,
        trunks: Sequence[Node] = DEFAULT_TRUNKS,
        *,
        index: int = 0,
        mode: str = "proxy",
        attempts: Sequence[str] = (ANSWER,),
        link: str | None = None,
        charging_vector: bool = False,
        early_media: bool = False,
        reinvite: bool = False,
        bye_from: str = "caller",
        timing: Timing = DEFAULT_TIMING,
        call_id: str | None = None,
        from_tag: str | None = None,
        caller_number: str | None = None,
        callee_number: str | None = None,
        reuses_call: int | None = None,
        reuse: str | None = None,
    ) -> None:
        if mode not in EDGE_MODES:
            raise ValueError(f"mode must be one of {EDGE_MODES}, not {mode!r}")
        link = link if link is not None else ("both" if mode == "b2bua" else "none")
        if link not in LINK_MODES:
            raise ValueError(f"link must be one of {LINK_MODES}, not {link!r}")
        if not attempts:
            raise ValueError("a call needs at least one outbound attempt")
        for outcome in attempts:
            _check_outcome(outcome)
        if ANSWER in attempts[:-1]:
            raise ValueError("only the last attempt can answer")
        if not trunks:
            raise ValueError("no trunks")
        if bye_from not in ("caller", "callee"):
            raise ValueError(f"bye_from must be 'caller' or 'callee', not {bye_from!r}")
        self.rng = rng
        self.t0_ns = t0_ns
        self.caller = caller
        self.edge = edge
        self.trunks = tuple(trunks)
        self.index = index
        self.mode = mode
        self.attempts = tuple(attempts)
        self.link = link
        self.charging_vector = charging_vector
        self.early_media = early_media
        self.reinvite = reinvite
        self.bye_from = bye_from
        self.timing = timing
        self.call_id = call_id
        self.from_tag = from_tag
        self.caller_number = caller_number
        self.callee_number = callee_number
        self.reuses_call = reuses_call
        self.reuse = reuse
        self._result: tuple[tuple[Packet, ...], CallTruth] | None = None

    @classmethod
    def reusing(
        cls,
        earlier: CallTruth,
        rng: random.Random,
        t0_ns: int,
        *,
        same_from_tag: bool = False,
        **kwargs: Any,
    ) -> CallBuilder:
        """A later, unrelated call that reuses ``earlier``'s Call-ID.

        With ``same_from_tag`` it also reuses the From-tag (and the caller
        number), as a UA whose Call-ID generator restarted would; otherwise it
        gets a fresh From-tag. Only time (and branches) then tells the two
        calls apart: start it well after ``earlier.ended_ns`` (minutes, for
        the same-From-tag variant). ``kwargs`` go to the constructor.
        """
        if t0_ns <= earlier.ended_ns:
            raise ValueError("a reusing call must start after the earlier call ended")
        kwargs.setdefault("caller_number", earlier.caller_number if same_from_tag else None)
        return cls(
            rng,
            t0_ns,
            call_id=earlier.call_id,
            from_tag=earlier.from_tag if same_from_tag else None,
            reuses_call=earlier.call,
            reuse="same-from-tag" if same_from_tag else "new-from-tag",
            **kwargs,
        )

    def packets(self) -> tuple[tuple[Packet, ...], CallTruth]:
        """The call's packets (time-ordered) and its truth."""
        if self._result is None:
            self._result = _Run(self).run()
        return self._result

    def build(self, name: str | None = None) -> BuiltCall:
        """The call as messages from one source ``memory:<name>``.

        ``name`` defaults to ``call-<index>``; frames are numbered from 1 in
        time order.
        """
        packets, truth = self.packets()
        messages, message_truth = materialise(packets, name or f"call-{self.index}")
        return BuiltCall(messages, message_truth, truth, packets)


# ---------------------------------------------------------------------------
# One run of the builder
# ---------------------------------------------------------------------------


@attrs.define
class _Leg:
    """Mutable state of a leg while its messages are written."""

    leg: str
    role: str
    trunk: str | None
    attempt: int | None
    outcome: str
    uac: Node
    uas: Node
    transport: str
    call_id: str
    from_tag: str
    branch: str
    invite_at_ns: int
    end: str = "open"
    final_status: int | None = None
    to_tag: str | None = None
    ended_at_ns: int = 0
    messages: int = 0
    uac_ep: Endpoint | None = None
    uas_ep: Endpoint | None = None


@attrs.define
class _Out:
    """One outbound attempt's dialog: the edge's INVITE and the trunk's side."""

    leg: _Leg
    trunk: Node
    ruri: str
    vias: list[str]  # of the INVITE; a proxy's carry the caller's Via too
    top_via: str  # the edge's own Via of the INVITE
    from_: str
    to_uri: str
    call_id: str
    cseq: int
    tail: list[str]  # X-CID on the edge's own requests of a B2BUA
    offer: bytes
    offer_session: int
    t_uuid: str
    t_tag: str
    t_contact: str

    @property
    def to(self) -> str:
        """To as in the INVITE (no tag)."""
        return _addr(self.to_uri, None)

    @property
    def t_to(self) -> str:
        """To with the trunk's tag."""
        return _addr(self.to_uri, self.t_tag)

    @property
    def t_ruri(self) -> str:
        """The trunk's Contact URI: the remote target of the dialog."""
        return self.t_contact[1:-1]


@attrs.define
class _Failure:
    """How an attempt failed, for the failover truth and the caller's answer."""

    cause: str
    failed_at_ns: int  # on the wire, as ``Failover.failed_at``
    done_at_ns: int  # the edge is done with the attempt
    next_at_ns: int  # the next attempt's INVITE
    status: int  # what the edge tells the caller if this was the last attempt
    t_tag: str | None  # the trunk's tag when the status came from the trunk
    t_uuid: str


_Event = tuple[int, int, bytes, Endpoint, Endpoint, _Leg, bool]


class _Run:
    """Writes the messages of one call; the per-call state lives here."""

    def __init__(self, b: CallBuilder) -> None:
        self.b = b
        self.rng = b.rng
        self.events: list[_Event] = []
        self.legs: list[_Leg] = []
        self.endpoints: dict[tuple[str, int, str], Endpoint] = {}
        self.proxy = b.mode == "proxy"
        self.use_sid = b.link in ("session-id", "both")
        self.use_xcid = b.link in ("x-cid", "both")

    # ------------------------------------------------------------ helpers
    def d(self) -> int:
        """One hop's processing plus transit delay."""
        return self.pick(self.b.timing.hop_ns)

    def pick(self, r: Range) -> int:
        """A whole number of nanoseconds drawn uniformly from ``r`` (ends included)."""
        lo, hi = r
        return lo + int(self.rng.random() * (hi - lo + 1))

    def hex(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def branch(self) -> str:
        return MAGIC_COOKIE + self.hex(64)

    def tag(self) -> str:
        return self.hex(48)

    def session(self) -> int:
        return self.rng.randrange(10**9, 10**10)

    def media_port(self) -> int:
        return 2 * self.rng.randrange(5000, 30000)

    def sid(self, local: str, remote: str) -> list[str]:
        """The Session-ID header line, when the call uses RFC 7989."""
        return [f"Session-ID: {local};remote={remote}"] if self.use_sid else []

    def endpoint(self, node: Node, transport: str) -> Endpoint:
        key = (node.ip, node.port, transport)
        ep = self.endpoints.get(key)
        if ep is None:
            ep = self.endpoints[key] = Endpoint(node.ip, node.port, transport)
        return ep

    def emit(
        self, t: int, raw: bytes, src: Node, dst: Node, leg: _Leg, *, retransmission: bool = False
    ) -> None:
        """Record one message of ``leg``, sent from ``src`` to ``dst`` at ``t``."""
        if leg.uac_ep is None or leg.uas_ep is None:
            leg.uac_ep = self.endpoint(leg.uac, leg.transport)
            leg.uas_ep = self.endpoint(leg.uas, leg.transport)
        if src is leg.uac and dst is leg.uas:
            ends = (leg.uac_ep, leg.uas_ep)
        elif src is leg.uas and dst is leg.uac:
            ends = (leg.uas_ep, leg.uac_ep)
        else:
            raise ValueError(f"{src.name}>{dst.name} is not on the hop of leg {leg.leg}")
        self.events.append((t, len(self.events), raw, *ends, leg, retransmission))
        leg.messages += 1
        leg.ended_at_ns = max(leg.ended_at_ns, t)

    # ------------------------------------------------------------ the script
    def run(self) -> tuple[tuple[Packet, ...], CallTruth]:
        """Inbound INVITE, the attempts in order, then the answer or the failure."""
        b = self.b
        t = self.inbound_invite() + self.d()
        failovers: list[FailoverTruth] = []
        last: _Failure | None = None
        answered: _Out | None = None
        answered_at = 0
        for i, outcome in enumerate(b.attempts):
            out = self.outbound_invite(i, outcome, t)
            if last is not None:
                before = self.legs[-2]
                failovers.append(
                    FailoverTruth(
                        from_leg=before.leg,
                        to_leg=out.leg.leg,
                        from_attempt=i,
                        to_attempt=i + 1,
                        cause=last.cause,
                        failed_at_ns=last.failed_at_ns,
                        next_invite_at_ns=t,
                        latency_ns=t - last.failed_at_ns,
                        original_trunk=before.trunk or "",
                        next_trunk=out.trunk.name,
                    )
                )
            if outcome == ANSWER:
                answered, answered_at = out, self.answer(out)
                break
            last = self.fail(out, outcome)
            t = last.next_at_ns
        if answered is not None:
            self.connect(answered, answered_at)
        else:
            assert last is not None
            self.reject_inbound(last)
        return self.finish(failovers, answered)

    # ------------------------------------------------------------ inbound leg
    def inbound_invite(self) -> int:
        """The caller's INVITE and the edge's 100 Trying; returns the 100's time."""
        b, rng = self.b, self.rng
        c, e = b.caller, b.edge
        t = b.t0_ns
        self.a_num = b.caller_number or f"+1555{rng.randrange(10**6, 10**7)}"
        self.b_num = b.callee_number or f"+4420{rng.randrange(10**7, 10**8)}"
        self.call_id = b.call_id or f"{self.hex(96)}@{c.host}"
        self.ftag = b.from_tag or self.tag()
        self.c_uuid = self.hex(128) if self.use_sid else NULL_UUID
        self.tin = c.transport
        self.in_from = _addr(f"sip:{self.a_num}@{c.host}", self.ftag)
        self.in_to_uri = f"sip:{self.b_num}@{e.host}"
        self.in_ruri = _uri(self.b_num, e, self.tin)
        self.c_contact = f"<{_uri(self.a_num, c, self.tin)}>"
        self.in_cseq = rng.randint(1, 999)
        self.c_session = self.session()
        self.c_media = self.media_port()
        self.c_offer = _sdp(c, self.c_session, 1, self.c_media)
        self.rr = f"<sip:{e.hostport};lr>" if self.proxy else None
        self.route = f"<sip:{e.hostport};lr>"
        self.pcv = (
            [
                f"P-Charging-Vector: icid-value={self.hex(64)};"
                f"icid-generated-at={c.host};orig-ioi={c.name}"
            ]
            if b.charging_vector
            else []
        )
        # the B2BUA's side of the inbound dialog
        self.e_in_tag = self.tag()
        self.e_in_contact = f"<{_uri(self.b_num, e, self.tin)}>"
        self.e_in_session = self.session()
        self.e_media = self.media_port()

        branch = self.branch()
        self.v_c = _via(c, self.tin, branch)
        self.inb = _Leg(
            f"c{b.index}.in",
            "inbound",
            None,
            None,
            ANSWER,
            c,
            e,
            self.tin,
            self.call_id,
            self.ftag,
            branch,
            t,
        )
        self.legs.append(self.inb)
        self.emit(
            t,
            _request(
                "INVITE",
                self.in_ruri,
                [self.v_c],
                70,
                self.in_from,
                _addr(self.in_to_uri, None),
                self.call_id,
                self.in_cseq,
                contact=self.c_contact,
                extra=[
                    *self.sid(self.c_uuid, NULL_UUID),
                    *self.pcv,
                    _ALLOW,
                    f"User-Agent: {c.name}",
                ],
                body=self.c_offer,
            ),
            c,
            e,
            self.inb,
        )
        t += self.d()
        self.emit(
            t,
            _response(
                100,
                [self.v_c],
                self.in_from,
                _addr(self.in_to_uri, None),
                self.call_id,
                self.in_cseq,
                "INVITE",
                extra=self.sid(NULL_UUID, self.c_uuid),
            ),
            e,
            c,
            self.inb,
        )
        return t

    # ------------------------------------------------------------ outbound legs
    def outbound_invite(self, i: int, outcome: str, t: int) -> _Out:
        """The edge's INVITE of attempt ``i + 1`` to its trunk, at ``t``."""
        b, rng = self.b, self.rng
        e = b.edge
        tr = b.trunks[i % len(b.trunks)]
        tt = tr.transport
        branch = self.branch()
        v_e = _via(e, tt, branch)
        t_uuid = self.hex(128) if self.use_sid else NULL_UUID
        if self.proxy:
            call_id, ftag, from_ = self.call_id, self.ftag, self.in_from
            to_uri, cseq, vias, mf = self.in_to_uri, self.in_cseq, [v_e, self.v_c], 69
            contact, offer, offer_session = self.c_contact, self.c_offer, self.c_session
            tail: list[str] = []
            extra = [*self.sid(self.c_uuid, NULL_UUID), *self.pcv]
            if self.use_xcid:
                extra.append(f"X-CID: {self.call_id}")
            extra += [_ALLOW, f"User-Agent: {b.caller.name}"]
        else:
            call_id, ftag = f"{self.hex(96)}@{e.host}", self.tag()
            from_ = _addr(f"sip:{self.a_num}@{e.host}", ftag)
            to_uri, cseq, vias, mf = f"sip:{self.b_num}@{tr.host}", rng.randint(1, 999), [v_e], 70
            contact = f"<{_uri(self.a_num, e, tt)}>"
            offer_session = self.session()
            offer = _sdp(e, offer_session, 1, self.e_media)
            tail = [f"X-CID: {self.call_id}"] if self.use_xcid else []
            extra = [*self.sid(self.c_uuid, NULL_UUID)]
            if b.charging_vector:
                extra.append(
                    f"P-Charging-Vector: icid-value={self.hex(64)};"
                    f"icid-generated-at={e.host};orig-ioi={e.name}"
                )
            extra += [*tail, _ALLOW, f"User-Agent: {e.name}"]
        ruri = _uri(self.b_num, tr, tt)
        leg = _Leg(
            f"c{b.index}.out{i + 1}",
            "outbound",
            tr.name,
            i + 1,
            outcome,
            e,
            tr,
            tt,
            call_id,
            ftag,
            branch,
            t,
        )
        self.legs.append(leg)
        out = _Out(
            leg,
            tr,
            ruri,
            vias,
            v_e,
            from_,
            to_uri,
            call_id,
            cseq,
            tail,
            offer,
            offer_session,
            t_uuid,
            self.tag(),
            f"<{_uri(None, tr, tt)}>",
        )
        self.invite = _request(
            "INVITE",
            ruri,
            vias,
            mf,
            from_,
            out.to,
            call_id,
            cseq,
            record_route=self.rr,
            contact=contact,
            extra=extra,
            body=offer,
        )
        self.emit(t, self.invite, e, tr, leg)
        return out

    def trunk_response(
        self,
        out: _Out,
        status: int,
        vias: list[str],
        method: str = "INVITE",
        *,
        dialog: bool = True,
        tagged: bool = True,
        body: bytes = b"",
    ) -> bytes:
        """A response the trunk writes (a proxy relays it unchanged but for Via)."""
        return _response(
            status,
            vias,
            out.from_,
            out.t_to if tagged else out.to,
            out.call_id,
            out.cseq,
            method,
            record_route=self.rr if dialog else None,
            contact=out.t_contact if dialog else None,
            extra=[
                *self.sid(out.t_uuid, self.c_uuid),
                *([_ALLOW] if dialog and status == 200 else []),
                f"Server: {out.trunk.name}",
            ],
            body=body,
        )

    def edge_request(
        self, out: _Out, method: str, t: int, to: str, extra: Sequence[str] = ()
    ) -> None:
        """ACK to a non-2xx or CANCEL: the INVITE's branch, only the edge's Via."""
        self.emit(
            t,
            _request(
                method,
                out.ruri,
                [out.top_via],
                70,
                out.from_,
                to,
                out.call_id,
                out.cseq,
                extra=[
                    *self.sid(self.c_uuid, out.t_uuid if method == "ACK" else NULL_UUID),
                    *out.tail,
                    *extra,
                ],
            ),
            self.b.edge,
            out.trunk,
            out.leg,
        )

    def ring(self, out: _Out, t: int) -> int:
        """100 and 180 (or 183 with SDP) from the trunk, relayed to the caller."""
        b = self.b
        e, tr, leg = b.edge, out.trunk, out.leg
        t100 = t + self.pick(b.timing.trying_ns)
        self.emit(
            t100, self.trunk_response(out, 100, out.vias, dialog=False, tagged=False), tr, e, leg
        )
        t18 = max(t + self.pick(b.timing.ring_ns), t100 + self.d())
        status = 183 if b.early_media else 180
        body = _sdp(tr, self.session(), 1, self.media_port()) if status == 183 else b""
        self.emit(t18, self.trunk_response(out, status, out.vias, body=body), tr, e, leg)
        leg.to_tag = out.t_tag
        t_relay = t18 + self.d()
        if self.proxy:
            raw = self.trunk_response(out, status, [self.v_c], body=body)
        else:
            raw = _response(
                status,
                [self.v_c],
                self.in_from,
                _addr(self.in_to_uri, self.e_in_tag),
                self.call_id,
                self.in_cseq,
                "INVITE",
                contact=self.e_in_contact,
                extra=[*self.sid(out.t_uuid, self.c_uuid), f"Server: {e.name}"],
                body=_sdp(e, self.e_in_session, 1, self.e_media) if body else b"",
            )
        self.emit(t_relay, raw, e, b.caller, self.inb)
        return t18

    def fail(self, out: _Out, outcome: str) -> _Failure:
        """Play a failing attempt; returns how and when it failed."""
        b = self.b
        e, tr, leg, t = b.edge, out.trunk, out.leg, out.leg.invite_at_ns
        latency = self.pick(b.timing.failover_latency_ns)
        if outcome == TIMEOUT:
            limit = b.timing.invite_timeout_ns
            if tr.transport == "udp":  # timer A runs on unreliable transports only
                for offset in timer_a_offsets(limit):
                    self.emit(t + offset, self.invite, e, tr, leg, retransmission=True)
            leg.end = "timeout"
            fired = t + limit
            return _Failure("timeout", t, fired, fired + latency, 408, None, NULL_UUID)
        if outcome == CANCEL_AFTER_180:
            t18 = self.ring(out, t)
            tc = t18 + self.pick(b.timing.ring_timeout_ns)
            self.edge_request(
                out, "CANCEL", tc, out.to, ['Reason: SIP;cause=408;text="Ring Timeout"']
            )
            t200 = tc + self.d()
            self.emit(
                t200,
                self.trunk_response(out, 200, [out.top_via], "CANCEL", dialog=False),
                tr,
                e,
                leg,
            )
            t487 = t200 + self.d()
            self.emit(t487, self.trunk_response(out, 487, out.vias, dialog=False), tr, e, leg)
            tack = t487 + self.d()
            self.edge_request(out, "ACK", tack, out.t_to)
            leg.end, leg.final_status = "cancelled", 487
            return _Failure(
                "cancelled", tc, tack, max(tc + latency, tack + self.d()), 408, None, NULL_UUID
            )
        status = int(outcome)
        t100 = t + self.pick(b.timing.trying_ns)
        tf = t + self.pick(b.timing.fail_ns)
        if tf > t100 + 1_000_000:
            self.emit(
                t100,
                self.trunk_response(out, 100, out.vias, dialog=False, tagged=False),
                tr,
                e,
                leg,
            )
        self.emit(tf, self.trunk_response(out, status, out.vias, dialog=False), tr, e, leg)
        tack = tf + self.d()
        self.edge_request(out, "ACK", tack, out.t_to)
        leg.end, leg.final_status, leg.to_tag = "failed", status, out.t_tag
        return _Failure(
            failover_cause(outcome),
            tf,
            tack,
            max(tf + latency, tack + self.d()),
            status,
            out.t_tag,
            out.t_uuid,
        )

    def reject_inbound(self, last: _Failure) -> None:
        """Every attempt failed: the caller gets a final failure and ACKs it.

        A proxy relays the trunk's response (with the trunk's tag); for a
        timeout or a cancelled attempt, and always for a B2BUA, the edge
        writes its own (with its own tag).
        """
        b = self.b
        c, e, inb = b.caller, b.edge, self.inb
        t = max(last.done_at_ns, self.events[-1][0]) + self.d()
        if self.proxy and last.t_tag is not None:
            tag, server = last.t_tag, f"Server: {self.legs[-1].trunk}"
        else:
            tag, server = self.e_in_tag, f"Server: {e.name}"
        to = _addr(self.in_to_uri, tag)
        self.emit(
            t,
            _response(
                last.status,
                [self.v_c],
                self.in_from,
                to,
                self.call_id,
                self.in_cseq,
                "INVITE",
                extra=[*self.sid(last.t_uuid, self.c_uuid), server],
            ),
            e,
            c,
            inb,
        )
        inb.end, inb.final_status, inb.to_tag, inb.outcome = (
            "failed",
            last.status,
            tag,
            str(last.status),
        )
        self.emit(
            t + self.d(),
            _request(
                "ACK",
                self.in_ruri,
                [self.v_c],
                70,
                self.in_from,
                to,
                self.call_id,
                self.in_cseq,
                extra=self.sid(self.c_uuid, last.t_uuid),
            ),
            c,
            e,
            inb,
        )

    def answer(self, out: _Out) -> int:
        """The trunk rings and answers; returns the 200 OK's time."""
        b = self.b
        t18 = self.ring(out, out.leg.invite_at_ns)
        t200 = t18 + self.pick(b.timing.answer_ns)
        self.t_session, self.t_media = self.session(), self.media_port()
        self.emit(
            t200,
            self.trunk_response(
                out, 200, out.vias, body=_sdp(out.trunk, self.t_session, 1, self.t_media)
            ),
            out.trunk,
            b.edge,
            out.leg,
        )
        out.leg.end, out.leg.final_status = "answered", 200
        return t200

    # ------------------------------------------------------------ the dialog
    def connect(self, out: _Out, t: int) -> None:
        """200 OK to the caller, the ACKs, an optional re-INVITE, BYE and 200."""
        b = self.b
        c, e, tr, leg, inb = b.caller, b.edge, out.trunk, out.leg, self.inb
        tin, tt = self.tin, tr.transport
        if self.proxy:
            self.in_to = out.t_to  # the proxy relays the trunk's tag
            self.remote_target = out.t_ruri
            inb.to_tag = out.t_tag
            t += self.d()
            self.emit(
                t,
                self.trunk_response(
                    out, 200, [self.v_c], body=_sdp(tr, self.t_session, 1, self.t_media)
                ),
                e,
                c,
                inb,
            )
            t = self.proxied_request("ACK", t + self.d(), out, self.in_cseq)
        else:
            self.in_to = _addr(self.in_to_uri, self.e_in_tag)
            self.remote_target = self.e_in_contact[1:-1]
            inb.to_tag = self.e_in_tag
            t += self.d()
            self.emit(
                t,
                _request(
                    "ACK",
                    out.t_ruri,
                    [_via(e, tt, self.branch())],
                    70,
                    out.from_,
                    out.t_to,
                    out.call_id,
                    out.cseq,
                    extra=[*self.sid(self.c_uuid, out.t_uuid), *out.tail],
                ),
                e,
                tr,
                leg,
            )
            t += self.d()
            self.emit(
                t,
                _response(
                    200,
                    [self.v_c],
                    self.in_from,
                    self.in_to,
                    self.call_id,
                    self.in_cseq,
                    "INVITE",
                    contact=self.e_in_contact,
                    extra=[*self.sid(out.t_uuid, self.c_uuid), _ALLOW, f"Server: {e.name}"],
                    body=_sdp(e, self.e_in_session, 1, self.e_media),
                ),
                e,
                c,
                inb,
            )
            t += self.d()
            self.emit(
                t,
                _request(
                    "ACK",
                    self.remote_target,
                    [_via(c, tin, self.branch())],
                    70,
                    self.in_from,
                    self.in_to,
                    self.call_id,
                    self.in_cseq,
                    extra=self.sid(self.c_uuid, out.t_uuid),
                ),
                c,
                e,
                inb,
            )
        inb.end, inb.final_status = "answered", 200
        answered_at = t
        talk = self.pick(b.timing.talk_ns)
        self.c_cseq = self.in_cseq
        self.e_cseq = out.cseq
        if b.reinvite:
            t = self.reinvite(out, answered_at + talk // 2)
        t = max(answered_at + talk, t + self.d())
        if b.bye_from == "caller":
            self.caller_bye(out, t)
        else:
            self.callee_bye(out, t)

    def proxied_request(self, method: str, t: int, out: _Out, cseq: int, body: bytes = b"") -> int:
        """A caller's in-dialog request through the proxy (Route, then a second Via).

        For an INVITE the trunk's 200 comes back and is relayed, then the
        caller's ACK follows the same way. Returns the time of the last message.
        """
        b = self.b
        c, e, tr = b.caller, b.edge, out.trunk
        v = _via(c, self.tin, self.branch())
        extra = [*self.sid(self.c_uuid, out.t_uuid)]
        if method != "ACK":
            extra.append(f"User-Agent: {c.name}")
        contact = self.c_contact if method == "INVITE" else None
        self.emit(
            t,
            _request(
                method,
                self.remote_target,
                [v],
                70,
                self.in_from,
                self.in_to,
                self.call_id,
                cseq,
                route=self.route,
                contact=contact,
                extra=extra,
                body=body,
            ),
            c,
            e,
            self.inb,
        )
        v_e = _via(e, tr.transport, self.branch())
        t += self.d()
        self.emit(
            t,
            _request(
                method,
                out.t_ruri,
                [v_e, v],
                69,
                self.in_from,
                self.in_to,
                self.call_id,
                cseq,
                contact=contact,
                extra=extra,
                body=body,
            ),
            e,
            tr,
            out.leg,
        )
        if method == "ACK":
            return t
        server = f"Server: {tr.name}"
        answer = _sdp(tr, self.t_session, 2, self.t_media) if method == "INVITE" else b""
        dialog = method == "INVITE"
        for vias, src, dst, leg in (([v_e, v], tr, e, out.leg), ([v], e, c, self.inb)):
            t += self.d()
            self.emit(
                t,
                _response(
                    200,
                    vias,
                    self.in_from,
                    self.in_to,
                    self.call_id,
                    cseq,
                    method,
                    contact=out.t_contact if dialog else None,
                    extra=[
                        *self.sid(out.t_uuid, self.c_uuid),
                        *([_ALLOW] if dialog else []),
                        server,
                    ],
                    body=answer,
                ),
                src,
                dst,
                leg,
            )
        if method == "INVITE":
            t = self.proxied_request("ACK", t + self.d(), out, cseq)
        return t

    def b2bua_request(self, method: str, t: int, out: _Out) -> int:
        """An in-dialog request on the outbound leg, written by the B2BUA itself."""
        b = self.b
        e, tr = b.edge, out.trunk
        self.e_cseq += 1
        cseq = self.e_cseq
        v = _via(e, tr.transport, self.branch())
        dialog = method == "INVITE"
        self.emit(
            t,
            _request(
                method,
                out.t_ruri,
                [v],
                70,
                out.from_,
                out.t_to,
                out.call_id,
                cseq,
                contact=f"<{_uri(self.a_num, e, tr.transport)}>" if dialog else None,
                extra=[*self.sid(self.c_uuid, out.t_uuid), *out.tail, f"User-Agent: {e.name}"],
                body=_sdp(e, out.offer_session, 2, self.e_media) if dialog else b"",
            ),
            e,
            tr,
            out.leg,
        )
        t += self.d()
        self.emit(
            t,
            _response(
                200,
                [v],
                out.from_,
                out.t_to,
                out.call_id,
                cseq,
                method,
                contact=out.t_contact if dialog else None,
                extra=[
                    *self.sid(out.t_uuid, self.c_uuid),
                    *([_ALLOW] if dialog else []),
                    f"Server: {tr.name}",
                ],
                body=_sdp(tr, self.t_session, 2, self.t_media) if dialog else b"",
            ),
            tr,
            e,
            out.leg,
        )
        if dialog:
            t += self.d()
            self.emit(
                t,
                _request(
                    "ACK",
                    out.t_ruri,
                    [_via(e, tr.transport, self.branch())],
                    70,
                    out.from_,
                    out.t_to,
                    out.call_id,
                    cseq,
                    extra=[*self.sid(self.c_uuid, out.t_uuid), *out.tail],
                ),
                e,
                tr,
                out.leg,
            )
        return t

    def caller_in_dialog(self, method: str, t: int, out: _Out, then: bool) -> int:
        """The caller's in-dialog request to the B2BUA and the B2BUA's 200 (and ACK).

        With ``then`` the B2BUA forwards the request to the trunk side between
        the request and its answer (re-INVITE); otherwise after it (BYE).
        """
        b = self.b
        c, e = b.caller, b.edge
        self.c_cseq += 1
        cseq = self.c_cseq
        v = _via(c, self.tin, self.branch())
        dialog = method == "INVITE"
        self.emit(
            t,
            _request(
                method,
                self.remote_target,
                [v],
                70,
                self.in_from,
                self.in_to,
                self.call_id,
                cseq,
                contact=self.c_contact if dialog else None,
                extra=[*self.sid(self.c_uuid, out.t_uuid), f"User-Agent: {c.name}"],
                body=_sdp(c, self.c_session, 2, self.c_media) if dialog else b"",
            ),
            c,
            e,
            self.inb,
        )
        if then:
            t = self.b2bua_request(method, t + self.d(), out)
        t += self.d()
        self.emit(
            t,
            _response(
                200,
                [v],
                self.in_from,
                self.in_to,
                self.call_id,
                cseq,
                method,
                contact=self.e_in_contact if dialog else None,
                extra=[
                    *self.sid(out.t_uuid, self.c_uuid),
                    *([_ALLOW] if dialog else []),
                    f"Server: {e.name}",
                ],
                body=_sdp(e, self.e_in_session, 2, self.e_media) if dialog else b"",
            ),
            e,
            c,
            self.inb,
        )
        if dialog:
            t += self.d()
            self.emit(
                t,
                _request(
                    "ACK",
                    self.remote_target,
                    [_via(c, self.tin, self.branch())],
                    70,
                    self.in_from,
                    self.in_to,
                    self.call_id,
                    cseq,
                    extra=self.sid(self.c_uuid, out.t_uuid),
                ),
                c,
                e,
                self.inb,
            )
        if not then:
            t = self.b2bua_request(method, t + self.d(), out)
        return t

    def reinvite(self, out: _Out, t: int) -> int:
        """A session refresh from the caller (SDP version + 1 on every side)."""
        if self.proxy:
            self.c_cseq += 1
            return self.proxied_request(
                "INVITE", t, out, self.c_cseq, _sdp(self.b.caller, self.c_session, 2, self.c_media)
            )
        return self.caller_in_dialog("INVITE", t, out, then=True)

    def caller_bye(self, out: _Out, t: int) -> None:
        """The caller hangs up."""
        if self.proxy:
            self.c_cseq += 1
            self.proxied_request("BYE", t, out, self.c_cseq)
        else:
            self.caller_in_dialog("BYE", t, out, then=False)

    def callee_bye(self, out: _Out, t: int) -> None:
        """The trunk hangs up: its own CSeq space, From and To swapped."""
        b, rng = self.b, self.rng
        c, e, tr = b.caller, b.edge, out.trunk
        tt = tr.transport
        ua = f"User-Agent: {tr.name}"
        v_t = _via(tr, tt, self.branch())
        t_cseq = rng.randint(1, 999)
        c_target = self.c_contact[1:-1]
        if self.proxy:
            hops = (
                ([v_t], self.route, 70, tr, e, out.leg),
                ([_via(e, self.tin, self.branch()), v_t], None, 69, e, c, self.inb),
            )
            for vias, route, mf, src, dst, leg in hops:
                self.emit(
                    t,
                    _request(
                        "BYE",
                        c_target,
                        vias,
                        mf,
                        self.in_to,
                        self.in_from,
                        self.call_id,
                        t_cseq,
                        route=route,
                        extra=[*self.sid(out.t_uuid, self.c_uuid), ua],
                    ),
                    src,
                    dst,
                    leg,
                )
                t += self.d()
            for vias, src, dst, leg in ((hops[1][0], c, e, self.inb), ([v_t], e, tr, out.leg)):
                self.emit(
                    t,
                    _response(
                        200,
                        vias,
                        self.in_to,
                        self.in_from,
                        self.call_id,
                        t_cseq,
                        "BYE",
                        extra=[*self.sid(self.c_uuid, out.t_uuid), f"Server: {c.name}"],
                    ),
                    src,
                    dst,
                    leg,
                )
                t += self.d()
            return
        e_target = _uri(self.a_num, e, tt)
        self.emit(
            t,
            _request(
                "BYE",
                e_target,
                [v_t],
                70,
                out.t_to,
                out.from_,
                out.call_id,
                t_cseq,
                extra=[*self.sid(out.t_uuid, self.c_uuid), ua],
            ),
            tr,
            e,
            out.leg,
        )
        t += self.d()
        self.emit(
            t,
            _response(
                200,
                [v_t],
                out.t_to,
                out.from_,
                out.call_id,
                t_cseq,
                "BYE",
                extra=[*self.sid(self.c_uuid, out.t_uuid), f"Server: {e.name}"],
            ),
            e,
            tr,
            out.leg,
        )
        e_cseq = rng.randint(1, 999)
        v_e = _via(e, self.tin, self.branch())
        t += self.d()
        self.emit(
            t,
            _request(
                "BYE",
                c_target,
                [v_e],
                70,
                self.in_to,
                self.in_from,
                self.call_id,
                e_cseq,
                extra=[*self.sid(out.t_uuid, self.c_uuid), f"User-Agent: {e.name}"],
            ),
            e,
            c,
            self.inb,
        )
        t += self.d()
        self.emit(
            t,
            _response(
                200,
                [v_e],
                self.in_to,
                self.in_from,
                self.call_id,
                e_cseq,
                "BYE",
                extra=[*self.sid(self.c_uuid, out.t_uuid), f"Server: {c.name}"],
            ),
            c,
            e,
            self.inb,
        )

    # ------------------------------------------------------------ truth
    def finish(
        self, failovers: list[FailoverTruth], answered: _Out | None
    ) -> tuple[tuple[Packet, ...], CallTruth]:
        """Sort the events into packets and write the truth."""
        b = self.b
        per_leg = {
            id(leg): MessageTruth(
                b.index, leg.leg, leg.role, leg.trunk, leg.attempt, leg.final_status
            )
            for leg in self.legs
        }
        self.events.sort(key=lambda ev: (ev[0], ev[1]))
        packets = []
        for seq, (t, _, raw, src, dst, leg, retransmission) in enumerate(self.events):
            message_truth = per_leg[id(leg)]
            if retransmission:
                message_truth = attrs.evolve(message_truth, retransmission=True)
            packets.append(Packet(raw, t, src, dst, message_truth, seq))
        legs = tuple(
            LegTruth(
                leg=leg.leg,
                call=b.index,
                role=leg.role,
                hop=f"{leg.uac.name}>{leg.uas.name}",
                trunk=leg.trunk,
                attempt=leg.attempt,
                outcome=leg.outcome,
                end=leg.end,
                final_status=leg.final_status,
                call_id=leg.call_id,
                from_tag=leg.from_tag,
                to_tag=leg.to_tag,
                branch=leg.branch,
                uac=str(self.endpoint(leg.uac, leg.transport)),
                uas=str(self.endpoint(leg.uas, leg.transport)),
                invite_at_ns=leg.invite_at_ns,
                ended_at_ns=leg.ended_at_ns,
                messages=leg.messages,
            )
            for leg in self.legs
        )
        final_status = self.inb.final_status
        assert final_status is not None
        truth = CallTruth(
            call=b.index,
            mode=b.mode,
            link=b.link,
            caller_number=self.a_num,
            callee_number=self.b_num,
            call_id=self.call_id,
            from_tag=self.ftag,
            started_ns=packets[0].timestamp_ns,
            ended_ns=packets[-1].timestamp_ns,
            outcome="answered" if answered is not None else "failed",
            final_status=final_status,
            answered_by=answered.leg.leg if answered is not None else None,
            legs=legs,
            failovers=tuple(failovers),
            reinvite=b.reinvite and answered is not None,
            reuses_call=b.reuses_call,
            reuse=b.reuse,
        )
        return tuple(packets), truth
