"""Readers of Homer and Genesys Cloud SIP trace exports (JSON and NDJSON).

Three shapes of input are read, all into the record machinery of
:class:`~sipchain.sources._records.RecordReader`:

``genesys-json``
    The response of Genesys Cloud ``GET /api/v2/telephony/siptraces``
    (``SipSearchResult``: ``{"data": [HomerRecord, ...], ...}``) or a bare JSON
    list of such records. A HomerRecord carries the raw SIP text in ``msg``.
``homer-json``
    The Homer API responses: the call transaction
    (``{"data": {"calldata": [...], "messages": [{"message": ..., ...}]}}``;
    only ``messages`` are records, ``calldata`` summarises the same messages)
    and the call search result (``{"data": [call summary, ...]}``), whose
    records carry no SIP text and count as non-SIP.
``homer-ndjson``
    One record per line (either spelling of the keys).

Each record is one SIP message, one non-SIP record or one problem. The record
index (1-based) is the frame; the byte offset of an NDJSON line is the offset
(``None`` inside a JSON document) and the JSON pointer of a record within a
document is kept in the message metadata as ``json_pointer``.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from sipchain.model import Endpoint
from sipchain.sources._records import RecordReader

__all__ = ["HomerJsonReader", "looks_like_homer_json"]

GENESYS_JSON = "genesys-json"
HOMER_JSON = "homer-json"
HOMER_NDJSON = "homer-ndjson"

MALFORMED = "malformed-record"
SUMMARY = "Homer call summary without a SIP message"

_MSG_KEYS = ("msg", "message")
_SRC_IP = ("sourceIp", "source_ip", "srcIp", "src_ip")
_SRC_PORT = ("sourcePort", "source_port", "srcPort", "src_port")
_DST_IP = ("destinationIp", "destination_ip", "dstIp", "dst_ip")
_DST_PORT = ("destinationPort", "destination_port", "dstPort", "dst_port")
_PROTO = ("proto", "transport")

#: metadata carried beside the message, under the key as written in the record
_META_KEYS = (
    "callidAleg",
    "callid_aleg",
    "conversationId",
    "conversation_id",
    "participantId",
    "participant_id",
    "correlationId",
    "correlation_id",
    "sourceAlias",
    "source_alias",
    "destinationAlias",
    "destination_alias",
    "trunk_id",
    "trunkId",
    "original_trunk_id",
    "originalTrunkId",
    "failover_timestamp",
    "failoverTimestamp",
    "sip_sequence",
    "sipSequence",
)

#: keys only a Homer call summary (search result, calldata row) carries
_SUMMARY_KEYS = frozenset(
    {
        "cdr_start",
        "cdr_stop",
        "tableName",
        "transaction",
        "ruri_user",
        "from_user",
        "to_user",
        "status",
        "uuid",
    }
)

_TRANSPORTS = {6: "tcp", 17: "udp", 132: "sctp"}
_NAMED_TRANSPORTS = frozenset({"udp", "tcp", "tls", "sctp", "ws", "wss", "tls-sctp", "dtls"})

#: timestamps before 1970 or after 9999 are not capture times
_MAX_NS = 253_402_300_800 * 1_000_000_000

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_FRACTION = re.compile(r"(T\d{2}:?\d{2}:?\d{2})[.,](\d+)")
_HEAD_KEYS = re.compile(rb'"([A-Za-z_]+)"\s*:')

_GENESYS_MARKERS = frozenset(
    {
        b"msg",
        b"microTs",
        b"milliTs",
        b"sourceIp",
        b"destinationIp",
        b"callidAleg",
        b"conversationId",
        b"participantId",
        b"correlationId",
        b"sourceAlias",
    }
)
_HOMER_MARKERS = frozenset(
    {
        b"micro_ts",
        b"milli_ts",
        b"source_ip",
        b"destination_ip",
        b"calldata",
        b"callid_aleg",
        b"tss",
        b"tsu",
    }
)


class _BadRecordError(Exception):
    """A record that cannot be used (its reason is the message)."""


def looks_like_homer_json(head: bytes) -> str | None:
    """The format name when ``head`` (the first bytes of a file, up to 64 KiB)
    looks like a Genesys or Homer SIP trace export, else ``None``.

    Judged by content only: a JSON object or list whose keys are those of a
    HomerRecord (``msg``, ``callid``, ``microTs``/``micro_ts``, ``sourceIp``/
    ``source_ip`` …), or lines of JSON objects (``homer-ndjson``).
    """
    text = head[:65536].lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] not in (b"{", b"["):
        return None
    keys = set(_HEAD_KEYS.findall(text))
    if b"callid" not in keys and not keys & {b"msg", b"message", b"calldata"}:
        return None
    genesys = len(keys & _GENESYS_MARKERS)
    homer = len(keys & _HOMER_MARKERS)
    if not genesys and not homer:
        return None
    if text[:1] == b"{":
        line, newline, rest = text.partition(b"\n")
        try:
            first = json.loads(line)
        except ValueError:
            first = None
        if isinstance(first, dict) and "data" not in first and newline and rest.strip()[:1] == b"{":
            return HOMER_NDJSON
        if isinstance(first, dict) and "data" not in first and not rest.strip():
            return GENESYS_JSON if genesys >= homer else HOMER_JSON
    return GENESYS_JSON if genesys > homer else HOMER_JSON


class HomerJsonReader(RecordReader):
    """Reader of Genesys Cloud SIP traces and Homer API JSON (and NDJSON).

    ``format`` is set per input (``genesys-json``, ``homer-json`` or
    ``homer-ndjson``) once the document has been read.
    """

    format = GENESYS_JSON

    # ------------------------------------------------------------ walking
    def _records(self) -> Iterator[None]:
        """Walk the records of the file: one emit/non_sip/problem each."""
        data = self.data
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
            base = 3
        else:
            base = 0
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problem(
                1,
                0,
                MALFORMED,
                f"not JSON: not UTF-8 text ({exc.reason} at byte {exc.start + base})",
            )
            yield
            return
        try:
            document: Any = json.loads(text)
        except ValueError as exc:
            if self._is_ndjson(text):
                yield from self._ndjson(data, base)
                return
            self.problem(1, 0, MALFORMED, f"not JSON: {exc}")
            yield
            return
        records, pointer = self._locate(document)
        if records is None:
            self.problem(1, 0, MALFORMED, "JSON without Genesys or Homer SIP trace records")
            yield
            return
        self.format = self._flavour(records, pointer)
        for index, record in enumerate(records):
            self._record(record, index + 1, None, (("json_pointer", f"{pointer}/{index}"),))
            yield

    @staticmethod
    def _is_ndjson(text: str) -> bool:
        """Whether the first non-blank line is a JSON object on its own."""
        for line in text.splitlines():
            if line.strip():
                try:
                    return isinstance(json.loads(line), dict)
                except ValueError:
                    return False
        return False

    def _ndjson(self, data: bytes, base: int) -> Iterator[None]:
        """One record per non-blank line; the offset is the line's byte offset."""
        self.format = HOMER_NDJSON
        index = 0
        offset = 0
        for lineno, line in enumerate(data.splitlines(keepends=True), start=1):
            start = offset + base
            offset += len(line)
            if not line.strip():
                continue
            index += 1
            try:
                record = json.loads(line)
            except ValueError as exc:
                self.problem(index, start, MALFORMED, f"line {lineno}: bad JSON: {exc}")
                yield
                continue
            self._record(record, index, start, (("ndjson_line", str(lineno)),))
            yield

    @staticmethod
    def _locate(document: Any) -> tuple[list[Any] | None, str]:
        """The list of records of a document and its JSON pointer."""
        if isinstance(document, list):
            return document, ""
        if not isinstance(document, dict):
            return None, ""
        data = document.get("data")
        if isinstance(data, list):
            return data, "/data"
        if isinstance(data, dict):
            messages = data.get("messages")
            if isinstance(messages, list):
                return messages, "/data/messages"
            return None, ""
        if any(key in document for key in _MSG_KEYS):
            return [document], ""  # one bare record
        return None, ""

    @staticmethod
    def _flavour(records: list[Any], pointer: str) -> str:
        """``homer-json`` for Homer API documents, else ``genesys-json``."""
        if pointer == "/data/messages":
            return HOMER_JSON
        for record in records[:16]:
            if isinstance(record, dict):
                if "msg" in record or any(
                    k in record for k in ("microTs", "milliTs", "sourceIp", "conversationId")
                ):
                    return GENESYS_JSON
                if "message" in record or any(
                    k in record for k in ("micro_ts", "source_ip", "callid")
                ):
                    return HOMER_JSON
        return GENESYS_JSON

    # ------------------------------------------------------------ one record
    def _record(
        self, record: Any, index: int, offset: int | None, where: tuple[tuple[str, str], ...]
    ) -> None:
        """Emit, count as non-SIP, or report one record."""
        if not isinstance(record, dict):
            self.problem(
                index, offset, MALFORMED, f"record is a JSON {type(record).__name__}, not an object"
            )
            return
        text = _first(record, _MSG_KEYS)
        if text is None:
            if record.keys() & _SUMMARY_KEYS:
                self.non_sip(SUMMARY)
            else:
                self.problem(index, offset, MALFORMED, "record without a SIP message (no 'msg')")
            return
        try:
            raw = _message_bytes(text)
            ts_ns, time_meaning, time_meta = self._timestamp(record, index, offset)
            src = _endpoint(record, _SRC_IP, _SRC_PORT)
            dst = _endpoint(record, _DST_IP, _DST_PORT)
        except _BadRecordError as exc:
            self.problem(index, offset, MALFORMED, str(exc))
            return
        metadata: list[tuple[str, str]] = list(where)
        if b"\r\n" not in raw and b"\n" in raw:
            raw = raw.replace(b"\n", b"\r\n")
            metadata.append(("line_ends", "LF converted to CRLF"))
        metadata.extend(time_meta)
        for key in _META_KEYS:
            value = record.get(key)
            if value is not None and value != "":
                metadata.append((key, _text(value)))
        self.emit(
            raw,
            index,
            offset=offset,
            ts_ns=ts_ns,
            time_meaning=time_meaning,
            src=src,
            dst=dst,
            chain=f"{self.format}/sip",
            metadata=tuple(metadata),
        )

    def _timestamp(
        self, record: Mapping[str, Any], index: int, offset: int | None
    ) -> tuple[int | None, str, tuple[tuple[str, str], ...]]:
        """(ns since the epoch or None, its meaning, metadata) of one record.

        ``microTs`` is preferred, then ``milliTs``, then ``date``. Homer's
        ``micro_ts`` holds whole milliseconds where ``tss``/``tsu`` hold the
        microseconds; those are used when they agree with it.
        """
        for keys, scale in ((("microTs", "micro_ts"), 1_000), (("milliTs", "milli_ts"), 1_000_000)):
            key = _first_key(record, keys)
            if key is None:
                continue
            value = record[key]
            ns = _scaled(value, scale, key)
            meta: tuple[tuple[str, str], ...] = (
                ("timestamp_text", _text(value)),
                ("timestamp_field", key),
            )
            finer = _tss_tsu(record)
            if (
                finer is not None
                and ns % 1_000_000 == 0
                and finer // 1_000_000 == ns // 1_000_000
                and finer != ns
            ):
                tss, tsu = record["tss"], record["tsu"]
                meta += (("timestamp_precise", f"tss={_text(tss)} tsu={_text(tsu)}"),)
                return (
                    finer,
                    f"capture time from the record's tss/tsu (UTC; {key} holds whole milliseconds)",
                    meta,
                )
            return ns, f"capture time from the record's {key} (UTC)", meta
        key = _first_key(record, ("date", "timestamp"))
        if key is None:
            return None, "no time in the record", ()
        value = record[key]
        if not isinstance(value, str):
            raise _BadRecordError(f"bad timestamp {key}={value!r}: not an ISO 8601 text")
        meta = (("timestamp_text", value), ("timestamp_field", key))
        parsed = _iso_ns(value, key)
        if parsed is None:
            self.note(
                index, offset, "naive-time", f"naive local time, zone unknown: {key}={value!r}"
            )
            return None, f"none: the record's {key} is a local time without a zone", meta
        return parsed, f"capture time from the record's {key} (ISO 8601, converted to UTC)", meta


# ---------------------------------------------------------------- helpers
def _first_key(record: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first of ``keys`` present with a value other than null or ``""``."""
    for key in keys:
        value = record.get(key)
        if value is not None and value != "":
            return key
    return None


def _first(record: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    key = _first_key(record, keys)
    return None if key is None else record[key]


def _text(value: Any) -> str:
    """A metadata value as text (JSON for booleans, lists and objects)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, list, dict)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _message_bytes(text: Any) -> bytes:
    if not isinstance(text, str):
        raise _BadRecordError(f"the SIP message is a JSON {type(text).__name__}, not a string")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _BadRecordError(f"the SIP message is not encodable text ({exc.reason})") from None


def _scaled(value: Any, scale: int, key: str) -> int:
    """``value`` (a number or a decimal text) times ``scale``, as exact integer ns."""
    if isinstance(value, bool):
        raise _BadRecordError(f"bad timestamp {key}={value!r}")
    if isinstance(value, int):
        ns = value * scale
    elif isinstance(value, (float, str)):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise _BadRecordError(f"bad timestamp {key}={value!r}: not a number") from None
        if not number.is_finite():
            raise _BadRecordError(f"bad timestamp {key}={value!r}: not a number")
        ns = int(number * scale)
    else:
        raise _BadRecordError(f"bad timestamp {key}={value!r}: not a number")
    if not 0 <= ns < _MAX_NS:
        raise _BadRecordError(f"bad timestamp {key}={value!r}: out of range")
    return ns


def _tss_tsu(record: Mapping[str, Any]) -> int | None:
    """Homer's seconds + microseconds pair, in ns, when both are sane integers."""
    tss, tsu = record.get("tss"), record.get("tsu")
    if type(tss) is int and type(tsu) is int and tss > 0 and 0 <= tsu < 1_000_000:
        return (tss * 1_000_000 + tsu) * 1_000
    return None


def _iso_ns(value: str, key: str) -> int | None:
    """ISO 8601 text -> exact ns since the epoch; ``None`` for a naive time."""
    text = value.strip()
    extra_ns = 0
    match = _FRACTION.search(text)
    if match is not None:  # any number of fraction digits, kept to the ns
        digits = match.group(2)
        extra_ns = int(digits[:9].ljust(9, "0"))
        text = text[: match.end(1)] + text[match.end() :]
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise _BadRecordError(f"bad timestamp {key}={value!r}: not ISO 8601") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None
    delta = moment - _EPOCH
    ns = (
        (delta.days * 86_400 + delta.seconds) * 1_000_000_000
        + delta.microseconds * 1_000
        + extra_ns
    )
    if not 0 <= ns < _MAX_NS:
        raise _BadRecordError(f"bad timestamp {key}={value!r}: out of range")
    return ns


def _endpoint(
    record: Mapping[str, Any], ip_keys: tuple[str, ...], port_keys: tuple[str, ...]
) -> Endpoint | None:
    """The endpoint of one side, ``None`` when the record names no address."""
    ip = _first(record, ip_keys)
    if ip is None:
        return None
    if not isinstance(ip, str):
        raise _BadRecordError(f"bad address {ip!r}: not a string")
    port_value = _first(record, port_keys)
    if port_value is None:
        port = 0
    elif isinstance(port_value, int) and not isinstance(port_value, bool):
        port = port_value
    elif isinstance(port_value, str) and port_value.strip().isdigit():
        port = int(port_value)
    else:
        raise _BadRecordError(f"bad port {port_value!r}")
    if not 0 <= port <= 65535:
        raise _BadRecordError(f"bad port {port_value!r}: out of range")
    return Endpoint(ip.strip(), port, _transport(_first(record, _PROTO)))


def _transport(proto: Any) -> str:
    """``udp``/``tcp``/… from a name or an IP protocol number (17, 6, 132)."""
    if proto is None:
        return "unknown"
    if isinstance(proto, str) and proto.strip().isdigit():
        proto = int(proto)
    if isinstance(proto, int) and not isinstance(proto, bool):
        return _TRANSPORTS.get(proto, f"ip-proto-{proto}")
    name = str(proto).strip().lower()
    return name if name in _NAMED_TRANSPORTS else name or "unknown"
