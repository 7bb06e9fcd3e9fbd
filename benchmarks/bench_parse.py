#!/usr/bin/env python3
"""Parse throughput of sipchain's wire parser, against dpkt.sip and sipmessage.

Every parser gets the same bytes: a realistic mix of the seven messages of an
answered and released trunk call (INVITE with SDP, 100 Trying, 180 Ringing,
200 OK with SDP, ACK, BYE, 200 OK to BYE), for many distinct calls. For each
message the benchmark parses the bytes and reads the fields a correlator needs:
method or status, Call-ID, CSeq number and method, From tag, To tag and the top
Via branch. Before timing, it checks that every parser reads the same values.

Run it with ``make bench`` or ``python benchmarks/bench_parse.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

import dpkt.sip as dpkt_sip

from sipchain import parse_message

try:
    from sipmessage import Message as SipmessageMessage
    from sipmessage import Request as SipmessageRequest
except ImportError:  # the bench extra is not installed
    SipmessageMessage = None  # type: ignore[assignment,misc]
    SipmessageRequest = None  # type: ignore[assignment,misc]

#: What each parser must read from one message:
#: (method, status, Call-ID, CSeq number, CSeq method, From tag, To tag, top Via branch).
Fields = tuple[
    str | None, int | None, str | None, int | None, str | None, str | None, str | None, str | None
]
Extractor = Callable[[bytes], Fields]

MIX = (
    "INVITE (SDP)",
    "100 Trying",
    "180 Ringing",
    "200 OK (SDP)",
    "ACK",
    "BYE",
    "200 OK (BYE)",
)


# --------------------------------------------------------------------------
# The messages: one call between an enterprise SBC and a carrier trunk.
# Documentation addresses (RFC 5737) only; nothing is sent anywhere.
# --------------------------------------------------------------------------


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _message(start: str, headers: Sequence[str], body: bytes = b"") -> bytes:
    lines = [start, *headers]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def _sdp(user: str, sess: int, ip: str, port: int, codecs: Sequence[tuple[int, str]]) -> bytes:
    pts = " ".join(str(pt) for pt, _ in codecs)
    lines = [
        "v=0",
        f"o={user} {sess} {sess} IN IP4 {ip}",
        f"s={user}",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {pts}",
        *(f"a=rtpmap:{pt} {enc}" for pt, enc in codecs),
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=maxptime:40",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def build_call(rng: random.Random) -> list[bytes]:
    """The seven messages of one call as a carrier trunk would see them."""
    call_id = (
        f"{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}@203.0.113.7"
    )
    from_tag = _hex(rng, 10)
    to_tag = f"as{_hex(rng, 8)}"
    caller = f"+1202555{rng.randrange(10000):04d}"
    callee = f"+1415555{rng.randrange(10000):04d}"
    sid_local = _hex(rng, 32)
    sid_remote = _hex(rng, 32)
    branch_up = f"z9hG4bK{_hex(rng, 16)}"
    branch_up_ack = f"z9hG4bK{_hex(rng, 16)}"
    branch_up_bye = f"z9hG4bK{_hex(rng, 16)}"
    branch_sbc = f"z9hG4bK-sbc-{_hex(rng, 12)}"
    branch_ack = f"z9hG4bK-sbc-{_hex(rng, 12)}"
    branch_bye = f"z9hG4bK-sbc-{_hex(rng, 12)}"
    sess = rng.randrange(10**6, 10**7)

    via_invite = [
        f"Via: SIP/2.0/UDP 203.0.113.7:5060;branch={branch_sbc};rport",
        f"Via: SIP/2.0/UDP 192.0.2.40:5060;received=203.0.113.9;branch={branch_up}",
    ]
    from_h = f'From: "Contact Centre" <sip:{caller}@203.0.113.7;user=phone>;tag={from_tag}'
    to_h = f"To: <sip:{callee}@198.51.100.20;user=phone>"
    to_tagged = f"{to_h};tag={to_tag}"
    common = [f"Call-ID: {call_id}"]
    sid_uac = f"Session-ID: {sid_local};remote={sid_remote}"
    sid_uas = f"Session-ID: {sid_remote};remote={sid_local}"
    trunk = "Server: Carrier-SBC 7.4.2"
    allow = "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY"

    offer = _sdp(
        "sbc",
        sess,
        "203.0.113.7",
        16000 + 2 * rng.randrange(4000),
        [(0, "PCMU/8000"), (8, "PCMA/8000"), (18, "G729/8000"), (101, "telephone-event/8000")],
    )
    answer = _sdp(
        "carrier",
        sess + 1,
        "198.51.100.21",
        30000 + 2 * rng.randrange(4000),
        [(0, "PCMU/8000"), (101, "telephone-event/8000")],
    )

    invite = _message(
        f"INVITE sip:{callee}@198.51.100.20:5060;user=phone SIP/2.0",
        [
            *via_invite,
            "Max-Forwards: 69",
            "Record-Route: <sip:203.0.113.7:5060;lr;ftag=" + from_tag + ">",
            from_h,
            to_h,
            *common,
            "CSeq: 101 INVITE",
            f"Contact: <sip:{caller}@203.0.113.7:5060;transport=udp>",
            f'P-Asserted-Identity: "Contact Centre" <sip:{caller}@203.0.113.7;user=phone>',
            "Privacy: none",
            allow,
            "Supported: 100rel, timer, replaces",
            "Session-Expires: 1800;refresher=uac",
            "Min-SE: 90",
            "User-Agent: Enterprise-SBC 11.2",
            f"Session-ID: {sid_local};remote={'0' * 32}",
            f"X-CID: {_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}",
        ],
        offer,
    )
    trying = _message(
        "SIP/2.0 100 Trying",
        [*via_invite, from_h, to_h, *common, "CSeq: 101 INVITE", trunk],
    )
    dialog_resp = [
        *via_invite,
        "Record-Route: <sip:203.0.113.7:5060;lr;ftag=" + from_tag + ">",
        from_h,
        to_tagged,
        *common,
        "CSeq: 101 INVITE",
        f"Contact: <sip:{callee}@198.51.100.21:5060;transport=udp>",
        allow,
        trunk,
        sid_uas,
    ]
    ringing = _message("SIP/2.0 180 Ringing", dialog_resp)
    ok = _message(
        "SIP/2.0 200 OK",
        [
            *dialog_resp,
            "Supported: timer, replaces",
            "Require: timer",
            "Session-Expires: 1800;refresher=uac",
        ],
        answer,
    )
    in_dialog = [from_h, to_tagged, *common]
    ack = _message(
        f"ACK sip:{callee}@198.51.100.21:5060;transport=udp SIP/2.0",
        [
            f"Via: SIP/2.0/UDP 203.0.113.7:5060;branch={branch_ack};rport",
            f"Via: SIP/2.0/UDP 192.0.2.40:5060;received=203.0.113.9;branch={branch_up_ack}",
            "Max-Forwards: 70",
            *in_dialog,
            "CSeq: 101 ACK",
            sid_uac,
        ],
    )
    bye_vias = [
        f"Via: SIP/2.0/UDP 203.0.113.7:5060;branch={branch_bye};rport",
        f"Via: SIP/2.0/UDP 192.0.2.40:5060;received=203.0.113.9;branch={branch_up_bye}",
    ]
    bye = _message(
        f"BYE sip:{callee}@198.51.100.21:5060;transport=udp SIP/2.0",
        [
            *bye_vias,
            "Max-Forwards: 70",
            *in_dialog,
            "CSeq: 102 BYE",
            'Reason: Q.850;cause=16;text="Normal call clearing"',
            sid_uac,
        ],
    )
    bye_ok = _message("SIP/2.0 200 OK", [*bye_vias, *in_dialog, "CSeq: 102 BYE", trunk, sid_uas])
    return [invite, trying, ringing, ok, ack, bye, bye_ok]


def build_batch(calls: int, seed: int = 3261) -> list[bytes]:
    """``calls`` distinct calls, seven messages each, in call order."""
    rng = random.Random(seed)
    batch: list[bytes] = []
    for _ in range(calls):
        batch.extend(build_call(rng))
    return batch


# --------------------------------------------------------------------------
# Extractors: parse, then read the correlator's fields.
# --------------------------------------------------------------------------


def sipchain_fields(data: bytes) -> Fields:
    """sipchain: ``parse_message`` and its typed accessors."""
    m = parse_message(data)
    cseq = m.cseq
    return (
        m.method,
        m.status,
        m.call_id,
        cseq.number if cseq is not None else None,
        cseq.method if cseq is not None else None,
        m.from_tag,
        m.to_tag,
        m.branch,
    )


def header_param(value: str | None, name: str) -> str | None:
    """A header parameter by plain string operations (used for dpkt's raw values).

    Parameters after a ``<...>`` URI belong to the header; the first value of a
    comma list is taken (the top Via).
    """
    if value is None:
        return None
    value = value.split(",", 1)[0]
    close = value.rfind(">")
    if close >= 0:
        value = value[close + 1 :]
    prefix = name + "="
    for part in value.split(";")[1:] if close < 0 else value.split(";"):
        part = part.strip()
        if part.lower().startswith(prefix):
            return part[len(prefix) :]
    return None


def _first(value: str | list[str] | None) -> str | None:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def dpkt_fields(data: bytes) -> Fields:
    """dpkt: ``dpkt.sip.Request``/``Response``, then the lower-cased headers dict."""
    if data.startswith(b"SIP/2.0 "):
        r = dpkt_sip.Response(data)
        method, status = None, int(r.status)
    else:
        r = dpkt_sip.Request(data)
        method, status = r.method, None
    h = r.headers
    cseq = _first(h.get("cseq"))
    number, cseq_method = cseq.split(None, 1) if cseq else (None, None)
    return (
        method,
        status,
        _first(h.get("call-id")),
        int(number) if number is not None else None,
        cseq_method,
        header_param(_first(h.get("from")), "tag"),
        header_param(_first(h.get("to")), "tag"),
        header_param(_first(h.get("via")), "branch"),
    )


def sipmessage_fields(data: bytes) -> Fields:
    """sipmessage: ``Message.parse`` and its typed accessors."""
    m = SipmessageMessage.parse(data)
    if isinstance(m, SipmessageRequest):
        method, status = m.method, None
    else:
        method, status = None, m.code
    cseq = m.cseq
    return (
        method,
        status,
        m.call_id,
        cseq.sequence,
        cseq.method,
        m.from_address.parameters.get("tag"),
        m.to_address.parameters.get("tag"),
        m.via[0].parameters.get("branch"),
    )


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    version: str
    extract: Extractor
    best_ns: int = 0


def run_once(extract: Extractor, batch: Sequence[bytes]) -> int:
    """Nanoseconds to extract every message of ``batch`` once, GC paused."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        for data in batch:
            extract(data)
        return time.perf_counter_ns() - t0
    finally:
        gc.enable()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--calls", type=int, default=3000, help="distinct calls (7 messages each)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per parser; best is kept")
    ap.add_argument("--quick", action="store_true", help="a short run (300 calls, 3 repeats)")
    args = ap.parse_args(argv)
    calls, repeats = (300, 3) if args.quick else (args.calls, args.repeats)

    contenders = [
        Contender("sipchain", _version("sipchain"), sipchain_fields),
        Contender("dpkt.sip", _version("dpkt"), dpkt_fields),
    ]
    if SipmessageMessage is not None:
        contenders.append(Contender("sipmessage", _version("sipmessage"), sipmessage_fields))
    else:
        print("note: sipmessage is not installed (pip install -e '.[bench]'); skipped")

    batch = build_batch(calls)
    size = sum(len(d) for d in batch)

    # Same bytes in, same values out: otherwise the comparison means nothing.
    reference = [dpkt_fields(d) for d in batch]
    for c in contenders:
        got = [c.extract(d) for d in batch]
        if got != reference:
            bad = next(i for i, (a, b) in enumerate(zip(got, reference, strict=True)) if a != b)
            print(
                f"error: {c.name} reads message {bad} ({MIX[bad % len(MIX)]}) differently:\n"
                f"  {c.name}: {got[bad]}\n  dpkt.sip: {reference[bad]}",
                file=sys.stderr,
            )
            return 1

    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) on {platform.machine()}"
    )
    print(f"mix: {', '.join(MIX)}")
    print(
        f"batch: {calls} calls, {len(batch)} messages, {size / len(batch):.0f} bytes/message on average"
    )
    print(
        f"runs: 1 warm-up + {repeats} timed per parser, interleaved; best run kept; GC paused while timing"
    )
    print()

    warm = batch[: min(len(batch), 7 * 200)]
    for c in contenders:
        run_once(c.extract, warm)
    for _ in range(repeats):
        for c in contenders:
            ns = run_once(c.extract, batch)
            c.best_ns = ns if c.best_ns == 0 else min(c.best_ns, ns)

    total = len(batch) * repeats * len(contenders) + len(warm) * len(contenders)
    dpkt_rate = len(batch) / (next(c.best_ns for c in contenders if c.name == "dpkt.sip") / 1e9)
    rows = [("parser", "version", "msgs/s", "us/msg", "MB/s", "vs dpkt")]
    for c in contenders:
        seconds = c.best_ns / 1e9
        rate = len(batch) / seconds
        rows.append(
            (
                c.name,
                c.version,
                f"{rate:,.0f}",
                f"{1e6 / rate:.2f}",
                f"{size / seconds / 1e6:.1f}",
                f"{rate / dpkt_rate:.2f}x",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [v.rjust(w) for v, w in zip(row[2:], widths[2:], strict=True)]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print(f"{total:,} messages parsed in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
