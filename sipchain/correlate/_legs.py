"""Messages -> transactions (RFC 3261 §17) -> legs (one INVITE attempt on one hop).

A *hop* is the unordered pair of the two hosts that exchanged the messages:
their IP addresses (ports are left out: a TCP peer answers from another port,
a BYE may come on a new connection), or ``ip:port`` when both ends share one
address. A transaction is keyed on its top Via branch and
method on that hop (RFC 3261 §17.2.3; branches carry the magic cookie and are
unique per hop), or, for RFC 2543 peers, on Call-ID, tags, CSeq and the top
Via. A leg is the initial INVITE transaction on a hop and every transaction of
the dialog it creates; it is keyed on Call-ID + From-tag + hop + INVITE branch,
and in-dialog requests find it by Call-ID, hop and the tags of both sides.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

from sipchain.correlate import _fsm
from sipchain.model import Endpoint, Leg, SipMessage, Transaction

__all__ = ["LegDraft", "OtherDraft", "build_legs", "node"]

MAGIC_COOKIE = "z9hG4bK"

Hop = tuple[str, str]


def node(end: Endpoint | None, peer: Endpoint | None) -> str:
    """The host an endpoint stands for: its IP address, or ``ip:port`` when both
    ends share one address (a single-address host such as ``::1`` running
    several SIP elements on different ports)."""
    if end is None:
        return "?"
    if peer is not None and peer.ip == end.ip:
        return f"{end.ip}:{end.port}"
    return end.ip


def _hop(m: SipMessage) -> Hop:
    a, b = node(m.src, m.dst), node(m.dst, m.src)
    return (a, b) if a <= b else (b, a)


def _time(m: SipMessage) -> int:
    return m.timestamp_ns if m.timestamp_ns is not None else 0


class _Tx:
    """A transaction being assembled."""

    __slots__ = ("ack", "first_ns", "key", "leg", "method", "request", "responses", "retrans")

    def __init__(self, key: tuple[str, ...], method: str, first_ns: int) -> None:
        self.key = key
        self.method = method
        self.request: SipMessage | None = None
        self.retrans: list[SipMessage] = []
        self.responses: list[SipMessage] = []
        self.ack: SipMessage | None = None
        self.first_ns = first_ns
        self.leg: LegDraft | None = None

    def messages(self) -> list[SipMessage]:
        items = [m for m in (self.request, *self.retrans, *self.responses, self.ack) if m is not None]
        items.sort(key=_time)
        return items

    def final_status(self) -> int | None:
        for r in self.responses:
            if r.status is not None and r.status >= 200:
                return r.status
        return None

    def freeze(self) -> Transaction:
        table = _fsm.INVITE_TRANSACTION if self.method == "INVITE" else _fsm.NON_INVITE_TRANSACTION
        events: list[tuple[int, str]] = []
        if self.request is not None:
            events.append((_time(self.request), "request"))
        events += [(_time(m), "retransmit") for m in self.retrans]
        events += [(_time(r), _fsm.event_of_status(r.status or 0)) for r in self.responses]
        if self.ack is not None:
            events.append((_time(self.ack), "ack"))
        events.sort(key=lambda e: e[0])
        return Transaction(
            key=self.key,
            method=self.method,
            request=self.request,
            retransmissions=tuple(self.retrans),
            responses=tuple(self.responses),
            ack=self.ack,
            state=_fsm.run(table, [e for _, e in events]),
        )


class LegDraft:
    """A leg being assembled (turned into a frozen :class:`Leg` at the end)."""

    __slots__ = ("call_id", "cancels", "from_tag", "hop", "invite_tx", "seq", "tags", "to_tags", "txs", "uac", "uas")

    def __init__(self, call_id: str, from_tag: str | None, hop: Hop, seq: int) -> None:
        self.call_id = call_id
        self.from_tag = from_tag
        self.hop = hop
        self.seq = seq
        self.invite_tx: _Tx | None = None
        self.txs: list[_Tx] = []
        self.cancels: list[_Tx] = []
        self.to_tags: list[str] = []
        self.tags: set[str] = {from_tag} if from_tag else set()
        self.uac: Endpoint | None = None
        self.uas: Endpoint | None = None

    def add_tag(self, tag: str | None) -> None:
        if tag and tag not in self.tags:
            self.tags.add(tag)
            if tag != self.from_tag:
                self.to_tags.append(tag)

    def messages(self) -> list[SipMessage]:
        out = [m for tx in (*self.txs, *self.cancels) for m in tx.messages()]
        out.sort(key=_time)
        return out

    def _dialogs(self) -> tuple[tuple[str, str], ...]:
        """Each dialog of the INVITE (one per To-tag: forking makes several)
        with the state it reached in the ``_fsm.DIALOG`` table."""
        events: dict[str, list[tuple[int, str]]] = {}
        if self.invite_tx is not None:
            for r in self.invite_tx.responses:
                if r.to_tag and r.status is not None:
                    events.setdefault(r.to_tag, []).append((_time(r), _fsm.event_of_status(r.status)))
        for tx in self.txs:
            if tx.method == "BYE" and tx.request is not None:
                for tag in (tx.request.from_tag, tx.request.to_tag):
                    if tag is not None and tag in events:
                        events[tag].append((_time(tx.request), "bye"))
        return tuple(
            (tag, _fsm.run(_fsm.DIALOG, [e for _, e in sorted(found)])) for tag, found in events.items()
        )

    def freeze(self) -> Leg:
        messages = self.messages()
        invite = self.invite_tx.request if self.invite_tx is not None else None
        final = self.invite_tx.final_status() if self.invite_tx is not None else None
        branch = invite.branch if invite is not None else None
        if branch is None and self.invite_tx is not None and self.invite_tx.responses:
            branch = self.invite_tx.responses[0].branch
        if final is not None and 200 <= final < 300:
            end = "answered"
        elif self.cancels and (final is None or final == 487):
            end = "cancelled"
        elif final is not None:
            end = "failed"
        elif self.invite_tx is not None and self.invite_tx.retrans:
            end = "timeout"
        else:
            end = "open"
        started = _time(messages[0]) if messages else 0
        ended = _time(messages[-1]) if messages else 0
        ident = "|".join(
            [self.call_id, self.from_tag or "", branch or "", *self.hop, str(started)]
        )
        leg_id = "L" + hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:12]
        txs = sorted((*self.txs, *self.cancels), key=lambda t: t.first_ns)
        return Leg(
            dialogs=self._dialogs(),
            leg_id=leg_id,
            call_id=self.call_id,
            from_tag=self.from_tag,
            to_tags=tuple(self.to_tags),
            branch=branch,
            uac=self.uac,
            uas=self.uas,
            started_ns=started,
            ended_ns=ended,
            invite=invite,
            final_status=final,
            end=end,
            messages=tuple(messages),
            transactions=tuple(t.freeze() for t in txs),
        )


class OtherDraft:
    """Non-call traffic grouped by kind (first request's method) and Call-ID."""

    __slots__ = ("call_id", "kind", "messages")

    def __init__(self, kind: str, call_id: str) -> None:
        self.kind = kind
        self.call_id = call_id
        self.messages: list[SipMessage] = []


def _tx_key(m: SipMessage, method: str) -> tuple[str, ...]:
    """Transaction key of a request or response (RFC 3261 §17.2.3)."""
    branch = m.branch or ""
    hop = _hop(m)
    if branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
        return (branch, method, *hop)
    # RFC 2543 (§17.2.3 last paragraph): Call-ID, tags, CSeq, top Via
    cseq = m.cseq
    via = m.headers.get("Via") or ""
    return (
        "rfc2543",
        m.call_id or "",
        m.from_tag or "",
        str(cseq.number) if cseq else "",
        method,
        via.split(",", 1)[0].strip(),
        *hop,
    )


def build_legs(messages: Sequence[SipMessage]) -> tuple[list[LegDraft], list[OtherDraft], list[tuple[SipMessage, str]]]:
    """Group time-ordered messages into legs, other traffic and leftovers.

    Returns ``(legs, other, unplaced)``; ``unplaced`` lists each message that
    fits nowhere, with the reason.
    """
    txs: dict[tuple[str, ...], _Tx] = {}
    legs: list[LegDraft] = []
    # (call_id, hop) -> legs in creation order, for in-dialog lookup by tags
    by_dialog: dict[tuple[str, Hop], list[LegDraft]] = defaultdict(list)
    others: dict[tuple[str, str], OtherDraft] = {}
    unplaced: list[tuple[SipMessage, str]] = []

    others_by_call: dict[str, OtherDraft] = {}

    def other(kind: str, m: SipMessage) -> None:
        call_id = m.call_id or ""
        group = others.get((kind, call_id))
        if group is None and call_id:
            # a NOTIFY or BYE of a dialog started by a non-INVITE request
            group = others_by_call.get(call_id)
        if group is None:
            group = others[(kind, call_id)] = OtherDraft(kind, call_id)
            others_by_call.setdefault(call_id, group)
        group.messages.append(m)

    def find_leg(m: SipMessage, hop: Hop, *, exact: bool = False) -> LegDraft | None:
        """The leg of an in-dialog message: same Call-ID and hop, its tags known.

        The most recent leg whose tags include both of the message's wins
        (a reused Call-ID is a new leg); unless ``exact``, a leg sharing one
        tag will do (its other tag was in messages the capture lacks).
        """
        candidates = by_dialog.get((m.call_id or "", hop))
        if not candidates:
            return None
        tags = {t for t in (m.from_tag, m.to_tag) if t}
        if not tags:
            return None
        best: LegDraft | None = None
        for leg in reversed(candidates):  # most recent first: Call-ID reuse
            if tags <= leg.tags:
                return leg
            if best is None and tags & leg.tags:
                best = leg
        return None if exact else best

    def new_leg(m: SipMessage, hop: Hop) -> LegDraft:
        from_tag = m.from_tag
        leg = LegDraft(m.call_id or "", from_tag, hop, len(legs))
        legs.append(leg)
        by_dialog[(leg.call_id, hop)].append(leg)
        return leg

    def set_ends(leg: LegDraft, m: SipMessage, *, uac_sent: bool) -> None:
        if leg.uac is not None:
            return
        if uac_sent:
            leg.uac, leg.uas = m.src, m.dst
        else:
            leg.uac, leg.uas = m.dst, m.src

    for m in messages:
        leg: LegDraft | None
        cseq = m.cseq
        if cseq is None or m.call_id is None:
            unplaced.append((m, "no CSeq or Call-ID: cannot be placed in a transaction"))
            continue
        hop = _hop(m)
        if m.method is not None:
            method = m.method
            if method == "ACK":
                invite = txs.get(_tx_key(m, "INVITE"))
                if invite is not None and (invite.final_status() or 0) >= 300:
                    invite.ack = m  # ACK to a failure: part of the INVITE transaction
                    continue
            key = _tx_key(m, method)
            tx = txs.get(key)
            if tx is not None:
                if tx.request is None:
                    tx.request = m  # responses were captured before it
                    if tx.leg is not None and tx is tx.leg.invite_tx:
                        set_ends(tx.leg, m, uac_sent=True)
                else:
                    tx.retrans.append(m)
                if tx.leg is None:
                    other(method, m)
                continue
            tx = txs[key] = _Tx(key, method, _time(m))
            tx.request = m
            if method == "INVITE" and not m.to_tag:
                new = new_leg(m, hop)
                new.invite_tx = tx
                tx.leg = new
                new.txs.append(tx)
                set_ends(new, m, uac_sent=True)
            elif method == "CANCEL":
                invite = txs.get(_tx_key(m, "INVITE"))
                if invite is not None and invite.leg is not None:
                    invite.leg.cancels.append(tx)
                    tx.leg = invite.leg
                else:
                    other("CANCEL", m)  # a CANCEL of an INVITE not captured
                    tx.leg = None
            else:
                leg = find_leg(m, hop) if m.to_tag else None
                if leg is None and m.to_tag and method in ("ACK", "BYE", "INVITE", "UPDATE", "PRACK", "INFO", "REFER"):
                    # an INVITE dialog whose INVITE was not captured
                    leg = new_leg(m, hop)
                    leg.add_tag(m.to_tag)
                    set_ends(leg, m, uac_sent=True)
                if leg is None:
                    other(method, m)
                else:
                    leg.add_tag(m.from_tag)
                    leg.add_tag(m.to_tag)
                    tx.leg = leg
                    leg.txs.append(tx)
                    if method == "INVITE" and leg.invite_tx is None:
                        leg.invite_tx = tx
        else:  # a response
            method = cseq.method
            key = _tx_key(m, method)
            tx = txs.get(key)
            if tx is None:
                # its request was not captured (or comes later in merged captures)
                tx = txs[key] = _Tx(key, method, _time(m))
                if method == "INVITE":
                    # a re-INVITE's response belongs to its dialog; any other
                    # INVITE response of an uncaptured request starts a leg
                    leg = find_leg(m, hop, exact=True)
                    if leg is not None and leg.invite_tx is None:
                        leg.invite_tx = tx
                    elif leg is None or leg.invite_tx is None or leg.invite_tx.final_status() is None:
                        leg = new_leg(m, hop)
                        leg.invite_tx = tx
                        set_ends(leg, m, uac_sent=False)
                    tx.leg = leg
                    leg.txs.append(tx)
                elif method == "CANCEL":
                    invite = txs.get(_tx_key(m, "INVITE"))
                    tx.leg = invite.leg if invite is not None else None
                    if tx.leg is not None:
                        tx.leg.cancels.append(tx)
                else:
                    leg = find_leg(m, hop) if m.to_tag else None
                    tx.leg = leg
                    if leg is not None:
                        leg.txs.append(tx)
            tx.responses.append(m)
            if tx.leg is not None:
                tx.leg.add_tag(m.to_tag)
            elif tx.request is None:
                other(method, m)
            else:
                other(tx.method, m)
    # requests of non-call transactions went to ``other`` when they arrived;
    # their responses followed them there
    return legs, list(others.values()), unplaced

