"""Readers of SIP text logs (sngrep text export, Asterisk pjsip, FreeSWITCH sofia, Kamailio sipdump)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta, timezone
from pathlib import Path

import pytest

import sipchain
from sipchain.model import Endpoint, SipMessage, SourceReport
from sipchain.sources._textlog import (
    KamailioSiptraceReader,
    PjsipLoggerReader,
    SngrepTextReader,
    SofiaSiptraceReader,
    looks_like_text_log,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not present at {CORPUS}")

Key = tuple[str | None, int | None, str | None, str | None, int | None]


def key(m: SipMessage) -> Key:
    cseq = m.cseq
    return (
        m.call_id,
        None if cseq is None else cseq.number,
        None if cseq is None else cseq.method,
        m.method,
        m.status,
    )


def balanced(report: SourceReport) -> bool:
    return (
        report.frames
        == report.sip_frames + sum(n for _, n in report.non_sip) + report.problem_frames
    )


def read_sngrep(name: str, **kw: object) -> tuple[list[SipMessage], SourceReport]:
    data = (CORPUS / "exports" / "sngrep" / name).read_bytes()
    reader = SngrepTextReader(data, name, "0" * 64, **kw)  # type: ignore[arg-type]
    messages = list(reader.messages())
    return messages, reader.report()


@needs_corpus
def test_sngrep_aaa_matches_capture() -> None:
    messages, report = read_sngrep("sngrep-1.8.4_text_aaa.txt", assume_utc=True)
    capture = sipchain.load(str(CORPUS / "pcap" / "sngrep" / "aaa.pcap")).messages
    assert report.frames == report.sip_frames == len(capture)
    assert balanced(report)
    assert not report.problems
    assert Counter(map(key, messages)) == Counter(map(key, capture))

    def full(m: SipMessage) -> tuple[Key, int | None, Endpoint | None, Endpoint | None]:
        ts = None if m.timestamp_ns is None else m.timestamp_ns // 1000
        return key(m), ts, m.src, m.dst

    assert Counter(map(full, messages)) == Counter(map(full, capture))
    assert {m.raw for m in messages} == {m.raw for m in capture}
    first = messages[0]
    assert first.provenance is not None
    assert first.provenance.frame == 1
    assert first.provenance.offset == 0


@needs_corpus
def test_sngrep_websocket_matches_capture() -> None:
    messages, report = read_sngrep("sngrep-1.8.4_text_sip_tcp_websocket.txt", assume_utc=True)
    capture = sipchain.load(str(CORPUS / "pcap" / "heplify" / "sip_tcp_websocket.pcap")).messages
    assert balanced(report)
    assert report.problem_frames == 0
    assert Counter(map(key, messages)) == Counter(map(key, capture))

    def hop(m: SipMessage) -> tuple[Key, object, object]:  # transports may differ (Via says WSS)
        assert m.src is not None
        assert m.dst is not None
        return key(m), (m.src.ip, m.src.port), (m.dst.ip, m.dst.port)

    assert Counter(map(hop, messages)) == Counter(map(hop, capture))

    # sngrep stamps a reassembled message with its first segment, the capture with its last
    def times(ms: list[SipMessage]) -> dict[object, list[int]]:
        out: dict[object, list[int]] = {}
        for m in ms:
            out.setdefault(hop(m), []).append(m.timestamp_ns or 0)
        return {k: sorted(v) for k, v in out.items()}

    ours, theirs = times(messages), times(list(capture))
    for k, values in ours.items():
        assert all(abs(a - b) < 1_000_000_000 for a, b in zip(values, theirs[k], strict=True))


@needs_corpus
def test_sngrep_naive_and_zoned_times() -> None:
    naive, report = read_sngrep("sngrep-1.8.4_text_aaa.txt")
    assert all(m.timestamp_ns is None for m in naive)
    assert [p.kind for p in report.problems] == ["naive-time"]
    assert "tz=" in report.problems[0].reason
    assert report.problem_frames == 0
    utc, _ = read_sngrep("sngrep-1.8.4_text_aaa.txt", assume_utc=True)
    east, _ = read_sngrep("sngrep-1.8.4_text_aaa.txt", tz=timezone(timedelta(hours=2)))
    assert [
        (u.timestamp_ns or 0) - (e.timestamp_ns or 0) for u, e in zip(utc, east, strict=False)
    ] == [7_200_000_000_000] * len(utc)


@needs_corpus
def test_detection_of_corpus_exports() -> None:
    for path in (CORPUS / "exports" / "sngrep").glob("*.txt"):
        assert looks_like_text_log(path.read_bytes()[:4096]) == "sngrep-text"


def sip(
    start: str, call_id: str = "c1@h", cseq: str = "1 INVITE", body: str = "", via: str = "UDP"
) -> bytes:
    lines = [
        start,
        f"Via: SIP/2.0/{via} 192.0.2.1:5060;branch=z9hG4bK1",
        "From: <sip:a@h>;tag=1",
        "To: <sip:b@h>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq}",
        f"Content-Length: {len(body.encode())}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


SDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def test_sngrep_hand_written_ipv6_garbage_and_truncation() -> None:
    invite = sip("INVITE sip:b@h SIP/2.0", body=SDP, via="TCP")
    ok = sip("SIP/2.0 200 OK", via="TCP")
    data = (
        b"2024/01/02 03:04:05.000001 [2001:db8::1]:5060 -> 2001:db8::2:5062\n"
        + invite
        + b"\n\n"
        + b"some garbage line\n\n"
        + b"2024/01/02 03:04:05.500000 2001:db8::2:5062 -> [2001:db8::1]:5060\n"
        + ok
        + b"\n\n"
        + b"2024/01/02 03:04:06.000000 192.0.2.1:5060 -> 192.0.2.2:5060\n"
        + invite[:-20]
    )
    assert looks_like_text_log(data) == "sngrep-text"
    reader = SngrepTextReader(data, "t.txt", "0" * 64, assume_utc=True)
    messages = list(reader.messages())
    report = reader.report()
    assert [m.raw for m in messages] == [invite, ok]
    assert messages[0].src == Endpoint("2001:db8::1", 5060, "tcp")
    assert messages[0].dst == Endpoint("2001:db8::2", 5062, "tcp")
    assert messages[1].provenance is not None
    assert messages[1].provenance.frame == 3
    assert report.frames == 4
    assert report.sip_frames == 2
    assert report.problem_frames == 2
    assert balanced(report)
    kinds = {(p.frame, p.kind) for p in report.problems}
    assert kinds == {(2, "unexpected-text"), (4, "truncated")}


def test_lf_only_message_is_rebuilt() -> None:
    invite = sip("INVITE sip:b@h SIP/2.0", body=SDP)
    data = (
        b"2024/01/02 03:04:05.000001 192.0.2.1:5060 -> 192.0.2.2:5060\n"
        + invite.replace(b"\r\n", b"\n")
        + b"\n\n"
    )
    reader = SngrepTextReader(data, "t.txt", "0" * 64, assume_utc=True)
    (message,) = reader.messages()
    assert message.raw == invite
    assert ("line_ends", "LF converted to CRLF") in message.metadata


def test_pjsip_logger() -> None:
    invite = sip("INVITE sip:b@h SIP/2.0", body=SDP)
    trying = sip("SIP/2.0 100 Trying")
    data = (
        b"[Dec 31 23:59:59] VERBOSE[1234] res_pjsip_logger.c: <--- Received SIP request (%d bytes) from UDP:192.0.2.1:5060 --->\n"
        % len(invite)
        + invite
        + b"\n"
        + b"[Dec 31 23:59:59] NOTICE[1234] chan_pjsip.c: something else\n"
        + b"[Jan  1 00:00:00] VERBOSE[1234] res_pjsip_logger.c: <--- Transmitting SIP response (%d bytes) to TCP:[2001:db8::1]:5061 --->\n"
        % len(trying)
        + trying
        + b"\n"
        + b"<--- Received SIP request (%d bytes) from UDP:192.0.2.1:5060 --->\n" % len(invite)
        + invite[:40]
    )
    assert looks_like_text_log(data) == "asterisk-pjsip"
    reader = PjsipLoggerReader(data, "full", "0" * 64, assume_utc=True, year=2023)
    messages = list(reader.messages())
    report = reader.report()
    assert [m.raw for m in messages] == [invite, trying]
    assert messages[0].src == Endpoint("192.0.2.1", 5060, "udp")
    assert messages[0].dst == Endpoint("0.0.0.0", 0, "udp")
    assert messages[1].dst == Endpoint("2001:db8::1", 5061, "tcp")
    assert messages[1].timestamp_ns is not None
    assert messages[0].timestamp_ns is not None
    assert messages[1].timestamp_ns - messages[0].timestamp_ns == 1_000_000_000  # year roll-over
    assert report.non_sip == (("log text", 1),)
    assert report.problem_frames == 1
    assert balanced(report)
    assert [(p.frame, p.kind) for p in report.problems if p.kind != "naive-time"] == [
        (4, "truncated")
    ]
    # naive: no year, no zone -> no times, one note each kind at most
    naive = PjsipLoggerReader(data, "full", "0" * 64)
    assert all(m.timestamp_ns is None for m in naive.messages())
    notes = [p.reason for p in naive.report().problems if p.kind == "naive-time"]
    assert notes
    assert len(set(notes)) == len(notes)


def sofia_block(
    what: str, way: str, addr: str, port: int, at: str, message: bytes, proto: str = "udp"
) -> bytes:
    lines = message.split(b"\r\n")
    if lines[-1] == b"":
        lines.pop()
    dashes = b"   " + b"-" * 72 + b"\n"
    head = f"{what} {len(message)} bytes {way} {proto}/[{addr}]:{port} at {at}:\n".encode()
    return head + dashes + b"".join(b"   " + line + b"\n" for line in lines) + dashes


def test_sofia_siptrace() -> None:
    invite = sip("INVITE sip:b@h SIP/2.0", body=SDP, via="TCP")
    ok = sip("SIP/2.0 200 OK", via="TCP")
    data = (
        b"2024-01-02 03:04:05.123456 [NOTICE] switch_core.c:1 some log line\n"
        + sofia_block("recv", "from", "2001:db8::1", 5060, "23:59:59.000001", invite, "tcp")
        + sofia_block("send", "to", "192.0.2.9", 5080, "00:00:00.500000", ok)
        + b"send 500 bytes to udp/[192.0.2.9]:5080 at 00:00:01.000000:\n   "
        + b"-" * 72
        + b"\n   INVITE sip:x SIP/2.0\n"
    )
    assert looks_like_text_log(data) == "freeswitch-sofia"
    reader = SofiaSiptraceReader(data, "fs.log", "0" * 64, assume_utc=True, date=date(2024, 1, 2))
    messages = list(reader.messages())
    report = reader.report()
    assert [m.raw for m in messages] == [invite, ok]
    assert messages[0].src == Endpoint("2001:db8::1", 5060, "tcp")
    assert messages[1].dst == Endpoint("192.0.2.9", 5080, "udp")
    assert messages[1].src == Endpoint("0.0.0.0", 0, "udp")
    assert ("line_ends", "LF converted to CRLF") in messages[0].metadata
    assert messages[0].timestamp_ns is not None
    assert messages[1].timestamp_ns is not None
    assert (
        messages[1].timestamp_ns - messages[0].timestamp_ns == 1_499_999_000
    )  # midnight roll-over
    assert report.non_sip == (("log text", 1),)
    assert report.problem_frames == 1
    assert balanced(report)
    assert [(p.frame, p.kind) for p in report.problems] == [(4, "truncated")]
    naive = SofiaSiptraceReader(data, "fs.log", "0" * 64)
    assert all(m.timestamp_ns is None for m in naive.messages())
    assert any(p.kind == "naive-time" for p in naive.report().problems)


def test_kamailio_sipdump() -> None:
    options = sip("OPTIONS sip:b@h SIP/2.0", cseq="7 OPTIONS")
    record = (
        b"====================\ntag: rcv\npid: 4321\nprocess: 1\ntime: 1516119246.616338\n"
        b"date: Tue Jan 16 16:14:06 2018\nproto: udp ipv4\nsrcip: 127.0.0.1\nsrcport: 5090\n"
        b"dstip: 127.0.0.1\ndstport: 5060\n~~~~~~~~~~~~~~~~~~~~\n"
        + options
        + b"||||||||||||||||||||\n"
    )
    data = record + b"junk\n" + record[: len(record) - 30]
    assert looks_like_text_log(data) == "kamailio-siptrace"
    reader = KamailioSiptraceReader(data, "dump.data", "0" * 64)
    messages = list(reader.messages())
    report = reader.report()
    assert [m.raw for m in messages] == [options]
    assert messages[0].timestamp_ns == 1516119246616338000
    assert messages[0].src == Endpoint("127.0.0.1", 5090, "udp")
    assert ("sipdump_tag", "rcv") in messages[0].metadata
    assert report.frames == 3
    assert report.problem_frames == 2
    assert balanced(report)
    assert {(p.frame, p.kind) for p in report.problems} == {
        (2, "unexpected-text"),
        (3, "truncated"),
    }


def test_not_a_text_log() -> None:
    assert looks_like_text_log(b"\xd4\xc3\xb2\xa1binary") is None
    assert looks_like_text_log(b"INVITE sip:x SIP/2.0\r\n") is None


@pytest.mark.skipif(not (CORPUS / "exports" / "sngrep").exists(), reason="third-party corpus not found")
def test_load_detects_the_sngrep_export_and_takes_a_timezone(tmp_path: Path) -> None:
    from datetime import UTC

    import sipchain

    export = CORPUS / "exports" / "sngrep" / "sngrep-1.8.4_text_aaa.txt"
    naive = sipchain.load(export)
    assert naive.report.sources[0].format == "sngrep-text"
    assert any("zone" in p.reason for p in naive.report.problems)
    assert all(m.timestamp_ns is None for m in naive.messages)
    timed = sipchain.load(export, timezone=UTC)
    capture = sipchain.load(CORPUS / "pcap" / "sngrep" / "aaa.pcap")
    assert sorted(m.timestamp_ns or 0 for m in timed.messages) == sorted(
        (m.timestamp_ns or 0) // 1000 * 1000 for m in capture.messages
    )
    def rows(trace: sipchain.Trace) -> list[tuple[object, ...]]:
        return [(m.call_id, m.cseq, m.method or m.status) for m in trace.messages]

    assert rows(timed) == rows(capture)  # the same messages in the same order
    assert all(m.meta("log_line") for m in timed.messages)  # the original time text is kept
    merged = sipchain.load([CORPUS / "pcap" / "sngrep" / "aaa.pcap", export], timezone=UTC)
    assert len(merged.messages) == len(capture.messages)
    assert all(len(m.provenances) == 2 for m in merged.messages)
