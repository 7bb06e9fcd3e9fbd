"""Homer API and Genesys Cloud SIP trace exports (JSON, NDJSON)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import sipchain
from sipchain.model import SipMessage, SourceReport
from sipchain.sources._homer import HomerJsonReader, looks_like_homer_json

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ROOT / "fixtures" / "captures" / "failover-503.pcapng"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
HOMER = CORPUS / "exports" / "homer"

needs_corpus = pytest.mark.skipif(not HOMER.is_dir(), reason=f"corpus not present at {HOMER}")

SIP_LF = (
    "OPTIONS sip:bob@example.com SIP/2.0\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9\n"
    "From: <sip:alice@example.com>;tag=9fxced76sl\n"
    "To: <sip:bob@example.com>\n"
    "Call-ID: lf-only@192.0.2.10\n"
    "CSeq: 1 OPTIONS\n"
    "Max-Forwards: 70\n"
    "Content-Length: 0\n"
    "\n"
)
SIP = SIP_LF.replace("\n", "\r\n").replace("lf-only", "crlf")


def read(
    data: bytes, name: str = "export.json"
) -> tuple[list[SipMessage], SourceReport, HomerJsonReader]:
    reader = HomerJsonReader(data, name, hashlib.sha256(data).hexdigest())
    messages = list(reader.messages())
    report = reader.report()
    assert (
        report.frames
        == report.sip_frames + sum(n for _, n in report.non_sip) + report.problem_frames
    )
    return messages, report, reader


# ---------------------------------------------------------------- corpus
@needs_corpus
@pytest.mark.parametrize(
    ("name", "count", "call_ids"),
    [
        (
            "call_transaction_d2d3acfd-f6c5-11e7-acfd-000019432987.json",
            68,
            {"46735715-5066-33@BJC.BGI.BHI.CC", "aa46e8ee-7168-1236-e0bb-0030487e5dc6"},
        ),
        (
            "call_transaction_d2e8b02b-f6c5-11e7-b02b-000019432987.json",
            68,
            {"46735715-5066-33@BJC.BGI.BHI.CC", "aa46e8ee-7168-1236-e0bb-0030487e5dc6"},
        ),
        (
            "call_transaction_ef0180ef-f6c4-11e7-80ef-000019432987.json",
            12,
            {"c2c59d4a5c47c9d529b3d8af87370029"},
        ),
    ],
)
def test_homer_call_transaction(name: str, count: int, call_ids: set[str]) -> None:
    data = (HOMER / name).read_bytes()
    assert looks_like_homer_json(data[:65536]) == "homer-json"
    messages, report, reader = read(data, name)
    assert reader.format == report.format == "homer-json"
    assert len(messages) == count
    assert report.frames == report.sip_frames == count
    assert report.problem_frames == 0
    assert report.problems == ()
    assert report.non_sip == ()
    assert {m.call_id for m in messages} == call_ids
    records = json.loads(data)["data"]["messages"]
    for index, (m, record) in enumerate(zip(messages, records, strict=True)):
        assert m.raw == record["message"].encode()
        assert m.provenance is not None
        assert m.provenance.frame == index + 1
        assert m.provenance.parser_chain == "homer-json/sip"
        assert m.meta("json_pointer") == f"/data/messages/{index}"
        # micro_ts holds whole milliseconds; tss/tsu carry the microseconds
        assert m.timestamp_ns == (record["tss"] * 1_000_000 + record["tsu"]) * 1000
        assert m.timestamp_ns is not None
        assert m.timestamp_ns // 1_000_000 == record["micro_ts"] // 1000
        assert m.meta("timestamp_text") == str(record["micro_ts"])
        assert m.src is not None
        assert m.dst is not None
        assert (m.src.ip, m.src.port) == (record["source_ip"], record["source_port"])
        assert (m.dst.ip, m.dst.port) == (record["destination_ip"], record["destination_port"])
        assert m.src.transport == {6: "tcp", 17: "udp"}[record["proto"]]
    assert messages[0].method == "INVITE"
    assert Counter(m.method for m in messages if m.method)["INVITE"] >= 1
    assert any(m.status is not None for m in messages)


@needs_corpus
def test_homer_call_transaction_methods() -> None:
    data = (HOMER / "call_transaction_ef0180ef-f6c4-11e7-80ef-000019432987.json").read_bytes()
    messages, _, _ = read(data)
    assert messages[0].method == "INVITE"
    assert messages[0].src is not None
    assert str(messages[0].src) == "185.40.4.46:5070/udp"
    assert messages[1].status == 100
    assert 407 in {m.status for m in messages}


@needs_corpus
def test_homer_search_call_data_is_not_sip() -> None:
    data = (HOMER / "search_call_data.json").read_bytes()
    messages, report, _ = read(data, "search_call_data.json")
    assert messages == []
    assert report.frames == 3
    assert report.non_sip == (("Homer call summary without a SIP message", 3),)
    assert report.problem_frames == 0


# ---------------------------------------------------------------- Genesys
def genesys_records() -> tuple[list[SipMessage], list[dict[str, Any]]]:
    trace = sipchain.load(CAPTURE)
    originals = list(trace.messages)
    assert originals
    records: list[dict[str, Any]] = []
    for m in originals:
        assert m.timestamp_ns is not None
        assert m.src is not None
        assert m.dst is not None
        records.append(
            {
                "msg": m.raw.decode("utf-8"),
                "callid": m.call_id,
                "conversationId": "0f6d4f5c-1111-4222-8333-944455556666",
                "microTs": m.timestamp_ns // 1000,
                "sourceIp": m.src.ip,
                "sourcePort": m.src.port,
                "destinationIp": m.dst.ip,
                "destinationPort": m.dst.port,
                "proto": m.src.transport,
                "method": m.method or "",
            }
        )
    return originals, records


def assert_same(originals: list[SipMessage], loaded: list[SipMessage]) -> None:
    assert len(loaded) == len(originals)
    for a, b in zip(originals, loaded, strict=True):
        assert b.raw == a.raw
        assert b.call_id == a.call_id
        assert a.timestamp_ns is not None
        assert b.timestamp_ns is not None
        assert b.timestamp_ns == a.timestamp_ns // 1000 * 1000
        assert b.src == a.src
        assert b.dst == a.dst
        assert b.meta("conversationId") == "0f6d4f5c-1111-4222-8333-944455556666"
        assert b.meta("line_ends") is None


def ndjson(records: list[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_genesys_search_result() -> None:
    originals, records = genesys_records()
    data = json.dumps({"data": records, "pageSize": 25, "pageNumber": 1}).encode()
    assert looks_like_homer_json(data[:65536]) == "genesys-json"
    messages, report, _ = read(data)
    assert report.format == "genesys-json"
    assert report.frames == report.sip_frames == len(records)
    assert report.problem_frames == 0
    assert_same(originals, messages)
    assert messages[0].provenance is not None
    assert messages[0].provenance.parser_chain == "genesys-json/sip"
    assert messages[0].provenance.offset is None
    assert "microTs" in messages[0].provenance.time_meaning
    assert messages[2].meta("json_pointer") == "/data/2"


def test_genesys_bare_list() -> None:
    originals, records = genesys_records()
    data = json.dumps(records, indent=2).encode()
    assert looks_like_homer_json(data[:65536]) == "genesys-json"
    messages, report, _ = read(data)
    assert report.format == "genesys-json"
    assert_same(originals, messages)
    assert messages[1].meta("json_pointer") == "/1"


def test_genesys_ndjson() -> None:
    originals, records = genesys_records()
    data = ndjson(records)
    assert looks_like_homer_json(data[:65536]) == "homer-ndjson"
    messages, report, _ = read(data, "export.ndjson")
    assert report.format == "homer-ndjson"
    assert_same(originals, messages)
    line_starts = [0]
    for line in data.splitlines(keepends=True)[:-1]:
        line_starts.append(line_starts[-1] + len(line))
    assert [m.provenance.offset for m in messages if m.provenance] == line_starts
    assert messages[0].provenance is not None
    assert messages[0].provenance.parser_chain == "homer-ndjson/sip"


def test_genesys_load_then_records_sorted_like_capture() -> None:
    """Records in the capture's order keep it: loaded times never go backwards."""
    _, records = genesys_records()
    messages, _, _ = read(ndjson(records))
    times = [m.timestamp_ns for m in messages]
    assert times == sorted(t for t in times if t is not None)


def test_malformed_records_become_problems() -> None:
    originals, records = genesys_records()
    good = records[:3]
    no_msg = {k: v for k, v in records[3].items() if k != "msg"}
    bad_ts = dict(records[4], microTs="yesterday")
    naive = {k: v for k, v in records[5].items() if k != "microTs"} | {
        "date": "2024-03-01T10:00:00.123"
    }
    lines = [
        json.dumps(good[0]).encode(),
        b'{"msg": "INVITE sip:x SIP/2.0\\r\\n", "callid": ',  # truncated line
        json.dumps(no_msg).encode(),
        b"",
        json.dumps(good[1]).encode(),
        json.dumps(bad_ts).encode(),
        b"[1, 2]",
        json.dumps(naive).encode(),
        json.dumps(good[2]).encode(),
    ]
    data = b"\n".join(lines) + b"\n"
    messages, report, _ = read(data, "broken.ndjson")
    assert report.format == "homer-ndjson"
    # records are numbered without the blank line: 1 good, 2 bad JSON, 3 no msg,
    # 4 good, 5 bad time, 6 not an object, 7 naive date (loads, time unknown), 8 good
    assert [m.provenance.frame for m in messages if m.provenance] == [1, 4, 7, 8]
    assert report.frames == 8
    assert report.sip_frames == 4
    assert report.problem_frames == 4
    by_record = {p.frame: p for p in report.problems if p.frame is not None}
    assert sorted(by_record) == [2, 3, 5, 6, 7]
    for record in (2, 3, 5, 6):
        assert by_record[record].kind == "malformed-record"
    assert "bad JSON" in by_record[2].reason
    assert "msg" in by_record[3].reason
    assert "yesterday" in by_record[5].reason
    assert "naive local time, zone unknown" in by_record[7].reason
    naive_message = messages[2]
    assert naive_message.timestamp_ns is None
    assert naive_message.meta("timestamp_text") == "2024-03-01T10:00:00.123"
    assert naive_message.raw == originals[5].raw
    # offsets are those of the lines
    assert by_record[2].offset == len(lines[0]) + 1


def test_not_json() -> None:
    messages, report, _ = read(b"\x00\x01 this is not json", "junk.json")
    assert messages == []
    assert report.frames == report.problem_frames == 1
    assert report.problems[0].frame == 1
    assert report.problems[0].offset == 0
    assert report.problems[0].kind == "malformed-record"
    _, report2, _ = read(b'{"data": 5}')
    assert report2.problem_frames == 1


def test_iso_dates_and_timestamps() -> None:
    base = {
        "msg": SIP,
        "sourceIp": "192.0.2.10",
        "sourcePort": "5060",
        "destinationIp": "2001:db8::1",
    }
    records = [
        base | {"date": "2024-03-01T10:00:00.123456789Z"},
        base | {"date": "2024-03-01T11:00:00.5+01:00"},
        base | {"milliTs": 1709287200123},
        base | {"milli_ts": "1709287200123"},
        base | {"microTs": 1709287200123456, "milliTs": 1},
        base | {"micro_ts": 1709287200123456.0},
    ]
    messages, report, _ = read(json.dumps(records).encode())
    assert report.problem_frames == 0
    assert report.problems == ()
    t = 1_709_287_200 * 1_000_000_000
    assert [m.timestamp_ns for m in messages] == [
        t + 123_456_789,
        t + 500_000_000,
        t + 123_000_000,
        t + 123_000_000,
        t + 123_456_000,
        t + 123_456_000,
    ]
    assert messages[0].meta("timestamp_text") == "2024-03-01T10:00:00.123456789Z"
    assert messages[4].meta("timestamp_field") == "microTs"
    assert messages[0].src is not None
    assert messages[0].src.port == 5060
    assert messages[0].dst is not None
    assert messages[0].dst.port == 0
    assert messages[0].src.transport == "unknown"


def test_lf_converted_and_metadata() -> None:
    record = {
        "msg": SIP_LF,
        "callid": "lf-only@192.0.2.10",
        "callidAleg": "a-leg@192.0.2.1",
        "conversationId": "c1",
        "participantId": "p1",
        "correlationId": "k1",
        "sourceAlias": "edge-1",
        "destinationAlias": "carrier",
        "trunk_id": 42,
        "original_trunk_id": "41",
        "failover_timestamp": "2024-03-01T10:00:01Z",
        "sip_sequence": 3,
        "microTs": 1709287200123456,
        "source_ip": "192.0.2.10",
        "src_port": 5060,
        "destination_ip": "192.0.2.20",
        "dst_port": 5061,
        "proto": 17,
    }
    crlf = dict(record, msg=SIP, callid="crlf@192.0.2.10", proto="TCP")
    messages, report, _ = read(ndjson([record, crlf]))
    assert report.sip_frames == 2
    lf, kept = messages
    assert lf.raw == SIP_LF.replace("\n", "\r\n").encode()
    assert lf.meta("line_ends") == "LF converted to CRLF"
    assert lf.call_id == "lf-only@192.0.2.10"
    assert kept.raw == SIP.encode()
    assert kept.meta("line_ends") is None
    assert lf.src is not None
    assert str(lf.src) == "192.0.2.10:5060/udp"
    assert kept.dst is not None
    assert str(kept.dst) == "192.0.2.20:5061/tcp"
    for key, value in [
        ("callidAleg", "a-leg@192.0.2.1"),
        ("conversationId", "c1"),
        ("participantId", "p1"),
        ("correlationId", "k1"),
        ("sourceAlias", "edge-1"),
        ("destinationAlias", "carrier"),
        ("trunk_id", "42"),
        ("original_trunk_id", "41"),
        ("failover_timestamp", "2024-03-01T10:00:01Z"),
        ("sip_sequence", "3"),
    ]:
        assert lf.meta(key) == value


def test_snake_case_aleg_and_non_dict_in_json() -> None:
    records: list[Any] = [{"msg": SIP, "callid_aleg": "x"}, "not a record", {"callid": "c"}]
    messages, report, _ = read(json.dumps({"data": records}).encode())
    assert [m.meta("callid_aleg") for m in messages] == ["x"]
    assert messages[0].timestamp_ns is None
    assert sorted(p.frame or 0 for p in report.problems) == [2, 3]
    assert report.problem_frames == 2


def test_looks_like_homer_json_rejects_others() -> None:
    assert looks_like_homer_json(b"\xd4\xc3\xb2\xa1") is None
    assert looks_like_homer_json(b'{"name": "x", "values": [1, 2]}') is None
    assert looks_like_homer_json(b"INVITE sip:x SIP/2.0\r\n") is None
    assert (
        looks_like_homer_json(json.dumps({"msg": SIP, "callid": "c", "microTs": 1}).encode())
        == "genesys-json"
    )


def test_strict_mode_raises_on_problem() -> None:
    data = b'{"msg": "x"\n{"msg": 1}\n'
    reader = HomerJsonReader(data, "s.ndjson", "0" * 64, strict=True)
    with pytest.raises(sipchain.IngestError):
        list(reader.messages())


@pytest.mark.skipif(not (CORPUS / "exports" / "homer").exists(), reason="third-party corpus not found")
def test_load_detects_homer_exports_by_content(tmp_path: Path) -> None:
    import sipchain

    for path in sorted((CORPUS / "exports" / "homer").glob("call_transaction_*.json")):
        renamed = tmp_path / (path.stem + ".bin")  # the name says nothing
        renamed.write_bytes(path.read_bytes())
        trace = sipchain.load(renamed)
        assert trace.messages
        assert trace.report.sources[0].format == "homer-json"
        assert trace.report.is_balanced()
