"""The JSON document and the DataFrames of a reconstruction built by hand."""

from __future__ import annotations

import ast
import base64
import json
import re
from pathlib import Path
from typing import Any

import attrs
import pandas as pd
import pytest

from sipchain import build_message
from sipchain.model import (
    Chain,
    Endpoint,
    Evidence,
    Failover,
    IngestReport,
    Leg,
    Link,
    Problem,
    Provenance,
    SipMessage,
    SourceReport,
    Transaction,
    Unlinked,
)
from sipchain.result import OtherTraffic, Reconstruction
from sipchain.views import SCHEMA_VERSION, reconstruction_frames, reconstruction_to_json
from sipchain.views._frames import FRAME_COLUMNS
from sipchain.views._json import plain_value

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "docs" / "schema" / f"reconstruction-{SCHEMA_VERSION}.json"

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
SHA = "ab" * 32
CALLER = Endpoint("203.0.113.5", 5060, "udp")
SBC = Endpoint("192.0.2.1", 5060, "udp")
CARRIER_A = Endpoint("192.0.2.10", 5060, "udp")
CARRIER_B = Endpoint("198.51.100.20", 5060, "tcp")
ID_REF = re.compile(r"^m(0|[1-9][0-9]*)$")


@attrs.frozen
class StandInFinding:
    """The attributes the views read from a validator finding."""

    rule: str
    severity: str
    chain_id: str | None
    leg: str | None
    frames: tuple[tuple[str, int], ...]
    message: str
    hint: str | None = None


def msg(
    start_line: str,
    *,
    call: str,
    cseq: str,
    branch: str,
    frame: int,
    ms: int,
    src: Endpoint,
    dst: Endpoint,
    to_tag: str | None = None,
    from_name: str = "Alice",
) -> SipMessage:
    """A message with provenance, time and endpoints, as a source reader makes them."""
    to = "<sip:+15551234@example.net>" + (f";tag={to_tag}" if to_tag else "")
    m = build_message(
        start_line,
        [
            ("Via", f"SIP/2.0/{src.transport.upper()} {src.ip}:{src.port};branch={branch}"),
            ("From", f'"{from_name}" <sip:alice@example.com>;tag=f-{call}'),
            ("To", to),
            ("Call-ID", call),
            ("CSeq", cseq),
            ("Max-Forwards", "70"),
        ],
    )
    return attrs.evolve(
        m,
        provenance=Provenance(
            source="a.pcap",
            source_sha256=SHA,
            frame=frame,
            frames=(frame,),
            offset=24 + 100 * frame,
            time_meaning="capture time, UTC, from the pcap record header",
            parser_chain="pcap/ethernet/ipv4/udp/sip",
        ),
        timestamp_ns=T0 + ms * MS,
        src=src,
        dst=dst,
    )


def ev(field: str, value: str, *frames: int) -> Evidence:
    return Evidence(field, value, tuple(("a.pcap", f) for f in frames))


def _sample_function() -> None:
    """Stands for a callable parameter."""


def build() -> Reconstruction:
    """An inbound leg, a 503 on carrier-a, a failover to carrier-b that answers."""
    inv_in = msg(
        "INVITE sip:+15551234@192.0.2.1 SIP/2.0",
        call="in-1",
        cseq="1 INVITE",
        branch="z9hG4bK-in",
        frame=1,
        ms=0,
        src=CALLER,
        dst=SBC,
        from_name="Zo\u00eb",
    )
    inv_a = msg(
        "INVITE sip:+15551234@192.0.2.10 SIP/2.0",
        call="out-1",
        cseq="1 INVITE",
        branch="z9hG4bK-a",
        frame=2,
        ms=10,
        src=SBC,
        dst=CARRIER_A,
    )
    # the same INVITE again, 500 ms later: a retransmission
    inv_a2 = msg(
        "INVITE sip:+15551234@192.0.2.10 SIP/2.0",
        call="out-1",
        cseq="1 INVITE",
        branch="z9hG4bK-a",
        frame=3,
        ms=510,
        src=SBC,
        dst=CARRIER_A,
    )
    r503 = msg(
        "SIP/2.0 503 Service Unavailable",
        call="out-1",
        cseq="1 INVITE",
        branch="z9hG4bK-a",
        frame=4,
        ms=600,
        src=CARRIER_A,
        dst=SBC,
        to_tag="ta",
    )
    ack_a = msg(
        "ACK sip:+15551234@192.0.2.10 SIP/2.0",
        call="out-1",
        cseq="1 ACK",
        branch="z9hG4bK-a",
        frame=5,
        ms=601,
        src=SBC,
        dst=CARRIER_A,
        to_tag="ta",
    )
    inv_b = msg(
        "INVITE sip:+15551234@198.51.100.20 SIP/2.0",
        call="out-1",
        cseq="2 INVITE",
        branch="z9hG4bK-b",
        frame=6,
        ms=650,
        src=SBC,
        dst=CARRIER_B,
    )
    ok_b = msg(
        "SIP/2.0 200 OK",
        call="out-1",
        cseq="2 INVITE",
        branch="z9hG4bK-b",
        frame=7,
        ms=900,
        src=CARRIER_B,
        dst=SBC,
        to_tag="tb",
    )
    ok_in = msg(
        "SIP/2.0 200 OK",
        call="in-1",
        cseq="1 INVITE",
        branch="z9hG4bK-in",
        frame=8,
        ms=910,
        src=SBC,
        dst=CALLER,
        to_tag="ti",
    )
    options = msg(
        "OPTIONS sip:192.0.2.10 SIP/2.0",
        call="ka-1",
        cseq="7 OPTIONS",
        branch="z9hG4bK-ka",
        frame=9,
        ms=950,
        src=SBC,
        dst=CARRIER_A,
    )
    # Not UTF-8 on the wire: the display name carries the byte 0xff.
    bye = msg(
        "BYE sip:bob@192.0.2.1 SIP/2.0",
        call="lost-1",
        cseq="3 BYE",
        branch="z9hG4bK-x",
        frame=10,
        ms=990,
        src=CALLER,
        dst=SBC,
        to_tag="tx",
        from_name="bad\udcff",
    )
    # ACK to the 200 on the inbound leg: in the leg, deliberately missing from
    # rec.messages (the JSON must still list it, once).
    ack_in = msg(
        "ACK sip:+15551234@192.0.2.1 SIP/2.0",
        call="in-1",
        cseq="1 ACK",
        branch="z9hG4bK-in2",
        frame=11,
        ms=920,
        src=CALLER,
        dst=SBC,
        to_tag="ti",
    )

    t_in = Transaction(
        ("z9hG4bK-in", "203.0.113.5:5060", "INVITE"),
        "INVITE",
        inv_in,
        responses=(ok_in,),
        state="terminated",
    )
    t_a = Transaction(
        ("z9hG4bK-a", "192.0.2.1:5060", "INVITE"),
        "INVITE",
        inv_a,
        retransmissions=(inv_a2,),
        responses=(r503,),
        ack=ack_a,
        state="completed",
    )
    t_b = Transaction(
        ("z9hG4bK-b", "192.0.2.1:5060", "INVITE"),
        "INVITE",
        inv_b,
        responses=(ok_b,),
        state="terminated",
    )
    leg_in = Leg(
        "L1",
        "in-1",
        "f-in-1",
        ("ti",),
        "z9hG4bK-in",
        CALLER,
        SBC,
        T0,
        T0 + 920 * MS,
        inv_in,
        200,
        "answered",
        (inv_in, ok_in, ack_in),
        (t_in,),
        role="inbound",
        trunk="carrier-in",
    )
    leg_a = Leg(
        "L2",
        "out-1",
        "f-out-1",
        ("ta",),
        "z9hG4bK-a",
        SBC,
        CARRIER_A,
        T0 + 10 * MS,
        T0 + 601 * MS,
        inv_a,
        503,
        "failed",
        (inv_a, inv_a2, r503, ack_a),
        (t_a,),
        role="outbound",
        trunk="carrier-a",
        attempt=1,
    )
    leg_b = Leg(
        "L3",
        "out-1",
        "f-out-1",
        ("tb",),
        "z9hG4bK-b",
        SBC,
        CARRIER_B,
        T0 + 650 * MS,
        T0 + 900 * MS,
        inv_b,
        200,
        "answered",
        (inv_b, ok_b),
        (t_b,),
        role="outbound",
        trunk="carrier-b",
        attempt=2,
    )
    links = (
        Link("L1", "L2", "correlation-header", (ev("X-CID", "8f2a", 1, 2),), 90, True),
        Link("L2", "L3", "same-call-id-from-tag", (ev("Call-ID", "out-1", 2, 6),), 100, True),
    )
    failover = Failover(
        "L2",
        "L3",
        "503",
        T0 + 600 * MS,
        T0 + 650 * MS,
        50 * MS,
        "carrier-a",
        1,
        (ev("Call-ID", "out-1", 4, 6),),
    )
    chain = Chain("C1", (leg_in, leg_a, leg_b), links, (failover,), "answered", "L3", 200)
    rejected = (Link("L1", "L9", "heuristic", (ev("From", "alice", 1),), 20, False),)
    report = IngestReport(
        (
            SourceReport(
                "a.pcap",
                SHA,
                "pcap",
                frames=14,
                sip_frames=11,
                sip_messages=11,
                non_sip=(("rtp", 1), ("arp", 1)),
                problem_frames=1,
                problems=(Problem("a.pcap", 14, 1500, "truncated", "record cut short"),),
                time_meaning="capture time, UTC",
            ),
        )
    )
    findings = (
        StandInFinding(
            "failover-latency",
            "warning",
            "C1",
            "L2",
            (("a.pcap", 4), ("a.pcap", 6)),
            "next attempt 50 ms after the 503",
            hint="check the SBC route timer",
        ),
        StandInFinding("answered", "info", "C1", None, (("a.pcap", 7),), "answered by carrier-b"),
    )
    messages = (inv_in, inv_a, inv_a2, r503, ack_a, inv_b, ok_b, ok_in, options, bye)
    return Reconstruction(
        chains=(chain,),
        findings=findings,
        unlinked=(Unlinked(bye, "no INVITE for this dialog"),),
        other=(OtherTraffic("OPTIONS", "ka-1", (options,)),),
        report=report,
        messages=messages,
        rejected=rejected,
        parameters={
            "trunks": {"carrier-a": ["192.0.2.10"], "carrier-b": ["198.51.100.0/24"]},
            "policy": Path("policy.toml"),
            "headers": (re.compile("X-CID"), re.compile("x-inin-cnv", re.IGNORECASE)),
            "tags": frozenset({"b", "a", "c"}),
            "window_s": 2.5,
            "hook": _sample_function,
            "endpoint": SBC,
        },
    )


def doc_of(rec: Reconstruction) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(reconstruction_to_json(rec))
    return loaded


# --------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------


def _closed(node: Any) -> Any:
    """A copy of the schema where objects with properties allow nothing else."""
    if isinstance(node, dict):
        out = {k: _closed(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_closed(v) for v in node]
    return node


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(_schema())


def test_every_schema_field_has_a_description() -> None:
    missing: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if not (isinstance(sub, dict) and sub.get("description")):
                    missing.append(f"{path}/{name}")
            for key, sub in node.items():
                walk(sub, f"{path}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}/{i}")

    schema = _schema()
    walk(schema, "#")
    assert missing == []
    assert all(d.get("description") for d in schema["$defs"].values())


@pytest.mark.parametrize("rec", [build(), Reconstruction(chains=())], ids=["sample", "empty"])
def test_json_validates_against_the_closed_schema(rec: Reconstruction) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(_closed(_schema()))
    errors = sorted(validator.iter_errors(doc_of(rec)), key=lambda e: list(e.absolute_path))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_json_top_level_without_jsonschema() -> None:
    doc = doc_of(build())
    schema = _schema()
    assert set(doc) == set(schema["required"]) == set(schema["properties"])
    assert doc["schema"] == "sipchain.reconstruction"
    assert doc["version"] == SCHEMA_VERSION == "1"
    assert doc["tool"]["name"] == "sipchain"
    assert isinstance(doc["tool"]["version"], str)
    for m in doc["messages"]:
        assert set(m) == set(schema["$defs"]["message"]["required"])


def test_json_is_byte_identical() -> None:
    rec = build()
    first = reconstruction_to_json(rec)
    assert reconstruction_to_json(rec) == first
    other = build()
    assert other is not rec
    assert reconstruction_to_json(other) == first
    assert rec.to_json() == first
    assert first.isascii()
    assert first.endswith("}\n")


def test_json_raw_round_trips() -> None:
    rec = build()
    doc = doc_of(rec)
    by_frame = {m.provenance.frame: m for m in rec.messages if m.provenance is not None}
    for entry in doc["messages"]:
        raw = base64.b64decode(entry["raw"], validate=True)
        if entry["frame"] in by_frame:
            assert raw == by_frame[entry["frame"]].raw
    (bye,) = [e for e in doc["messages"] if e["method"] == "BYE"]
    assert b"bad\xff" in base64.b64decode(bye["raw"])


def test_messages_once_in_time_order_with_ids() -> None:
    rec = build()
    doc = doc_of(rec)
    messages = doc["messages"]
    assert [m["id"] for m in messages] == [f"m{i}" for i in range(len(messages))]
    times = [m["timestamp_ns"] for m in messages]
    assert times == sorted(times)
    assert all(isinstance(t, int) for t in times)
    # ten in rec.messages plus the inbound ACK only a leg holds
    assert len(messages) == 11
    frames = [m["frame"] for m in messages]
    assert len(set(frames)) == len(frames)
    assert 11 in frames


def _references(doc: dict[str, Any]) -> list[str]:
    refs: list[str] = []
    for chain in doc["chains"]:
        for leg in chain["legs"]:
            refs += leg["messages"]
            if leg["invite"] is not None:
                refs.append(leg["invite"])
            for t in leg["transactions"]:
                refs += [r for r in (t["request"], t["ack"]) if r is not None]
                refs += t["retransmissions"] + t["responses"]
    refs += [u["message"] for u in doc["unlinked"]]
    for group in doc["other"]:
        refs += group["messages"]
    return refs


def test_every_referenced_message_exists() -> None:
    doc = doc_of(build())
    ids = {m["id"] for m in doc["messages"]}
    refs = _references(doc)
    assert refs
    assert all(ID_REF.match(r) for r in refs)
    assert set(refs) <= ids
    # in this sample every message is placed somewhere
    assert set(refs) == ids


def test_json_content() -> None:
    doc = doc_of(build())
    by_id = {m["id"]: m for m in doc["messages"]}
    (chain,) = doc["chains"]
    assert [leg["leg_id"] for leg in chain["legs"]] == ["L1", "L2", "L3"]
    leg_a = chain["legs"][1]
    (t_a,) = leg_a["transactions"]
    assert by_id[t_a["request"]]["frame"] == 2
    assert [by_id[r]["frame"] for r in t_a["retransmissions"]] == [3]
    assert by_id[t_a["ack"]]["method"] == "ACK"
    assert leg_a["answered"] is False
    assert leg_a["uas"] == {"ip": "192.0.2.10", "port": 5060, "transport": "udp"}
    assert chain["failovers"][0]["latency_ns"] == 50 * MS
    assert chain["links"][0]["evidence"][0]["frames"] == [["a.pcap", 1], ["a.pcap", 2]]
    assert doc["rejected"][0]["identifier_match"] is False
    source = doc["sources"][0]
    assert source["non_sip"] == {"arp": 1, "rtp": 1}
    assert source["problems"][0]["kind"] == "truncated"
    assert doc["findings"][0] == {
        "rule": "failover-latency",
        "severity": "warning",
        "chain_id": "C1",
        "leg": "L2",
        "frames": [["a.pcap", 4], ["a.pcap", 6]],
        "message": "next attempt 50 ms after the 503",
        "hint": "check the SBC route timer",
    }
    first = by_id["m0"]
    assert first["cseq"] == {"number": 1, "method": "INVITE"}
    assert first["src"] == {"ip": "203.0.113.5", "port": 5060, "transport": "udp"}
    assert first["start_line"] == "INVITE sip:+15551234@192.0.2.1 SIP/2.0"
    assert first["sha256"] == SHA


def test_parameters_become_plain_values() -> None:
    params = doc_of(build())["parameters"]
    assert params == {
        "endpoint": {"ip": "192.0.2.1", "port": 5060, "transport": "udp"},
        "headers": ["X-CID", "re.compile('x-inin-cnv', re.IGNORECASE)"],
        "hook": f"{__name__}._sample_function",
        "policy": "policy.toml",
        "tags": ["a", "b", "c"],
        "trunks": {"carrier-a": ["192.0.2.10"], "carrier-b": ["198.51.100.0/24"]},
        "window_s": 2.5,
    }


def test_plain_value_has_no_memory_addresses() -> None:
    class Opaque:
        pass

    text = plain_value(Opaque())
    assert isinstance(text, str)
    assert " at 0x" not in text
    assert plain_value(float("nan")) == "nan"
    assert plain_value(b"\x00") == "b'\\x00'"


def test_finding_with_unreadable_frames_is_refused() -> None:
    bad = attrs.evolve(build().findings[0], frames=(("a.pcap", "four"),))
    rec = attrs.evolve(build(), findings=(bad,))
    with pytest.raises(TypeError, match="frame reference"):
        reconstruction_to_json(rec)


def test_finding_frames_from_messages_and_numbers() -> None:
    rec = build()
    m = rec.messages[0]
    finding = attrs.evolve(rec.findings[0], frames=(m, 7))
    doc = doc_of(attrs.evolve(rec, findings=(finding,)))
    assert doc["findings"][0]["frames"] == [["a.pcap", 1], [None, 7]]


def test_empty_reconstruction_json() -> None:
    doc = doc_of(Reconstruction(chains=()))
    for key in ("sources", "messages", "chains", "unlinked", "other", "rejected", "findings"):
        assert doc[key] == []
    assert doc["parameters"] == {}


# --------------------------------------------------------------------------
# DataFrames
# --------------------------------------------------------------------------


def _check_schema(frames: dict[str, pd.DataFrame]) -> None:
    assert list(frames) == list(FRAME_COLUMNS)
    for name, columns in FRAME_COLUMNS.items():
        df = frames[name]
        assert list(df.columns) == list(columns), name
        assert {c: str(t) for c, t in df.dtypes.items()} == dict(columns), name


def test_frames_columns_dtypes_and_rows() -> None:
    rec = build()
    frames = reconstruction_frames(rec)
    _check_schema(frames)
    assert len(frames["messages"]) == 11
    assert len(frames["legs"]) == 3
    assert len(frames["links"]) == 3  # two in the chain, one rejected
    assert len(frames["failovers"]) == 1
    assert len(frames["chains"]) == 1
    assert len(frames["findings"]) == 2
    assert rec.to_pandas().keys() == frames.keys()


def test_frames_values() -> None:
    frames = reconstruction_frames(build())
    messages = frames["messages"]
    first = messages.iloc[0]
    assert first["message_id"] == "m0"
    assert first["frame"] == 1
    assert first["timestamp_ns"] == T0
    assert first["time"] == pd.Timestamp(T0, unit="ns", tz="UTC")
    assert first["src_ip"] == "203.0.113.5"
    assert pd.isna(first["status"])
    assert (messages["time"].astype("int64") == messages["timestamp_ns"].astype("int64")).all()

    legs = frames["legs"].set_index("leg_id")
    assert legs.loc["L2", "final_status"] == 503
    assert legs.at["L1", "attempt"] is pd.NA
    assert bool(legs.loc["L3", "answered"]) is True
    assert legs.loc["L2", "started"] == pd.Timestamp(T0 + 10 * MS, unit="ns", tz="UTC")
    # a leg's message ids join to the messages frame
    ids: Any = legs.at["L2", "message_ids"]
    assert isinstance(ids, tuple)
    joined = messages.set_index("message_id").loc[list(ids), "frame"].tolist()
    assert joined == [2, 3, 4, 5]

    links = frames["links"]
    assert links["rejected"].tolist() == [False, False, True]
    assert pd.isna(links.iloc[2]["chain_id"])
    assert links.iloc[0]["evidence"] == (("X-CID", "8f2a", (("a.pcap", 1), ("a.pcap", 2))),)

    failover = frames["failovers"].iloc[0]
    assert failover["latency"] == pd.Timedelta(50, unit="ms")
    assert failover["cause"] == "503"

    chain = frames["chains"].iloc[0]
    assert chain["leg_ids"] == ("L1", "L2", "L3")
    assert chain["failovers"] == 1

    findings = frames["findings"]
    assert findings.iloc[0]["frames"] == (("a.pcap", 4), ("a.pcap", 6))
    assert pd.isna(findings.iloc[1]["leg"])
    assert pd.isna(findings.iloc[1]["hint"])


def test_frames_of_empty_reconstruction() -> None:
    frames = reconstruction_frames(Reconstruction(chains=()))
    _check_schema(frames)
    assert all(df.empty for df in frames.values())


def test_message_without_provenance_or_time() -> None:
    bare = build_message(
        "OPTIONS sip:x@example.com SIP/2.0",
        [("Via", "SIP/2.0/UDP h;branch=z9hG4bK-1"), ("Call-ID", "c"), ("CSeq", "1 OPTIONS")],
    )
    rec = Reconstruction(chains=(), unlinked=(Unlinked(bare, "no dialog"),))
    doc = doc_of(rec)
    assert doc["messages"][0]["source"] is None
    assert doc["messages"][0]["timestamp_ns"] is None
    assert doc["unlinked"] == [{"message": "m0", "reason": "no dialog"}]
    frames = reconstruction_frames(rec)
    _check_schema(frames)
    assert pd.isna(frames["messages"].iloc[0]["time"])


# --------------------------------------------------------------------------
# Layering
# --------------------------------------------------------------------------


def test_views_import_only_the_model() -> None:
    for path in sorted((ROOT / "sipchain" / "views").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name == "sipchain" or name.startswith("sipchain."):
                    assert name == "sipchain.model" or name.startswith("sipchain.views"), (
                        f"{path.name} imports {name}"
                    )
