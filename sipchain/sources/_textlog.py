"""Readers of SIP text logs: sngrep text export, Asterisk pjsip logger, FreeSWITCH sofia siptrace, Kamailio sipdump.

Each logged message is one record (``frames`` counts records); its 1-based
index is the frame and the byte offset of its header line is the offset. Text
that is not a logged message becomes a record of its own: ordinary log lines of
a console or daemon log (Asterisk, FreeSWITCH) count as non-SIP ("log text");
unexpected text in a file that holds only records (sngrep, sipdump) is a
problem with its record number.

Formats:

* ``sngrep-text`` (:class:`SngrepTextReader`): sngrep's "save as text" export,
  built from real exports of sngrep 1.8.4. A header line
  ``YYYY/MM/DD HH:MM:SS.uuuuuu SRC:PORT -> DST:PORT``, the raw message, then
  blank lines. The transport is not written; it is taken from the top Via.
* ``asterisk-pjsip`` (:class:`PjsipLoggerReader`): ``pjsip set logger on``
  output, ``<--- Received SIP request (N bytes) from UDP:192.0.2.1:5060 --->``
  or ``<--- Transmitting SIP response (N bytes) to UDP:... --->`` then the
  message. Built from the documented format and res_pjsip_logger's output
  statements (no real sample at hand).
* ``freeswitch-sofia`` (:class:`SofiaSiptraceReader`): ``sofia global siptrace
  on`` output, ``recv N bytes from udp/[192.0.2.1]:5060 at HH:MM:SS.ffffff:``
  (or ``send N bytes to``), a dashes line, the message with every line indented
  by three spaces, a dashes line. Built from sofia-sip's ``tport_log_msg``
  (no real sample at hand).
* ``kamailio-siptrace`` (:class:`KamailioSiptraceReader`): the sipdump module's
  text file (``====================`` then ``tag``/``pid``/``process``/``time``/
  ``date``/``proto``/``srcip``/``srcport``/``dstip``/``dstport`` lines,
  ``~~~~~~~~~~~~~~~~~~~~``, the exact message, ``||||||||||||||||||||``). Built
  from the format strings of Kamailio 5.6's sipdump module; the siptrace
  module's xlog output is not read.

Times: sngrep, Asterisk and FreeSWITCH write a local wall-clock time without a
zone (Asterisk often without a year, FreeSWITCH without a date). Without
``tz`` (a :class:`datetime.tzinfo`) or ``assume_utc=True`` the reader leaves
``timestamp_ns`` unset and records one problem note saying so; ``assume_utc``
reads the wall clock as UTC (right when the tool ran with ``TZ=UTC``). Missing
year or date parts are taken from ``year=`` / ``date=``, with a forward
roll-over when the clock wraps (Dec -> Jan, midnight). sipdump writes an epoch
time, which is exact UTC.

Line ends: a message logged with LF only (or rebuilt from indented lines) gets
CRLF line ends back for the SIP parser, and ``("line_ends", "LF converted to
CRLF")`` is recorded in its metadata; otherwise the bytes are kept exactly,
cut by the logged byte count or the Content-Length.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo

import attrs

from sipchain.model import Endpoint
from sipchain.sources._records import RecordReader

__all__ = [
    "TEXT_LOG_FORMATS",
    "KamailioSiptraceReader",
    "PjsipLoggerReader",
    "SngrepTextReader",
    "SofiaSiptraceReader",
    "looks_like_text_log",
]

TEXT_LOG_FORMATS = ("sngrep-text", "asterisk-pjsip", "freeswitch-sofia", "kamailio-siptrace")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LF_META = ("line_ends", "LF converted to CRLF")
_MONTHS = {
    m: i
    for i, m in enumerate(
        (
            b"Jan",
            b"Feb",
            b"Mar",
            b"Apr",
            b"May",
            b"Jun",
            b"Jul",
            b"Aug",
            b"Sep",
            b"Oct",
            b"Nov",
            b"Dec",
        ),
        1,
    )
}

_SNGREP_HEADER = re.compile(
    rb"^(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{1,9}) (\S+) -> (\S+?)\r?$", re.M
)
_PJSIP_HEADER = re.compile(
    rb"^(?:\[(?P<ts>[^\]\r\n]*)\][^<\r\n]*)?<--- (?P<dir>Received|Transmitting) SIP "
    rb"(?P<kind>request|response) \((?P<n>\d+) bytes\) (?P<way>from|to) "
    rb"(?P<tp>[A-Za-z0-9-]+):(?P<addr>\S+) --->\r?$",
    re.M,
)
_PJSIP_LOG_LINE = re.compile(rb"^\[(?:[A-Z][a-z]{2} [ \d]\d|\d{4}-\d\d-\d\d) \d\d:\d\d:\d\d", re.M)
_PJSIP_TIME = re.compile(
    rb"^(?:(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2})|(?P<y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d))"
    rb"[ T](?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)(?:\.(?P<f>\d{1,9}))?$"
)
_SOFIA_HEADER = re.compile(
    rb"^[ \t]*(?P<what>recv|send) (?P<n>\d+) bytes (?P<way>from|to) (?P<tp>[A-Za-z0-9-]+)/"
    rb"\[(?P<ip>[^\]\r\n]+)\]:(?P<port>\d+)(?P<label>\S*) at "
    rb"(?:(?P<date>\d{4}-\d\d-\d\d) )?(?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)\.(?P<f>\d{1,9}):\r?$",
    re.M,
)
_SOFIA_SEPARATOR = re.compile(rb"^[ \t]*-{20,}\r?$", re.M)
_SOFIA_TRUNCATED = re.compile(rb"^[ \t]*\*\*\* message truncated at (\d+) \*\*\*\r?$", re.M)
_SIPDUMP_START = re.compile(rb"^====================\r?\n(?=tag: )", re.M)
_SIPDUMP_BODY = b"~~~~~~~~~~~~~~~~~~~~\n"
_SIPDUMP_END = b"||||||||||||||||||||"
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.M | re.I)
_TOP_VIA = re.compile(
    rb"^(?:via|v)[ \t]*:[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z0-9-]+)", re.M | re.I
)


def looks_like_text_log(head: bytes) -> str | None:
    """The text-log format name of a file from its first bytes, or None.

    Decided by content only: an sngrep header as the first non-blank line, or
    a pjsip logger, sofia siptrace or sipdump block in the first 64 KiB.
    """
    text = head[:65536]
    first = text.lstrip(b"\r\n \t").split(b"\n", 1)[0]
    if _SNGREP_HEADER.match(first):
        return "sngrep-text"
    if _SIPDUMP_START.search(text):
        return "kamailio-siptrace"
    if _PJSIP_HEADER.search(text):
        return "asterisk-pjsip"
    if _SOFIA_HEADER.search(text) and _SOFIA_SEPARATOR.search(text):
        return "freeswitch-sofia"
    return None


def _split_hostport(text: str) -> tuple[str, int]:
    """``[v6]:port``, ``v4:port`` or bare ``v6:port`` (split at the last colon)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"not an address:port: {text!r}")
    return host, int(port)


def _transport(name: bytes) -> str:
    """A logged transport name as sipchain spells it (``UDP6`` -> ``udp``)."""
    low = name.decode("ascii", "replace").lower()
    return low[:-1] if low.endswith("6") else low


def _ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime, exactly."""
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _fraction_us(digits: bytes | None) -> int:
    """Microseconds of a decimal fraction (extra digits are cut)."""
    if not digits:
        return 0
    return int((digits + b"00000")[:6])


@attrs.frozen
class _Framed:
    """One message cut out of a region: bytes, metadata, or why it cannot be."""

    raw: bytes | None
    used: int
    metadata: tuple[tuple[str, str], ...] = ()
    error: str | None = None


def _frame(region: bytes, declared: int | None = None) -> _Framed:
    """Cut one message from the start of ``region`` (text up to the next record).

    ``declared`` is a logged byte count: it cuts a CRLF message exactly. Else
    the Content-Length cuts it; without one, the body runs to the region's end
    (separator blank lines dropped). A LF-only message gets CRLF line ends.
    """
    first_nl = region.find(b"\n")
    if first_nl < 0:
        return _Framed(None, len(region), error="truncated: the message has no complete start line")
    if first_nl > 0 and region[first_nl - 1 : first_nl] == b"\r":
        return _frame_crlf(region, declared)
    return _frame_lf(region)


def _frame_crlf(region: bytes, declared: int | None) -> _Framed:
    end = region.find(b"\r\n\r\n")
    if end < 0:
        return _Framed(None, len(region), error="truncated: no empty line ends the header block")
    head = region[: end + 4]
    if declared is not None and len(head) <= declared <= len(region):
        return _Framed(region[:declared], declared)
    if declared is not None and declared > len(region):
        return _Framed(
            None,
            len(region),
            error=f"truncated: {len(region)} of the {declared} logged bytes present",
        )
    rest = region[end + 4 :]
    match = _CONTENT_LENGTH.search(head)
    if match is not None:
        length = int(match.group(1))
        if len(rest) < length:
            return _Framed(
                None,
                len(region),
                error=f"truncated: body has {len(rest)} of Content-Length {length} bytes",
            )
        return _Framed(head + rest[:length], len(head) + length)
    body = rest
    while body.endswith(b"\n") and not body.endswith(b"\r\n"):
        body = body[:-1]
    if body.strip(b"\r\n") == b"":
        body = b""
    return _Framed(
        head + body,
        len(head) + len(body),
        (("framing", "no Content-Length: body runs to the next record"),),
    )


def _frame_lf(region: bytes) -> _Framed:
    end = region.find(b"\n\n")
    if end < 0:
        return _Framed(None, len(region), error="truncated: no empty line ends the header block")
    head_lf = region[:end].replace(b"\r\n", b"\n")
    head = head_lf.replace(b"\n", b"\r\n") + b"\r\n\r\n"
    rest = region[end + 2 :]
    match = _CONTENT_LENGTH.search(head)
    if match is None:
        body_lf = rest.rstrip(b"\r\n")
        body = body_lf.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + (
            b"\r\n" if body_lf else b""
        )
        return _Framed(
            head + body,
            end + 2 + len(body_lf),
            (_LF_META, ("framing", "no Content-Length: body runs to the next record")),
        )
    length = int(match.group(1))
    pos = 0
    converted = 0
    while converted < length and pos < len(rest):
        nl = rest.find(b"\n", pos)
        if nl < 0:
            converted += len(rest) - pos
            pos = len(rest)
        else:
            line = rest[pos:nl]
            converted += len(line.rstrip(b"\r")) + 2
            pos = nl + 1
    if converted < length:
        return _Framed(
            None,
            len(region),
            error=f"truncated: body has {converted} of Content-Length {length} bytes",
        )
    body = rest[:pos].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")[:length]
    return _Framed(head + body, end + 2 + pos, (_LF_META,))


class _TextLogReader(RecordReader):
    """Shared machinery: record numbering, gaps between records, wall-clock times."""

    format = "text-log"
    #: Reason of the non-SIP bucket for text between records; None: such text is a problem.
    gap_reason: str | None = None

    def __init__(
        self,
        data: bytes,
        source: str,
        sha256: str,
        *,
        strict: bool = False,
        tz: tzinfo | None = None,
        assume_utc: bool = False,
    ) -> None:
        super().__init__(data, source, sha256, strict=strict)
        self.tz: tzinfo | None = tz if tz is not None else (UTC if assume_utc else None)
        self.assume_utc = assume_utc and tz is None
        self._index = 0
        self._noted: set[str] = set()

    def _next(self) -> int:
        self._index += 1
        return self._index

    def _note_once(self, key: str, record: int, offset: int, reason: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.note(record, offset, "naive-time", reason)

    def _zone_text(self) -> str:
        if self.assume_utc:
            return "read as UTC (assume_utc=True)"
        return f"read in zone {self.tz}"

    def _wall_ns(
        self, record: int, offset: int, parts: tuple[int, int, int, int, int, int, int]
    ) -> int | None:
        """Nanoseconds of a local wall-clock time, or None (noted once) without a zone."""
        if self.tz is None:
            self._note_once(
                "zone",
                record,
                offset,
                "times are local without a zone; pass tz= (or assume_utc=True)",
            )
            return None
        try:
            return _ns(datetime(*parts, tzinfo=self.tz))
        except ValueError as exc:
            self._note_once("bad-time", record, offset, f"unusable time: {exc}")
            return None

    def _gap(self, start: int, end: int) -> None:
        """Text between records: nothing if blank, else one record (non-SIP or problem)."""
        chunk = self.data[start:end]
        stripped = chunk.lstrip()
        if not stripped.strip():
            return
        index = self._next()
        offset = start + (len(chunk) - len(stripped))
        if self.gap_reason is not None:
            self.non_sip(self.gap_reason)
        else:
            self.problem(
                index,
                offset,
                "unexpected-text",
                f"{len(chunk.strip())} bytes of text that are not a logged message",
            )

    def _emit_framed(
        self,
        framed: _Framed,
        index: int,
        offset: int,
        *,
        ts_ns: int | None,
        time_meaning: str,
        src: Endpoint,
        dst: Endpoint,
        chain: str,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if framed.raw is None:
            self.problem(index, offset, "truncated", framed.error or "unusable record")
            return
        self.emit(
            framed.raw,
            index,
            offset=offset,
            ts_ns=ts_ns,
            time_meaning=time_meaning,
            src=src,
            dst=dst,
            chain=chain,
            metadata=framed.metadata + metadata,
        )


def _line_after(data: bytes, match: re.Match[bytes]) -> int:
    """Offset of the line after a header line matched up to (not including) its LF."""
    end = match.end()
    return end + 1 if data[end : end + 1] == b"\n" else end


class SngrepTextReader(_TextLogReader):
    """sngrep's text export ("Save as" .txt): one record per header line.

    Args:
        tz: zone of sngrep's wall-clock times (sngrep writes local time).
        assume_utc: read the times as UTC (exports made with ``TZ=UTC``).
    """

    format = "sngrep-text"
    gap_reason = None

    def _records(self) -> Iterator[None]:
        data = self.data
        headers = list(_SNGREP_HEADER.finditer(data))
        self._gap(0, headers[0].start() if headers else len(data))
        yield
        for i, match in enumerate(headers):
            index = self._next()
            offset = match.start()
            start = _line_after(data, match)
            stop = headers[i + 1].start() if i + 1 < len(headers) else len(data)
            try:
                src_ip, src_port = _split_hostport(match.group(8).decode("ascii"))
                dst_ip, dst_port = _split_hostport(match.group(9).decode("ascii"))
            except (ValueError, UnicodeDecodeError) as exc:
                self.problem(index, offset, "bad-header", f"sngrep header line: {exc}")
                yield
                continue
            year, month, day, hour, minute, second = (int(match.group(g)) for g in range(1, 7))
            micro = _fraction_us(match.group(7))
            ts = self._wall_ns(index, offset, (year, month, day, hour, minute, second, micro))
            framed = _frame(data[start:stop])
            transport = "unknown"
            meta: list[tuple[str, str]] = [("log_line", match.group(0).decode("utf-8", "replace").strip())]
            if framed.raw is not None:
                via = _TOP_VIA.search(framed.raw.split(b"\r\n\r\n", 1)[0])
                if via is not None:
                    transport = via.group(1).decode("ascii").lower()
                    meta.append(("transport", "from the top Via (sngrep text does not record it)"))
            meaning = (
                f"sngrep text export wall-clock time, {self._zone_text()}"
                if ts is not None
                else "sngrep text export wall-clock time, local without a zone (not converted)"
            )
            self._emit_framed(
                framed,
                index,
                offset,
                ts_ns=ts,
                time_meaning=meaning,
                src=Endpoint(src_ip, src_port, transport),
                dst=Endpoint(dst_ip, dst_port, transport),
                chain="sngrep-text/sip",
                metadata=tuple(meta),
            )
            yield
            self._gap(start + framed.used, stop)
            yield


class PjsipLoggerReader(_TextLogReader):
    """Asterisk ``pjsip set logger on`` output (console or a log file).

    Args:
        local: the Asterisk side of every hop (not logged); default
            ``Endpoint("0.0.0.0", 0, transport)``.
        tz: zone of the log's timestamps; assume_utc: read them as UTC.
        year: year of timestamps written without one (``[Dec  3 17:08:49]``).
    """

    format = "asterisk-pjsip"
    gap_reason = "log text"

    def __init__(
        self,
        data: bytes,
        source: str,
        sha256: str,
        *,
        strict: bool = False,
        tz: tzinfo | None = None,
        assume_utc: bool = False,
        year: int | None = None,
        local: Endpoint | None = None,
    ) -> None:
        super().__init__(data, source, sha256, strict=strict, tz=tz, assume_utc=assume_utc)
        self.year = year
        self.local = local
        self._last_month = 0

    def _time(self, index: int, offset: int, stamp: bytes | None) -> int | None:
        if stamp is None:
            self._note_once("missing", index, offset, "log lines carry no timestamps")
            return None
        match = _PJSIP_TIME.match(stamp.strip())
        if match is None:
            self._note_once("format", index, offset, f"timestamp not understood: {stamp!r}")
            return None
        if match.group("mon") is not None:
            month = _MONTHS.get(match.group("mon"), 0)
            day = int(match.group("day"))
            if self.year is None:
                self._note_once("year", index, offset, "timestamps have no year; pass year=")
                return None
            if self._last_month and month < self._last_month - 6:
                self.year += 1
            self._last_month = month
            year = self.year
        else:
            year, month, day = int(match.group("y")), int(match.group("m")), int(match.group("d"))
        parts = (
            year,
            month,
            day,
            int(match.group("H")),
            int(match.group("M")),
            int(match.group("S")),
        )
        return self._wall_ns(index, offset, (*parts, _fraction_us(match.group("f"))))

    def _records(self) -> Iterator[None]:
        data = self.data
        headers = list(_PJSIP_HEADER.finditer(data))
        self._gap(0, headers[0].start() if headers else len(data))
        yield
        for i, match in enumerate(headers):
            index = self._next()
            offset = match.start()
            start = _line_after(data, match)
            stop = headers[i + 1].start() if i + 1 < len(headers) else len(data)
            log_line = _PJSIP_LOG_LINE.search(data, start, stop)
            region_end = log_line.start() if log_line is not None else stop
            transport = _transport(match.group("tp"))
            try:
                peer_ip, peer_port = _split_hostport(match.group("addr").decode("ascii"))
            except (ValueError, UnicodeDecodeError) as exc:
                self.problem(index, offset, "bad-header", f"pjsip logger line: {exc}")
                yield
                continue
            peer = Endpoint(peer_ip, peer_port, transport)
            local = self.local if self.local is not None else Endpoint("0.0.0.0", 0, transport)
            src, dst = (peer, local) if match.group("dir") == b"Received" else (local, peer)
            ts = self._time(index, offset, match.group("ts"))
            framed = _frame(data[start:region_end], int(match.group("n")))
            meaning = (
                f"Asterisk log timestamp (1 s resolution unless configured), {self._zone_text()}"
                if ts is not None
                else "Asterisk log timestamp unavailable or without zone/year (not converted)"
            )
            meta: tuple[tuple[str, str], ...] = (("log_line", match.group(0).decode("utf-8", "replace").strip()),)
            if self.local is None:
                meta += (("local_endpoint", "not logged (0.0.0.0:0)"),)
            self._emit_framed(
                framed,
                index,
                offset,
                ts_ns=ts,
                time_meaning=meaning,
                src=src,
                dst=dst,
                chain="asterisk-pjsip/sip",
                metadata=meta,
            )
            yield
            self._gap(start + framed.used, stop)
            yield


class SofiaSiptraceReader(_TextLogReader):
    """FreeSWITCH ``sofia global siptrace on`` output (sofia-sip ``tport_log_msg``).

    The stamp carries only a time of day: local time in FreeSWITCH's
    sofia-sip (``localtime_r``), UTC in older sofia-sip builds.

    Args:
        local: the FreeSWITCH side of every hop (not logged).
        tz: zone of the time of day; assume_utc: read it as UTC.
        date: the day of the first record (later records roll over at midnight).
    """

    format = "freeswitch-sofia"
    gap_reason = "log text"

    def __init__(
        self,
        data: bytes,
        source: str,
        sha256: str,
        *,
        strict: bool = False,
        tz: tzinfo | None = None,
        assume_utc: bool = False,
        date: dt.date | None = None,
        local: Endpoint | None = None,
    ) -> None:
        super().__init__(data, source, sha256, strict=strict, tz=tz, assume_utc=assume_utc)
        self.date = date
        self.local = local
        self._last_seconds = -1

    def _time(self, index: int, offset: int, match: re.Match[bytes]) -> int | None:
        hms = (int(match.group("H")), int(match.group("M")), int(match.group("S")))
        if match.group("date") is not None:
            day = dt.date.fromisoformat(match.group("date").decode("ascii"))
        elif self.date is None:
            self._note_once("date", index, offset, "times of day have no date; pass date=")
            return None
        else:
            seconds = hms[0] * 3600 + hms[1] * 60 + hms[2]
            if self._last_seconds >= 0 and seconds < self._last_seconds - 43200:
                self.date += timedelta(days=1)
            self._last_seconds = seconds
            day = self.date
        parts = (day.year, day.month, day.day, *hms, _fraction_us(match.group("f")))
        return self._wall_ns(index, offset, parts)

    def _records(self) -> Iterator[None]:
        data = self.data
        headers = list(_SOFIA_HEADER.finditer(data))
        self._gap(0, headers[0].start() if headers else len(data))
        yield
        for i, match in enumerate(headers):
            index = self._next()
            offset = match.start()
            start = _line_after(data, match)
            stop = headers[i + 1].start() if i + 1 < len(headers) else len(data)
            used = self._block(index, offset, match, start, stop)
            yield
            self._gap(used, stop)
            yield

    def _block(self, index: int, offset: int, match: re.Match[bytes], start: int, stop: int) -> int:
        """Handle one block; return the offset where its text ends."""
        data = self.data
        opening = _SOFIA_SEPARATOR.match(data, start, stop)
        closing = (
            _SOFIA_SEPARATOR.search(data, opening.end(), stop) if opening is not None else None
        )
        if opening is None or closing is None:
            self.problem(
                index,
                offset,
                "truncated",
                "truncated: the message's closing dashes line is missing",
            )
            return stop
        end = _line_after(data, closing)
        cut = _SOFIA_TRUNCATED.match(data, end, stop)
        if cut is not None:
            self.problem(
                index,
                offset,
                "truncated",
                f"sofia truncated the logged message at {cut.group(1).decode()} bytes",
            )
            return _line_after(data, cut)
        lines = data[_line_after(data, opening) : closing.start()].split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        lines = [line.rstrip(b"\r") for line in lines]
        if any(line.strip() == b"<ENCODED DATA>" for line in lines):
            self.problem(index, offset, "unprintable", "sofia logged the message as <ENCODED DATA>")
            return end
        text = b"".join((line[3:] if line.startswith(b"   ") else line) + b"\r\n" for line in lines)
        declared = int(match.group("n"))
        meta: list[tuple[str, str]] = [_LF_META, ("log_line", match.group(0).decode("utf-8", "replace").strip())]
        if len(text) == declared + 2:
            text = text[:-2]
        elif len(text) != declared:
            meta.append(("logged_length", f"{declared} bytes logged, {len(text)} rebuilt"))
        transport = _transport(match.group("tp"))
        peer = Endpoint(
            match.group("ip").decode("ascii", "replace"), int(match.group("port")), transport
        )
        local = self.local if self.local is not None else Endpoint("0.0.0.0", 0, transport)
        if self.local is None:
            meta.append(("local_endpoint", "not logged (0.0.0.0:0)"))
        src, dst = (peer, local) if match.group("what") == b"recv" else (local, peer)
        ts = self._time(index, offset, match)
        meaning = (
            f"sofia siptrace time of day, {self._zone_text()}"
            if ts is not None
            else "sofia siptrace time of day without date or zone (not converted)"
        )
        self.emit(
            text,
            index,
            offset=offset,
            ts_ns=ts,
            time_meaning=meaning,
            src=src,
            dst=dst,
            chain="freeswitch-sofia/sip",
            metadata=tuple(meta),
        )
        return end


class KamailioSiptraceReader(_TextLogReader):
    """Kamailio sipdump module text files (exact message bytes, epoch UTC times)."""

    format = "kamailio-siptrace"
    gap_reason = None

    def _records(self) -> Iterator[None]:
        data = self.data
        starts = list(_SIPDUMP_START.finditer(data))
        self._gap(0, starts[0].start() if starts else len(data))
        yield
        for i, match in enumerate(starts):
            index = self._next()
            offset = match.start()
            stop = starts[i + 1].start() if i + 1 < len(starts) else len(data)
            used = self._block(index, offset, match.end(), stop)
            yield
            self._gap(used, stop)
            yield

    def _block(self, index: int, offset: int, start: int, stop: int) -> int:
        data = self.data
        body_mark = data.find(_SIPDUMP_BODY, start, stop)
        if body_mark < 0:
            self.problem(
                index, offset, "truncated", "truncated: the sipdump attribute block has no end"
            )
            return stop
        fields: dict[str, str] = {}
        for line in data[start:body_mark].decode("utf-8", "replace").splitlines():
            name, sep, value = line.partition(": ")
            if sep:
                fields[name.strip()] = value.strip()
        msg_start = body_mark + len(_SIPDUMP_BODY)
        msg_end = data.find(_SIPDUMP_END, msg_start, stop)
        if msg_end < 0:
            self.problem(
                index, offset, "truncated", "truncated: the sipdump record has no closing |||| line"
            )
            return stop
        end = msg_end + len(_SIPDUMP_END)
        end += 1 if data[end : end + 1] == b"\n" else 0
        try:
            proto = fields.get("proto", "udp").split()[0].lower()
            src = Endpoint(fields["srcip"], int(fields["srcport"]), proto)
            dst = Endpoint(fields["dstip"], int(fields["dstport"]), proto)
            secs, _, frac = fields["time"].partition(".")
            ts: int | None = int(secs) * 1_000_000_000 + _fraction_us(frac.encode()) * 1000
        except (KeyError, ValueError, IndexError) as exc:
            self.problem(index, offset, "bad-header", f"sipdump attributes unusable: {exc}")
            return end
        framed = _frame(data[msg_start:msg_end])
        meta = tuple((f"sipdump_{k}", fields[k]) for k in ("tag", "pid", "process", "time", "date") if k in fields)
        self._emit_framed(
            framed,
            index,
            offset,
            ts_ns=ts,
            time_meaning="sipdump time (epoch, UTC)",
            src=src,
            dst=dst,
            chain="kamailio-sipdump/sip",
            metadata=meta,
        )
        if framed.raw is not None and data[msg_start + framed.used : msg_end].strip():
            self.note(
                index, offset, "trailing-text", "text after the message inside the sipdump record"
            )
        return end
