"""The correlator on hand-built calls: legs, roles, trunks, failovers, every link rule."""

from __future__ import annotations

import itertools
from pathlib import Path

import attrs
import pytest

from sipchain import Endpoint, Provenance, SipMessage, Trace, build_message, reconstruct
from sipchain.model import IngestReport

CALLER = Endpoint("127.0.0.10", 5060, "udp")
EDGE = Endpoint("127.0.0.1", 5060, "udp")
CARRIER_A = Endpoint("127.0.0.20", 5060, "udp")
CARRIER_B = Endpoint("127.0.0.30", 5060, "udp")
TRUNKS = {"carrier-a": ["127.0.0.20"], "carrier-b": ["127.0.0.30:5060"]}
MS = 1_000_000
T0 = 1_700_000_000_000_000_000


class Wire:
    """Messages on the wire, numbered like frames."""

    def __init__(self) -> None:
        self.messages: list[SipMessage] = []
        self.frame = itertools.count(1)
        self.branch = itertools.count(1)

    def send(self, src: Endpoint, dst: Endpoint, t_ms: float, start: str, headers: list[tuple[str, str]], body: bytes = b"") -> SipMessage:
        m = build_message(start, headers, body)
        frame = next(self.frame)
        m = attrs.evolve(
            m,
            src=src,
            dst=dst,
            timestamp_ns=T0 + int(t_ms * MS),
            provenance=Provenance("mem.pcap", "0" * 64, frame, (frame,), None, "synthetic", "synthetic/sip"),
        )
        self.messages.append(m)
        return m

    def trace(self) -> Trace:
        return Trace(tuple(sorted(self.messages, key=lambda m: m.timestamp_ns or 0)), IngestReport())


class Hop:
    """One INVITE dialog between two endpoints."""

    def __init__(self, wire: Wire, uac: Endpoint, uas: Endpoint, call_id: str, from_tag: str, extra: list[tuple[str, str]] | None = None, number: str = "15551230000", caller: str = "15559990000") -> None:
        self.wire, self.uac, self.uas = wire, uac, uas
        self.call_id, self.from_tag = call_id, from_tag
        self.extra = extra or []
        self.number, self.caller = number, caller
        self.branch = ""
        self.to_tag = ""

    def _headers(self, branch: str, cseq: str, to_tag: str = "") -> list[tuple[str, str]]:
        to = f"<sip:{self.number}@example.net>" + (f";tag={to_tag}" if to_tag else "")
        return [
            ("Via", f"SIP/2.0/UDP {self.uac.ip}:{self.uac.port};branch={branch}"),
            ("From", f"<sip:{self.caller}@example.com>;tag={self.from_tag}"),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", cseq),
            ("Max-Forwards", "70"),
            *self.extra,
        ]

    def invite(self, t: float) -> SipMessage:
        self.branch = f"z9hG4bK-{next(self.wire.branch)}"
        return self.wire.send(self.uac, self.uas, t, f"INVITE sip:{self.number}@{self.uas.ip} SIP/2.0", self._headers(self.branch, "1 INVITE"))

    def resend(self, t: float) -> SipMessage:
        return self.wire.send(self.uac, self.uas, t, f"INVITE sip:{self.number}@{self.uas.ip} SIP/2.0", self._headers(self.branch, "1 INVITE"))

    def reply(self, t: float, status: int, reason: str, *, tag: bool = True) -> SipMessage:
        if tag and not self.to_tag:
            self.to_tag = f"t{self.call_id[-4:]}{self.uas.ip[-2:]}"
        return self.wire.send(self.uas, self.uac, t, f"SIP/2.0 {status} {reason}", self._headers(self.branch, "1 INVITE", self.to_tag if tag else ""))

    def ack(self, t: float, *, failure: bool) -> SipMessage:
        branch = self.branch if failure else f"z9hG4bK-{next(self.wire.branch)}"
        return self.wire.send(self.uac, self.uas, t, f"ACK sip:{self.number}@{self.uas.ip} SIP/2.0", self._headers(branch, "1 ACK", self.to_tag))

    def cancel(self, t: float) -> None:
        self.wire.send(self.uac, self.uas, t, f"CANCEL sip:{self.number}@{self.uas.ip} SIP/2.0", self._headers(self.branch, "1 CANCEL"))
        self.wire.send(self.uas, self.uac, t + 1, "SIP/2.0 200 OK", self._headers(self.branch, "1 CANCEL", self.to_tag))

    def bye(self, t: float) -> None:
        branch = f"z9hG4bK-{next(self.wire.branch)}"
        self.wire.send(self.uac, self.uas, t, f"BYE sip:{self.number}@{self.uas.ip} SIP/2.0", self._headers(branch, "2 BYE", self.to_tag))
        self.wire.send(self.uas, self.uac, t + 1, "SIP/2.0 200 OK", self._headers(branch, "2 BYE", self.to_tag))


def failover_call(wire: Wire, t: float, *, first: str = "503", call_id: str = "cid-1", b2bua: dict[str, list[tuple[str, str]]] | None = None) -> None:
    """caller -> edge -> carrier-a (fails as ``first``) -> carrier-b (answers)."""
    inbound = Hop(wire, CALLER, EDGE, call_id, "ftag1", (b2bua or {}).get("in"))
    a_id = call_id if b2bua is None else f"{call_id}-a"
    b_id = call_id if b2bua is None else f"{call_id}-b"
    a_tag = "ftag1" if b2bua is None else "ea"
    b_tag = "ftag1" if b2bua is None else "eb"
    leg_a = Hop(wire, EDGE, CARRIER_A, a_id, a_tag, (b2bua or {}).get("a"))
    leg_b = Hop(wire, EDGE, CARRIER_B, b_id, b_tag, (b2bua or {}).get("b"))
    inbound.invite(t)
    inbound.reply(t + 1, 100, "Trying", tag=False)
    leg_a.invite(t + 2)
    if first == "timeout":
        leg_a.resend(t + 502)
        leg_a.resend(t + 1502)
        t_next = t + 2002
    elif first == "cancel":
        leg_a.reply(t + 10, 180, "Ringing")
        leg_a.cancel(t + 2002)
        leg_a.reply(t + 2004, 487, "Request Terminated")
        leg_a.ack(t + 2005, failure=True)
        t_next = t + 2010
    else:
        leg_a.reply(t + 10, 100, "Trying", tag=False)
        leg_a.reply(t + 20, int(first), "Failure")
        leg_a.ack(t + 21, failure=True)
        t_next = t + 60
    leg_b.invite(t_next)
    leg_b.reply(t_next + 5, 100, "Trying", tag=False)
    leg_b.reply(t_next + 50, 180, "Ringing")
    inbound.reply(t_next + 51, 180, "Ringing")
    leg_b.reply(t_next + 900, 200, "OK")
    inbound.reply(t_next + 901, 200, "OK")
    inbound.ack(t_next + 902, failure=False)
    leg_b.ack(t_next + 903, failure=False)
    inbound.bye(t_next + 30_000)
    leg_b.bye(t_next + 30_002)


def test_proxy_failover_on_503() -> None:
    wire = Wire()
    failover_call(wire, 0)
    result = reconstruct(wire.trace(), trunks=TRUNKS)
    (chain,) = result.chains
    roles = [(leg.role, leg.trunk, leg.attempt, leg.final_status, leg.end) for leg in chain.legs]
    assert roles == [
        ("inbound", "127.0.0.10:5060", None, 200, "answered"),
        ("outbound", "carrier-a", 1, 503, "failed"),
        ("outbound", "carrier-b", 2, 200, "answered"),
    ]
    (fo,) = chain.failovers
    assert (fo.cause, fo.original_trunk_id, fo.attempt) == ("503", "carrier-a", 2)
    assert fo.failed_at_ns == T0 + 20 * MS
    assert fo.next_invite_at_ns == T0 + 60 * MS
    assert fo.latency_ns == 40 * MS
    assert chain.outcome == "answered"
    assert chain.answered_by == chain.legs[2].leg_id
    assert chain.final_status == 200
    assert {link.rule for link in chain.links} == {"call-id"}
    assert all(link.identifier_match and link.score == 100 for link in chain.links)
    link = chain.links[0]
    assert link.evidence[0].value == "cid-1;tag=ftag1"
    assert link.evidence[0].frames
    # every message is somewhere
    placed = sum(len(leg.messages) for leg in chain.legs) + len(result.unlinked)
    assert placed == len(wire.messages)


def test_timeout_failover_is_inferred_with_evidence() -> None:
    wire = Wire()
    failover_call(wire, 0, first="timeout")
    (chain,) = reconstruct(wire.trace(), trunks=TRUNKS).chains
    primary = chain.legs[1]
    assert (primary.final_status, primary.end) == (None, "timeout")
    assert len(primary.transactions[0].retransmissions) == 2
    (fo,) = chain.failovers
    assert fo.cause == "timeout"
    assert fo.failed_at_ns == T0 + 2 * MS  # the first INVITE: the local timer is not on the wire
    assert fo.latency_ns == 2000 * MS
    assert [e.field for e in fo.evidence] == ["failure", "INVITE retransmissions", "next INVITE"]
    assert fo.evidence[1].value == "2"


def test_cancel_after_180_failover() -> None:
    wire = Wire()
    failover_call(wire, 0, first="cancel")
    (chain,) = reconstruct(wire.trace(), trunks=TRUNKS).chains
    assert chain.legs[1].end == "cancelled"
    (fo,) = chain.failovers
    assert fo.cause == "cancelled"
    assert fo.failed_at_ns == T0 + 2002 * MS


@pytest.mark.parametrize(
    ("headers", "rule"),
    [
        ({"in": [("Session-ID", "a" * 32)], "a": [("Session-ID", f"{'b' * 32};remote={'a' * 32}")], "b": [("Session-ID", "a" * 32)]}, "session-id"),
        ({"in": [("X-CID", "corr-77")], "a": [("X-CID", "corr-77")], "b": [("X-CID", "corr-77")]}, "header:X-CID"),
    ],
)
def test_b2bua_legs_linked_by_identifier_only(headers: dict[str, list[tuple[str, str]]], rule: str) -> None:
    wire = Wire()
    failover_call(wire, 0, b2bua=headers)
    result = reconstruct(wire.trace(), trunks=TRUNKS)
    (chain,) = result.chains
    assert len({leg.call_id for leg in chain.legs}) == 3
    assert {link.rule for link in chain.links} == {rule}
    assert chain.failovers[0].cause == "503"
    evidence = chain.links[0].evidence[0]
    assert evidence.field in ("Session-ID", "X-CID")
    assert evidence.value in ("a" * 32, "corr-77")


def test_configured_correlation_header_with_regex() -> None:
    wire = Wire()
    failover_call(
        wire,
        0,
        b2bua={
            "in": [("X-CC-TRACE", "v=1;i=abc123;z=9")],
            "a": [("X-CC-TRACE", "v=2;i=abc123")],
            "b": [("X-CC-TRACE", "i=abc123")],
        },
    )
    (guess,) = reconstruct(wire.trace(), trunks=TRUNKS).chains  # the header is unknown
    assert {link.rule for link in guess.links} == {"heuristic"}
    (chain,) = reconstruct(wire.trace(), trunks=TRUNKS, correlation={"X-CC-TRACE": r"i=([^;]+)"}).chains
    assert {link.rule for link in chain.links} == {"header:X-CC-TRACE"}
    assert chain.links[0].evidence[0].value == "abc123"


def test_heuristic_links_only_a_unique_candidate() -> None:
    wire = Wire()
    failover_call(wire, 0, b2bua={})  # fresh Call-IDs, no identifier at all
    (chain,) = reconstruct(wire.trace(), trunks=TRUNKS).chains
    assert {link.rule for link in chain.links} == {"heuristic"}
    assert not any(link.identifier_match for link in chain.links)
    assert all(link.score == 30 for link in chain.links)
    # two calls between the same numbers at once: no guessing
    wire = Wire()
    failover_call(wire, 0, b2bua={}, call_id="x1")
    failover_call(wire, 0.5, b2bua={}, call_id="x2")
    result = reconstruct(wire.trace(), trunks=TRUNKS)
    assert not any(link.rule == "heuristic" for chain in result.chains for link in chain.links)


def test_call_id_reuse_is_another_call() -> None:
    wire = Wire()
    failover_call(wire, 0, call_id="reused")
    later = Hop(wire, CALLER, EDGE, "reused", "other-tag")
    later.invite(5_000)
    later.reply(5_010, 486, "Busy Here")
    later.ack(5_011, failure=True)
    same_tag = Hop(wire, CALLER, EDGE, "reused", "ftag1")
    same_tag.invite(600_000)  # ten minutes later
    same_tag.reply(600_010, 486, "Busy Here")
    same_tag.ack(600_011, failure=True)
    result = reconstruct(wire.trace(), trunks=TRUNKS)
    assert sorted(len(c.legs) for c in result.chains) == [1, 1, 3]


def test_reviewer_rejects_a_link() -> None:
    wire = Wire()
    failover_call(wire, 0)
    result = reconstruct(wire.trace(), trunks=TRUNKS)
    (chain,) = result.chains
    to_b = next(link for link in chain.links if chain.leg(link.b).trunk == "carrier-b")
    redone = result.without(to_b)
    assert redone.rejected == (to_b,)
    # the heuristic still ties carrier-b's leg, and says it is only a heuristic
    (chain,) = redone.chains
    (guess,) = [link for link in chain.links if chain.leg(link.b).trunk == "carrier-b"]
    assert (guess.rule, guess.identifier_match) == ("heuristic", False)
    apart = redone.without(guess)
    assert sorted(len(c.legs) for c in apart.chains) == [1, 2]
    assert apart.rejected == (to_b, guess)


def test_response_before_its_request_lands_on_the_right_leg() -> None:
    wire = Wire()
    failover_call(wire, 0)
    # the carrier-b 100 Trying captured earlier than the INVITE (clocks of merged captures)
    trying = next(m for m in wire.messages if m.status == 100 and m.src == CARRIER_B)
    wire.messages[wire.messages.index(trying)] = attrs.evolve(trying, timestamp_ns=T0 + 30 * MS)
    (chain,) = reconstruct(wire.trace(), trunks=TRUNKS).chains
    b = chain.legs[2]
    assert b.trunk == "carrier-b"
    assert any(m.status == 100 for m in b.messages)
    assert b.invite is not None
    assert len(chain.legs) == 3


def test_missing_invite_still_gives_a_leg() -> None:
    wire = Wire()
    failover_call(wire, 0)
    invite_b = next(m for m in wire.messages if m.method == "INVITE" and m.dst == CARRIER_B)
    wire.messages.remove(invite_b)
    (chain,) = reconstruct(wire.trace(), trunks=TRUNKS).chains
    b = next(leg for leg in chain.legs if leg.trunk == "carrier-b")
    assert b.invite is None
    assert b.final_status == 200
    assert b.role == "outbound"


def test_non_call_traffic_is_grouped_and_counted() -> None:
    wire = Wire()
    failover_call(wire, 0)
    ping = Hop(wire, EDGE, CARRIER_A, "ka-1", "k1")
    wire.send(EDGE, CARRIER_A, 5, "OPTIONS sip:carrier-a SIP/2.0", ping._headers("z9hG4bK-ka1", "1 OPTIONS"))
    wire.send(CARRIER_A, EDGE, 6, "SIP/2.0 200 OK", ping._headers("z9hG4bK-ka1", "1 OPTIONS", "x"))
    result = reconstruct(wire.trace(), trunks=TRUNKS)
    (other,) = result.other
    assert (other.kind, other.call_id, len(other.messages)) == ("OPTIONS", "ka-1", 2)
    assert [u.reason for u in result.unlinked] == ["not part of a call (OPTIONS outside an INVITE dialog)"] * 2
    placed = sum(len(leg.messages) for c in result.chains for leg in c.legs) + len(result.unlinked)
    assert placed == len(wire.messages)


def test_trunk_forms(tmp_path: Path) -> None:
    wire = Wire()
    failover_call(wire, 0)
    toml = tmp_path / "trunks.toml"
    toml.write_text('[trunks]\nprimary = ["127.0.0.16/28"]\nbackup = ["127.0.0.30"]\n')
    (chain,) = reconstruct(wire.trace(), trunks=toml).chains
    assert [leg.trunk for leg in chain.legs[1:]] == ["primary", "backup"]
    (chain,) = reconstruct(wire.trace(), trunks={"by-host": ["127.0.0.20:5060"]}).chains
    assert chain.legs[1].trunk == "by-host"
    assert chain.legs[2].trunk == "127.0.0.30:5060"  # unmapped: the address


def test_deterministic() -> None:
    wire = Wire()
    failover_call(wire, 0)
    failover_call(wire, 50, call_id="cid-2", first="408")
    a = reconstruct(wire.trace(), trunks=TRUNKS)
    b = reconstruct(wire.trace(), trunks=TRUNKS)
    assert [c.chain_id for c in a.chains] == [c.chain_id for c in b.chains]
    assert a.chains == b.chains


def test_charging_vector_links_b2bua_legs() -> None:
    wire = Wire()
    pcv = [("P-Charging-Vector", 'icid-value="ab-42";icid-generated-at=192.0.2.1')]
    related = [("P-Charging-Vector", 'icid-value=zz-9;related-icid="ab-42"')]
    failover_call(wire, 0, b2bua={"in": pcv, "a": related, "b": related})
    (chain,) = reconstruct(wire.trace(), trunks=TRUNKS).chains
    assert {link.rule for link in chain.links} == {"charging-vector"}
    assert chain.links[0].evidence[0].value == "ab-42"


def test_null_session_id_and_recycled_values_do_not_link() -> None:
    wire = Wire()
    null = [("Session-ID", "0" * 32)]
    failover_call(wire, 0, b2bua={"in": null, "a": null, "b": null}, call_id="n1")
    failover_call(wire, 0.5, b2bua={"in": null, "a": null, "b": null}, call_id="n2")
    result = reconstruct(wire.trace(), trunks=TRUNKS)
    assert not any(link.rule == "session-id" for c in result.chains for link in c.links)
    # a correlation value that recurs minutes apart names two calls, not one
    wire = Wire()
    same = [("X-CID", "constant")]
    failover_call(wire, 0, b2bua={"in": same, "a": same, "b": same}, call_id="r1")
    failover_call(wire, 300_000, b2bua={"in": same, "a": same, "b": same}, call_id="r2")
    result = reconstruct(wire.trace(), trunks=TRUNKS)
    assert sorted(len(c.legs) for c in result.chains) == [3, 3]


def _with_sdp(origin: str) -> bytes:
    return (
        f"v=0\r\no={origin} IN IP4 127.0.0.10\r\ns=-\r\nc=IN IP4 127.0.0.10\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\n"
    ).encode()


def test_sdp_origin_links_only_a_unique_adjacent_candidate() -> None:
    def call(wire: Wire, t: float, call_id: str, origin: str, number: str) -> None:
        inbound = Hop(wire, CALLER, EDGE, call_id, "f1", number=number)
        out = Hop(wire, EDGE, CARRIER_B, f"{call_id}-x", "e1", number=f"9{number}")
        sdp = [("Content-Type", "application/sdp")]
        inbound.branch = f"z9hG4bK-in-{call_id}"
        wire.send(CALLER, EDGE, t, f"INVITE sip:{number}@x SIP/2.0", inbound._headers(inbound.branch, "1 INVITE") + sdp, _with_sdp(origin))
        out.branch = f"z9hG4bK-out-{call_id}"
        wire.send(EDGE, CARRIER_B, t + 5, f"INVITE sip:9{number}@x SIP/2.0", out._headers(out.branch, "1 INVITE") + sdp, _with_sdp(origin))
        out.reply(t + 50, 200, "OK")
        inbound.reply(t + 51, 200, "OK")

    wire = Wire()
    call(wire, 0, "s1", "alice 8812 8812", "15550001")
    (chain,) = reconstruct(wire.trace(), trunks=TRUNKS).chains
    (link,) = chain.links
    assert (link.rule, link.score, link.identifier_match) == ("sdp-origin", 60, True)
    assert link.evidence[0].value == "alice 8812 IN IP4 127.0.0.10"
    # the same origin on two calls at once (a user agent that never changes it)
    wire = Wire()
    call(wire, 0, "s1", "alice 8812 8812", "15550001")
    call(wire, 1, "s2", "alice 8812 8812", "15550002")
    assert len(reconstruct(wire.trace(), trunks=TRUNKS).chains) == 4


def test_dialog_states_from_the_table() -> None:
    wire = Wire()
    failover_call(wire, 0)
    (chain,) = reconstruct(wire.trace(), trunks=TRUNKS).chains
    inbound, primary, secondary = chain.legs
    assert [state for _, state in secondary.dialogs] == ["terminated"]  # answered, then BYE
    assert [state for _, state in primary.dialogs] == ["terminated"]  # 503
    assert inbound.dialogs
    assert inbound.dialogs[-1][1] == "terminated"


def _tag_export(wire: Wire, dst: Endpoint, pairs: tuple[tuple[str, str], ...]) -> None:
    """Give every message sent to or from ``dst`` export metadata, as a platform export would."""
    wire.messages = [
        attrs.evolve(m, metadata=pairs) if dst in (m.src, m.dst) else m for m in wire.messages
    ]


def test_export_metadata_links_and_names_trunks() -> None:
    wire = Wire()
    failover_call(wire, 0, b2bua={})
    _tag_export(wire, CALLER, (("conversationId", "conv-1"),))
    _tag_export(wire, CARRIER_A, (("conversationId", "conv-1"), ("trunk_id", "byoc-primary")))
    _tag_export(wire, CARRIER_B, (("callidAleg", "cid-1"), ("trunk_id", "byoc-secondary")))
    (chain,) = reconstruct(wire.trace()).chains  # no trunk map: the export names the trunks
    assert [leg.trunk for leg in chain.legs[1:]] == ["byoc-primary", "byoc-secondary"]
    rules = {link.rule for link in chain.links}
    assert {"export:conversationId", "export:callidAleg"} <= rules
    assert chain.failovers[0].original_trunk_id == "byoc-primary"


def test_export_failover_metadata_ties_the_failed_attempt() -> None:
    wire = Wire()
    failover_call(wire, 0, b2bua={})
    failure_at = T0 + 20 * MS  # the 503 on carrier-a
    _tag_export(
        wire,
        CARRIER_B,
        (("original_trunk_id", "carrier-a"), ("failover_timestamp", str(failure_at // 1_000_000)), ("trunk_id", "carrier-b")),
    )
    (chain, *_) = reconstruct(wire.trace(), trunks=TRUNKS, correlation={}).chains
    link = next(link for link in chain.links if link.rule == "export:failover")
    assert chain.leg(link.a).trunk == "carrier-a"
    assert chain.leg(link.b).trunk == "carrier-b"
    assert [e.field for e in link.evidence] == ["original_trunk_id", "failover_timestamp"]
    assert any(e.field == "original_trunk_id" for e in chain.failovers[0].evidence)
