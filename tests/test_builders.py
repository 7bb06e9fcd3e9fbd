"""The synthetic call builders write correct SIP and tell the truth about it."""

from __future__ import annotations

import itertools
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest

from sipchain import SipMessage, parse_message
from sipchain.testing._builders import (
    DEFAULT_TRUNKS,
    NULL_UUID,
    BuiltCall,
    CallBuilder,
    LegTruth,
    Node,
    Timing,
    timer_a_offsets,
)
from sipchain.testing._crowd import Crowd, build_crowd, pair_counts, pairwise_scores

MS = 1_000_000
S = 1_000_000_000

V6: dict[str, Any] = {
    "caller": Node("platform-6", "2001:db8::10"),
    "edge": Node("edge-6", "2001:db8::1", port=5080),
    "trunks": (
        Node("carrier-6a", "2001:db8:1::20"),
        Node("carrier-6b", "2001:db8:2::30", transport="tcp"),
    ),
}

# (id, CallBuilder keyword arguments): every edge mode, outcome and ending
SCENARIOS: list[tuple[str, dict[str, Any]]] = [
    ("proxy-answer", {}),
    ("proxy-answer-callee-bye-reinvite", {"bye_from": "callee", "reinvite": True}),
    ("proxy-503-answer", {"attempts": ("503", "answer"), "link": "session-id"}),
    ("proxy-timeout-answer", {"attempts": ("timeout", "answer"), "charging_vector": True}),
    ("proxy-cancel-answer-183", {"attempts": ("cancel-after-180", "answer"), "early_media": True}),
    ("proxy-all-fail", {"attempts": ("408", "timeout", "cancel-after-180")}),
    ("proxy-relay-486", {"attempts": ("500", "486"), "link": "both"}),
    ("proxy-tcp-timeout", {"attempts": ("timeout", "timeout", "answer"), "reinvite": True}),
    ("b2bua-answer", {"mode": "b2bua"}),
    ("b2bua-xcid-fail-over", {"mode": "b2bua", "link": "x-cid", "attempts": ("503", "answer")}),
    (
        "b2bua-sid-timeout-callee-bye",
        {
            "mode": "b2bua",
            "link": "session-id",
            "attempts": ("timeout", "answer"),
            "bye_from": "callee",
        },
    ),
    (
        "b2bua-cancel-reinvite",
        {
            "mode": "b2bua",
            "attempts": ("cancel-after-180", "answer"),
            "reinvite": True,
            "charging_vector": True,
        },
    ),
    ("b2bua-all-fail", {"mode": "b2bua", "attempts": ("502", "timeout", "603")}),
    ("b2bua-no-link", {"mode": "b2bua", "link": "none", "attempts": ("480", "answer")}),
    ("proxy-ipv6", {**V6, "attempts": ("503", "answer"), "link": "both", "charging_vector": True}),
    (
        "b2bua-ipv6-callee-bye",
        {
            **V6,
            "mode": "b2bua",
            "attempts": ("timeout", "answer"),
            "reinvite": True,
            "bye_from": "callee",
        },
    ),
]
IDS = [name for name, _ in SCENARIOS]
KWARGS = [kwargs for _, kwargs in SCENARIOS]


def build(seed: int = 7, **kwargs: Any) -> BuiltCall:
    return CallBuilder(random.Random(seed), **kwargs).build()


def legs_of(call: BuiltCall) -> Iterator[tuple[LegTruth, tuple[SipMessage, ...]]]:
    for leg in call.truth.legs:
        yield leg, call.leg_messages(leg.leg)


def invite_of(messages: Sequence[SipMessage]) -> SipMessage:
    first = messages[0]
    assert first.method == "INVITE"
    return first


# ---------------------------------------------------------------------------
# Well-formed messages
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", KWARGS, ids=IDS)
def test_messages_parse_strictly(kwargs: dict[str, Any]) -> None:
    call = build(**kwargs)
    assert call.messages
    for m in call.messages:
        again = parse_message(m.raw, strict=True)
        assert again.raw == m.raw
        assert m.defects == (), (m.start_line, m.defects)
        assert m.length == len(m.raw)
        assert m.content_length == len(m.body)
        assert m.branch is not None
        assert m.branch.startswith("z9hG4bK")
        for via in m.via:
            assert via.branch is not None
            assert via.branch.startswith("z9hG4bK")
        if m.is_request:
            assert m.max_forwards in (69, 70)
        else:
            assert "Max-Forwards" not in m.headers
        if m.body:
            assert m.content_type == "application/sdp"
            assert m.sdp is not None
            assert m.sdp.defects == ()
            assert m.sdp.origin is not None


@pytest.mark.parametrize("kwargs", KWARGS, ids=IDS)
def test_origin_and_provenance(kwargs: dict[str, Any]) -> None:
    call = build(**kwargs)
    assert all(m.timestamp_ns is not None for m in call.messages)
    times = [m.timestamp_ns or 0 for m in call.messages]
    assert times == sorted(times)
    for frame, m in enumerate(call.messages, 1):
        p = m.provenance
        assert p is not None
        assert p.source == "memory:call-0"
        assert p.source_sha256 == "0" * 64
        assert (p.frame, p.frames, p.offset) == (frame, (frame,), None)
        assert (p.time_meaning, p.parser_chain) == ("synthetic", "synthetic/sip")
        assert m.src is not None
        assert m.dst is not None
        assert m.src.transport == m.dst.transport
        assert m.src.transport in ("udp", "tcp")
        assert m.via[0].transport.lower() == m.src.transport  # the hop's transport
        assert call.truth_of(m) is call.message_truth[frame - 1]


@pytest.mark.parametrize("kwargs", KWARGS, ids=IDS)
def test_requests_and_responses_match(kwargs: dict[str, Any]) -> None:
    """Every response answers a request of its leg: same branch, Call-ID, CSeq."""
    call = build(**kwargs)
    for _, messages in legs_of(call):
        requests = {
            (m.branch, m.cseq.number, m.cseq.method) for m in messages if m.is_request and m.cseq
        }
        for m in messages:
            assert m.call_id is not None
            assert m.cseq is not None
            if m.is_response:
                assert (m.branch, m.cseq.number, m.cseq.method) in requests, m.start_line
        ends = {messages[0].src, messages[0].dst}
        assert all({m.src, m.dst} == ends for m in messages), "a leg stays on one hop"


# ---------------------------------------------------------------------------
# Dialogs and branches
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", KWARGS, ids=IDS)
def test_dialogs_are_consistent(kwargs: dict[str, Any]) -> None:
    call = build(**kwargs)
    for leg, messages in legs_of(call):
        invite = invite_of(messages)
        assert invite.to_tag is None
        assert (invite.call_id, invite.from_tag, invite.branch) == (
            leg.call_id,
            leg.from_tag,
            leg.branch,
        )
        assert invite.cseq is not None
        tagged = False
        for m in messages:
            assert m.call_id == leg.call_id
            assert m.cseq is not None
            if m.is_response and m.status == 100:
                assert m.to_tag is None
            elif m.is_response and m.cseq is not None and m.cseq.method == "INVITE":
                assert m.to_tag is not None, m.start_line
                tagged = True
            if m.method == "CANCEL" or (m.method == "INVITE" and m.raw == invite.raw):
                assert m.to_tag is None  # CANCEL copies the INVITE's To
            elif tagged:
                assert m.to_tag is not None, f"{m.start_line} after the first 18x/2xx"
            initial = m.cseq.number == invite.cseq.number and m.cseq.method in ("INVITE", "CANCEL")
            if not initial:  # ACK, re-INVITE, BYE and their responses: the dialog's tags
                assert {m.from_tag, m.to_tag} == {leg.from_tag, leg.to_tag}, m.start_line
        finals = [
            m
            for m in messages
            if m.is_response and m.status is not None and m.status >= 200 and m.cseq == invite.cseq
        ]
        if leg.end == "timeout":
            assert finals == []
            assert leg.final_status is None
        else:
            assert [f.status for f in finals] == [leg.final_status]
            assert finals[0].to_tag == leg.to_tag


@pytest.mark.parametrize("kwargs", KWARGS, ids=IDS)
def test_branches(kwargs: dict[str, Any]) -> None:
    """ACK to non-2xx and CANCEL reuse the INVITE branch; 2xx ACK, BYE, re-INVITE get new ones."""
    call = build(**kwargs)
    seen_new: set[str] = set()
    for leg, messages in legs_of(call):
        invite = invite_of(messages)
        assert invite.cseq is not None
        for m in messages:
            if not m.is_request or m.raw == invite.raw:
                continue
            assert m.cseq is not None
            assert m.branch is not None
            if m.method == "CANCEL":
                assert m.branch == invite.branch
                assert m.cseq.number == invite.cseq.number
                assert len(m.via) == 1
            elif m.method == "ACK" and leg.final_status is not None and leg.final_status >= 300:
                assert m.branch == invite.branch
                assert m.cseq.number == invite.cseq.number
                assert len(m.via) == 1
                assert m.target == invite.target
            else:  # ACK for 2xx, BYE, re-INVITE: a new transaction
                assert m.method in ("ACK", "BYE", "INVITE")
                assert m.branch != invite.branch
                if m.method == "ACK":
                    assert m.cseq.number == invite.cseq.number or m.cseq.number > invite.cseq.number
                assert m.branch not in seen_new
                seen_new.add(m.branch)


def test_cseq_grows_in_dialog() -> None:
    call = build(attempts=("answer",), reinvite=True)
    inbound = call.leg_messages("c0.in")
    numbers = [m.cseq.number for m in inbound if m.is_request and m.method != "ACK" and m.cseq]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 3  # INVITE, re-INVITE, BYE


# ---------------------------------------------------------------------------
# Edge modes
# ---------------------------------------------------------------------------


def test_proxy_keeps_call_id_and_from_tag() -> None:
    call = build(attempts=("503", "timeout", "answer"))
    inbound, *outbound = call.truth.legs
    invite_in = invite_of(call.leg_messages(inbound.leg))
    branches = {inbound.branch}
    for leg in outbound:
        assert (leg.call_id, leg.from_tag) == (inbound.call_id, inbound.from_tag)
        assert leg.branch not in branches
        branches.add(leg.branch)
        invite = invite_of(call.leg_messages(leg.leg))
        assert invite.max_forwards == 69
        assert len(invite.via) == 2
        assert invite.via[1].raw == invite_in.via[0].raw
        assert invite.record_route
        assert invite.body == invite_in.body
        assert invite.cseq == invite_in.cseq


@pytest.mark.parametrize("link", ["x-cid", "session-id", "both", "none"])
def test_b2bua_legs_share_no_call_id(link: str) -> None:
    call = build(
        mode="b2bua",
        link=link,
        attempts=("503", "cancel-after-180", "answer"),
        charging_vector=True,
        reinvite=True,
    )
    inbound, *outbound = call.truth.legs
    in_messages = call.leg_messages(inbound.leg)
    in_origins = {m.sdp.origin for m in in_messages if m.sdp}
    in_uuids = {u for m in in_messages if m.session_id for u in m.session_id.uuids()}
    in_icids = {m.charging_vector.icid_value for m in in_messages if m.charging_vector}
    seen_call_ids = {inbound.call_id}
    seen_tags = {inbound.from_tag}
    for leg in outbound:
        assert leg.call_id not in seen_call_ids
        assert leg.from_tag not in seen_tags
        seen_call_ids.add(leg.call_id)
        seen_tags.add(leg.from_tag)
        messages = call.leg_messages(leg.leg)
        assert all(m.call_id == leg.call_id for m in messages)
        assert not {m.sdp.origin for m in messages if m.sdp} & in_origins
        assert not {m.charging_vector.icid_value for m in messages if m.charging_vector} & in_icids
        sent_by_edge = [
            m for m in messages if m.is_request and m.src is not None and m.src.ip == "10.20.0.1"
        ]
        xcids = {m.headers.get("X-CID") for m in sent_by_edge}
        uuids = {u for m in messages if m.session_id for u in m.session_id.uuids()}
        if link in ("x-cid", "both"):
            assert xcids == {inbound.call_id}
        else:
            assert not any("X-CID" in m.headers for m in messages)
        if link in ("session-id", "both"):
            assert uuids & in_uuids
        else:
            assert not any("Session-ID" in m.headers for m in messages)
            assert not in_uuids
        invite = invite_of(messages)
        assert invite.max_forwards == 70
        assert len(invite.via) == 1
        assert not invite.record_route


def test_session_id_swaps_in_responses() -> None:
    call = build(attempts=("503", "answer"), link="session-id", bye_from="callee")
    for _, messages in legs_of(call):
        for m in messages:
            sid = m.session_id
            assert sid is not None
            assert sid.remote is not None
            assert len(sid.local) == 32
            assert int(sid.local, 16) >= 0
        invite = invite_of(messages)
        caller_uuid = invite.session_id.local if invite.session_id else None
        assert invite.session_id is not None
        assert invite.session_id.remote == NULL_UUID
        for m in messages:
            assert m.session_id is not None
            if (
                m.is_response
                and m.cseq is not None
                and m.cseq.method == "INVITE"
                and m.status != 100
            ):
                assert m.session_id.remote == caller_uuid
                assert m.session_id.local not in (caller_uuid, NULL_UUID)


# ---------------------------------------------------------------------------
# Timeouts and failovers
# ---------------------------------------------------------------------------


def test_timer_a_offsets() -> None:
    assert timer_a_offsets(4 * S) == (500 * MS, 1500 * MS, 3500 * MS)
    assert timer_a_offsets(3500 * MS) == (500 * MS, 1500 * MS)
    assert timer_a_offsets(100 * S)[-1] == 31_500 * MS  # stops at timer B (32 s)


def test_timeout_retransmits_on_timer_a() -> None:
    timing = Timing(invite_timeout_ns=10 * S, failover_latency_ns=(50 * MS, 50 * MS))
    call = build(attempts=("timeout", "answer"), timing=timing)
    copies = call.leg_messages("c0.out1")
    assert len(copies) == 5
    assert all(m.raw == copies[0].raw for m in copies)
    assert [call.truth_of(m).retransmission for m in copies] == [False, True, True, True, True]
    times = [m.timestamp_ns or 0 for m in copies]
    assert [b - a for a, b in itertools.pairwise(times)] == [500 * MS, 1 * S, 2 * S, 4 * S]
    (failover,) = call.truth.failovers
    next_invite = invite_of(call.leg_messages("c0.out2"))
    assert failover.cause == "timeout"
    assert failover.failed_at_ns == times[0]
    assert failover.next_invite_at_ns == next_invite.timestamp_ns == times[0] + 10 * S + 50 * MS
    assert failover.latency_ns == 10 * S + 50 * MS
    assert (failover.from_leg, failover.to_leg, failover.original_trunk) == (
        "c0.out1",
        "c0.out2",
        "carrier-a",
    )


def test_timeout_over_tcp_does_not_retransmit() -> None:
    tcp = Node("carrier-t", "192.0.2.99", transport="tcp")
    call = build(attempts=("timeout", "answer"), trunks=(tcp, DEFAULT_TRUNKS[0]))
    copies = call.leg_messages("c0.out1")
    assert len(copies) == 1
    assert copies[0].src is not None
    assert copies[0].src.transport == "tcp"
    assert copies[0].via[0].transport == "TCP"
    assert copies[0].target is not None
    assert copies[0].target.endswith(";transport=tcp")


def test_failover_truth_matches_the_wire() -> None:
    timing = Timing(failover_latency_ns=(20 * MS, 400 * MS))
    call = build(
        attempts=("503", "cancel-after-180", "timeout", "408", "answer"),
        timing=timing,
        trunks=DEFAULT_TRUNKS[:2],
    )
    truth = call.truth
    assert [f.cause for f in truth.failovers] == ["503", "cancelled", "timeout", "408"]
    assert [(f.from_attempt, f.to_attempt) for f in truth.failovers] == [
        (1, 2),
        (2, 3),
        (3, 4),
        (4, 5),
    ]
    assert [leg.trunk for leg in truth.legs[1:]] == [
        "carrier-a",
        "carrier-b",
        "carrier-a",
        "carrier-b",
        "carrier-a",
    ]
    assert [leg.end for leg in truth.legs] == [
        "answered",
        "failed",
        "cancelled",
        "timeout",
        "failed",
        "answered",
    ]
    assert [leg.final_status for leg in truth.legs] == [200, 503, 487, None, 408, 200]
    for f in truth.failovers:
        failed = call.leg_messages(f.from_leg)
        following = invite_of(call.leg_messages(f.to_leg))
        assert f.next_invite_at_ns == following.timestamp_ns
        assert f.latency_ns == f.next_invite_at_ns - f.failed_at_ns
        if f.cause == "timeout":
            evident = invite_of(failed)
        elif f.cause == "cancelled":
            (evident,) = [m for m in failed if m.method == "CANCEL"]
        else:
            (evident,) = [m for m in failed if m.status == int(f.cause)]
        assert f.failed_at_ns == evident.timestamp_ns
        if f.cause != "timeout":
            assert 20 * MS <= f.latency_ns <= 400 * MS
    assert truth.outcome == "answered"
    assert truth.answered_by == "c0.out5"


@pytest.mark.parametrize(
    ("mode", "attempts", "status", "from_trunk"),
    [
        ("proxy", ("503", "486"), 486, True),
        ("proxy", ("503", "timeout"), 408, False),
        ("proxy", ("cancel-after-180",), 408, False),
        ("b2bua", ("503", "603"), 603, False),
    ],
)
def test_failed_call_relays_a_final_failure(
    mode: str, attempts: tuple[str, ...], status: int, from_trunk: bool
) -> None:
    call = build(mode=mode, attempts=attempts)
    inbound = call.leg_messages("c0.in")
    final, ack = inbound[-2:]
    assert final.status == status
    assert ack.method == "ACK"
    assert ack.to_tag == final.to_tag
    last_leg = call.truth.legs[-1]
    assert (final.to_tag == last_leg.to_tag) is from_trunk
    assert call.truth.outcome == "failed"
    assert call.truth.final_status == status
    assert call.truth.answered_by is None


def test_cancel_after_180() -> None:
    call = build(attempts=("cancel-after-180", "answer"))
    methods = [m.method or m.status for m in call.leg_messages("c0.out1")]
    assert methods == ["INVITE", 100, 180, "CANCEL", 200, 487, "ACK"]
    cancel_ok = call.leg_messages("c0.out1")[4]
    assert cancel_ok.cseq is not None
    assert cancel_ok.cseq.method == "CANCEL"
    cancel = call.leg_messages("c0.out1")[3]
    assert cancel.reasons
    assert cancel.reasons[0].cause == 408


# ---------------------------------------------------------------------------
# Reuse, determinism, truth
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("same_from_tag", [False, True])
def test_call_id_reuse(same_from_tag: bool) -> None:
    earlier = build(seed=1)
    later = CallBuilder.reusing(
        earlier.truth,
        random.Random(2),
        earlier.truth.ended_ns + 300 * S,
        same_from_tag=same_from_tag,
        index=1,
    ).build()
    assert later.truth.call_id == earlier.truth.call_id
    assert (later.truth.from_tag == earlier.truth.from_tag) is same_from_tag
    assert later.truth.reuses_call == 0
    assert later.truth.reuse == ("same-from-tag" if same_from_tag else "new-from-tag")
    assert later.truth.started_ns > earlier.truth.ended_ns
    assert later.truth.legs[1].branch != earlier.truth.legs[1].branch
    with pytest.raises(ValueError, match="after the earlier call"):
        CallBuilder.reusing(earlier.truth, random.Random(2), earlier.truth.started_ns)


def test_same_seed_same_bytes() -> None:
    kwargs: dict[str, Any] = {
        "mode": "b2bua",
        "attempts": ("timeout", "503", "answer"),
        "reinvite": True,
    }
    a, b = build(seed=11, **kwargs), build(seed=11, **kwargs)
    assert [m.raw for m in a.messages] == [m.raw for m in b.messages]
    assert [(m.timestamp_ns, m.src, m.dst, m.provenance) for m in a.messages] == [
        (m.timestamp_ns, m.src, m.dst, m.provenance) for m in b.messages
    ]
    assert a.truth == b.truth
    assert a.message_truth == b.message_truth
    c = build(seed=12, **kwargs)
    assert [m.raw for m in a.messages] != [m.raw for m in c.messages]


def test_builder_generates_once() -> None:
    builder = CallBuilder(random.Random(3))
    assert builder.packets() is builder.packets()
    assert [m.raw for m in builder.build().messages] == [m.raw for m in builder.build("x").messages]


def test_truth_is_json() -> None:
    call = build(attempts=("timeout", "503", "answer"), mode="b2bua")
    data = json.loads(json.dumps(call.to_json()))
    assert data["call"] == 0
    assert [leg["leg"] for leg in data["legs"]] == ["c0.in", "c0.out1", "c0.out2", "c0.out3"]
    assert [f["cause"] for f in data["failovers"]] == ["timeout", "503"]
    assert len(data["messages"]) == len(call.messages)
    assert data["messages"][0] == ["memory:call-0", 1, "c0.in"]
    per_leg = Counter(t.leg for t in call.message_truth)
    assert {leg.leg: leg.messages for leg in call.truth.legs} == dict(per_leg)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attempts": ()}, "at least one"),
        ({"attempts": ("answer", "503")}, "only the last"),
        ({"attempts": ("200",)}, "not 'answer'"),
        ({"attempts": ("busy",)}, "not 'answer'"),
        ({"mode": "sbc"}, "mode"),
        ({"link": "ucid"}, "link"),
        ({"bye_from": "nobody"}, "bye_from"),
        ({"trunks": ()}, "no trunks"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CallBuilder(random.Random(0), **kwargs)


# ---------------------------------------------------------------------------
# Pairwise scores
# ---------------------------------------------------------------------------


def test_pairwise_perfect() -> None:
    truth = {"a": 1, "b": 1, "c": 2, "d": 2, "e": 3}
    predicted = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "z"}
    assert pairwise_scores(predicted, truth) == (1.0, 1.0)
    assert pair_counts(predicted, truth) == (2, 2, 2)


def test_pairwise_split() -> None:
    # one true group of four predicted as two pairs: every predicted pair is right,
    # two of the six true pairs are found
    truth = {"a": 1, "b": 1, "c": 1, "d": 1}
    predicted = {"a": "x", "b": "x", "c": "y", "d": "y"}
    assert pair_counts(predicted, truth) == (2, 2, 6)
    precision, recall = pairwise_scores(predicted, truth)
    assert precision == 1.0
    assert recall == pytest.approx(1 / 3)


def test_pairwise_merged() -> None:
    # two true pairs predicted as one group of four: 2 of 6 predicted pairs are right
    truth = {"a": 1, "b": 1, "c": 2, "d": 2}
    predicted = {"a": "x", "b": "x", "c": "x", "d": "x"}
    assert pair_counts(predicted, truth) == (2, 6, 2)
    precision, recall = pairwise_scores(predicted, truth)
    assert precision == pytest.approx(1 / 3)
    assert recall == 1.0


def test_pairwise_mixed_and_missing_keys() -> None:
    truth = {"a": 1, "b": 1, "c": 1, "d": 2, "e": 2}
    predicted = {"a": "x", "b": "x", "d": "x", "e": "y", "z": "y"}  # c unpredicted, z unknown
    # predicted pairs: ab ad bd ez; true pairs: ab ac bc de; agreeing: ab
    assert pair_counts(predicted, truth) == (1, 4, 4)
    assert pairwise_scores(predicted, truth) == (0.25, 0.25)


def test_pairwise_no_pairs() -> None:
    assert pairwise_scores({}, {}) == (1.0, 1.0)
    assert pairwise_scores({"a": 1, "b": 2}, {"a": 1, "b": 1}) == (1.0, 0.0)


def test_pairwise_is_linear() -> None:
    n = 200_000
    truth = {i: i // 7 for i in range(n)}
    started = time.perf_counter()
    assert pairwise_scores(truth, truth) == (1.0, 1.0)
    assert time.perf_counter() - started < 5


# ---------------------------------------------------------------------------
# Crowds
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_crowd() -> Crowd:
    return build_crowd(600, seed=3, failover_share=0.3, b2bua_share=0.15, reuse_share=0.05)


def test_small_crowd_parses_strictly(small_crowd: Crowd) -> None:
    for m in small_crowd.messages:
        again = parse_message(m.raw, strict=True)  # raises on any RFC violation
        assert again.defects == (), (m.start_line, again.defects)  # and nothing tolerated either


def test_crowd_sources_are_merged_out_of_order(small_crowd: Crowd) -> None:
    assert small_crowd.sources == ("memory:edge-in", "memory:edge-out")
    times = [m.timestamp_ns or 0 for m in small_crowd.messages]
    assert times != sorted(times)
    by_source: dict[str, list[SipMessage]] = defaultdict(list)
    for m in small_crowd.messages:
        assert m.provenance is not None
        by_source[m.provenance.source].append(m)
    for source, messages in by_source.items():
        frames = [m.provenance.frame for m in messages if m.provenance]
        assert frames == list(range(1, len(messages) + 1))
        stamps = [m.timestamp_ns or 0 for m in messages]
        assert stamps == sorted(stamps)
        role = "inbound" if source.endswith("edge-in") else "outbound"
        assert {small_crowd.truth_of(m).role for m in messages} == {role}


def test_crowd_single_source_is_time_ordered() -> None:
    crowd = build_crowd(50, seed=4, merge_sources=False)
    assert crowd.sources == ("memory:crowd",)
    times = [m.timestamp_ns or 0 for m in crowd.messages]
    assert times == sorted(times)


def test_crowd_truth_lookups(small_crowd: Crowd) -> None:
    for i in range(0, len(small_crowd.messages), 97):
        m = small_crowd.messages[i]
        copy = attrs.evolve(parse_message(m.raw), provenance=m.provenance)
        assert copy is not m
        assert (
            small_crowd.truth_call_of(copy)
            == small_crowd.truth_call_of(m)
            == small_crowd.message_truth[i].call
        )
        assert small_crowd.truth_leg_of(m).startswith(f"c{small_crowd.truth_call_of(m)}.")
    groups = small_crowd.message_groups()
    assert len(groups) == len(small_crowd.messages)
    assert pairwise_scores(groups, groups) == (1.0, 1.0)
    legs = small_crowd.leg_groups()
    assert len(legs) == sum(len(c.legs) for c in small_crowd.calls)
    by_key = {
        (m.provenance.source, m.provenance.frame): m for m in small_crowd.messages if m.provenance
    }
    for key, leg_id in small_crowd.leg_keys().items():
        m = by_key[key]
        assert m.method == "INVITE"
        assert m.to_tag is None
        call = small_crowd.calls[legs[key]]
        assert m.branch == call.leg(leg_id).branch


def test_crowd_identifiers_do_not_collide(small_crowd: Crowd) -> None:
    """Only the scripted reuse shares a Call-ID; nothing else links two calls."""
    owners: dict[str, set[int]] = defaultdict(set)
    uuids: dict[str, set[int]] = defaultdict(set)
    invite_branches: Counter[str] = Counter()
    for m, t in zip(small_crowd.messages, small_crowd.message_truth, strict=True):
        assert m.call_id is not None
        owners[m.call_id].add(t.call)
        if m.session_id:
            for u in m.session_id.uuids():
                uuids[u].add(t.call)
        if m.method == "INVITE" and not t.retransmission:
            assert m.branch is not None
            invite_branches[m.branch] += 1
    assert max(invite_branches.values()) == 1
    assert all(len(calls) == 1 for calls in uuids.values())
    reused = {c.call_id: c for c in small_crowd.calls if c.reuses_call is not None}
    for call_id, calls in owners.items():
        if len(calls) > 1:
            later = reused[call_id]
            assert later.reuses_call is not None
            earlier = small_crowd.calls[later.reuses_call]
            assert calls == {earlier.call, later.call}
            assert later.started_ns > earlier.ended_ns
            gap = later.started_ns - earlier.ended_ns
            assert gap >= 120 * S if later.reuse == "same-from-tag" else gap >= 1 * S
            assert (later.from_tag == earlier.from_tag) is (later.reuse == "same-from-tag")


def test_crowd_is_deterministic() -> None:
    a = build_crowd(120, seed=9)
    b = build_crowd(120, seed=9)
    assert [m.raw for m in a.messages] == [m.raw for m in b.messages]
    assert [m.provenance for m in a.messages] == [m.provenance for m in b.messages]
    assert a.calls == b.calls
    c = build_crowd(120, seed=10)
    assert [m.raw for m in a.messages] != [m.raw for m in c.messages]


def test_crowd_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="failover_share"):
        build_crowd(10, failover_share=1.5)
    with pytest.raises(ValueError, match="calls_per_second"):
        build_crowd(10, calls_per_second=0)


@pytest.fixture(scope="module")
def crowd_10k() -> tuple[Crowd, float]:
    started = time.perf_counter()
    crowd = build_crowd(10_000, seed=2024)
    return crowd, time.perf_counter() - started


def test_crowd_of_ten_thousand(crowd_10k: tuple[Crowd, float], record_property: Any) -> None:
    crowd, seconds = crowd_10k
    record_property("build_seconds", round(seconds, 2))
    print(f"\n10,000-call crowd: {len(crowd.messages)} messages in {seconds:.1f} s")
    assert seconds < 120, f"building took {seconds:.1f} s"
    assert len(crowd.calls) == 10_000
    assert [c.call for c in crowd.calls] == list(range(10_000))
    stats = crowd.stats()
    assert stats["failover_calls"] >= 2_000
    causes = stats["failover_causes"]
    assert {"timeout", "cancelled", "503", "408"} <= set(causes)
    assert stats["b2bua_links"] == {"both": 333, "session-id": 333, "x-cid": 334}
    assert stats["reuse"] == {"new-from-tag": 100, "same-from-tag": 100}
    assert stats["retransmissions"] > 0
    times = [m.timestamp_ns or 0 for m in crowd.messages]
    assert times != sorted(times)
    # calls overlap: many are in progress at once
    spans = sorted((c.started_ns, c.ended_ns) for c in crowd.calls)
    middle = spans[5_000][0]
    assert sum(1 for start, end in spans if start <= middle <= end) > 100
    groups = crowd.message_groups()
    assert pairwise_scores(groups, groups) == (1.0, 1.0)
    assert len(crowd.leg_groups()) == stats["legs"]
    json.dumps(crowd.calls[0].to_json())


def test_crowd_of_ten_thousand_parses_strictly(crowd_10k: tuple[Crowd, float]) -> None:
    crowd, _ = crowd_10k
    for m in crowd.messages[::25]:
        again = parse_message(m.raw, strict=True)
        assert again.defects == (), (m.start_line, again.defects)
