"""Linking strategies: which legs belong to the same logical call, and why.

Strongest first (``docs/correlate.md``):

=====================  =====  ==========  ==========================================
rule                   score  identifier  ties two legs when
=====================  =====  ==========  ==========================================
``call-id``            100    yes         same Call-ID and From-tag on another hop
``session-id``          90    yes         an RFC 7989 Session-ID UUID in common
``header:<name>``       80    yes         a configured correlation header value
``charging-vector``     80    yes         P-Charging-Vector icid-value / related-icid
``sdp-origin``          60    yes         the same SDP ``o=`` session, adjacent hosts,
                                          within seconds, and only one candidate
``heuristic``           30    no          caller and callee numbers, adjacent hosts,
                                          within seconds, and only one candidate
=====================  =====  ==========  ==========================================

Every link carries its evidence: the field, the value and the frames of the
messages that carried it. Links are closed transitively with a union-find, so a
chain is a connected component; a link a reviewer rejected is never made.
All steps are O(n log n) in legs: grouping by value, never comparing all pairs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from sipchain.correlate._legs import node
from sipchain.model import Evidence, Leg, Link, SipMessage, parse_instant

__all__ = ["DEFAULT_CORRELATION_HEADERS", "UnionFind", "adjacent_links", "find_links"]

#: Correlation headers read by default: name -> value regex (group 1), or
#: ``None`` for the whole value. ``correlation=`` adds to or overrides these.
DEFAULT_CORRELATION_HEADERS: Mapping[str, str | None] = {
    "X-CID": None,
    "X-Call-ID": None,
    "X-Original-Call-ID": None,
    "x-inin-cnv": None,
    "Av-Global-Session-ID": None,
    "Ms-Correlation-Id": None,
    "Cisco-Guid": None,
    "User-to-User": None,
}

#: Legs further apart than this (INVITE to INVITE) are never tied by a value
#: that recurs (Call-ID reuse, recycled correlation ids).
REUSE_WINDOW_NS = 120_000_000_000
#: A value shared by more legs than this is not an identifier of one call.
MAX_LEGS_PER_VALUE = 64
#: Heuristic: the downstream INVITE follows the upstream one within this.
HEURISTIC_WINDOW_NS = 10_000_000_000
_UNINFORMATIVE = {"", "0", "-", "null", "none", "unknown", "0" * 32}


class UnionFind:
    """Disjoint sets over leg ids, with path halving and union by size."""

    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {i: i for i in items}
        self.size = dict.fromkeys(self.parent, 1)

    def find(self, item: str) -> str:
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True


def _frames(messages: Iterable[SipMessage]) -> tuple[tuple[str, int], ...]:
    out = []
    for m in messages:
        if m.provenance is not None:
            out.append((m.provenance.source, m.provenance.frame))
    return tuple(sorted(set(out)))


def _link_groups(
    groups: Mapping[tuple[str, str], list[tuple[Leg, tuple[SipMessage, ...]]]],
    rule: str,
    score: int,
    field_of: Mapping[str, str] | None = None,
) -> list[Link]:
    """Star-link the legs of each value group, split where INVITEs are far apart."""
    links: list[Link] = []
    for (field, value), members in groups.items():
        if len(members) < 2 or value.strip().lower() in _UNINFORMATIVE:
            continue
        members.sort(key=lambda x: (x[0].started_ns, x[0].leg_id))
        clusters: list[list[tuple[Leg, tuple[SipMessage, ...]]]] = []
        cluster_end = -1
        for leg, carriers in members:
            if not clusters or leg.started_ns > cluster_end + REUSE_WINDOW_NS:
                clusters.append([])
            clusters[-1].append((leg, carriers))
            cluster_end = max(cluster_end, leg.ended_ns)
        for cluster in clusters:
            if len(cluster) < 2 or len(cluster) > MAX_LEGS_PER_VALUE:
                continue
            root, root_carriers = cluster[0]
            for leg, carriers in cluster[1:]:
                links.append(
                    Link(
                        a=root.leg_id,
                        b=leg.leg_id,
                        rule=rule,
                        evidence=(Evidence(field, value, _frames((*root_carriers, *carriers))),),
                        score=score,
                        identifier_match=True,
                    )
                )
    return links


def _invite_carriers(leg: Leg) -> tuple[SipMessage, ...]:
    return (leg.invite,) if leg.invite is not None else leg.messages[:1]


def find_links(
    legs: Sequence[Leg],
    correlation: Mapping[str, str | None],
    trunk_of: Mapping[str, str | None] | None = None,
) -> list[Link]:
    """Every link between legs, by every rule, strongest first."""
    links: list[Link] = []

    # 1. same Call-ID and From-tag on another hop
    by_dialog: dict[tuple[str, str], list[tuple[Leg, tuple[SipMessage, ...]]]] = defaultdict(list)
    for leg in legs:
        if leg.from_tag:
            dialog = f"{leg.call_id};tag={leg.from_tag}"
            by_dialog[("Call-ID;From-tag", dialog)].append((leg, _invite_carriers(leg)))
    links += _link_groups(by_dialog, "call-id", 100)

    # 2-4. identifiers carried in headers
    session: dict[tuple[str, str], list[tuple[Leg, tuple[SipMessage, ...]]]] = defaultdict(list)
    headers: dict[tuple[str, str], list[tuple[Leg, tuple[SipMessage, ...]]]] = defaultdict(list)
    icid: dict[tuple[str, str], list[tuple[Leg, tuple[SipMessage, ...]]]] = defaultdict(list)
    patterns = {name: (re.compile(rx) if rx else None) for name, rx in correlation.items()}
    interesting = frozenset({"session-id", "p-charging-vector", *(name.lower() for name in patterns)})
    for leg in legs:
        seen_sid: dict[str, list[SipMessage]] = defaultdict(list)
        seen_hdr: dict[tuple[str, str], list[SipMessage]] = defaultdict(list)
        seen_icid: dict[str, list[SipMessage]] = defaultdict(list)
        for m in leg.messages:
            if m.method is None and m.status is not None and m.status < 180:
                continue  # 100 Trying carries nothing of the session
            hdrs = m.headers
            present = hdrs.present(interesting)
            if not present:
                continue
            if "session-id" in present:
                sid = m.session_id
                if sid is not None:
                    for uuid in sid.uuids():
                        seen_sid[uuid].append(m)
            for name, rx in patterns.items():
                if name.lower() not in present:
                    continue
                value = hdrs.get(name)
                if value is None:
                    continue
                if rx is not None:
                    match = rx.search(value)
                    if match is None:
                        continue
                    value = match.group(1) if match.groups() else match.group()
                seen_hdr[(name, value.strip())].append(m)
            if "p-charging-vector" in present:
                cv = m.charging_vector
                if cv is not None:
                    for v in (cv.icid_value, cv.related_icid):
                        if v:
                            seen_icid[v].append(m)
        for uuid, carriers in seen_sid.items():
            session[("Session-ID", uuid)].append((leg, tuple(carriers[:2])))
        for (name, value), carriers in seen_hdr.items():
            headers[(name, value)].append((leg, tuple(carriers[:2])))
        for value, carriers in seen_icid.items():
            icid[("P-Charging-Vector icid", value)].append((leg, tuple(carriers[:2])))
    links += _link_groups(session, "session-id", 90)
    by_rule: dict[str, dict[tuple[str, str], list[tuple[Leg, tuple[SipMessage, ...]]]]] = defaultdict(dict)
    for (name, value), members in headers.items():
        by_rule[f"header:{name}"][(name, value)] = members
    for rule, groups in sorted(by_rule.items()):
        links += _link_groups(groups, rule, 80)
    links += _link_groups(icid, "charging-vector", 80)
    links += _metadata_links(legs)
    links += _failover_metadata_links(legs, trunk_of or {})

    return links


#: Export metadata names (and their aliases) that identify one conversation.
CONVERSATION_KEYS = ("conversationId", "conversation_id", "conversationid")
A_LEG_KEYS = ("callidAleg", "callid_aleg", "callIdAleg")


def _parse_instant(value: str) -> int | None:
    try:
        return parse_instant(value)
    except ValueError:
        return None


#: A failover_timestamp within this of the failed attempt's failure or INVITE ties them.
FAILOVER_TOLERANCE_NS = 200_000_000


def _failover_metadata_links(legs: Sequence[Leg], trunk_of: Mapping[str, str | None]) -> list[Link]:
    """A leg whose export records name ``original_trunk_id`` and
    ``failover_timestamp`` tied to the one earlier leg on that trunk whose
    last message (its failure, or its INVITE for a timeout) or first INVITE
    lies within ``FAILOVER_TOLERANCE_NS`` of the timestamp (score 70)."""
    by_trunk: dict[str, list[Leg]] = defaultdict(list)
    for leg in legs:
        trunk = trunk_of.get(leg.leg_id)
        if trunk:
            by_trunk[trunk].append(leg)
    links: list[Link] = []
    for leg in legs:
        carrier = next((m for m in leg.messages if m.metadata and m.meta("original_trunk_id", "originalTrunkId")), None)
        if carrier is None:
            continue
        original = carrier.meta("original_trunk_id", "originalTrunkId") or ""
        stamp = carrier.meta("failover_timestamp", "failoverTimestamp")
        at = _parse_instant(stamp) if stamp else None
        if at is None:
            continue
        candidates = [
            other
            for other in by_trunk.get(original, [])
            if other.leg_id != leg.leg_id
            and other.started_ns <= leg.started_ns
            and min(abs(other.ended_ns - at), abs(other.started_ns - at)) <= FAILOVER_TOLERANCE_NS
        ]
        if len(candidates) != 1:
            continue
        other = candidates[0]
        links.append(
            Link(
                a=other.leg_id,
                b=leg.leg_id,
                rule="export:failover",
                evidence=(
                    Evidence("original_trunk_id", original, _frames((carrier,))),
                    Evidence("failover_timestamp", stamp or "", _frames((carrier,))),
                ),
                score=70,
                identifier_match=True,
            )
        )
    return links


def _metadata_links(legs: Sequence[Leg]) -> list[Link]:
    """Links from export metadata: a shared conversation id (score 85), and a
    leg whose records name the A-leg's Call-ID (``callidAleg``) tied to the
    legs carrying that Call-ID (score 85)."""
    conversation: dict[tuple[str, str], list[tuple[Leg, tuple[SipMessage, ...]]]] = defaultdict(list)
    a_leg: dict[tuple[str, str], list[tuple[Leg, tuple[SipMessage, ...]]]] = defaultdict(list)
    for leg in legs:
        seen_conv: dict[str, SipMessage] = {}
        seen_aleg: dict[str, SipMessage] = {}
        for m in leg.messages:
            if not m.metadata:
                continue
            value = m.meta(*CONVERSATION_KEYS)
            if value:
                seen_conv.setdefault(value, m)
            value = m.meta(*A_LEG_KEYS)
            if value and value != leg.call_id:
                seen_aleg.setdefault(value, m)
        for value, m in seen_conv.items():
            conversation[("conversationId", value)].append((leg, (m,)))
        for value, m in seen_aleg.items():
            a_leg[("callidAleg", value)].append((leg, (m,)))
    for leg in legs:  # the A-legs themselves join the group of their Call-ID
        key = ("callidAleg", leg.call_id)
        if key in a_leg:
            a_leg[key].append((leg, _invite_carriers(leg)))
    return _link_groups(conversation, "export:conversationId", 85) + _link_groups(a_leg, "export:callidAleg", 85)


def _digits(value: str | None) -> str:
    return "".join(c for c in value or "" if c.isdigit())[-10:]


def _numbers(leg: Leg) -> tuple[str, str] | None:
    m = leg.invite
    if m is None:
        return None
    caller = _digits(m.from_.uri.user if m.from_ is not None else None)
    uri = m.request_uri
    callee = _digits(uri.user if uri is not None else None) or _digits(m.to.uri.user if m.to is not None else None)
    return (caller, callee) if caller and callee else None


def _origins(leg: Leg) -> dict[str, SipMessage]:
    """The SDP ``o=`` sessions of a leg's offers and answers."""
    found: dict[str, SipMessage] = {}
    for m in leg.messages:
        if not m.body or m.method not in (None, "INVITE", "ACK", "UPDATE"):
            continue
        sdp = m.sdp
        if sdp is None or sdp.origin is None:
            continue
        o = sdp.origin
        if o.session_id in ("0", ""):
            continue
        found.setdefault(f"{o.username} {o.session_id} {o.nettype} {o.addrtype} {o.address}", m)
    return found


def adjacent_links(legs: Sequence[Leg], component_of: Mapping[str, str], rule: str) -> list[Link]:
    """Tie a leg to the one upstream leg that plausibly forwarded it.

    Candidates: the upstream leg's callee host is the leg's caller host, its
    INVITE came first and at most ``HEURISTIC_WINDOW_NS`` before, they are in
    different chains, and they share evidence: the same SDP ``o=`` session
    (``rule="sdp-origin"``, an identifier, score 60) or the same caller and
    callee numbers (``rule="heuristic"``, not an identifier, score 30). Linked
    only when exactly one candidate exists and the leg's own chain holds no
    plausible upstream leg already, so two calls that look alike at the same
    moment stay apart (user agents that reuse one SDP session id, or the same
    numbers called twice). Evidence is only read for legs that need it.
    """
    memo: dict[str, dict[str, SipMessage]] = {}

    def keys(leg: Leg) -> dict[str, SipMessage]:
        found = memo.get(leg.leg_id)
        if found is None:
            if rule == "sdp-origin":
                found = _origins(leg)
            else:
                numbers = _numbers(leg)
                found = {} if numbers is None or leg.invite is None else {f"{numbers[0]};{numbers[1]}": leg.invite}
            memo[leg.leg_id] = found
        return found

    by_callee: dict[str, list[Leg]] = defaultdict(list)  # legs by the host their INVITE reached
    for leg in legs:
        if leg.uas is not None:
            by_callee[node(leg.uas, leg.uac)].append(leg)
    links: list[Link] = []
    for leg in legs:
        if leg.uac is None:
            continue
        caller = node(leg.uac, leg.uas)
        upstream = [
            up
            for up in by_callee.get(caller, ())
            if up.leg_id != leg.leg_id and 0 <= leg.started_ns - up.started_ns <= HEURISTIC_WINDOW_NS
        ]
        if not upstream or any(component_of[up.leg_id] == component_of[leg.leg_id] for up in upstream):
            continue  # nothing upstream, or its own chain already explains it
        mine = keys(leg)
        if not mine:
            continue
        candidates: dict[str, tuple[Leg, str, SipMessage, SipMessage]] = {}
        for up in upstream:
            theirs = keys(up)
            for value, my_msg in mine.items():
                if value in theirs:
                    candidates.setdefault(up.leg_id, (up, value, theirs[value], my_msg))
        if len(candidates) != 1:
            continue
        ((up, value, their_msg, my_msg),) = candidates.values()
        field = "SDP o=" if rule == "sdp-origin" else "caller;callee"
        links.append(
            Link(
                a=up.leg_id,
                b=leg.leg_id,
                rule=rule,
                evidence=(
                    Evidence(field, value, _frames((their_msg, my_msg))),
                    Evidence("adjacent host", caller, _frames((their_msg, my_msg))),
                ),
                score=60 if rule == "sdp-origin" else 30,
                identifier_match=rule == "sdp-origin",
            )
        )
    return links
