"""The tshark backend (``sipchain.sources._tshark.TsharkIngest``).

Corpus tests: for every capture in ``../shared/corpus/pcap`` the messages equal
tshark's own ``-Y sip -T fields`` listing and the corpus ``sip_messages.tsv``
(frame, Call-ID, CSeq, method or status), with exact times, endpoints and a
balanced report. Synthetic captures, written here with ``struct``, pin down
provenance of reassembled TCP and IPv4 fragments, several messages in one
segment, decode-as, TLS with a key log file, damaged files and errors.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import shutil
import ssl
import struct
import subprocess
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from sipchain.errors import CaptureError, IngestError
from sipchain.model import SipMessage, SourceReport
from sipchain.sources._capture import CaptureReader
from sipchain.sources._tshark import NON_SIP_REASON, TsharkIngest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PCAPS = CORPUS / "pcap"
TSHARK = shutil.which("tshark")

needs_tshark = pytest.mark.skipif(
    TSHARK is None,
    reason="tshark is not installed (Debian/Ubuntu: apt-get install tshark; CI installs it)",
)
tshark_mark = pytest.mark.tshark

Key = tuple[int, str, str, str, str]  # frame, Call-ID, CSeq number, CSeq method, method or status


# --------------------------------------------------------------------------
# Synthetic captures
# --------------------------------------------------------------------------

T0 = 1_700_000_000_123_456_789  # ns: beyond a float's precision, so exactness shows


def _pcap_ns(packets: list[tuple[int, bytes]]) -> tuple[bytes, list[int]]:
    """A nanosecond pcap (Ethernet) and the file offset of each record."""
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)]
    offsets = []
    pos = 24
    for ts, data in packets:
        offsets.append(pos)
        sec, ns = divmod(ts, 1_000_000_000)
        out.append(struct.pack("<IIII", sec, ns, len(data), len(data)) + data)
        pos += 16 + len(data)
    return b"".join(out), offsets


def _eth_ipv4(
    src: str, dst: str, proto: int, payload: bytes, *, ident: int = 1, frag: int = 0
) -> bytes:
    """Ethernet + IPv4 (checksum left zero: tshark does not check it by default)."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident,
        frag,
        64,
        proto,
        0,
        bytes(int(x) for x in src.split(".")),
        bytes(int(x) for x in dst.split(".")),
    )
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + header + payload


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _tcp(sport: int, dport: int, seq: int, ack: int, payload: bytes) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, 0x18, 65535, 0, 0) + payload


def _sip(method: str, n: int, *, body: bytes = b"", transport: str = "TCP") -> bytes:
    return (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 192.0.2.1:5060;branch=z9hG4bK{n}x\r\n"
        f"From: <sip:alice@example.com>;tag=a{n}\r\n"
        f"To: <sip:bob@example.com>\r\n"
        f"Call-ID: call-{n}@example.com\r\n"
        f"CSeq: {n} {method}\r\n"
        f"Max-Forwards: 70\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


INVITE, OPTIONS, BYE = _sip("INVITE", 1), _sip("OPTIONS", 2), _sip("BYE", 3)


def _tcp_capture(path: Path, port: int = 5060) -> list[int]:
    """Frame 1: a UDP datagram that is not SIP. Frames 2-4: one TCP stream with
    INVITE + OPTIONS + BYE, cut so that frame 3 ends the INVITE, holds the whole
    OPTIONS and starts the BYE, which frame 4 ends."""
    stream = INVITE + OPTIONS + BYE
    cut1, cut2 = len(INVITE) // 2, len(INVITE) + len(OPTIONS) + 10
    packets = [(T0, _eth_ipv4("192.0.2.9", "192.0.2.8", 17, _udp(1234, 9999, b"hello")))]
    seq = 1000
    for i, piece in enumerate((stream[:cut1], stream[cut1:cut2], stream[cut2:]), start=1):
        tcp = _tcp(40000, port, seq, 1, piece)
        packets.append((T0 + i * 1_000_001, _eth_ipv4("192.0.2.1", "192.0.2.2", 6, tcp, ident=i)))
        seq += len(piece)
    data, offsets = _pcap_ns(packets)
    path.write_bytes(data)
    return offsets


def _ingest(path: Path, **kwargs: Any) -> tuple[list[SipMessage], SourceReport]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    ingest = TsharkIngest(path, digest, **kwargs)
    messages = list(ingest.messages())
    return messages, ingest.report()


# --------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------


def _manifest() -> list[dict[str, Any]]:
    path = PCAPS / "MANIFEST.json"
    if not path.is_file():
        return []
    files: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["files"]
    return files


_CORPUS = [pytest.param(entry, id=entry["file"]) for entry in _manifest()] or [
    pytest.param(
        None,
        id="no-corpus",
        marks=pytest.mark.skip(reason=f"third-party corpus not found at {PCAPS}"),
    )
]


def _decode_as(entry: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The manifest's ``-d tcp.port==6060,sip`` as tshark arguments and as a mapping."""
    args: list[str] = (entry.get("tshark_decode_as") or "").split()
    mapping = {}
    for flag, rule in zip(args[::2], args[1::2], strict=True):
        assert flag == "-d", args
        selector, protocol = rule.rsplit(",", 1)
        mapping[selector] = protocol
    return args, mapping


@functools.cache
def _corpus_ingest(name: str) -> tuple[tuple[SipMessage, ...], SourceReport]:
    entry = next(e for e in _manifest() if e["file"] == name)
    _, mapping = _decode_as(entry)
    messages, report = _ingest(PCAPS / name, decode_as=mapping or None)
    return tuple(messages), report


def _key(m: SipMessage) -> Key:
    return (
        m.provenance.frame if m.provenance is not None else 0,
        m.call_id or "",
        str(m.cseq.number) if m.cseq is not None else "",
        m.cseq.method if m.cseq is not None else "",
        m.method or str(m.status),
    )


def _tshark_listing(path: Path, decode_args: list[str]) -> collections.Counter[Key]:
    """tshark's own ``-Y sip -T fields`` listing, one key per SIP message."""
    assert TSHARK is not None
    fields = [
        "frame.number",
        "sip.Call-ID",
        "sip.CSeq.seq",
        "sip.CSeq.method",
        "sip.Method",
        "sip.Status-Code",
    ]
    args = [TSHARK, "-n", "-r", str(path), *decode_args, "-Y", "sip", "-T", "fields"]
    args += ["-E", "occurrence=a", "-E", "aggregator=|"]
    for field in fields:
        args += ["-e", field]
    out = subprocess.run(args, capture_output=True, check=True).stdout.decode("utf-8", "replace")
    listing: collections.Counter[Key] = collections.Counter()
    for line in out.splitlines():
        frame, call_ids, seqs, cseq_methods, methods, statuses = (
            [v for v in col.split("|") if v] if col else [] for col in line.split("\t")
        )
        n = len(seqs)
        kinds = methods or statuses
        if (
            (methods and statuses)
            or len(kinds) != n
            or len(call_ids) != n
            or len(cseq_methods) != n
        ):
            pytest.fail(f"frame {frame}: cannot pair tshark's fields per message: {line!r}")
        for call_id, seq, cseq_method, kind in zip(
            call_ids, seqs, cseq_methods, kinds, strict=True
        ):
            listing[(int(frame[0]), call_id, seq, cseq_method, kind)] += 1
    return listing


def _tsv_rows(name: str) -> list[dict[str, str]]:
    path = PCAPS / "sip_messages.tsv"
    with path.open(encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        rows = [dict(zip(header, line.rstrip("\r\n").split("\t"), strict=True)) for line in f]
    return [r for r in rows if r["file"] == name]


def _epoch_ns(text: str) -> int:
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "0" * 9)[:9])


@needs_tshark
@tshark_mark
@pytest.mark.corpus
@pytest.mark.parametrize("entry", _CORPUS)
def test_corpus_messages_equal_tshark_listing_and_tsv(entry: dict[str, Any]) -> None:
    name = entry["file"]
    decode_args, _ = _decode_as(entry)
    messages, _ = _corpus_ingest(name)
    got = collections.Counter(_key(m) for m in messages)
    assert got == _tshark_listing(PCAPS / name, decode_args)
    expected: collections.Counter[Key] = collections.Counter()
    for row in _tsv_rows(name):
        seq, _, cseq_method = row["cseq"].partition(" ")
        expected[
            (int(row["frame"]), row["call_id"], seq, cseq_method, row["method"] or row["status"])
        ] += int(row["n_sip_msgs_in_frame"])
    assert got == expected


@needs_tshark
@tshark_mark
@pytest.mark.corpus
@pytest.mark.parametrize("entry", _CORPUS)
def test_corpus_report_accounts_for_every_frame(entry: dict[str, Any]) -> None:
    messages, report = _corpus_ingest(entry["file"])
    assert report.frames == entry["packets"]
    assert report.sip_messages == len(messages) == entry["sip_messages"]
    assert report.is_balanced()
    assert report.frames == report.sip_frames + report.non_sip_frames + report.problem_frames
    assert (
        report.sip_frames >= entry["sip_frames"]
    )  # plus the earlier segments of reassembled messages
    assert {reason for reason, _ in report.non_sip} <= {NON_SIP_REASON}
    assert report.source == str(PCAPS / entry["file"])
    assert report.format.startswith(entry["file_type"])


@needs_tshark
@tshark_mark
@pytest.mark.corpus
@pytest.mark.parametrize("entry", _CORPUS)
def test_corpus_provenance_times_and_endpoints(entry: dict[str, Any]) -> None:
    name = entry["file"]
    path = PCAPS / name
    messages, _ = _corpus_ingest(name)
    rows = {int(r["frame"]): r for r in _tsv_rows(name)}
    with path.open("rb") as f:
        records = {rec.frame: rec for rec in CaptureReader(f, str(path))}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    transports = {"websocket": "ws"}
    for m in messages:
        prov = m.provenance
        assert prov is not None
        assert (prov.source, prov.source_sha256) == (str(path), digest)
        assert prov.frame == prov.frames[-1]
        assert list(prov.frames) == sorted(set(prov.frames))
        record = records[prov.frame]
        assert prov.offset == record.offset
        assert m.timestamp_ns == record.ts_ns
        row = rows[prov.frame]
        assert m.timestamp_ns == _epoch_ns(row["time_epoch"])
        assert m.src is not None
        assert m.dst is not None
        assert (f"{m.src.ip}:{m.src.port}", f"{m.dst.ip}:{m.dst.port}") == (row["src"], row["dst"])
        assert (
            m.src.transport == m.dst.transport == transports.get(row["transport"], row["transport"])
        )
        assert prov.parser_chain.startswith(f"{entry['file_type']}/tshark/")
        assert prov.parser_chain.endswith(":sip")
        if len(prov.frames) == 1 and m.src.transport in ("udp", "tcp", "sctp"):
            assert m.raw in record.data  # the exact bytes as captured


@needs_tshark
@tshark_mark
@pytest.mark.corpus
def test_corpus_reassembled_tcp_message_lists_its_segments() -> None:
    name = "heplify/sip_ipv4_tcp_fragmented.pcap"
    if not (PCAPS / name).is_file():
        pytest.skip(f"third-party corpus not found at {PCAPS}")
    messages, _ = _corpus_ingest(name)
    by_frame = {m.provenance.frame: m for m in messages if m.provenance is not None}
    # tshark: frame 10 is a 180 reassembled from frames 7, 8 and 10 (9 is the other direction)
    ringing = by_frame[10]
    assert ringing.status == 180
    assert ringing.provenance is not None
    assert ringing.provenance.frames == (7, 8, 10)
    assert sum(len(m.provenance.frames) > 1 for m in messages if m.provenance is not None) == 234


@needs_tshark
@tshark_mark
@pytest.mark.corpus
def test_corpus_malformed_sip_is_a_recorded_problem() -> None:
    name = "pcapplusplus/sip_reqs.pcap"
    if not (PCAPS / name).is_file():
        pytest.skip(f"third-party corpus not found at {PCAPS}")
    messages, report = _corpus_ingest(name)
    assert len(messages) == 4  # tshark still lists the message, and so do we
    flagged = [p for p in report.problems if p.kind == "malformed-sip"]
    assert [p.frame for p in flagged] == [3, 4]
    assert "Malformed Packet (Exception occurred)" in flagged[1].reason
    assert report.is_balanced()


# --------------------------------------------------------------------------
# Synthetic captures
# --------------------------------------------------------------------------


@needs_tshark
@tshark_mark
def test_reassembled_tcp_provenance(tmp_path: Path) -> None:
    path = tmp_path / "tcp.pcap"
    offsets = _tcp_capture(path)
    messages, report = _ingest(path)
    assert [m.method for m in messages] == ["INVITE", "OPTIONS", "BYE"]
    assert [m.raw for m in messages] == [INVITE, OPTIONS, BYE]
    provs = [m.provenance for m in messages]
    assert all(p is not None for p in provs)
    # the INVITE began in frame 2 and ended in frame 3, the OPTIONS lay wholly in
    # frame 3, the BYE began in frame 3 and ended in frame 4
    assert [(p.frame, p.frames) for p in provs if p] == [(3, (2, 3)), (3, (3,)), (4, (3, 4))]
    assert [p.offset for p in provs if p] == [offsets[2], offsets[2], offsets[3]]
    assert [m.timestamp_ns for m in messages] == [T0 + 2_000_002, T0 + 2_000_002, T0 + 3_000_003]
    first = messages[0]
    assert first.provenance is not None
    assert first.provenance.parser_chain == "pcap-ns/tshark/eth:ethertype:ip:tcp:sip"
    assert first.provenance.source == str(path)
    assert first.provenance.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (str(first.src), str(first.dst)) == ("192.0.2.1:40000/tcp", "192.0.2.2:5060/tcp")
    assert (report.frames, report.sip_frames, report.sip_messages) == (4, 3, 3)
    assert report.non_sip == ((NON_SIP_REASON, 1),)
    assert report.problem_frames == 0
    assert report.is_balanced()


@needs_tshark
@tshark_mark
def test_ipv4_fragments_provenance(tmp_path: Path) -> None:
    message = _sip("INVITE", 7, body=b"v=0\r\n" + b"a=sendrecv\r\n" * 80, transport="UDP")
    datagram = _udp(5060, 5060, message)
    cut = 600  # a multiple of 8
    packets = [
        (T0, _eth_ipv4("192.0.2.1", "192.0.2.2", 17, datagram[:cut], ident=77, frag=0x2000)),
        (
            T0 + 500,
            _eth_ipv4("192.0.2.1", "192.0.2.2", 17, datagram[cut:], ident=77, frag=cut // 8),
        ),
    ]
    data, offsets = _pcap_ns(packets)
    path = tmp_path / "frag.pcap"
    path.write_bytes(data)
    messages, report = _ingest(path)
    (m,) = messages
    assert m.raw == message
    assert m.provenance is not None
    assert (m.provenance.frame, m.provenance.frames, m.provenance.offset) == (2, (1, 2), offsets[1])
    assert m.timestamp_ns == T0 + 500
    assert str(m.src) == "192.0.2.1:5060/udp"
    assert (report.frames, report.sip_frames, report.problem_frames) == (2, 2, 0)
    assert report.is_balanced()


@needs_tshark
@tshark_mark
def test_decode_as(tmp_path: Path) -> None:
    path = tmp_path / "port6060.pcap"
    _tcp_capture(path, port=6060)
    messages, report = _ingest(path)
    assert messages == []  # not a SIP port, and tshark's heuristic does not claim it
    assert report.non_sip == ((NON_SIP_REASON, 4),)
    assert report.is_balanced()

    rule = {"tcp.port==6060": "sip"}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    command = TsharkIngest(path, digest, decode_as=rule).command()
    assert command[command.index("-d") + 1] == "tcp.port==6060,sip"
    messages, report = _ingest(path, decode_as=rule)
    assert [m.method for m in messages] == ["INVITE", "OPTIONS", "BYE"]
    assert [m.provenance.frames for m in messages if m.provenance] == [(2, 3), (3,), (3, 4)]
    assert str(messages[0].dst) == "192.0.2.2:6060/tcp"
    assert (report.sip_frames, report.non_sip) == (3, ((NON_SIP_REASON, 1),))


@needs_tshark
@tshark_mark
def test_unknown_decode_as_protocol_is_an_ingest_error(tmp_path: Path) -> None:
    path = tmp_path / "tcp.pcap"
    _tcp_capture(path)
    with pytest.raises(IngestError, match="tshark") as info:
        _ingest(path, decode_as={"tcp.port==6060": "no-such-protocol"})
    assert "no-such-protocol" in str(info.value)


def test_bad_decode_as_rule_is_refused_before_running(tmp_path: Path) -> None:
    path = tmp_path / "tcp.pcap"
    path.write_bytes(b"")
    with pytest.raises(IngestError, match="decode-as"):
        TsharkIngest(path, "0" * 64, decode_as={"tcp.port == 6060": "sip"})


def test_missing_tshark_binary_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.pcap"
    _tcp_capture(path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no tshark here
    with pytest.raises(IngestError, match="tshark") as info:
        TsharkIngest(path, "0" * 64)
    assert "apt-get install tshark" in str(info.value)
    assert info.value.source == str(path)


def test_missing_tshark_by_name(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    _tcp_capture(path)
    with pytest.raises(IngestError, match="apt-get install tshark"):
        TsharkIngest(path, "0" * 64, tshark="no-such-tshark-program")


def test_missing_key_log_file_is_an_ingest_error(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    _tcp_capture(path)
    with pytest.raises(IngestError, match="key log"):
        TsharkIngest(path, "0" * 64, tls_keylog=tmp_path / "missing.keys")


@needs_tshark
@tshark_mark
def test_truncated_capture_is_accounted_for(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    _tcp_capture(path)
    path.write_bytes(path.read_bytes()[:-50])  # the last record loses its end
    messages, report = _ingest(path)
    assert [m.method for m in messages] == ["INVITE", "OPTIONS"]
    assert report.frames == 4
    assert report.problem_frames == 1
    assert report.is_balanced()
    kinds = {p.kind for p in report.problems}
    assert {"truncated", "malformed-capture"} <= kinds
    assert any("tshark stopped" in p.reason for p in report.problems)
    with pytest.raises(CaptureError):
        _ingest(path, strict=True)


@needs_tshark
@tshark_mark
def test_damaged_capture_frames_tshark_never_read_are_problems(tmp_path: Path) -> None:
    path = tmp_path / "damaged.pcap"
    offsets = _tcp_capture(path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, offsets[1] + 8, 0x7FFFFFF)  # frame 2 claims 128 MiB
    path.write_bytes(bytes(data))
    messages, report = _ingest(path)
    assert messages == []
    assert report.is_balanced()
    assert report.non_sip == ((NON_SIP_REASON, 1),)  # frame 1, read by tshark
    assert report.problem_frames == report.frames - 1
    assert any("not examined" in p.reason for p in report.problems)


@needs_tshark
@tshark_mark
def test_stopping_early_ends_tshark(tmp_path: Path) -> None:
    path = tmp_path / "tcp.pcap"
    _tcp_capture(path)
    ingest = TsharkIngest(path, hashlib.sha256(path.read_bytes()).hexdigest())
    iterator = ingest.messages()
    assert isinstance(iterator, Generator)
    assert next(iterator).method == "INVITE"
    iterator.close()  # kills tshark and closes the file; no warning escapes
    with pytest.raises(IngestError, match="once"):
        next(iter(ingest.messages()))


@needs_tshark
@tshark_mark
def test_malformed_sip_flagged_by_tshark(tmp_path: Path) -> None:
    cut = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKm\r\n"
    cut += b"Call-ID: cut@example.com\r\nCSeq: 1 INVITE\r\nContent-Lengt"
    packets = [(T0, _eth_ipv4("192.0.2.1", "192.0.2.2", 17, _udp(5060, 5060, cut)))]
    data, _ = _pcap_ns(packets)
    path = tmp_path / "cut.pcap"
    path.write_bytes(data)
    messages, report = _ingest(path)
    assert report.is_balanced()
    flagged = [p for p in report.problems if p.kind == "malformed-sip"]
    assert flagged
    assert flagged[0].frame == 1
    assert "tshark" in flagged[0].reason
    assert "Malformed Packet" in flagged[0].reason
    assert len(messages) + report.problem_frames == 1
    with pytest.raises(CaptureError, match="malformed"):
        _ingest(path, strict=True)


# --------------------------------------------------------------------------
# TLS with a key log file
# --------------------------------------------------------------------------


def _tls_records(tmp_path: Path, payload: bytes) -> tuple[list[tuple[str, bytes]], Path]:
    """A TLS session run in memory; returns the bytes each side sent and the key log."""
    openssl = shutil.which("openssl")
    if openssl is None or not hasattr(ssl.SSLContext, "keylog_filename"):
        pytest.skip("needs the openssl program and ssl key logging to make a TLS session")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    request += ["-nodes", "-subj", "/CN=sipchain-test", "-days", "2"]
    subprocess.run(
        [openssl, *request, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    keylog = tmp_path / "keys.log"
    client.keylog_filename = str(keylog)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    sent: list[tuple[str, bytes]] = []

    def pump() -> None:
        for side, out, peer in (("c", c_out, s_in), ("s", s_out, c_in)):
            data = out.read()
            if data:
                sent.append((side, data))
                peer.write(data)

    for _ in range(10):
        done = True
        for end in (c, s):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                done = False
        pump()
        if done:
            break
    c.write(payload)
    pump()
    return sent, keylog


@needs_tshark
@tshark_mark
def test_tls_with_key_log_file(tmp_path: Path) -> None:
    sent, keylog = _tls_records(tmp_path, INVITE + OPTIONS)
    packets = []
    seq = {"c": 1000, "s": 5000}
    for i, (side, data) in enumerate(sent):
        if side == "c":
            tcp = _tcp(40001, 5061, seq["c"], seq["s"], data)
            packets.append((T0 + i, _eth_ipv4("192.0.2.1", "192.0.2.2", 6, tcp)))
        else:
            tcp = _tcp(5061, 40001, seq["s"], seq["c"], data)
            packets.append((T0 + i, _eth_ipv4("192.0.2.2", "192.0.2.1", 6, tcp)))
        seq[side] += len(data)
    capture, offsets = _pcap_ns(packets)
    path = tmp_path / "tls.pcap"
    path.write_bytes(capture)

    messages, report = _ingest(path)
    assert messages == []  # encrypted
    assert report.non_sip == ((NON_SIP_REASON, len(packets)),)

    messages, report = _ingest(path, tls_keylog=keylog)
    assert [m.raw for m in messages] == [INVITE, OPTIONS]
    last = len(packets)
    for m in messages:
        assert m.provenance is not None
        assert (m.provenance.frame, m.provenance.offset) == (last, offsets[-1])
        assert m.provenance.parser_chain.endswith(":tcp:tls:sip")
        assert (str(m.src), str(m.dst)) == ("192.0.2.1:40001/tls", "192.0.2.2:5061/tls")
    assert (report.sip_frames, report.sip_messages) == (1, 2)
    assert report.is_balanced()
