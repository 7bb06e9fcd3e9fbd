"""sipchain export records: lossless round trip, aliases, bad records, detection."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from sipchain import IngestError, load, reconstruct
from sipchain.cli import main
from sipchain.errors import UnsupportedFormatError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CAPTURE = FIXTURES / "captures" / "failover-timeout.pcap"
TRUNKS = FIXTURES / "trunks.toml"


def _chains(source: object) -> list[tuple[object, ...]]:
    result = reconstruct(source, trunks=TRUNKS)  # type: ignore[arg-type]
    return [
        (
            chain.outcome,
            [(leg.role, leg.trunk, leg.attempt, leg.call_id, leg.branch, leg.final_status, leg.end) for leg in chain.legs],
            [(fo.cause, fo.latency_ns) for fo in chain.failovers],
        )
        for chain in result.chains
    ]


def test_export_round_trip_is_lossless(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "export.ndjson"
    assert main(["export", str(CAPTURE), "-o", str(out)]) == 0
    assert "34 messages written" in capsys.readouterr().out
    original, back = load(CAPTURE), load(out)
    assert [m.raw for m in back.messages] == [m.raw for m in original.messages]
    assert [(m.timestamp_ns, m.src, m.dst) for m in back.messages] == [
        (m.timestamp_ns, m.src, m.dst) for m in original.messages
    ]
    first = back.messages[0]
    assert first.provenance is not None
    assert (first.provenance.source, first.provenance.frame) == (str(out), 1)
    assert first.meta("origin_frame") == "1"
    assert first.meta("origin_source") == str(CAPTURE)
    assert _chains(out) == _chains(CAPTURE)
    assert back.report.is_balanced()
    assert back.report.sources[0].format == "sipchain-export"


def test_aliases_metadata_and_bad_records(tmp_path: Path) -> None:
    raw = CAPTURE.read_bytes()
    message = load(CAPTURE).messages[0]
    good = {
        "msg": message.raw.decode(),
        "timestamp": "2026-12-03T18:06:29.894193Z",
        "source": "127.0.0.10:5060/udp",
        "destination": "127.0.0.1:5060/udp",
        "callId": message.call_id,
        "sipSequence": 7,
        "trunkId": "carrier-b",
        "originalTrunkId": "carrier-a",
        "failoverTimestamp": "1796321191845",
        "raw_base64": base64.b64encode(message.raw).decode(),
    }
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"raw_base64": "!!!", "src": "1.2.3.4:5/udp"}),
        json.dumps({"msg": message.raw.decode(), "timestamp": "2026-12-03 18:06:29"}),  # naive
        json.dumps(["not", "an", "object"]),
    ]
    path = tmp_path / "records.ndjson"
    path.write_text("\n".join(lines) + "\n")
    del raw
    trace = load(path, format="sipchain-export")
    (m,) = trace.messages
    assert m.timestamp_ns == 1796321189894193000
    assert dict(m.metadata)["sip_sequence"] == "7"
    assert m.meta("trunk_id") == "carrier-b"
    assert m.meta("original_trunk_id") == "carrier-a"
    report = trace.report.sources[0]
    assert [p.frame for p in report.problems] == [2, 3, 4, 5]
    assert report.is_balanced()
    with pytest.raises(IngestError):
        load(path, format="sipchain-export", strict=True)


def test_unknown_format_is_refused_with_the_list(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, these are meeting notes\n")
    with pytest.raises(UnsupportedFormatError) as info:
        load(junk)
    assert "pcapng" in str(info.value)
    assert "sipchain-export" in str(info.value)
    assert "hello" in str(info.value)
    with pytest.raises(ValueError, match="unknown format"):
        load(junk, format="word-document")


def test_export_records_validate_against_their_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((FIXTURES.parent / "docs" / "schema" / "export-record-1.json").read_text())
    out = tmp_path / "e.ndjson"
    assert main(["export", str(CAPTURE), "-o", str(out)]) == 0
    for line in out.read_text().splitlines():
        jsonschema.validate(json.loads(line), schema)


def test_two_sources_merge_into_one_evidence_set(tmp_path: Path) -> None:
    original = load(CAPTURE)
    shift = 3_500_000_000  # the platform's clock runs 3.5 s ahead
    lines = []
    for m in original.messages[::2]:  # the export carries every other message
        assert m.timestamp_ns is not None
        record = {
            "msg": m.raw.decode().replace("\r\n", "\n"),  # exports often rewrite line ends
            "timestamp_ns": m.timestamp_ns + shift,
            "src": str(m.src),
            "dst": str(m.dst),
        }
        lines.append(json.dumps(record))
    export = tmp_path / "platform.ndjson"
    export.write_text("\n".join(lines) + "\n")
    trace = load([CAPTURE, export])
    assert len(trace.messages) == len(original.messages)
    assert trace.report.merged == len(lines)
    (offset,) = trace.report.clock_offsets
    assert (offset.source, offset.reference, offset.offset_ns) == (str(export), str(CAPTURE), shift)
    proved = [m for m in trace.messages if len(m.provenances) == 2]
    assert len(proved) == len(lines)
    assert {p.source for p in proved[0].provenances} == {str(CAPTURE), str(export)}
    assert _chains([CAPTURE, export]) == _chains(CAPTURE)


def test_genesys_export_merged_with_the_capture_gives_one_chain_with_both_provenances(tmp_path: Path) -> None:
    capture = FIXTURES / "captures" / "failover-503.pcapng"
    original = load(capture)
    records = []
    for m in original.messages:
        assert m.timestamp_ns is not None
        assert m.src is not None
        assert m.dst is not None
        records.append(
            {
                "msg": m.raw.decode(),
                "callid": m.call_id,
                "microTs": m.timestamp_ns // 1000,
                "sourceIp": m.src.ip,
                "sourcePort": m.src.port,
                "destinationIp": m.dst.ip,
                "destinationPort": m.dst.port,
                "proto": "udp",
                "conversationId": "8e1c-conv",
            }
        )
    genesys = tmp_path / "siptraces.json"
    genesys.write_text(json.dumps({"data": records, "count": len(records)}))
    merged = load([capture, genesys])
    assert merged.report.sources[1].format == "genesys-json"
    assert len(merged.messages) == len(original.messages)
    assert all(len(m.provenances) == 2 for m in merged.messages)
    assert merged.report.clock_offsets[0].offset_ns == 0  # the export keeps microseconds
    assert _chains([capture, genesys]) == _chains(capture)
