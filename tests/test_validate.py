"""Compliance rules on the real captures: the audit gaps are found, intact calls are clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipchain import reconstruct
from sipchain.errors import SipChainError
from sipchain.result import Reconstruction
from sipchain.testing import fixture_names, load_fixture
from sipchain.validate import RULES, Policy, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TRUNKS = FIXTURES / "trunks.toml"
# the lab's edge CANCELs a ringing primary when its timer fires: its policy allows that
POLICY = {
    "route": ["carrier-a", "carrier-b"],
    "allowed_causes": ["408", "480", "500", "502", "503", "504", "timeout", "cancelled"],
    "allow_after_ringing": True,
}
NAMES = fixture_names()
GAPS = [n for n in NAMES if load_fixture(n).is_gap_variant]
INTACT = [n for n in NAMES if not load_fixture(n).is_gap_variant]


def _result(name: str) -> Reconstruction:
    return reconstruct(load_fixture(name).trace, trunks=TRUNKS, policy=POLICY)


def test_every_gap_variant_is_a_case() -> None:
    assert len(GAPS) == 4


@pytest.mark.parametrize("name", GAPS)
def test_gap_is_found_with_its_frames(name: str) -> None:
    fixture = load_fixture(name)
    result = _result(name)
    errors = [f for f in result.findings if f.severity == "error"]
    for expected in fixture.expected_findings:
        matching = [f for f in errors if f.rule == expected["rule"]]
        assert matching, f"{expected['rule']} not found; got {[f.rule for f in errors]}"
        finding = matching[0]
        chain = result.chain(finding.chain_id)
        assert chain.legs[0].call_id == expected["call_id"]
        frames = {frame for _, frame in finding.frames}
        assert set(expected["frames"]) & frames, (expected["frames"], frames)
        assert finding.message
        assert finding.hint
    # the intact control call in the same capture raises nothing
    assert {f.chain_id for f in errors} == {
        c.chain_id for c in result.chains if c.legs[0].call_id == fixture.expected_findings[0]["call_id"]
    }


@pytest.mark.parametrize("name", INTACT)
def test_no_error_finding_on_an_intact_capture(name: str) -> None:
    assert [f for f in _result(name).findings if f.severity == "error"] == []


def test_finding_messages_read_like_a_reviewers_note() -> None:
    result = _result("gap-missing-failover-200")
    (finding,) = [f for f in result.findings if f.rule == "leg-has-final-response"]
    assert finding.message.startswith("The 200 OK that answered the INVITE sent to carrier-b at ")
    assert "is missing; the ACK in frame" in finding.message
    assert finding.message.endswith("proves it was sent.")
    (route,) = [f for f in _result("gap-missing-primary-attempt").findings if f.rule == "route-order"]
    assert "the primary attempt is missing from the trace" in route.message
    (trigger,) = [f for f in _result("gap-missing-primary-failure").findings if f.rule == "failover-trigger-recorded"]
    assert "The failure response that made the call fail over from carrier-a is missing" in trigger.message


def test_policy_selects_rules_and_severities(tmp_path: Path) -> None:
    toml = tmp_path / "policy.toml"
    toml.write_text('route = ["carrier-a", "carrier-b"]\n[rules.route-order]\nseverity = "warning"\n[rules.leg-has-invite]\nenabled = false\n')
    policy = load_policy(toml)
    assert policy == Policy(("carrier-a", "carrier-b"), frozenset({"leg-has-invite"}), {"route-order": "warning"})
    fixture = load_fixture("gap-missing-primary-attempt")
    result = reconstruct(fixture.trace, trunks=TRUNKS, policy=toml)
    assert [(f.rule, f.severity) for f in result.findings] == [("route-order", "warning")]
    fixture = load_fixture("gap-missing-failover-invite")
    assert reconstruct(fixture.trace, trunks=TRUNKS, policy=toml).findings == ()
    with pytest.raises(SipChainError, match="unknown rules"):
        load_policy({"rules": {"no-such-rule": {"enabled": False}}})
    with pytest.raises(SipChainError, match="severity"):
        load_policy({"rules": {"route-order": {"severity": "fatal"}}})
    assert set(RULES) == {
        "leg-has-invite",
        "leg-has-final-response",
        "failover-trigger-recorded",
        "route-order",
        "2xx-has-ack",
        "bye-cancel-answered",
        "failover-within-threshold",
        "failover-cause-allowed",
        "chronology",
        "sequence-contiguous",
        "metadata-consistent",
        "capture-complete",
        "cdr-reconciled",
    }


def test_silent_primary_is_not_a_gap() -> None:
    result = _result("failover-timeout")
    assert result.findings == ()
    assert all(fo.cause == "timeout" for c in result.chains for fo in c.failovers)


def test_default_policy_flags_a_failover_after_ringing_and_a_slow_one() -> None:
    fixture = load_fixture("failover-after-180")
    result = reconstruct(fixture.trace, trunks=TRUNKS)
    causes = [f for f in result.findings if f.rule == "failover-cause-allowed"]
    assert len(causes) == len(fixture.calls)
    assert "cancelled" in causes[0].message
    allowed = reconstruct(fixture.trace, trunks=TRUNKS, policy={"allowed_causes": ["cancelled"]})
    ringing = [f for f in allowed.findings if f.rule == "failover-cause-allowed"]
    assert ringing
    assert "after it had rung (180" in ringing[0].message
    slow = reconstruct(load_fixture("failover-timeout-5s").trace, trunks=TRUNKS, policy={"failover_threshold_ms": 2000})
    (late,) = [f for f in slow.findings if f.rule == "failover-within-threshold"]
    assert "beyond the 2000 ms threshold" in late.message
    fine = reconstruct(load_fixture("failover-timeout-5s").trace, trunks=TRUNKS)
    assert not [f for f in fine.findings if f.rule == "failover-within-threshold"]


# --------------------------------------------------------------------------
# Built calls: each rule failing and passing
# --------------------------------------------------------------------------

from test_correlate import CARRIER_A, CARRIER_B, MS, T0, Wire, failover_call  # noqa: E402
from test_correlate import TRUNKS as BUILT_TRUNKS  # noqa: E402


def _rules(wire: Wire, **kwargs: object) -> list[str]:
    return [f.rule for f in reconstruct(wire.trace(), trunks=BUILT_TRUNKS, **kwargs).findings]  # type: ignore[arg-type]


def test_built_call_is_clean() -> None:
    wire = Wire()
    failover_call(wire, 0)
    assert _rules(wire) == []


def test_missing_2xx_ack_and_unanswered_bye() -> None:
    wire = Wire()
    failover_call(wire, 0)
    wire.messages = [m for m in wire.messages if not (m.method == "ACK" and m.dst == CARRIER_B)]
    assert _rules(wire) == ["2xx-has-ack"]
    wire = Wire()
    failover_call(wire, 0)
    bye_ok = next(m for m in wire.messages if m.status == 200 and m.cseq is not None and m.cseq.method == "BYE" and m.src == CARRIER_B)
    wire.messages.remove(bye_ok)
    assert _rules(wire) == ["bye-cancel-answered"]


def test_response_before_request_is_a_chronology_warning() -> None:
    import attrs

    wire = Wire()
    failover_call(wire, 0)
    i = next(i for i, m in enumerate(wire.messages) if m.status == 503)
    wire.messages[i] = attrs.evolve(wire.messages[i], timestamp_ns=T0 - 900 * MS)
    result = reconstruct(wire.trace(), trunks=BUILT_TRUNKS)
    found = [f for f in result.findings if f.rule == "chronology"]
    assert {f.severity for f in found} == {"warning"}
    assert any("before its request" in f.message for f in found)
    assert any("the source's clock went backwards" in f.message for f in found)


def _export(wire: Wire, dst: object, pairs: tuple[tuple[str, str], ...]) -> None:
    import attrs

    wire.messages = [attrs.evolve(m, metadata=pairs) if dst in (m.src, m.dst) else m for m in wire.messages]


def test_sequence_gaps_and_metadata_consistency() -> None:
    import attrs

    wire = Wire()
    failover_call(wire, 0)
    numbered = []
    for n, m in enumerate(sorted(wire.messages, key=lambda m: m.timestamp_ns or 0), start=1):
        numbered.append(attrs.evolve(m, metadata=(("sip_sequence", str(n)),)))
    wire.messages = numbered
    assert _rules(wire) == []
    wire.messages = [m for m in wire.messages if m.meta("sip_sequence") not in ("5", "6")]
    assert "sequence-contiguous" in _rules(wire)

    wire = Wire()
    failover_call(wire, 0)
    failure = T0 + 20 * MS
    _export(wire, CARRIER_B, (("original_trunk_id", "carrier-a"), ("failover_timestamp", str(failure // 1_000_000))))
    assert _rules(wire) == []
    wire = Wire()
    failover_call(wire, 0)
    _export(wire, CARRIER_B, (("original_trunk_id", "carrier-c"), ("failover_timestamp", str((failure + 5_000 * MS) // 1_000_000))))
    found = reconstruct(wire.trace(), trunks=BUILT_TRUNKS).findings
    messages = [f.message for f in found if f.rule == "metadata-consistent"]
    assert any("carrier-c as the original trunk" in m for m in messages)
    assert any("failover_timestamp" in m for m in messages)
    # the export names an original attempt the trace does not have
    wire = Wire()
    failover_call(wire, 0)
    wire.messages = [m for m in wire.messages if CARRIER_A not in (m.src, m.dst)]
    _export(wire, CARRIER_B, (("original_trunk_id", "carrier-a"),))
    (lost,) = [f for f in reconstruct(wire.trace(), trunks=BUILT_TRUNKS).findings if f.rule == "metadata-consistent"]
    assert "the export lost that leg" in lost.message


def test_junit_xml_gates_on_errors() -> None:
    import xml.etree.ElementTree as ET

    gap = _result("gap-missing-primary-failure")
    root = ET.fromstring(gap.to_junit())
    assert root.get("failures") == "2"
    failures = root.findall("testcase/failure")
    assert {f.get("type") for f in failures} == {"leg-has-final-response", "failover-trigger-recorded"}
    clean = ET.fromstring(_result("failover-503").to_junit())
    assert clean.get("failures") == "0"
    assert len(clean.findall("testcase")) == 2


def test_unusable_frames_amid_a_call_are_a_warning(tmp_path: Path) -> None:
    capture = load_fixture("failover-503").capture
    data = bytearray(capture.read_bytes())
    trace = load_fixture("failover-503").trace
    # damage one frame in the middle of the first call: an IPv4 header length below 5
    target = next(m for m in trace.messages if m.status == 503)
    assert target.provenance is not None
    assert target.provenance.offset is not None
    record = target.provenance.offset
    assert data[record + 28 + 14] == 0x45  # EPB header, Ethernet, then IPv4
    data[record + 28 + 14] = 0x41
    damaged = tmp_path / "damaged.pcapng"
    damaged.write_bytes(bytes(data))
    result = reconstruct(damaged, trunks=TRUNKS, policy=POLICY)
    (finding,) = [f for f in result.findings if f.rule == "capture-complete"]
    assert finding.severity == "warning"
    assert "could not be used" in finding.message


def _conversation(legs: list[tuple[str, str]]) -> dict[str, object]:
    return {
        "conversations": [
            {
                "conversationId": "c0ffee",
                "participants": [
                    {
                        "purpose": "outbound",
                        "sessions": [
                            {"protocolCallId": call_id, "segments": [{"sipResponseCodes": [status]}]}
                            for call_id, status in legs
                        ],
                    }
                ],
            }
        ]
    }


def test_cdr_reconciled_both_ways(tmp_path: Path) -> None:
    import json

    fixture = load_fixture("failover-503")
    call_ids = [call["call_id"] for call in fixture.calls]
    cdr = tmp_path / "conversations.json"
    cdr.write_text(json.dumps(_conversation([(c, "200") for c in call_ids])))
    result = reconstruct(fixture.trace, trunks=TRUNKS, policy=POLICY, cdr=cdr)
    assert [f for f in result.findings if f.rule == "cdr-reconciled"] == []
    # a billed leg without signalling, and a signalled call without a CDR
    cdr.write_text(json.dumps(_conversation([(call_ids[0], "200"), ("ghost@10.0.0.1", "503")])))
    result = reconstruct(fixture.trace, trunks=TRUNKS, policy=POLICY, cdr=cdr)
    found = [f for f in result.findings if f.rule == "cdr-reconciled"]
    assert any("ghost@10.0.0.1" in f.message and "no signalling" in f.message for f in found)
    assert any(call_ids[1] in f.message and "has no leg with that Call-ID" in f.message for f in found)
    csv_cdr = tmp_path / "cdr.csv"
    csv_cdr.write_text("call_id,trunk,start,answer,end,status\n" + "".join(f"{c},carrier-b,,,,200\n" for c in call_ids))
    result = reconstruct(fixture.trace, trunks=TRUNKS, policy=POLICY, cdr=csv_cdr)
    assert [f for f in result.findings if f.rule == "cdr-reconciled"] == []


def test_unexplained_missing_final_response_and_clock_offsets(tmp_path: Path) -> None:
    import json

    wire = Wire()
    failover_call(wire, 0)
    failover_call(wire, 60_000, call_id="later")  # the capture goes on for a minute
    # carrier-b's 200 of the first call and everything after it on that hop vanish
    cut = next(m for m in wire.messages if m.status == 200 and m.src == CARRIER_B).timestamp_ns or 0
    wire.messages = [
        m
        for m in wire.messages
        if not (m.call_id == "cid-1" and CARRIER_B in (m.src, m.dst) and (m.timestamp_ns or 0) >= cut)
    ]
    result = reconstruct(wire.trace(), trunks=BUILT_TRUNKS)
    found = [f for f in result.findings if f.rule == "leg-has-final-response"]
    assert any("no failover followed it" in f.message for f in found)

    capture = FIXTURES / "captures" / "failover-503.pcapng"
    records = [
        json.dumps({"msg": m.raw.decode(), "timestamp_ns": (m.timestamp_ns or 0) + 900_000_000, "src": str(m.src), "dst": str(m.dst)})
        for m in load_fixture("failover-503").trace.messages
    ]
    export = tmp_path / "late-clock.ndjson"
    export.write_text("\n".join(records) + "\n")
    result = reconstruct([capture, export], trunks=TRUNKS, policy=POLICY)
    (offset,) = [f for f in result.findings if f.rule == "chronology"]
    assert "+900.0 ms off" in offset.message


GOLDEN = [
    (
        "gap-missing-failover-200",
        "leg-has-final-response",
        "The 200 OK that answered the INVITE sent to carrier-b at 18:06:39.662 (frame 7) is missing; "
        "the ACK in frame 13 proves it was sent.",
    ),
    (
        "gap-missing-failover-invite",
        "leg-has-invite",
        "The INVITE of the outbound leg sent to carrier-b (Call-ID 1-27476@127.0.0.10) is missing: 6 of its "
        "messages are in the capture, the first at 18:06:39.662 (frame 7), but not the request that started it.",
    ),
    (
        "gap-missing-primary-failure",
        "failover-trigger-recorded",
        "The failure response that made the call fail over from carrier-a is missing: the ACK in frame 5 "
        "acknowledges a final failure to the INVITE in frame 3, and attempt 2 on carrier-b followed (frame 6).",
    ),
    (
        "gap-missing-primary-attempt",
        "route-order",
        "The first outbound attempt is on carrier-b, 204.4 ms after the inbound INVITE (frame 3), but the route "
        "puts carrier-a first and no attempt on it was recorded: the primary attempt is missing from the trace.",
    ),
]


@pytest.mark.parametrize(("name", "rule", "message"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_finding_messages(name: str, rule: str, message: str) -> None:
    result = reconstruct(load_fixture(name).trace, trunks=TRUNKS, policy=FIXTURES / "policy.toml")
    assert message in [f.message for f in result.findings if f.rule == rule]
