"""Kamailio sipdump reader on a real text file written by Kamailio 5.6.3.

See ``tests/data/kamailio/README.md`` for how the sample was recorded.
"""

from __future__ import annotations

import re
from pathlib import Path

import sipchain
from sipchain.model import CSeq, Endpoint, Provenance, SipMessage
from sipchain.sources._textlog import KamailioSiptraceReader, looks_like_text_log

SAMPLE = Path(__file__).resolve().parent / "data" / "kamailio" / "sipdump-sample.txt"

KAMAILIO = Endpoint("127.0.0.1", 5099, "udp")
CLIENT = Endpoint("127.0.0.1", 5098, "udp")

# (tag, method, status, CSeq number, CSeq method, Call-ID), in file order.
EXPECTED = [
    ("rcv", "OPTIONS", None, 1, "OPTIONS", "sipdump-options-1@127.0.0.1"),
    ("snd", None, 200, 1, "OPTIONS", "sipdump-options-1@127.0.0.1"),
    ("rcv", "OPTIONS", None, 2, "OPTIONS", "sipdump-options-2@127.0.0.1"),
    ("snd", None, 200, 2, "OPTIONS", "sipdump-options-2@127.0.0.1"),
    ("rcv", "OPTIONS", None, 3, "OPTIONS", "sipdump-options-3@127.0.0.1"),
    ("snd", None, 200, 3, "OPTIONS", "sipdump-options-3@127.0.0.1"),
    ("rcv", "REGISTER", None, 4, "REGISTER", "sipdump-register-1@127.0.0.1"),
    ("snd", None, 404, 4, "REGISTER", "sipdump-register-1@127.0.0.1"),
]

_RECORD = re.compile(
    rb"====================\n(?P<head>(?:[a-z]+: [^\n]*\n)+)~~~~~~~~~~~~~~~~~~~~\n"
    rb"(?P<msg>.*?)\|\|\|\|\|\|\|\|\|\|\|\|\|\|\|\|\|\|\|\|\n",
    re.S,
)


def _cseq(m: SipMessage) -> CSeq:
    assert m.cseq is not None
    return m.cseq


def _prov(m: SipMessage) -> Provenance:
    assert m.provenance is not None
    return m.provenance


def _records() -> list[tuple[dict[str, str], bytes]]:
    """The sample's records split independently of the reader."""
    data = SAMPLE.read_bytes()
    out = []
    pos = 0
    for match in _RECORD.finditer(data):
        assert match.start() == pos, "unexpected text between sipdump records"
        pos = match.end()
        head = dict(line.split(": ", 1) for line in match.group("head").decode().splitlines())
        out.append((head, match.group("msg")))
    assert pos == len(data)
    return out


def test_sample_is_what_was_recorded() -> None:
    records = _records()
    assert [head["tag"] for head, _ in records] == [e[0] for e in EXPECTED]
    for head, msg in records:
        assert head["proto"] == "udp ipv4"
        assert msg.endswith(b"\r\n\r\n")


def test_format_detected() -> None:
    assert looks_like_text_log(SAMPLE.read_bytes()) == "kamailio-siptrace"
    trace = sipchain.load(SAMPLE)
    assert trace.report.sources[0].format == "kamailio-siptrace"


def test_every_message_parses() -> None:
    trace = sipchain.load(SAMPLE)
    report = trace.report
    source = report.sources[0]
    assert source.frames == len(EXPECTED)
    assert source.sip_frames == len(EXPECTED)
    assert source.sip_messages == len(EXPECTED)
    assert source.problem_frames == 0
    assert source.problems == ()
    assert not source.non_sip
    assert len(trace.messages) == len(EXPECTED)
    assert report.is_balanced()
    for m in trace.messages:
        assert m.defects == ()
        assert m.framing_defects == ()


def test_methods_statuses_call_ids() -> None:
    trace = sipchain.load(SAMPLE)
    got = [
        (m.method, m.status, _cseq(m).number, _cseq(m).method, m.call_id) for m in trace.messages
    ]
    assert got == [e[1:] for e in EXPECTED]
    assert [m.is_request for m in trace.messages] == [e[1] is not None for e in EXPECTED]


def test_raw_bytes_are_exact() -> None:
    trace = sipchain.load(SAMPLE)
    assert [m.raw for m in trace.messages] == [msg for _, msg in _records()]
    for m in trace.messages:
        assert ("line_ends", "LF converted to CRLF") not in m.metadata


def test_endpoints() -> None:
    trace = sipchain.load(SAMPLE)
    for m, (tag, *_rest) in zip(trace.messages, EXPECTED, strict=True):
        if tag == "rcv":
            assert (m.src, m.dst) == (CLIENT, KAMAILIO)
        else:
            assert (m.src, m.dst) == (KAMAILIO, CLIENT)
        assert ("sipdump_tag", tag) in m.metadata


def test_timestamps_are_epoch_times() -> None:
    trace = sipchain.load(SAMPLE)
    expected_ns = []
    for head, _ in _records():
        secs, frac = head["time"].split(".")
        assert len(frac) == 6
        expected_ns.append(int(secs) * 1_000_000_000 + int(frac) * 1000)
    got = [m.timestamp_ns for m in trace.messages]
    assert got == expected_ns
    assert expected_ns == sorted(expected_ns)
    for m in trace.messages:
        assert _prov(m).time_meaning == "sipdump time (epoch, UTC)"


def test_provenance_offsets() -> None:
    data = SAMPLE.read_bytes()
    trace = sipchain.load(SAMPLE)
    starts = [m.start() for m in re.finditer(rb"^====================\n", data, re.M)]
    assert [_prov(m).frame for m in trace.messages] == list(range(1, len(EXPECTED) + 1))
    assert [_prov(m).offset for m in trace.messages] == starts
    assert all(_prov(m).parser_chain == "kamailio-sipdump/sip" for m in trace.messages)


def test_reader_directly() -> None:
    data = SAMPLE.read_bytes()
    reader = KamailioSiptraceReader(data, SAMPLE.name, "0" * 64)
    messages = list(reader.messages())
    report = reader.report()
    assert len(messages) == len(EXPECTED)
    assert report.frames == len(EXPECTED)
    assert report.problem_frames == 0
    assert [("sipdump_process", "1") in m.metadata for m in messages] == [True] * len(EXPECTED)
