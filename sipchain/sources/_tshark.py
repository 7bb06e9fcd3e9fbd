"""The optional tshark backend: SIP as Wireshark's dissectors see it.

:class:`TsharkIngest` runs ``tshark`` over one capture file and turns every SIP
message Wireshark finds into the same :class:`~sipchain.model.SipMessage` the
native backend (:mod:`sipchain.sources._ingest`) would build, with the same
provenance. Whatever Wireshark can reassemble, unmask or decrypt becomes a
message: TCP segments, IPv4/IPv6 fragments, SCTP, WebSocket (RFC 7118), TLS
with a key log file (``tls_keylog``) or keys embedded in a pcapng file, and
ports that need a "decode as" (``decode_as``).

How the bytes are taken, and why (decided by running tshark 4.0 on the corpus
captures):

* **tshark as a subprocess, not pyshark.** pyshark 0.6 gives the bytes too
  (``use_json=True, include_raw=True``), but it drives tshark from its own
  asyncio loop: called while a loop is already running (a Jupyter notebook, an
  async service) it fails with ``RuntimeError: This event loop is already
  running`` and leaves unawaited coroutines behind. It also hides tshark's
  exit status and error text, which this backend needs to account for every
  frame, and was no faster. So tshark is started with :mod:`subprocess` and an
  argument list (never a shell), and the ``tshark`` extra (pyshark) is not
  needed.
* **``-T json -x --no-duplicate-keys``.** ``-T fields`` cannot print a SIP
  message's bytes: ``-e sip`` prints the label ("Session Initiation Protocol
  (INVITE)") and no bytes field holds the message (``tcp.reassembled.data``
  would have to be split again and is neither unmasked WebSocket nor
  decrypted TLS data). With ``-x`` the JSON output gives every field's bytes
  as ``<field>_raw = [hex, offset, length, bitmask, type]``; ``sip_raw`` is
  exactly the bytes the SIP dissector read, from whatever data source it read
  them (reassembled, unmasked, decrypted). ``--no-duplicate-keys`` turns
  repeated keys into lists, so a frame carrying two SIP messages has two
  ``sip_raw`` entries. ``-T ek`` (one line per packet) keeps duplicate keys
  and renames fields, ``-e`` switches ``-x`` off, and ``-j``/``-J`` drop the
  reassembly lists, so none of them is used.
* **Streaming.** tshark pretty-prints one packet object per array element,
  opening with a line ``"  {"`` and closing with ``"  }"`` or ``"  },"`` at an
  indent of two (deeper objects are indented further and JSON strings never
  hold a raw newline), so the output is cut at those lines and one packet at a
  time is decoded: memory does not grow with the file. tshark runs in one pass
  (no ``-2``, which would keep every frame in memory).
* **Frames of a message.** Reassemblies show up as frame lists anywhere in the
  tree: ``tcp.segment`` (top-level ``tcp.segments``), ``ip.fragment`` (under
  ``ip``), ``ipv6.fragment`` (under ``ipv6``), ``sctp.fragment``,
  ``tls.segment``, ``websocket.fragment``, ``dtls.fragment``. Their ``_raw``
  entries give each piece's offset in the reassembled data, so a message is
  credited to exactly the pieces its bytes overlap (a TCP segment holding the
  end of one message and a whole second one gives the second message that
  frame alone). Where the message's bytes are not in the reassembled data
  (masked WebSocket, decrypted TLS) and not in the frame's own bytes either,
  the first such message of the frame gets every frame of its reassemblies.
  The frame tshark reports the message in is always the last one.
* **Time and offset.** tshark's frame numbers are matched to records read by
  :class:`~sipchain.sources._capture.CaptureReader` in step with tshark's
  output; the record gives the file offset and the exact integer-nanosecond
  capture time (tshark's ``frame.time_epoch`` string, parsed without floats,
  is only the fallback for a frame the reader could not read).
* **Endpoints.** IP addresses and ports come from the innermost ``ip`` or
  ``ipv6`` and ``udp``/``tcp``/``sctp`` layers below SIP (``frame.protocols``
  says which is innermost); the transport is ``ws``, ``wss``, ``tls`` or
  ``dtls`` when one of those sits between the transport layer and SIP.

Accounting: the display filter ``sip`` makes tshark print only frames holding
SIP, so every other frame read by ``CaptureReader`` is non-SIP ("not SIP
(tshark)"). A frame that supplied bytes of a parsed message is a SIP frame;
one whose messages all failed to parse is a problem frame. tshark's own
verdicts on SIP (a "Malformed Packet" exception in or right after the SIP
layer, an error-severity expert item in it) are recorded as ``malformed-sip``
problems. When tshark stops early (a damaged file) the frames it did not
reach are problem frames. Reassembly preferences are forced on (``-o``) and the
SIP heuristics enabled, so a personal Wireshark profile cannot change the
result. tshark has no HEP dissector, so HEP-encapsulated SIP is non-SIP here.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import IO, Any, NamedTuple

from sipchain.errors import CaptureError, IngestError, SipParseError
from sipchain.model import Endpoint, Problem, Provenance, SipMessage, SourceReport
from sipchain.sources._capture import CaptureReader, Record
from sipchain.wire._message import DEFAULT_MAX_SIZE, parse_with_origin

__all__ = ["NON_SIP_REASON", "TSHARK_PREFERENCES", "TsharkIngest"]

#: The reason given to every frame tshark did not show as SIP.
NON_SIP_REASON = "not SIP (tshark)"

#: Preferences forced on every run, whatever the user's Wireshark profile says:
#: reassembly at every layer SIP may be split over.
TSHARK_PREFERENCES = (
    "ip.defragment:TRUE",
    "ipv6.defragment:TRUE",
    "tcp.desegment_tcp_streams:TRUE",
    "sctp.reassembly:TRUE",
    "tls.desegment_ssl_records:TRUE",
    "tls.desegment_ssl_application_data:TRUE",
    "sip.desegment_headers:TRUE",
    "sip.desegment_body:TRUE",
)
_HEURISTICS = ("sip_udp", "sip_tcp", "sip_sctp")

#: Fields listing the frames of a reassembled PDU (FT_FRAMENUM lists).
_PIECE_FIELDS = frozenset(
    {
        "tcp.segment",
        "ip.fragment",
        "ipv6.fragment",
        "sctp.fragment",
        "tls.segment",
        "websocket.fragment",
        "dtls.fragment",
    }
)
#: Subtrees never holding a reassembly list: skipped when looking for one.
_SKIP_TREES = frozenset({"frame", "sip", "sdp", "eth", "sll", "_ws.malformed", "_ws.expert"})
_IP_LAYERS = ("ip", "ipv6")
_TRANSPORTS = ("udp", "tcp", "sctp")
_WARN_SEVERITY = 0x00600000  # PI_WARN in epan/proto.h
_ERROR_SEVERITY = 0x00800000  # PI_ERROR

_SIP, _PROBLEM = 1, 2

_INSTALL_HINT = (
    "tshark is not installed or not on PATH; install it (Debian/Ubuntu: "
    "`apt-get install tshark`) or use the native backend"
)


class _Piece(NamedTuple):
    """One frame's share of a reassembled PDU: its span in the reassembled data."""

    start: int
    end: int
    frame: int
    hex: str


def _epoch_ns(text: str) -> int:
    """``"1531993985.442601000"`` -> integer nanoseconds, without floats."""
    sign = -1 if text.startswith("-") else 1
    seconds, _, fraction = text.lstrip("-").partition(".")
    return sign * (int(seconds or "0") * 1_000_000_000 + int((fraction + "000000000")[:9]))


def _as_list(value: Any) -> list[Any]:
    """A value that ``--no-duplicate-keys`` turns into a list when repeated."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _raw_entries(value: Any) -> list[list[Any]]:
    """``<field>_raw`` values: ``[hex, offset, length, bitmask, type]``, one or a list."""
    if not isinstance(value, list) or not value:
        return []
    if isinstance(value[0], str):
        return [value]
    return [v for v in value if isinstance(v, list) and v and isinstance(v[0], str)]


def _last_layer(layers: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The innermost layer called ``name`` (a list when the protocol repeats)."""
    items = [v for v in _as_list(layers.get(name)) if isinstance(v, dict)]
    return items[-1] if items else None


def _find_pieces(tree: Any, out: list[list[_Piece]]) -> None:
    """Collect every reassembly frame list in ``tree`` (any depth)."""
    if isinstance(tree, list):
        for item in tree:
            if isinstance(item, dict | list):
                _find_pieces(item, out)
        return
    if not isinstance(tree, dict):
        return
    for key, value in tree.items():
        if key in _PIECE_FIELDS:
            frames = [int(f) for f in _as_list(value) if isinstance(f, str) and f.isdigit()]
            raws = _raw_entries(tree.get(key + "_raw"))
            pieces = []
            if len(raws) == len(frames):
                for frame, raw in zip(frames, raws, strict=True):
                    if len(raw) >= 3 and isinstance(raw[1], int) and isinstance(raw[2], int):
                        pieces.append(_Piece(raw[1], raw[1] + raw[2], frame, raw[0]))
                    else:  # no offsets: credit the frame without a span
                        pieces.append(_Piece(-1, -1, frame, ""))
            else:
                pieces = [_Piece(-1, -1, frame, "") for frame in frames]
            if pieces:
                out.append(sorted(pieces))
        elif isinstance(value, dict | list) and key not in _SKIP_TREES and not key.endswith("_raw"):
            _find_pieces(value, out)


def _frames_in_pieces(
    pieces: list[_Piece], hexdata: str, start: int, length: int
) -> tuple[int, ...] | None:
    """Frames whose pieces hold exactly ``hexdata`` at ``start``, or ``None``."""
    end = start + length
    covering = [p for p in pieces if p.start < end and p.end > start]
    if not covering or covering[0].start > start or covering[-1].end < end:
        return None
    for a, b in itertools.pairwise(covering):
        if a.end != b.start:
            return None
    joined = "".join(p.hex for p in covering)
    lo = (start - covering[0].start) * 2
    if joined[lo : lo + 2 * length].lower() != hexdata.lower():
        return None
    return tuple(p.frame for p in covering)


def _walk_expert(tree: Any, notes: list[tuple[int, str]]) -> bool:
    """Collect ``(severity, message)`` expert items under ``tree``; True if malformed."""
    malformed = False
    if isinstance(tree, list):
        for item in tree:
            malformed |= _walk_expert(item, notes)
        return malformed
    if not isinstance(tree, dict):
        return False
    for key, value in tree.items():
        if key == "_ws.malformed":
            malformed = True
            if isinstance(value, dict | list):
                _walk_expert(value, notes)
        elif key == "_ws.expert":
            for item in _as_list(value):
                if not isinstance(item, dict):
                    continue
                try:
                    severity = int(str(item.get("_ws.expert.severity", "0")), 0)
                except ValueError:
                    severity = 0
                text = item.get("_ws.expert.message")
                if isinstance(text, str):
                    notes.append((severity, text))
                if "_ws.malformed.expert" in item:
                    malformed = True
        elif isinstance(value, dict | list) and not key.endswith("_raw"):
            malformed |= _walk_expert(value, notes)
    return malformed


def _packets(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Packet objects of ``tshark -T json`` output, decoded one at a time."""
    lines: list[bytes] = []
    for line in stream:
        if lines:
            lines.append(line)
            if line.startswith(b"  }"):
                text = b"".join(lines).rstrip().rstrip(b",")
                lines = []
                try:
                    packet = json.loads(text)
                except UnicodeDecodeError:
                    packet = json.loads(text.decode("utf-8", "replace"))
                if isinstance(packet, dict):
                    yield packet
        elif line.startswith(b"  {"):
            lines = [line]


class TsharkIngest:
    """Read one capture file through tshark into SIP messages and a report.

    Iterate :meth:`messages` once (capture order, as tshark completes each
    message); :meth:`report` is complete once that iteration has ended.

    Args:
        path: the capture file (anything tshark reads; offsets and exact
            times need pcap or pcapng, read by ``CaptureReader``).
        sha256: SHA-256 (hex) of the file, for provenance.
        strict: raise on the first problem instead of recording it: a
            :class:`~sipchain.errors.CaptureError` for the capture or
            tshark's verdict, a :class:`~sipchain.errors.SipParseError` for
            a message.
        tls_keylog: an NSS key log file (``SSLKEYLOGFILE``) for decrypting
            TLS; passed as ``-o tls.keylog_file:PATH``.
        decode_as: "decode as" rules, selector to protocol, e.g.
            ``{"tcp.port==6060": "sip"}``; each is passed as ``-d
            tcp.port==6060,sip``.
        tshark: the tshark program (a name looked up on ``PATH`` or a path);
            ``"tshark"`` when not given.
        max_message: largest SIP message parsed (bytes); larger ones are
            problems.

    Attributes:
        source: the file name used in provenance and problems (``str(path)``).
        executable: the tshark program found on ``PATH``.
        reader: the ``CaptureReader`` counting the file's frames (set once
            :meth:`messages` starts).
        problems: problems found so far (the reader's are added by
            :meth:`report`).

    Raises:
        IngestError: tshark is not installed (the message names the Debian
            package), the key log file is missing, or a decode-as rule is
            not of the form ``selector -> protocol``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sha256: str,
        *,
        strict: bool = False,
        tls_keylog: str | os.PathLike[str] | None = None,
        decode_as: Mapping[str, str] | None = None,
        tshark: str | os.PathLike[str] | None = None,
        max_message: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.path = os.fspath(path)
        self.source = str(path)
        self.sha256 = sha256
        self.strict = strict
        self.max_message = max_message
        self.tls_keylog = os.fspath(tls_keylog) if tls_keylog is not None else None
        if self.tls_keylog is not None and not os.path.isfile(self.tls_keylog):
            raise IngestError(f"TLS key log file not found: {self.tls_keylog}", source=self.source)
        self.decode_as = dict(decode_as or {})
        for selector, protocol in self.decode_as.items():
            if (
                not selector
                or not protocol
                or "," in protocol
                or any(c.isspace() for c in selector + protocol)
            ):
                raise IngestError(
                    f"bad decode-as rule {selector!r}: {protocol!r} (expected e.g. 'tcp.port==6060': 'sip')",
                    source=self.source,
                )
        program = os.fspath(tshark) if tshark is not None else "tshark"
        found = shutil.which(program)
        if found is None:
            raise IngestError(f"{_INSTALL_HINT} (looked for {program!r})", source=self.source)
        self.executable = found
        self.reader: CaptureReader | None = None
        self.sip_messages = 0
        self.problems: list[Problem] = []
        self._state = bytearray(1024)  # per frame: 0 not SIP, _SIP, _PROBLEM
        self._max_frame = 0
        self._special: dict[int, str] = {}  # non-SIP frames with a better reason
        self._records: Iterator[Record] | None = None
        self._pending: Record | None = None
        self._reader_done = False
        self._last_offset = -1  # file offset of the last record matched to tshark's output
        self._damage: int | None = None  # where tshark stopped, as far as the reader can tell
        self._endpoints: dict[tuple[str, str, str], Endpoint] = {}
        self._started = False

    # ------------------------------------------------------------ command
    def command(self) -> list[str]:
        """The tshark argument list this ingest runs (for the record)."""
        args = [self.executable, "-n", "-r", self.path]
        for pref in TSHARK_PREFERENCES:
            args += ["-o", pref]
        for heuristic in _HEURISTICS:
            args += ["--enable-heuristic", heuristic]
        if self.tls_keylog is not None:
            args += ["-o", f"tls.keylog_file:{self.tls_keylog}"]
        for selector, protocol in self.decode_as.items():
            args += ["-d", f"{selector},{protocol}"]
        args += ["-Y", "sip", "-T", "json", "-x", "--no-duplicate-keys"]
        return args

    # ------------------------------------------------------------ report
    def report(self) -> SourceReport:
        """What this source gave so far (complete after :meth:`messages` ended)."""
        reader = self.reader
        reader_frames = reader.frames if reader is not None else 0
        reader_problems = list(reader.problems) if reader is not None else []
        total = max(reader_frames, self._max_frame)
        state = self._state
        view = bytes(state[1 : total + 1])
        sip_frames = view.count(_SIP)
        problem_frames = view.count(_PROBLEM)

        def unclaimed(frame: int) -> bool:
            return 0 < frame <= total and (frame >= len(state) or state[frame] == 0)

        # frames the reader could not read, and tshark did not show as SIP
        unread = {p.frame for p in reader_problems if p.frame is not None and unclaimed(p.frame)}
        problem_frames += len(unread)
        non_sip: Counter[str] = Counter()
        for frame, reason in self._special.items():
            if unclaimed(frame) and frame not in unread:
                non_sip[reason] += 1
        rest = total - sip_frames - problem_frames - sum(non_sip.values())
        if rest:
            non_sip[NON_SIP_REASON] += rest
        problems = sorted(
            reader_problems + self.problems,
            key=lambda p: (p.frame if p.frame is not None else 0, p.offset or 0),
        )
        return SourceReport(
            source=self.source,
            sha256=self.sha256,
            format=reader.format if reader is not None else "unknown",
            frames=total,
            sip_frames=sip_frames,
            sip_messages=self.sip_messages,
            non_sip=tuple(sorted(non_sip.items())),
            problem_frames=problem_frames,
            problems=tuple(problems),
            time_meaning=reader.time_meaning if reader is not None else "",
        )

    # ------------------------------------------------------------ buckets
    def _mark(self, frame: int, bucket: int) -> None:
        """Put ``frame`` in a bucket; a SIP frame stays SIP."""
        state = self._state
        if frame >= len(state):
            state.extend(bytes(max(frame + 1, 2 * len(state)) - len(state)))
        if bucket == _SIP or state[frame] != _SIP:
            state[frame] = bucket
        self._max_frame = max(self._max_frame, frame)

    def _problem(self, frame: int | None, offset: int | None, kind: str, reason: str) -> None:
        """Record a problem, or raise it in strict mode."""
        if self.strict:
            raise CaptureError(reason, source=self.source, frame=frame, offset=offset)
        self.problems.append(Problem(self.source, frame, offset, kind, reason))

    # ------------------------------------------------------------ records
    def _record(self, frame: int) -> Record | None:
        """The capture record of ``frame``, reading the file in step with tshark."""
        rec = self._pending
        if rec is None or rec.frame < frame:
            rec = None
            if self._records is not None and not self._reader_done:
                rec = next((r for r in self._records if r.frame >= frame), None)
                self._reader_done = rec is None
            self._pending = rec
        if rec is None or rec.frame != frame:
            return None
        self._last_offset = rec.offset
        return rec

    def _rest_of_records(self) -> Iterator[Record]:
        """Records after the last one matched to tshark's output."""
        if self._pending is not None:
            rec, self._pending = self._pending, None
            yield rec
        if self._records is not None and not self._reader_done:
            yield from self._records
        self._reader_done = True

    # ------------------------------------------------------------ the loop
    def messages(self) -> Iterator[SipMessage]:
        """SIP messages in the order tshark completes them in the capture.

        Raises:
            IngestError: the file cannot be read, tshark cannot be started or
                refuses its arguments (an unknown decode-as protocol, say).
            CaptureError: in strict mode, the first problem of the capture.
            SipParseError: in strict mode, the first message that breaks RFC 3261.
        """
        if self._started:
            raise IngestError("messages() can be iterated only once", source=self.source)
        self._started = True
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise IngestError(f"cannot read: {exc.strerror or exc}", source=self.source) from exc
        with f, tempfile.TemporaryFile() as errors:
            self.reader = CaptureReader(f, self.source, strict=self.strict)
            self._records = iter(self.reader)
            try:
                proc = subprocess.Popen(
                    self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
                )
            except FileNotFoundError as exc:
                raise IngestError(f"{_INSTALL_HINT} ({exc})", source=self.source) from exc
            except OSError as exc:
                raise IngestError(f"cannot run tshark: {exc}", source=self.source) from exc
            assert proc.stdout is not None
            try:
                try:
                    for packet in _packets(proc.stdout):
                        yield from self._packet(packet)
                except (ValueError, KeyError, TypeError) as exc:
                    raise IngestError(
                        f"unexpected tshark output: {exc!r}", source=self.source
                    ) from exc
                returncode = proc.wait()
            finally:
                if proc.poll() is None:  # the caller stopped early, or an error
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            errors.seek(0)
            message = self._error_text(errors.read())
            if returncode == 1:  # bad options (decode-as rule, preference): nothing was read
                raise IngestError(f"tshark refused to run: {message}", source=self.source)
            self._count_the_rest(tshark_failed=returncode != 0)
            if returncode != 0:
                self._problem(
                    None,
                    self._damage,
                    "malformed-capture",
                    f"tshark stopped reading the file (exit status {returncode}): {message}",
                )

    @staticmethod
    def _error_text(data: bytes) -> str:
        """tshark's error message, without its warning about running as root."""
        lines = [
            line.strip()
            for line in data.decode("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith("Running as user")
        ]
        text = " ".join(lines[:3])
        return text[:500] if text else "no message"

    def _count_the_rest(self, *, tshark_failed: bool) -> None:
        """Read the records after tshark's last SIP frame, so every frame is counted.

        When tshark stopped early, the frames it never reached cannot be called
        non-SIP: they are problem frames. tshark stops where the file is
        damaged; the reader finds the same damage (and goes on past it), so
        the frames after the first damage the reader reports past tshark's last
        frame are the ones tshark did not examine. When the reader finds no
        damage there, every frame after tshark's last one is counted so.
        """
        reader = self.reader
        last = self._max_frame
        checked = 0
        after = 0  # records past tshark's last frame
        first_after: Record | None = None
        missed = 0  # of them, past the damage
        first_missed: Record | None = None
        for rec in self._rest_of_records():
            if not tshark_failed or rec.frame <= last or reader is None:
                continue
            after += 1
            first_after = first_after or rec
            problems = reader.problems
            while self._damage is None and checked < len(problems):
                offset = problems[checked].offset
                checked += 1
                if offset is not None and offset > self._last_offset:
                    self._damage = offset
            if self._damage is not None and rec.offset > self._damage:
                self._mark(rec.frame, _PROBLEM)
                missed += 1
                first_missed = first_missed or rec
        if tshark_failed and reader is not None:
            problems = reader.problems
            while self._damage is None and checked < len(problems):
                offset = problems[checked].offset
                checked += 1
                if offset is not None and offset > self._last_offset:
                    self._damage = offset
        if tshark_failed and self._damage is None and first_after is not None:
            for frame in range(last + 1, max(last, reader.frames if reader else 0) + 1):
                self._mark(frame, _PROBLEM)
            missed, first_missed = after, first_after
        if first_missed is not None:
            self.problems.append(
                Problem(
                    self.source,
                    None,
                    first_missed.offset,
                    "malformed-capture",
                    f"{missed} frames from frame {first_missed.frame} on were not examined: "
                    "tshark stopped before them",
                )
            )

    # ------------------------------------------------------------ one packet
    def _packet(self, packet: dict[str, Any]) -> Iterator[SipMessage]:
        """The SIP messages of one packet tshark showed, and the frames they used."""
        layers = packet["_source"]["layers"]
        frame_layer = _last_layer(layers, "frame") or {}
        frame = int(frame_layer["frame.number"])
        protocols = str(frame_layer.get("frame.protocols", ""))
        rec = self._record(frame)
        offset = rec.offset if rec is not None else None
        if rec is not None:
            ts_ns = rec.ts_ns
        else:
            ts_ns = _epoch_ns(str(frame_layer.get("frame.time_epoch", "0")))
        self._max_frame = max(self._max_frame, frame)

        chain = protocols.split(":")
        sip_at = chain.index("sip") if "sip" in chain else len(chain)
        below = chain[:sip_at]
        raws = _raw_entries(layers.get("sip_raw"))
        trees = [t for t in _as_list(layers.get("sip")) if isinstance(t, dict)]
        if any(p in ("icmp", "icmpv6") for p in below):
            self._special.setdefault(frame, "SIP quoted in an ICMP error (tshark)")
            return
        if not raws:
            self._special.setdefault(frame, "SIP nested inside another protocol (tshark)")
            return

        # tshark's verdict on the SIP layers
        notes: list[tuple[int, str]] = []
        malformed = _walk_expert(trees, notes)
        if "_ws.malformed" in layers and chain[-1] == "sip":  # the exception was SIP's
            malformed = True
            _walk_expert({"_ws.malformed": layers["_ws.malformed"]}, notes)
        if malformed or any(severity >= _ERROR_SEVERITY for severity, _ in notes):
            said = dict.fromkeys(text for severity, text in notes if severity >= _WARN_SEVERITY)
            self._problem(
                frame,
                offset,
                "malformed-sip",
                "tshark flags this SIP as malformed: " + ("; ".join(said) or "Malformed Packet"),
            )

        src, dst = self._endpoints_of(layers, below)
        fmt = self.reader.format.split("+")[0] if self.reader is not None else "capture"
        parser_chain = f"{fmt}/tshark/{':'.join(chain[: sip_at + 1])}"
        if self.reader is not None and rec is not None:
            time_meaning = self.reader.time_meaning
        else:
            time_meaning = "capture time, UTC, as tshark reports it (frame.time_epoch)"

        pieces: list[list[_Piece]] = []
        _find_pieces(layers, pieces)
        frame_raw = _raw_entries(layers.get("frame_raw"))
        own = bytes.fromhex(frame_raw[0][0]) if frame_raw else b""
        spread = False  # the frame's reassembled frames went to an earlier message
        parsed = 0
        for index, raw in enumerate(raws):
            tree = trees[index] if index < len(trees) else {}
            if "sip.continuation" in tree and not (
                "sip.Request-Line" in tree or "sip.Status-Line" in tree
            ):
                self._special.setdefault(
                    frame, "SIP continuation data without a start line (tshark)"
                )
                continue
            hexdata = raw[0]
            start = raw[1] if len(raw) > 1 and isinstance(raw[1], int) else -1
            data = bytes.fromhex(hexdata)
            frames: tuple[int, ...] | None = None
            for group in pieces:
                frames = _frames_in_pieces(group, hexdata, start, len(data))
                if frames is not None:
                    break
            if frames is None:
                if data and data in own:
                    frames = ()
                elif not spread:
                    frames = tuple(p.frame for group in pieces for p in group)
                    spread = True
                else:
                    frames = ()
            frames = tuple(sorted({f for f in frames if f < frame} | {frame}))
            provenance = Provenance(
                self.source, self.sha256, frame, frames, offset, time_meaning, parser_chain
            )
            try:
                message = parse_with_origin(
                    data,
                    (provenance, ts_ns, src, dst, ()),
                    strict=self.strict,
                    max_size=self.max_message,
                )
            except SipParseError as exc:
                if self.strict:
                    raise exc.with_context(source=self.source, frame=frame, offset=offset) from None
                self.problems.append(
                    Problem(
                        self.source, frame, offset, "malformed-sip", f"malformed SIP: {exc.reason}"
                    )
                )
                for f in frames:
                    self._mark(f, _PROBLEM)
                continue
            for f in frames:
                self._mark(f, _SIP)
            parsed += 1
            self.sip_messages += 1
            yield message
        if not parsed and frame not in self._special:
            self._mark(frame, _PROBLEM)

    def _endpoints_of(
        self, layers: Mapping[str, Any], below: list[str]
    ) -> tuple[Endpoint | None, Endpoint | None]:
        """Source and destination of the SIP layers, from the innermost IP and transport."""
        ip_name = next((p for p in reversed(below) if p in _IP_LAYERS), None)
        at = max((i for i, p in enumerate(below) if p in _TRANSPORTS), default=-1)
        transport = below[at] if at >= 0 else "unknown"
        between = below[at + 1 :] if at >= 0 else []
        if "websocket" in between:
            label = "wss" if "tls" in between else "ws"
        elif "tls" in between:
            label = "tls"
        elif "dtls" in between:
            label = "dtls"
        else:
            label = transport
        ip_layer = _last_layer(layers, ip_name) if ip_name is not None else None
        tr_layer = _last_layer(layers, transport) if at >= 0 else None
        if ip_layer is None or tr_layer is None:
            return None, None
        src = self._endpoint(
            ip_layer.get(f"{ip_name}.src"), tr_layer.get(f"{transport}.srcport"), label
        )
        dst = self._endpoint(
            ip_layer.get(f"{ip_name}.dst"), tr_layer.get(f"{transport}.dstport"), label
        )
        return src, dst

    def _endpoint(self, ip: Any, port: Any, transport: str) -> Endpoint | None:
        """An interned endpoint; ``None`` when tshark gave no usable address or port."""
        if not isinstance(ip, str) or not isinstance(port, str):
            return None
        key = (ip, port, transport)
        ep = self._endpoints.get(key)
        if ep is None:
            try:
                canonical = str(ipaddress.ip_address(ip))
                number = int(port)
            except ValueError:
                return None
            if len(self._endpoints) > 65536:
                self._endpoints.clear()
            ep = self._endpoints[key] = Endpoint(canonical, number, transport)
        return ep
