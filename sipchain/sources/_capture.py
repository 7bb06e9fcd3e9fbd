"""Record framing of pcap and pcapng files (optionally gzip-compressed).

Why not dpkt's readers: they give no record offsets (needed for provenance),
read only the first interface of a pcapng file and stop at a new section, and
cannot resynchronise after a damaged record. Record framing is a few fixed
headers, done here with ``struct``; dpkt still decodes the rarer packet layers.

Formats:
* pcap (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-03.html): a
  24-byte file header (magic ``a1b2c3d4`` for microseconds or ``a1b23c4d`` for
  nanoseconds, in either byte order), then records of a 16-byte header
  (seconds, fraction, captured length, original length) and the data.
* pcapng (draft-ietf-opsawg-pcapng): blocks of ``type, total length, body,
  total length``; a Section Header Block (``0a0d0d0a``) sets the byte order,
  Interface Description Blocks give each interface its link type and
  ``if_tsresol``/``if_tsoffset``; packets come in Enhanced (6), Simple (3) and
  obsolete Packet (2) blocks. Frames are numbered over the packet blocks, as
  Wireshark numbers them.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from sipchain.errors import CaptureError
from sipchain.model import Problem

__all__ = ["CaptureReader", "Record", "sniff_capture"]

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000, "pcap"),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000, "pcap"),
    b"\x4d\x3c\xb2\xa1": ("<", 1, "pcap-ns"),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1, "pcap-ns"),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"

#: A record longer than this is taken for damage, not data (Wireshark's limit
#: for most link types is 256 KiB).
MAX_RECORD = 1 << 20
_CHUNK = 1 << 20

BT_SHB = 0x0A0D0D0A
BT_IDB = 1
BT_OPB = 2
BT_SPB = 3
BT_EPB = 6
_KNOWN_BLOCKS = {BT_SHB, BT_IDB, BT_OPB, BT_SPB, 4, 5, BT_EPB, 7, 9, 10, 0xBAD, 0x40000BAD}


class Record(NamedTuple):
    """One packet record as read from the file."""

    frame: int  # 1-based, as Wireshark numbers frames
    offset: int  # byte offset of the record (block) in the file (decompressed)
    ts_ns: int  # capture time, UTC, integer nanoseconds
    linktype: int
    data: bytes
    wire_len: int  # original length on the wire (> len(data) when cut by snaplen)


def sniff_capture(head: bytes) -> str | None:
    """``"pcap"``, ``"pcapng"``, ``"gzip"`` from a file's first bytes, or ``None``."""
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_SHB:
        return "pcapng"
    return None


class _Buffer:
    """Chunked reads with absolute offsets, so records never cost a syscall each."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.buf = b""
        self.pos = 0  # position in buf
        self.base = 0  # file offset of buf[0]
        self.eof = False

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def need(self, n: int) -> bool:
        """Make ``n`` bytes available at ``pos``; False at end of file."""
        while len(self.buf) - self.pos < n:
            if self.eof:
                return False
            more = self.f.read(max(_CHUNK, n))
            if not more:
                self.eof = True
                return False
            self.base += self.pos
            self.buf = self.buf[self.pos :] + more
            self.pos = 0
        return True

    def take(self, n: int) -> bytes:
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        return data


class CaptureReader:
    """Iterate the packet records of a pcap or pcapng file.

    Problems in the file's framing (a truncated record, a damaged header,
    garbage between records) are appended to ``problems``; in strict mode the
    first one raises :class:`~sipchain.errors.CaptureError` instead. After a
    damaged record the reader looks for the next plausible one and goes on.

    Attributes:
        format: ``"pcap"``, ``"pcap-ns"`` or ``"pcapng"``, with ``+gzip`` when
            the file was compressed (offsets then count decompressed bytes).
        time_meaning: what ``Record.ts_ns`` means for this file.
        problems: framing problems found so far.
    """

    def __init__(self, f: BinaryIO, source: str, *, strict: bool = False) -> None:
        self.source = source
        self.strict = strict
        self.problems: list[Problem] = []
        self.frames = 0
        head = f.read(2)
        if head == GZIP_MAGIC:
            raw = f
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
            self._gz = True
        else:
            f.seek(0)
            self._gz = False
        self._b = _Buffer(f)
        self.format = "unknown"
        self.time_meaning = "capture time, UTC, from the record header"

    # ------------------------------------------------------------ problems
    def _problem(self, kind: str, reason: str, *, frame: int | None, offset: int | None) -> None:
        if self.strict:
            raise CaptureError(reason, source=self.source, frame=frame, offset=offset)
        self.problems.append(Problem(self.source, frame, offset, kind, reason))

    # ------------------------------------------------------------ entry
    def __iter__(self) -> Iterator[Record]:
        b = self._b
        try:
            if not b.need(4):
                have = len(b.buf)
                self._problem(
                    "malformed-capture",
                    f"file too short to be a capture ({have} bytes)",
                    frame=None,
                    offset=0,
                )
                return
            magic = b.buf[:4]
            if magic in PCAP_MAGICS:
                yield from self._pcap()
            elif magic == PCAPNG_SHB:
                yield from self._pcapng()
            else:
                self._problem(
                    "malformed-capture",
                    f"not a pcap or pcapng file (starts with {bytes(b.buf[:8]).hex(' ')})",
                    frame=None,
                    offset=0,
                )
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            # a damaged gzip stream: keep what was read, say where it broke
            self._problem(
                "truncated",
                f"compressed stream unreadable after {b.offset} bytes: {exc}",
                frame=None,
                offset=b.offset,
            )
        if self._gz:
            self.format += "+gzip"

    # ------------------------------------------------------------ pcap
    def _pcap(self) -> Iterator[Record]:
        b = self._b
        order, scale, name = PCAP_MAGICS[bytes(b.buf[b.pos : b.pos + 4])]
        self.format = name
        if not b.need(24):
            self._problem("truncated", "pcap file header truncated", frame=None, offset=0)
            return
        _, _, _, zone, _, snaplen, network = struct.unpack_from(order + "IHHiIII", b.buf, b.pos)
        b.take(24)
        linktype = network & 0xFFFF
        if zone:
            self.time_meaning += f" (header thiszone {zone} s, not applied)"
        limit = max(snaplen, 65535) if 0 < snaplen <= MAX_RECORD else MAX_RECORD
        hdr = struct.Struct(order + "IIII")
        last_ts = 0
        while True:
            offset = b.offset
            if not b.need(16):
                left = len(b.buf) - b.pos
                if left:
                    self._problem(
                        "truncated",
                        f"{left} bytes at the end, too few for a record header (16)",
                        frame=None,
                        offset=offset,
                    )
                return
            sec, frac, incl, orig = hdr.unpack_from(b.buf, b.pos)
            if incl > limit:
                self._problem(
                    "malformed-capture",
                    f"record header claims {incl} bytes (limit {limit}): damaged",
                    frame=self.frames + 1,
                    offset=offset,
                )
                if not self._resync_pcap(hdr, limit, last_ts):
                    return
                continue
            if not b.need(16 + incl):
                have = len(b.buf) - b.pos - 16
                self.frames += 1
                self._problem(
                    "truncated",
                    f"last record truncated: {max(have, 0)} of {incl} data bytes",
                    frame=self.frames,
                    offset=offset,
                )
                return
            b.take(16)
            data = b.take(incl)
            self.frames += 1
            last_ts = sec
            yield Record(self.frames, offset, sec * 1_000_000_000 + frac * scale, linktype, data, max(orig, incl))

    def _resync_pcap(self, hdr: struct.Struct, limit: int, last_ts: int) -> bool:
        """Skip to the next offset holding a plausible record header."""
        b = self._b
        start = b.offset
        b.take(1)
        while b.need(16):
            sec, frac, incl, orig = hdr.unpack_from(b.buf, b.pos)
            plausible = (
                0 < incl <= limit
                and incl <= orig <= MAX_RECORD
                and frac < 1_000_000_000
                and (last_ts == 0 or abs(sec - last_ts) < 86_400)
            )
            if plausible and b.need(16 + incl):
                self._problem(
                    "malformed-capture",
                    f"skipped {b.offset - start} damaged bytes",
                    frame=None,
                    offset=start,
                )
                return True
            b.take(1)
        self._problem(
            "malformed-capture", f"no record found after offset {start}", frame=None, offset=start
        )
        return False

    # ------------------------------------------------------------ pcapng
    def _pcapng(self) -> Iterator[Record]:
        b = self._b
        self.format = "pcapng"
        order = "<"
        # interface id -> (linktype, snaplen, ts multiplier num, ts divisor, offset ns)
        interfaces: list[tuple[int, int, int, int, int]] = []
        last_ts = 0
        while True:
            offset = b.offset
            if not b.need(12):
                left = len(b.buf) - b.pos
                if left:
                    self._problem(
                        "truncated", f"last block truncated: {left} of 12 bytes", frame=None, offset=offset
                    )
                return
            raw_type = bytes(b.buf[b.pos : b.pos + 4])
            if raw_type == PCAPNG_SHB:
                bom = bytes(b.buf[b.pos + 8 : b.pos + 12])
                if bom == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                else:
                    self._problem(
                        "malformed-capture", "section header with an unknown byte-order magic", frame=None, offset=offset
                    )
                    if not self._resync_pcapng(order):
                        return
                    continue
                interfaces = []
            btype, length = struct.unpack_from(order + "II", b.buf, b.pos)
            if length < 12 or length % 4 or length > MAX_RECORD + 64:
                self._problem(
                    "malformed-capture", f"block of type {btype:#x} claims length {length}", frame=None, offset=offset
                )
                if not self._resync_pcapng(order):
                    return
                continue
            if not b.need(length):
                have = len(b.buf) - b.pos
                frame = self.frames + 1 if btype in (BT_EPB, BT_SPB, BT_OPB) else None
                if frame is not None:
                    self.frames += 1
                self._problem(
                    "truncated", f"last block truncated: {have} of {length} bytes", frame=frame, offset=offset
                )
                return
            (trailer,) = struct.unpack_from(order + "I", b.buf, b.pos + length - 4)
            if trailer != length:
                self._problem(
                    "malformed-capture",
                    f"block of type {btype:#x}: trailing length {trailer} differs from {length}",
                    frame=None,
                    offset=offset,
                )
                if not self._resync_pcapng(order):
                    return
                continue
            block = b.take(length)
            if btype == BT_IDB:
                interfaces.append(self._idb(block, order, offset))
            elif btype in (BT_EPB, BT_OPB, BT_SPB):
                self.frames += 1
                rec = self._packet(btype, block, order, interfaces, offset, last_ts)
                if rec is not None:
                    last_ts = rec.ts_ns
                    yield rec

    def _idb(self, block: bytes, order: str, offset: int) -> tuple[int, int, int, int, int]:
        linktype, _, snaplen = struct.unpack_from(order + "HHI", block, 8)
        num, div, tsoffset = 1000, 1, 0  # default if_tsresol 6: microseconds
        pos = 16
        end = len(block) - 4
        while pos + 4 <= end:
            code, olen = struct.unpack_from(order + "HH", block, pos)
            value = block[pos + 4 : pos + 4 + olen]
            if code == 0:
                break
            if code == 9 and olen >= 1:  # if_tsresol
                res = value[0]
                if res & 0x80:  # 2^-n seconds
                    num, div = 1_000_000_000, 1 << (res & 0x7F)
                else:  # 10^-n seconds
                    n = res & 0x7F
                    num, div = (10 ** (9 - n), 1) if n <= 9 else (1, 10 ** (n - 9))
            elif code == 14 and olen >= 8:  # if_tsoffset, seconds
                (tsoffset,) = struct.unpack_from(order + "q", value)
            pos += 4 + olen + (-olen % 4)
        return linktype, snaplen, num, div, tsoffset * 1_000_000_000

    def _packet(
        self,
        btype: int,
        block: bytes,
        order: str,
        interfaces: list[tuple[int, int, int, int, int]],
        offset: int,
        last_ts: int,
    ) -> Record | None:
        frame = self.frames
        try:
            if btype == BT_EPB:
                iface, hi, lo, incl, orig = struct.unpack_from(order + "IIIII", block, 8)
                start = 28
            elif btype == BT_OPB:
                iface, _, hi, lo, incl, orig = struct.unpack_from(order + "HHIIII", block, 8)
                start = 28
            else:  # simple packet block: interface 0, no timestamp
                (orig,) = struct.unpack_from(order + "I", block, 8)
                iface, hi, lo, start = 0, -1, 0, 12
                incl = min(orig, len(block) - 16)
                if interfaces and interfaces[0][1]:
                    incl = min(incl, interfaces[0][1])
        except struct.error:
            self._problem("malformed-capture", "packet block too short", frame=frame, offset=offset)
            return None
        if iface >= len(interfaces):
            self._problem(
                "malformed-capture", f"packet names interface {iface}, not described", frame=frame, offset=offset
            )
            return None
        if start + incl > len(block) - 4:
            self._problem(
                "malformed-capture",
                f"captured length {incl} overruns its block of {len(block)} bytes",
                frame=frame,
                offset=offset,
            )
            return None
        linktype, _, num, div, tsoffset = interfaces[iface]
        if hi < 0:
            ts = last_ts
            self.time_meaning = (
                "capture time, UTC, from the packet block; simple packet blocks carry none "
                "and take the time of the packet before them"
            )
        else:
            ts = ((hi << 32) | lo) * num // div + tsoffset
        data = block[start : start + incl]
        return Record(frame, offset, ts, linktype, data, max(orig, incl))

    def _resync_pcapng(self, order: str) -> bool:
        """Skip to the next offset holding a well-formed block."""
        b = self._b
        start = b.offset
        b.take(4)
        while b.need(12):
            btype, length = struct.unpack_from(order + "II", b.buf, b.pos)
            if (
                (btype in _KNOWN_BLOCKS or bytes(b.buf[b.pos : b.pos + 4]) == PCAPNG_SHB)
                and 12 <= length <= MAX_RECORD + 64
                and length % 4 == 0
                and b.need(length)
                and struct.unpack_from(order + "I", b.buf, b.pos + length - 4)[0] == length
            ):
                self._problem(
                    "malformed-capture", f"skipped {b.offset - start} damaged bytes", frame=None, offset=start
                )
                return True
            b.take(4)
        self._problem("malformed-capture", f"no block found after offset {start}", frame=None, offset=start)
        return False
