#!/usr/bin/env python3
"""Capture ingestion throughput and memory: sipchain against tshark and pyshark.

Builds a large pcap of trunk calls (the seven-message calls of
``bench_parse.py``) over Ethernet/IPv4: most over UDP, every tenth call over
TCP (each message split in two segments). Then, in one run on the same file:

* ``sipchain.iter_messages`` (streaming) and ``sipchain.load`` (all in memory,
  time-sorted), each in a fresh process so peak RSS is its own;
* ``tshark -Y sip -T fields`` printing frame, Call-ID and CSeq;
* pyshark on a slice (it is far slower; the rate is extrapolated, said so).

Run with ``make bench`` or ``python benchmarks/bench_ingest.py [--calls N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_parse import build_call  # a sibling module of this script

ETH = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, ident: int) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0, 64, proto, 0, src, dst)
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _tcp(sport: int, dport: int, seq: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 1, 5 << 4, flags, 65535, 0, 0) + payload


def build_capture(path: Path, calls: int, seed: int = 7118) -> int:
    """Write the capture; return the number of SIP messages in it."""
    rng = random.Random(seed)
    sbc, carrier = bytes([203, 0, 113, 7]), bytes([198, 51, 100, 20])
    messages = 0
    ts = 1_700_000_000_000_000
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        ident = 0
        for call in range(calls):
            tcp = call % 10 == 9
            sport = 10000 + call % 50000
            seq_out, seq_in = 1000, 5000
            for i, msg in enumerate(build_call(rng)):
                outbound = i in (0, 4, 5)  # INVITE, ACK, BYE from the SBC
                src, dst = (sbc, carrier) if outbound else (carrier, sbc)
                sp, dp = (sport, 5060) if outbound else (5060, sport)
                pieces = [msg[: len(msg) // 2], msg[len(msg) // 2 :]] if tcp else [msg]
                for piece in pieces:
                    if tcp:
                        seq = seq_out if outbound else seq_in
                        l4 = _tcp(sp, dp, seq, 0x18, piece)
                        if outbound:
                            seq_out += len(piece)
                        else:
                            seq_in += len(piece)
                        frame = ETH + _ipv4(src, dst, 6, l4, ident)
                    else:
                        frame = ETH + _ipv4(src, dst, 17, _udp(sp, dp, piece), ident)
                    ident += 1
                    ts += rng.randrange(50, 400)
                    f.write(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)))
                    f.write(frame)
                messages += 1
    return messages


def _child(mode: str, path: str) -> None:
    """Run one reader in this process and print its figures as JSON."""
    import sipchain

    start = time.perf_counter()
    if mode == "iter":
        stream = sipchain.iter_messages(path)
        count = sum(1 for _ in stream)
        report = stream.report
    elif mode == "load":
        trace = sipchain.load(path)
        count = len(trace.messages)
        report = trace.report
    else:  # load and reconstruct, end to end
        result = sipchain.reconstruct(path, trunks={"carrier": ["198.51.100.20"]})
        count = len(result.messages)
        report = result.report
        chains = len(result.chains)
        assert chains == count // 7, (chains, count)
    elapsed = time.perf_counter() - start
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"messages": count, "seconds": elapsed, "rss_mib": rss_kib / 1024,
                      "frames": report.frames, "balanced": report.is_balanced()}))


def _run_child(mode: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def _tshark(path: Path) -> tuple[int, float] | None:
    tshark = shutil.which("tshark")
    if tshark is None:
        return None
    start = time.perf_counter()
    proc = subprocess.run(
        [tshark, "-n", "-r", str(path), "-Y", "sip", "-T", "fields", "-e", "frame.number", "-e", "sip.Call-ID", "-e", "sip.CSeq"],
        check=True, capture_output=True, text=True,
    )
    return proc.stdout.count("\n"), time.perf_counter() - start


def _pyshark(path: Path, packets: int) -> tuple[int, float] | None:
    try:
        import pyshark
    except ImportError:
        return None
    start = time.perf_counter()
    cap = pyshark.FileCapture(str(path), display_filter="sip", keep_packets=False)
    count = 0
    try:
        for pkt in cap:
            _ = pkt.sip.get_field("Call-ID")
            count += 1
            if count >= packets:
                break
    finally:
        cap.close()
    return count, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=45_000, help="calls in the capture (7 messages each)")
    parser.add_argument("--pyshark-slice", type=int, default=3000, help="SIP packets pyshark reads")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.pcap"
        t = time.perf_counter()
        n = build_capture(path, args.calls)
        size = path.stat().st_size
        print(f"capture: {n:,} SIP messages, {size / 1e6:.1f} MB, built in {time.perf_counter() - t:.1f} s")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus\n")
        rows = []
        names = {"iter": "iter_messages", "load": "load", "reconstruct": "load + reconstruct"}
        for mode in ("iter", "load", "reconstruct"):
            r = _run_child(mode, path)
            assert r["messages"] == n, r
            assert r["balanced"], r
            rows.append((f"sipchain {names[mode]}", r["messages"] / r["seconds"], r["seconds"], f"{r['rss_mib']:.0f} MiB"))
        ts = _tshark(path)
        if ts:
            rows.append(("tshark -T fields", ts[0] / ts[1], ts[1], "-"))
        ps = _pyshark(path, args.pyshark_slice)
        if ps:
            rows.append((f"pyshark ({ps[0]} messages, extrapolated)", ps[0] / ps[1], ps[1] * n / max(ps[0], 1), "-"))
        print(f"{'reader':40} {'msgs/s':>10} {'seconds':>9} {'peak RSS':>9}")
        for name, rate, secs, rss in rows:
            print(f"{name:40} {rate:10,.0f} {secs:9.1f} {rss:>9}")
        if ts:
            print(f"\nsipchain load / tshark: {rows[1][1] / ts[0] * ts[1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
