"""Record framing of pcap and pcapng: formats, time, damage and resynchronisation."""

from __future__ import annotations

import gzip
import io

import pytest
from captures import epb, idb, nrb, opb, pcap, shb, spb

from sipchain.errors import CaptureError
from sipchain.sources._capture import CaptureReader, Record


def _read(data: bytes, *, strict: bool = False) -> tuple[list[Record], CaptureReader]:
    reader = CaptureReader(io.BytesIO(data), "test.cap", strict=strict)
    return list(reader), reader


T0 = 1_700_000_000_123_456_789


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_byte_orders_and_resolutions(big_endian: bool, nanos: bool) -> None:
    data = pcap([(T0, b"abc"), (T0 + 5_000, b"defg")], nanos=nanos, big_endian=big_endian, linktype=113)
    records, reader = _read(data)
    expected_t0 = T0 if nanos else T0 // 1000 * 1000
    assert [(r.frame, r.ts_ns, r.linktype, r.data) for r in records] == [
        (1, expected_t0, 113, b"abc"),
        (2, (T0 + 5_000) if nanos else (T0 + 5_000) // 1000 * 1000, 113, b"defg"),
    ]
    assert [r.offset for r in records] == [24, 24 + 16 + 3]
    assert reader.format == ("pcap-ns" if nanos else "pcap")
    assert reader.problems == []


def test_pcap_snaplen_keeps_wire_length() -> None:
    data = pcap([(T0, b"abcd")], orig_lens=[100])
    (rec,), _ = _read(data)
    assert (len(rec.data), rec.wire_len) == (4, 100)


def test_gzip_compressed_pcap() -> None:
    data = gzip.compress(pcap([(T0, b"x" * 50)] * 3))
    records, reader = _read(data)
    assert len(records) == 3
    assert reader.format == "pcap+gzip"


def test_truncated_last_record_lenient_and_strict() -> None:
    data = pcap([(T0, b"a" * 40), (T0, b"b" * 40)])[:-10]
    records, reader = _read(data)
    assert [r.frame for r in records] == [1]
    (problem,) = reader.problems
    assert (problem.kind, problem.frame, problem.offset) == ("truncated", 2, 24 + 56)
    assert "30 of 40" in problem.reason
    assert reader.frames == 2
    with pytest.raises(CaptureError) as info:
        _read(data, strict=True)
    assert (info.value.source, info.value.frame, info.value.offset) == ("test.cap", 2, 80)
    assert "test.cap, frame 2, offset 80" in str(info.value)


def test_damaged_record_header_resynchronises() -> None:
    good = pcap([(T0, b"a" * 30), (T0 + 1, b"b" * 30), (T0 + 2, b"c" * 30)])
    # damage the second record's captured length
    second = 24 + 16 + 30
    damaged = good[: second + 8] + (10**8).to_bytes(4, "little") + good[second + 12 :]
    records, reader = _read(damaged)
    assert [r.data[:1] for r in records] == [b"a", b"c"]
    assert [p.kind for p in reader.problems] == ["malformed-capture", "malformed-capture"]
    assert reader.problems[0].offset == second


def test_not_a_capture() -> None:
    records, reader = _read(b"hello, this is not a capture at all")
    assert records == []
    (problem,) = reader.problems
    assert "not a pcap or pcapng file" in problem.reason
    with pytest.raises(CaptureError):
        _read(b"hello, this is not a capture at all", strict=True)
    records, reader = _read(b"")
    assert "too short" in reader.problems[0].reason


def test_pcapng_interfaces_resolutions_offsets() -> None:
    data = (
        shb()
        + idb(1)  # microseconds (default)
        + idb(113, tsresol=9)  # nanoseconds
        + idb(101, tsresol=0x80 | 10, tsoffset=100)  # 2^-10 s, +100 s
        + nrb()
        + epb(0, 1_700_000_000_000_001, b"one")
        + epb(1, 1_700_000_000_000_000_002, b"two")
        + epb(2, 1024 * 5 + 512, b"three")
        + opb(0, 7, b"four")
    )
    records, reader = _read(data)
    assert [(r.frame, r.linktype, r.data) for r in records] == [
        (1, 1, b"one"),
        (2, 113, b"two"),
        (3, 101, b"three"),
        (4, 1, b"four"),
    ]
    assert records[0].ts_ns == 1_700_000_000_000_001_000
    assert records[1].ts_ns == 1_700_000_000_000_000_002
    assert records[2].ts_ns == 105_500_000_000  # 5.5 s + 100 s offset
    assert records[3].ts_ns == 7_000
    assert reader.problems == []
    assert reader.format == "pcapng"
    offsets = [r.offset for r in records]
    assert all(data[o : o + 4] in (b"\x06\x00\x00\x00", b"\x02\x00\x00\x00") for o in offsets)


def test_pcapng_several_sections_and_big_endian() -> None:
    data = (
        shb() + idb(1) + epb(0, 10, b"a")
        + shb(">") + idb(113, order=">") + epb(0, 20, b"b", order=">") + spb(b"c", order=">")
    )
    records, reader = _read(data)
    assert [(r.frame, r.linktype, r.data, r.ts_ns) for r in records] == [
        (1, 1, b"a", 10_000),
        (2, 113, b"b", 20_000),
        (3, 113, b"c", 20_000),  # simple packet block: no time, takes the previous one
    ]
    assert "simple packet blocks" in reader.time_meaning


def test_pcapng_packet_for_undescribed_interface() -> None:
    data = shb() + idb(1) + epb(3, 10, b"a") + epb(0, 11, b"b")
    records, reader = _read(data)
    assert [r.frame for r in records] == [2]
    (problem,) = reader.problems
    assert (problem.frame, problem.kind) == (1, "malformed-capture")
    assert reader.frames == 2


def test_pcapng_damaged_block_resynchronises_and_truncation() -> None:
    data = shb() + idb(1) + epb(0, 10, b"a" * 8) + epb(0, 11, b"b" * 8) + epb(0, 12, b"c" * 8)
    start = len(shb() + idb(1) + epb(0, 10, b"a" * 8))
    damaged = data[: start + 4] + b"\xff\xff\x00\x00" + data[start + 8 :]
    records, reader = _read(damaged)
    assert [r.data[:1] for r in records] == [b"a", b"c"]
    assert reader.problems[0].offset == start
    records, reader = _read(data[:-6])
    assert [r.data[:1] for r in records] == [b"a", b"b"]
    assert reader.problems[-1].kind == "truncated"
    assert reader.problems[-1].frame == 3
