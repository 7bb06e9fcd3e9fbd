"""sipchain's own export records: the exact message plus the metadata of a platform export.

A file is a JSON array of records or NDJSON (one record per line). A record
(schema: ``docs/schema/export-record-1.json``)::

    {"raw_base64": "...",                 # the exact bytes (or "msg": the text)
     "timestamp_ns": 1700000000123456789, # or "timestamp": ISO 8601 / epoch s|ms|us|ns
     "src": "192.0.2.10:5060/udp",        # or {"ip":..., "port":..., "transport":...}
     "dst": "198.51.100.20:5060/udp",
     "call_id": "...",                    # informational
     "sip_sequence": 17, "trunk_id": "carrier-b",
     "failover_timestamp": "...", "original_trunk_id": "carrier-a",
     "origin": {"source": "...", "source_sha256": "...", "frame": 12, ...}}

camelCase aliases (``callId``, ``sipSequence``, ``trunkId``,
``failoverTimestamp``, ``originalTrunkId``, ``timestamp``, ``source``/
``destination``) are read too. ``sipchain export`` writes this format, so a
capture exported and loaded back gives the same messages, times and hops, and
the original provenance stays in ``metadata`` (``origin_*``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

from sipchain.model import Endpoint, SipMessage, parse_instant
from sipchain.sources._records import RecordReader

__all__ = ["EXPORT_FORMAT", "SipchainExportReader", "looks_like_export", "write_export"]

EXPORT_FORMAT = "sipchain.export"
EXPORT_VERSION = 1

#: Metadata fields read from a record, with their aliases; stored under the first name.
METADATA_FIELDS: Mapping[str, tuple[str, ...]] = {
    "sip_sequence": ("sip_sequence", "sipSequence"),
    "trunk_id": ("trunk_id", "trunkId"),
    "failover_timestamp": ("failover_timestamp", "failoverTimestamp"),
    "original_trunk_id": ("original_trunk_id", "originalTrunkId"),
    "conversationId": ("conversationId", "conversation_id"),
    "callidAleg": ("callidAleg", "callid_aleg", "callIdAleg"),
}


_EXPORT_KEYS = (b'"timestamp_ns"', b'"src"', b'"sip_sequence"', b'"sipSequence"', b'"trunk_id"', b'"trunkId"')


def looks_like_export(head: bytes) -> bool:
    """True when a file's first bytes look like export records of this format:
    the exact bytes (``raw_base64``), or the text (``msg``) with one of this
    format's own fields (a Homer or Genesys record has ``msg`` too, but not these)."""
    text = head.lstrip()[:8192]
    if text[:1] not in (b"[", b"{"):
        return False
    if b'"raw_base64"' in text or b'"format": "sipchain.export"' in text:
        return True
    return b'"msg"' in text and any(key in text for key in _EXPORT_KEYS)


def _endpoint(value: Any) -> Endpoint | None:
    if isinstance(value, Mapping):
        return Endpoint(str(value["ip"]), int(value["port"]), str(value.get("transport", "udp")))
    if isinstance(value, str) and value:
        hostport, _, transport = value.partition("/")
        host, _, port = hostport.rpartition(":")
        return Endpoint(host.strip("[]"), int(port), transport or "udp")
    return None


class SipchainExportReader(RecordReader):
    """Read export records (JSON array or NDJSON) into messages with their metadata."""

    format = "sipchain-export"

    def _items(self) -> Iterator[tuple[int, int | None, Any, str | None]]:
        """``(record, offset, object, error)`` for each record."""
        text = self.data.decode("utf-8", "surrogateescape")
        stripped = text.lstrip()
        if stripped.startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                yield 1, 0, None, f"not JSON: {exc}"
                return
            for i, item in enumerate(items, start=1):
                yield i, None, item, None
            return
        offset = 0
        record = 0
        for line in self.data.splitlines(keepends=True):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            record += 1
            try:
                yield record, start, json.loads(line), None
            except ValueError as exc:
                yield record, start, None, f"line is not JSON: {exc}"

    def _records(self) -> Iterator[None]:
        for record, offset, item, error in self._items():
            if error is not None or not isinstance(item, dict):
                self.problem(record, offset, "malformed-record", error or "record is not a JSON object")
                yield None
                continue
            if item.get("format") == EXPORT_FORMAT and "raw_base64" not in item and "msg" not in item:
                self.non_sip("export header")
                yield None
                continue
            try:
                if "raw_base64" in item:
                    raw = base64.b64decode(item["raw_base64"], validate=True)
                elif isinstance(item.get("msg"), str):
                    raw = item["msg"].encode("utf-8", "surrogateescape")
                else:
                    raise ValueError("no raw_base64 or msg")
                stamp = item.get("timestamp_ns", item.get("timestamp"))
                ts_ns = parse_instant(stamp) if stamp is not None else None
                src = _endpoint(item.get("src", item.get("source")))
                dst = _endpoint(item.get("dst", item.get("destination")))
            except (ValueError, KeyError, TypeError) as exc:
                self.problem(record, offset, "malformed-record", f"unusable record: {exc}")
                yield None
                continue
            metadata: list[tuple[str, str]] = []
            for name, aliases in METADATA_FIELDS.items():
                for alias in aliases:
                    if item.get(alias) is not None:
                        metadata.append((name, str(item[alias])))
                        break
            origin = item.get("origin")
            if isinstance(origin, dict):
                metadata += [(f"origin_{k}", json.dumps(v) if not isinstance(v, str) else v) for k, v in sorted(origin.items())]
            if stamp is not None and "timestamp_ns" not in item:
                metadata.append(("timestamp_text", str(stamp)))
            self.emit(
                raw,
                record,
                offset=offset,
                ts_ns=ts_ns,
                time_meaning="time from the export record (UTC)",
                src=src,
                dst=dst,
                chain="sipchain-export/sip",
                metadata=tuple(metadata),
            )
            yield None


def _record(message: SipMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"raw_base64": base64.b64encode(message.raw).decode("ascii")}
    if message.timestamp_ns is not None:
        out["timestamp_ns"] = message.timestamp_ns
    for key, end in (("src", message.src), ("dst", message.dst)):
        if end is not None:
            out[key] = {"ip": end.ip, "port": end.port, "transport": end.transport}
    if message.call_id is not None:
        out["call_id"] = message.call_id
    out.update({name: value for name, value in message.metadata if name in METADATA_FIELDS})
    p = message.provenance
    if p is not None:
        out["origin"] = {
            "source": p.source,
            "source_sha256": p.source_sha256,
            "frame": p.frame,
            "frames": list(p.frames),
            "offset": p.offset,
            "time_meaning": p.time_meaning,
            "parser_chain": p.parser_chain,
        }
    return out


def write_export(messages: Iterable[SipMessage], out: TextIO) -> int:
    """Write ``messages`` as NDJSON export records (deterministic); return how many."""
    n = 0
    for message in messages:
        out.write(json.dumps(_record(message), sort_keys=True, ensure_ascii=True) + "\n")
        n += 1
    return n
