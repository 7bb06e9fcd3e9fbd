"""The lab's real captures (``fixtures/captures``) read by ``sipchain.load``.

Every capture was made by real SIP software (Kamailio between SIPp caller and
trunks, captured by tcpdump; see ``fixtures/README.md``) and comes with a
truth file derived from tshark's reading. Here, for every fixture:

* the capture loads with no problem and every frame is in one report bucket;
* the multiset of ``(frame, Call-ID, CSeq number, CSeq method, method or
  status)`` equals tshark's own ``-Y sip`` listing, run live (the tshark
  differential; skipped only when tshark is not installed);
* every message of every leg in the truth (frame, Call-ID, From-tag, branch,
  CSeq, time, endpoints) is found in the trace, and every message of the trace
  belongs to exactly one leg;
* a gap variant's expected findings point at frames of its own capture.

The helper ``sipchain.testing`` itself is tested at the end.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sipchain import SipMessage
from sipchain.testing import (
    ENV_VAR,
    TRUTH_FORMAT,
    Fixture,
    FixtureError,
    fixture_names,
    fixtures_dir,
    load_fixture,
)

TSHARK = shutil.which("tshark")
NAMES = fixture_names()
CORE = {
    "failover-timeout",
    "failover-503",
    "failover-408",
    "primary-answers",
    "both-fail",
    "concurrent-160",
    "gap-missing-failover-invite",
    "gap-missing-failover-200",
    "gap-missing-primary-failure",
    "gap-missing-primary-attempt",
}

Key = tuple[int, str, str, str, str]  # frame, Call-ID, CSeq number, CSeq method, method or status
SEP = "\x1f"  # joins a frame's several values of one field (never in a SIP header)


@functools.cache
def _fixture(name: str) -> Fixture:
    return load_fixture(name)


def _key(m: SipMessage) -> Key:
    assert m.provenance is not None
    assert m.cseq is not None
    return (
        m.provenance.frame,
        m.call_id or "",
        str(m.cseq.number),
        m.cseq.method,
        m.method if m.method is not None else str(m.status),
    )


def _kind(m: SipMessage) -> str:
    return m.method if m.method is not None else str(m.status)


def _tshark_listing(path: Path) -> collections.Counter[Key]:
    """tshark's ``-Y sip -T fields`` listing, one key per SIP message."""
    assert TSHARK is not None
    args = [TSHARK, "-n", "-r", str(path), "-Y", "sip", "-T", "fields"]
    args += ["-E", "occurrence=a", "-E", f"aggregator={SEP}"]
    for field in (
        "frame.number",
        "sip.Call-ID",
        "sip.CSeq.seq",
        "sip.CSeq.method",
        "sip.Method",
        "sip.Status-Code",
    ):
        args += ["-e", field]
    run = subprocess.run(args, capture_output=True, check=True, timeout=300)
    listing: collections.Counter[Key] = collections.Counter()
    for line in run.stdout.decode("utf-8", "replace").splitlines():
        frame, call_ids, seqs, cseq_methods, methods, statuses = (
            [v for v in col.split(SEP) if v] if col else [] for col in line.split("\t")
        )
        kinds = methods or statuses
        if (methods and statuses) or not (len(kinds) == len(seqs) == len(call_ids) == len(cseq_methods)):
            pytest.fail(f"frame {frame}: cannot pair tshark's fields per message: {line!r}")
        for call_id, seq, cseq_method, kind in zip(call_ids, seqs, cseq_methods, kinds, strict=True):
            listing[(int(frame[0]), call_id, seq, cseq_method, kind)] += 1
    return listing


def _by_frame(fixture: Fixture) -> dict[int, list[SipMessage]]:
    return _frames_of(fixture.name)


@functools.cache
def _frames_of(name: str) -> dict[int, list[SipMessage]]:
    out: dict[int, list[SipMessage]] = collections.defaultdict(list)
    for m in _fixture(name).trace.messages:
        assert m.provenance is not None
        out[m.provenance.frame].append(m)
    return dict(out)


def _find(fixture: Fixture, frame: int, cseq: str, kind: str) -> SipMessage:
    found = [
        m
        for m in _by_frame(fixture).get(frame, [])
        if m.cseq is not None and f"{m.cseq.number} {m.cseq.method}" == cseq and _kind(m) == kind
    ]
    assert len(found) == 1, f"frame {frame}: {len(found)} messages {kind} ({cseq}) in the trace"
    return found[0]


# --------------------------------------------------------------------------
# The fixture set
# --------------------------------------------------------------------------


def test_the_core_fixtures_are_committed() -> None:
    assert set(NAMES) >= CORE, sorted(CORE - set(NAMES))


def test_the_captures_are_small() -> None:
    directory = fixtures_dir()
    total = sum(p.stat().st_size for p in directory.iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert total < 5 * 1024 * 1024


def test_both_capture_formats_and_both_pcap_resolutions_are_exercised() -> None:
    formats = {_fixture(n).truth["capture_format"] for n in NAMES}
    assert formats >= {"pcap", "pcap-ns", "pcapng"}
    magics = {_fixture(n).capture.read_bytes()[:4] for n in NAMES}
    assert magics >= {
        b"\xd4\xc3\xb2\xa1",  # pcap, microseconds
        b"\x4d\x3c\xb2\xa1",  # pcap, nanoseconds
        b"\x0a\x0d\x0d\x0a",  # pcapng
    }


# --------------------------------------------------------------------------
# Per fixture: ingestion
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_capture_loads_without_problems(name: str) -> None:
    fixture = _fixture(name)
    report = fixture.trace.report
    assert report.problems == (), str(report)
    assert report.problem_frames == 0
    assert report.is_balanced(), str(report)
    (source,) = report.sources
    assert source.sha256 == fixture.truth["sha256"]
    assert report.frames == fixture.truth["frames"]
    assert report.sip_messages == fixture.truth["sip_messages"] == len(fixture.trace)
    for m in fixture.trace.messages:
        assert m.framing_defects == (), f"{m.provenance}: {m.framing_defects}"


@pytest.mark.tshark
@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
@pytest.mark.parametrize("name", NAMES)
def test_messages_equal_tshark_listing(name: str) -> None:
    fixture = _fixture(name)
    ours = collections.Counter(_key(m) for m in fixture.trace.messages)
    assert ours == _tshark_listing(fixture.capture)


@pytest.mark.parametrize("name", NAMES)
def test_every_truth_message_is_in_the_trace(name: str) -> None:
    fixture = _fixture(name)
    for call in fixture.calls:
        for leg in call["legs"]:
            where = f"call {call['index']} {leg['role']} leg"
            assert leg["frames"] == sorted({m["frame"] for m in leg["messages"]}), where
            for rec in leg["messages"]:
                m = _find(fixture, rec["frame"], rec["cseq"], rec["kind"])
                assert m.call_id == leg["call_id"], where
                assert m.from_tag == leg["from_tag"], where
                assert m.branch == rec["branch"], where
                assert m.timestamp_ns == rec["time_ns"], where
                peer, edge = (m.dst, m.src) if rec["direction"] == "to-peer" else (m.src, m.dst)
                assert str(peer) == leg["peer"], where
                assert str(edge) == leg["edge"], where
            for frame in leg["invite_frames"]:
                invite = _find(fixture, frame, _invite_cseq(leg), "INVITE")
                assert invite.branch == leg["invite_branch"], where
                assert invite.to_tag is None, where
            for frame in leg["final_frames"]:
                final = _find(fixture, frame, _invite_cseq(leg), str(leg["final_status"]))
                assert final.to_tag == leg["to_tag"], where


def _invite_cseq(leg: dict[str, Any]) -> str:
    """The CSeq of the leg's initial INVITE (read from its responses when it is missing)."""
    if leg["invite_frames"]:
        return _first_invite_cseq(leg)
    return min((m["cseq"] for m in leg["messages"] if m["cseq"].endswith(" INVITE")), key=lambda c: int(c.split()[0]))


def _first_invite_cseq(leg: dict[str, Any]) -> str:
    first = leg["invite_frames"][0]
    return str(next(m["cseq"] for m in leg["messages"] if m["frame"] == first and m["kind"] == "INVITE"))


@pytest.mark.parametrize("name", NAMES)
def test_every_trace_message_belongs_to_one_leg(name: str) -> None:
    fixture = _fixture(name)
    in_truth = collections.Counter(
        (m["frame"], m["cseq"], m["kind"]) for leg in fixture.legs for m in leg["messages"]
    )
    in_trace = collections.Counter(
        (m.provenance.frame, f"{m.cseq.number} {m.cseq.method}", _kind(m))
        for m in fixture.trace.messages
        if m.provenance is not None and m.cseq is not None
    )
    assert in_trace == in_truth


@pytest.mark.parametrize("name", NAMES)
def test_calls_link_to_their_session_id(name: str) -> None:
    fixture = _fixture(name)
    for call in fixture.calls:
        inbound = call["legs"][0]
        invite = _find(fixture, inbound["invite_frames"][0], _first_invite_cseq(inbound), "INVITE")
        assert invite.session_id is not None
        assert invite.session_id.local.replace("-", "").lower() == call["session_id"]
        assert invite.request_uri is not None
        assert invite.request_uri.user == call["dialled"]


@pytest.mark.parametrize("name", NAMES)
def test_failover_instants_are_message_times(name: str) -> None:
    fixture = _fixture(name)
    times = {m.provenance.frame: m.timestamp_ns for m in fixture.trace.messages if m.provenance}
    for call in fixture.calls:
        for f in call["failovers"]:
            for frame_key, ns_key in (
                ("failed_invite_frame", "failed_invite_ns"),
                ("next_invite_frame", "next_invite_ns"),
                ("trigger_frame", "trigger_ns"),
            ):
                if f[frame_key] is not None:
                    assert times[f[frame_key]] == f[ns_key]
            if f["cause"] == "timeout":
                assert f["trigger_frame"] is None  # the edge's own 408 is not on the wire


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("gap-")])
def test_gap_findings_point_at_frames_of_the_capture(name: str) -> None:
    fixture = _fixture(name)
    assert fixture.is_gap_variant
    gap = fixture.truth["gap"]
    base = _fixture(gap["base"])
    assert gap["base_sha256"] == base.truth["sha256"]
    assert fixture.truth["frames"] == base.truth["frames"] - len(gap["removed_frames"])
    assert fixture.expected_findings
    frames = _by_frame(fixture)
    for finding in fixture.expected_findings:
        assert finding["rule"] in {
            "leg-has-invite",
            "leg-has-final-response",
            "failover-trigger-recorded",
            "route-order",
        }
        assert finding["frames"]
        for frame in finding["frames"]:
            assert frames.get(frame), f"{finding['rule']}: frame {frame} has no SIP message"
            assert all(m.call_id == finding["leg"]["call_id"] for m in frames[frame]) or (
                finding["rule"] == "route-order"
            )


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("gap-")])
def test_complete_captures_expect_no_findings(name: str) -> None:
    fixture = _fixture(name)
    assert not fixture.is_gap_variant
    assert fixture.expected_findings == []
    for call in fixture.calls:
        assert all(leg["invite_frames"] for leg in call["legs"])
        assert call["path"] in fixture.truth["scenario"]["design"]["paths"]


# --------------------------------------------------------------------------
# Scenario-specific facts, read with sipchain
# --------------------------------------------------------------------------


def test_timeout_failover_has_retransmissions_and_no_408_on_the_wire() -> None:
    fixture = _fixture("failover-timeout")
    for call in fixture.calls:
        primary = call["legs"][1]
        assert primary["trunk"] == "carrier-a"
        assert primary["outcome"] == "timeout"
        assert len(primary["invite_frames"]) == 3  # at 0, 0.5 and 1.5 s
        invites = [_find(fixture, f, "1 INVITE", "INVITE") for f in primary["invite_frames"]]
        assert {m.branch for m in invites} == {primary["invite_branch"]}
        (f,) = call["failovers"]
        assert 1700 <= f["latency_ms"] <= 2300
    statuses = {m.status for m in fixture.trace.messages if str(m.dst) == "127.0.0.20:5060/udp"}
    assert statuses == {None}  # nothing but INVITEs reached the silent trunk


def test_tcp_leg_is_read_over_tcp() -> None:
    fixture = _fixture("failover-tcp")
    for call in fixture.calls:
        secondary = call["legs"][2]
        assert secondary["transport"] == "tcp"
        for rec in secondary["messages"]:
            m = _find(fixture, rec["frame"], rec["cseq"], rec["kind"])
            assert m.src is not None
            assert m.src.transport == "tcp"


def test_ipv6_endpoints() -> None:
    fixture = _fixture("failover-ipv6")
    assert {m.src.ip for m in fixture.trace.messages if m.src} == {"::1"}


def test_b2bua_style_legs_differ_in_call_id_and_link_by_x_cid_and_session_id() -> None:
    fixture = _fixture("b2bua-style-callid")
    for call in fixture.calls:
        inbound, *outbound = call["legs"]
        for leg in outbound:
            assert leg["call_id"] != inbound["call_id"]
            assert leg["linked_by"] == "x-cid"
            invite = _find(fixture, leg["invite_frames"][0], "1 INVITE", "INVITE")
            assert invite.headers.get("X-CID") == inbound["call_id"]
            assert invite.session_id is not None
            assert invite.session_id.local == call["session_id"]


def test_post_180_failover_cancels_the_primary() -> None:
    fixture = _fixture("failover-after-180")
    for call in fixture.calls:
        primary = call["legs"][1]
        assert primary["outcome"] == "cancelled"
        assert primary["final_status"] == 487
        (cancel,) = primary["cancel_frames"]
        m = _find(fixture, cancel, "1 CANCEL", "CANCEL")
        assert m.branch == primary["invite_branch"]
        assert call["failovers"][0]["cause"] == "cancelled after 180"


def test_concurrent_calls() -> None:
    fixture = _fixture("concurrent-160")
    summary = fixture.truth["summary"]
    assert summary["calls"] == 160
    assert summary["failovers"] == 40
    assert summary["peak_concurrency"] >= 150
    assert len({m.call_id for m in fixture.trace.messages}) == 160


def test_reinvite_is_in_dialog() -> None:
    fixture = _fixture("failover-reinvite")
    reinvites = [m for m in fixture.trace.messages if m.method == "INVITE" and m.to_tag is not None]
    assert len(reinvites) == 2 * len(fixture.calls)  # caller to edge, edge to carrier-b
    assert all(m.cseq is not None and m.cseq.number == 2 for m in reinvites)


# --------------------------------------------------------------------------
# The helper
# --------------------------------------------------------------------------


def test_load_fixture_fields() -> None:
    fixture = load_fixture("failover-503")
    assert fixture.name == "failover-503"
    assert fixture.capture.name == fixture.truth["capture"]
    assert fixture.truth["format"] == TRUTH_FORMAT
    assert fixture.trace is fixture.trace  # read once
    assert fixture.legs[0]["role"] == "inbound"
    inbound_invite = fixture.messages_at(fixture.legs[0]["invite_frames"][0])
    assert [m.method for m in inbound_invite] == ["INVITE"]
    with pytest.raises(AttributeError):
        fixture.name = "other"  # type: ignore[misc]


def test_unknown_fixture() -> None:
    with pytest.raises(FixtureError, match="no fixture 'no-such-capture'"):
        load_fixture("no-such-capture")


def test_environment_override_and_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = load_fixture("failover-503")
    shutil.copy(source.capture, tmp_path / source.capture.name)
    shutil.copy(fixtures_dir() / "failover-503.truth.json", tmp_path / "failover-503.truth.json")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert fixtures_dir() == tmp_path
    assert fixture_names() == ("failover-503",)
    copy = load_fixture("failover-503")
    assert copy.capture == tmp_path / source.capture.name
    assert len(copy.trace) == len(source.trace)

    damaged = bytearray(copy.capture.read_bytes())
    damaged[-1] ^= 0xFF
    copy.capture.write_bytes(bytes(damaged))
    assert hashlib.sha256(bytes(damaged)).hexdigest() != source.truth["sha256"]
    with pytest.raises(FixtureError, match="does not match"):
        load_fixture("failover-503")
    assert load_fixture("failover-503", verify=False).capture == copy.capture


def test_missing_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(FixtureError, match=ENV_VAR):
        fixtures_dir()
