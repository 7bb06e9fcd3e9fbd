"""Correlation: messages -> transactions -> dialogs -> legs -> call chains.

Pure functions over messages; no file access. :func:`correlate` is the entry
point used by :func:`sipchain.reconstruct`.

Within a chain, a leg whose caller host is the callee host of an earlier leg
of the same chain is *outbound* (an attempt forwarded by that node); a leg
with no such upstream leg is *inbound*. Outbound attempts of one upstream leg
are numbered in INVITE order, and consecutive attempts where the earlier one
failed (a final failure, a CANCEL, or no final response while the next
attempt began) are recorded as failovers.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence

import attrs

from sipchain.correlate._legs import build_legs, node
from sipchain.correlate._link import (
    DEFAULT_CORRELATION_HEADERS,
    UnionFind,
    adjacent_links,
    find_links,
)
from sipchain.correlate._trunks import TrunkMap, TrunkSpec, load_trunks
from sipchain.model import Chain, Evidence, Failover, Leg, Link, SipMessage, Unlinked

__all__ = [
    "DEFAULT_CORRELATION_HEADERS",
    "Correlated",
    "TrunkMap",
    "correlate",
    "load_trunks",
]

#: Auth challenges are retried on the same trunk: not a failover.
_AUTH = (401, 407)


@attrs.frozen
class Correlated:
    """What :func:`correlate` found."""

    chains: tuple[Chain, ...]
    unlinked: tuple[Unlinked, ...]
    other: tuple[tuple[str, str, tuple[SipMessage, ...]], ...]


def _time(m: SipMessage) -> int:
    return m.timestamp_ns if m.timestamp_ns is not None else 0


def _link_key(link: Link) -> tuple[str, str, str]:
    a, b = sorted((link.a, link.b))
    return (a, b, link.rule)


def correlate(
    messages: Sequence[SipMessage],
    *,
    trunks: TrunkSpec | TrunkMap = None,
    correlation: Mapping[str, str | None] | None = None,
    rejected: Sequence[Link] = (),
) -> Correlated:
    """Group time-ordered ``messages`` into call chains (see the module docstring).

    ``trunks`` names remote ends; ``correlation`` adds or overrides
    correlation headers (name -> regex with the value in group 1, or ``None``
    for the whole value); ``rejected`` links are never made.
    """
    trunk_map = trunks if isinstance(trunks, TrunkMap) else load_trunks(trunks)
    headers = dict(DEFAULT_CORRELATION_HEADERS)
    headers.update(correlation or {})
    drafts, others, unplaced = build_legs(messages)
    legs = [d.freeze() for d in drafts]
    legs.sort(key=lambda leg: (leg.started_ns, leg.leg_id))
    by_id = {leg.leg_id: leg for leg in legs}
    rejected_keys = {_link_key(link) for link in rejected}

    uf = UnionFind(by_id)
    kept: list[Link] = []
    # the trunk each leg's callee side names (from the export, or the map):
    # the export's original_trunk_id points at a leg by its trunk
    trunk_of = {leg.leg_id: _exported_trunk(leg) or trunk_map.name_of(leg.uas, leg.invite) for leg in legs}
    for link in find_links(legs, headers, trunk_of):
        if _link_key(link) in rejected_keys:
            continue
        kept.append(link)
        uf.union(link.a, link.b)
    # weaker rules only join what the identifiers left apart, one candidate at a time
    for rule in ("sdp-origin", "heuristic"):
        component = {leg_id: uf.find(leg_id) for leg_id in by_id}
        for link in adjacent_links(legs, component, rule):
            if _link_key(link) in rejected_keys:
                continue
            if uf.union(link.a, link.b):
                kept.append(link)

    members: dict[str, list[Leg]] = defaultdict(list)
    for leg in legs:
        members[uf.find(leg.leg_id)].append(leg)
    links_of: dict[str, list[Link]] = defaultdict(list)
    for link in kept:
        links_of[uf.find(link.a)].append(link)

    chains = [
        _chain(group, links_of[root], trunk_map)
        for root, group in members.items()
    ]
    chains.sort(key=lambda c: (c.legs[0].started_ns, c.chain_id))

    unlinked: list[Unlinked] = [Unlinked(m, reason) for m, reason in unplaced]
    other_groups = []
    for group in others:
        msgs = tuple(sorted(group.messages, key=_time))
        other_groups.append((group.kind, group.call_id, msgs))
        reason = f"not part of a call ({group.kind} outside an INVITE dialog)"
        unlinked.extend(Unlinked(m, reason) for m in msgs)
    unlinked.sort(key=lambda u: _time(u.message))
    return Correlated(tuple(chains), tuple(unlinked), tuple(other_groups))


def _chain(group: list[Leg], links: list[Link], trunks: TrunkMap) -> Chain:
    group = sorted(group, key=lambda leg: (leg.started_ns, leg.leg_id))
    # upstream: the latest earlier leg whose callee host is this leg's caller host
    upstream: dict[str, Leg] = {}
    for i, leg in enumerate(group):
        if leg.uac is None:
            continue
        caller = node(leg.uac, leg.uas)
        for earlier in reversed(group[:i]):
            if earlier.uas is not None and node(earlier.uas, earlier.uac) == caller:
                upstream[leg.leg_id] = earlier
                break
    attempts: dict[str, list[Leg]] = defaultdict(list)
    for leg in group:
        up = upstream.get(leg.leg_id)
        if up is not None:
            attempts[up.leg_id].append(leg)

    updated: dict[str, Leg] = {}
    failovers: list[Failover] = []
    for leg in group:
        up = upstream.get(leg.leg_id)
        role = "outbound" if up is not None else "inbound"
        remote = leg.uas if role == "outbound" else leg.uac
        trunk = _exported_trunk(leg) or trunks.name_of(remote, leg.invite, remote_is_uas=role == "outbound")
        if trunk is None and remote is not None:
            trunk = f"{'[' + remote.ip + ']' if ':' in remote.ip else remote.ip}:{remote.port}"
        attempt = None
        if up is not None:
            attempt = [x.leg_id for x in attempts[up.leg_id]].index(leg.leg_id) + 1
        updated[leg.leg_id] = attrs.evolve(leg, role=role, trunk=trunk, attempt=attempt)

    for siblings in attempts.values():
        for earlier, later in itertools.pairwise(siblings):
            e, n = updated[earlier.leg_id], updated[later.leg_id]
            failover = _failover(e, n)
            if failover is not None:
                failovers.append(failover)
                if e.end == "open":
                    updated[e.leg_id] = attrs.evolve(e, end="timeout")

    legs = sorted(updated.values(), key=lambda leg: (leg.role != "inbound", leg.started_ns, leg.leg_id))
    answered = next((leg for leg in legs if leg.role == "outbound" and leg.answered), None)
    if answered is None:
        answered = next((leg for leg in legs if leg.answered), None)
    inbound = next((leg for leg in legs if leg.role == "inbound"), None)
    final = inbound.final_status if inbound is not None else (legs[-1].final_status if legs else None)
    if answered is not None:
        outcome = "answered"
    elif inbound is not None and inbound.end == "cancelled":
        outcome = "cancelled"
    elif final is not None and final >= 300:
        outcome = "failed"
    else:
        outcome = "open"
    chain_id = "C" + hashlib.sha256("|".join(sorted(updated)).encode()).hexdigest()[:12]
    links.sort(key=lambda link: (-link.score, link.rule, link.a, link.b))
    return Chain(
        chain_id=chain_id,
        legs=tuple(legs),
        links=tuple(links),
        failovers=tuple(failovers),
        outcome=outcome,
        answered_by=answered.leg_id if answered is not None else None,
        final_status=final,
    )


TRUNK_KEYS = ("trunk_id", "trunkId", "trunk")
ORIGINAL_TRUNK_KEYS = ("original_trunk_id", "originalTrunkId")


def _exported_trunk(leg: Leg) -> str | None:
    """The trunk an export names for the leg (``trunk_id`` and its aliases)."""
    for m in leg.messages:
        if m.metadata:
            value = m.meta(*TRUNK_KEYS)
            if value:
                return value
    return None


def _first_invite_ns(leg: Leg) -> int:
    return _time(leg.invite) if leg.invite is not None else leg.started_ns


def _failover(earlier: Leg, later: Leg) -> Failover | None:
    """The failover from ``earlier`` to ``later``, if ``earlier`` failed."""
    next_at = _first_invite_ns(later)
    evidence: list[Evidence] = []
    status = earlier.final_status
    cancel = next(
        (m for m in earlier.messages if m.method == "CANCEL"), None
    )
    if status is not None and status >= 300:
        if status in _AUTH and earlier.trunk == later.trunk:
            return None  # an authentication retry, not a failover
        final = next(
            m for m in earlier.messages if m.status == status and m.cseq is not None and m.cseq.method == "INVITE"
        )
        if cancel is not None and status == 487:
            cause, failed_at, proof = "cancelled", _time(cancel), cancel
        else:
            cause, failed_at, proof = str(status), _time(final), final
    elif status is None and cancel is not None:
        cause, failed_at, proof = "cancelled", _time(cancel), cancel
    elif status is None and next_at > earlier.started_ns:
        cause, failed_at = "timeout", _first_invite_ns(earlier)
        proof = earlier.invite or earlier.messages[0]
        retransmitted = sum(1 for m in earlier.messages if m.method == "INVITE") - 1
        evidence.append(Evidence("INVITE retransmissions", str(retransmitted), _frames_of((proof,))))
    else:
        return None
    evidence.insert(0, Evidence("failure", cause, _frames_of((proof,))))
    if later.invite is not None:
        evidence.append(Evidence("next INVITE", later.trunk or "", _frames_of((later.invite,))))
    exported = next((v for m in later.messages if m.metadata and (v := m.meta(*ORIGINAL_TRUNK_KEYS))), None)
    if exported is not None:
        evidence.append(Evidence("original_trunk_id", exported, _frames_of(later.messages[:1])))
    return Failover(
        from_leg=earlier.leg_id,
        to_leg=later.leg_id,
        cause=cause,
        failed_at_ns=failed_at,
        next_invite_at_ns=next_at,
        latency_ns=next_at - failed_at,
        original_trunk_id=earlier.trunk,
        attempt=later.attempt or 0,
        evidence=tuple(evidence),
    )


def _frames_of(messages: Sequence[SipMessage]) -> tuple[tuple[str, int], ...]:
    return tuple(
        (m.provenance.source, m.provenance.frame) for m in messages if m.provenance is not None
    )
