"""Captures nobody here wrote, read end to end and checked against Wireshark.

For every capture in ``../shared/corpus/pcap`` the multiset of
``(frame, Call-ID, CSeq, method, status)`` read by ``sipchain.load`` must equal
what ``tshark -Y sip`` reports (run live, with the decode-as the corpus
manifest names) and the corpus's own table of SIP frames. Every frame must be
in exactly one bucket of the report.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from sipchain import Trace, load

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PCAPS = CORPUS / "pcap"

pytestmark = pytest.mark.skipif(
    not (PCAPS / "MANIFEST.json").exists(), reason=f"third-party corpus not found at {CORPUS}"
)


def _manifest() -> list[dict[str, object]]:
    if not (PCAPS / "MANIFEST.json").exists():
        return []
    files = json.loads((PCAPS / "MANIFEST.json").read_text())["files"]
    assert isinstance(files, list)
    return files


FILES = _manifest()
IDS = [str(f["file"]) for f in FILES]

Row = tuple[int, str, str, str, str]


def _rows(trace: Trace) -> Counter[Row]:
    out: Counter[Row] = Counter()
    for m in trace.messages:
        assert m.provenance is not None
        assert m.cseq is not None
        out[
            (
                m.provenance.frame,
                m.call_id or "",
                f"{m.cseq.number} {m.cseq.method}",
                m.method or "",
                str(m.status) if m.status is not None else "",
            )
        ] += 1
    return out


def _tsv_rows(name: str) -> Counter[Row]:
    out: Counter[Row] = Counter()
    with (PCAPS / "sip_messages.tsv").open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["file"] == name:
                out[(int(row["frame"]), row["call_id"], row["cseq"], row["method"], row["status"])] += 1
    return out


def _tshark_rows(path: Path, decode_as: str | None) -> Counter[Row]:
    tshark = shutil.which("tshark")
    assert tshark is not None
    args = [tshark, "-n", "-r", str(path)]
    if decode_as:
        args += decode_as.split()
    args += ["-Y", "sip", "-T", "fields", "-E", "separator=/t"]
    for field in ("frame.number", "sip.Call-ID", "sip.CSeq.seq", "sip.CSeq.method", "sip.Method", "sip.Status-Code"):
        args += ["-e", field]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout
    rows: Counter[Row] = Counter()
    for line in out.splitlines():
        frame, call_id, seq, cseq_method, method, status = line.split("\t")
        rows[(int(frame), call_id, f"{seq} {cseq_method}", method, status)] += 1
    return rows


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace]:
    return {str(f["file"]): load(PCAPS / str(f["file"])) for f in FILES}


@pytest.mark.corpus
@pytest.mark.parametrize("entry", FILES, ids=IDS)
def test_matches_corpus_table(entry: dict[str, object], traces: dict[str, Trace]) -> None:
    name = str(entry["file"])
    trace = traces[name]
    assert _rows(trace) == _tsv_rows(name)
    assert trace.report.sip_messages == entry["sip_messages"]
    assert trace.report.frames == entry["packets"]


@pytest.mark.corpus
@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make test installs it)")
@pytest.mark.parametrize("entry", FILES, ids=IDS)
def test_matches_tshark(entry: dict[str, object], traces: dict[str, Trace]) -> None:
    name = str(entry["file"])
    decode_as = entry.get("tshark_decode_as")
    expected = _tshark_rows(PCAPS / name, str(decode_as) if decode_as else None)
    assert _rows(traces[name]) == expected


@pytest.mark.corpus
@pytest.mark.parametrize("entry", FILES, ids=IDS)
def test_every_frame_in_one_bucket(entry: dict[str, object], traces: dict[str, Trace]) -> None:
    report = traces[str(entry["file"])].report
    (source,) = report.sources
    assert source.is_balanced(), str(report)
    assert source.frames == source.sip_frames + source.non_sip_frames + source.problem_frames
    # tshark counts the frame where each SIP message completes; the SIP bucket
    # also holds the frames that supplied earlier bytes (segments, fragments)
    completing = {m.provenance.frame for m in traces[str(entry["file"])].messages if m.provenance}
    assert len(completing) == entry["sip_frames"]
    assert source.sip_frames >= len(completing)


@pytest.mark.corpus
@pytest.mark.parametrize("entry", FILES, ids=IDS)
def test_provenance(entry: dict[str, object], traces: dict[str, Trace]) -> None:
    name = str(entry["file"])
    path = PCAPS / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    times: dict[int, str] = {}
    hops: dict[int, tuple[str, str, str]] = {}
    with (PCAPS / "sip_messages.tsv").open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["file"] == name:
                times[int(row["frame"])] = row["time_epoch"]
                hops[int(row["frame"])] = (row["transport"], row["src"], row["dst"])
    previous = None
    for m in traces[name].messages:
        p = m.provenance
        assert p is not None
        assert p.source == str(path)
        assert p.source_sha256 == digest
        assert p.frames[-1] == p.frame
        assert p.parser_chain.startswith(str(entry["file_type"]))
        assert p.parser_chain.endswith("/sip")
        assert m.src is not None
        assert m.dst is not None
        transport = "websocket" if m.src.transport == "ws" else m.src.transport
        if "hep" not in p.parser_chain:
            assert (transport, f"{m.src.ip}:{m.src.port}", f"{m.dst.ip}:{m.dst.port}") == hops[p.frame]
        sec, frac = times[p.frame].split(".")
        if "hep" not in p.parser_chain:
            assert m.timestamp_ns == int(sec) * 1_000_000_000 + int(frac.ljust(9, "0"))
        assert m.timestamp_ns is not None
        if previous is not None:
            assert m.timestamp_ns >= previous
        previous = m.timestamp_ns


@pytest.mark.corpus
@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make test installs it)")
@pytest.mark.parametrize("entry", FILES, ids=IDS)
def test_both_backends_agree(entry: dict[str, object], traces: dict[str, Trace]) -> None:
    """Same messages, bytes, frames, times and hops from tshark's dissectors and ours."""
    name = str(entry["file"])
    decode_as = entry.get("tshark_decode_as")
    mapping = {}
    if decode_as:
        selector, _, proto = str(decode_as).split()[1].partition(",")
        mapping[selector] = proto
    other = load(PCAPS / name, backend="tshark", decode_as=mapping or None)

    def key(trace: Trace) -> Counter[tuple[object, ...]]:
        out: Counter[tuple[object, ...]] = Counter()
        for m in trace.messages:
            assert m.provenance is not None
            assert m.src is not None
            assert m.dst is not None
            hop = (m.src.ip, m.src.port, m.dst.ip, m.dst.port)
            out[(m.provenance.frame, m.raw, m.timestamp_ns, hop, m.provenance.offset)] += 1
        return out

    native = traces[name]
    if any("hep" in (m.provenance.parser_chain if m.provenance else "") for m in native.messages):
        pytest.skip("tshark 4.0 has no HEP dissector")
    assert key(other) == key(native)
    assert other.report.frames == native.report.frames
