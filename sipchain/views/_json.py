"""The versioned JSON document of a reconstruction (``docs/schema/reconstruction-1.json``).

:func:`reconstruction_to_json` writes one self-contained document: the tool and
its parameters, what every source gave, every message once (with its exact
bytes in base64 and its provenance), the chains with their legs, transactions,
links and failovers, what is in no chain, the links a reviewer rejected, and
the findings. Everything else in the document refers to a message by its id,
``"m<index>"``, the message's position in the ``messages`` array.

The output is deterministic: the same reconstruction gives byte-identical text.

* Object keys are sorted; lists keep the order of the model (chains in order of
  first INVITE, legs inbound first, messages in time order, findings as the
  validator gave them). No set is iterated unsorted, and nothing about the run
  (time, host, user) is written.
* Times are integer nanoseconds, never floats.
* The text is pure ASCII (``ensure_ascii=True``): characters outside ASCII are
  written as ``\\uXXXX`` escapes. Header values decoded from the wire may hold
  lone surrogates (bytes that were not UTF-8, kept by ``surrogateescape``);
  escaped, they survive any file encoding. The ``raw`` field is authoritative.
* Two-space indentation, ``": "`` and ``","`` separators, one final newline.
* ``parameters`` may hold values JSON has no type for (paths, compiled
  regular expressions, sets, attrs objects, callables); they are converted by
  fixed rules (:func:`plain_value`), never by a memory address.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any, Final, Protocol

import attrs

from sipchain.model import (
    Chain,
    Defect,
    Endpoint,
    Evidence,
    Failover,
    IngestReport,
    Leg,
    Link,
    Problem,
    Provenance,
    SipMessage,
    SourceReport,
    Transaction,
    Unlinked,
)

__all__ = [
    "FINDING_FIELDS",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "MessageIndex",
    "OtherTrafficLike",
    "ReconstructionLike",
    "finding_frames",
    "finding_text",
    "plain_value",
    "reconstruction_document",
    "reconstruction_to_json",
    "tool_version",
]

#: The document type, written as ``"schema"``.
SCHEMA_NAME: Final = "sipchain.reconstruction"

#: The document version, written as ``"version"``. A breaking change to the
#: document bumps it and adds ``docs/schema/reconstruction-<version>.json``.
SCHEMA_VERSION: Final = "1"

#: The attributes read from each finding (the validator's objects are read
#: with ``getattr``; a missing attribute is written as ``null``).
FINDING_FIELDS: Final = ("rule", "severity", "chain_id", "leg", "frames", "message", "hint")

_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")


# --------------------------------------------------------------------------
# What the views read (structural types, so views import only the model)
# --------------------------------------------------------------------------


class OtherTrafficLike(Protocol):
    """A group of messages outside calls (``sipchain.result.OtherTraffic``)."""

    @property
    def kind(self) -> str:
        """The method of the dialog- or transaction-starting request."""

    @property
    def call_id(self) -> str:
        """The Call-ID shared by the group."""

    @property
    def messages(self) -> tuple[SipMessage, ...]:
        """The group's messages."""


class ReconstructionLike(Protocol):
    """What the views read of a reconstruction (``sipchain.result.Reconstruction``)."""

    @property
    def chains(self) -> tuple[Chain, ...]:
        """One chain per logical call."""

    @property
    def findings(self) -> tuple[Any, ...]:
        """Findings of the validator."""

    @property
    def unlinked(self) -> tuple[Unlinked, ...]:
        """Messages in no chain, with reasons."""

    @property
    def other(self) -> Sequence[OtherTrafficLike]:
        """Non-call traffic grouped by kind and Call-ID."""

    @property
    def report(self) -> IngestReport:
        """What ingestion read and did not use."""

    @property
    def messages(self) -> tuple[SipMessage, ...]:
        """Every message read, time-ordered."""

    @property
    def rejected(self) -> tuple[Link, ...]:
        """Links a reviewer rejected."""

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The parameters the reconstruction ran with."""


# --------------------------------------------------------------------------
# Message ids
# --------------------------------------------------------------------------


def _referenced(rec: ReconstructionLike) -> Iterator[SipMessage]:
    """Every message the reconstruction holds or refers to, in a fixed walk order."""
    yield from rec.messages
    for chain in rec.chains:
        for leg in chain.legs:
            if leg.invite is not None:
                yield leg.invite
            yield from leg.messages
            for t in leg.transactions:
                if t.request is not None:
                    yield t.request
                yield from t.retransmissions
                yield from t.responses
                if t.ack is not None:
                    yield t.ack
    for u in rec.unlinked:
        yield u.message
    for group in rec.other:
        yield from group.messages


def _time_key(message: SipMessage) -> tuple[bool, int]:
    # Messages without a capture time sort after every timed message.
    ts = message.timestamp_ns
    return (ts is None, 0 if ts is None else ts)


class MessageIndex:
    """Every message of a reconstruction once, in time order, with its id.

    ``rec.messages`` comes first, then any message a chain, transaction,
    unlinked entry or other-traffic group refers to that is not among them;
    messages equal by value are one message. The list is then sorted by
    ``timestamp_ns`` (stable: ties keep that order; untimed messages last).
    The id of ``messages[i]`` is ``"m<i>"``.
    """

    __slots__ = ("_ids", "messages")

    def __init__(self, rec: ReconstructionLike) -> None:
        seen: dict[SipMessage, None] = {}
        for m in _referenced(rec):
            seen.setdefault(m, None)
        self.messages: tuple[SipMessage, ...] = tuple(sorted(seen, key=_time_key))
        self._ids: dict[SipMessage, str] = {m: f"m{i}" for i, m in enumerate(self.messages)}

    def id(self, message: SipMessage) -> str:
        """The id of ``message``."""
        return self._ids[message]

    def optional_id(self, message: SipMessage | None) -> str | None:
        """The id of ``message``, ``None`` for ``None``."""
        return None if message is None else self._ids[message]

    def ids(self, messages: Iterable[SipMessage]) -> list[str]:
        """The ids of ``messages``, in the given order."""
        return [self._ids[m] for m in messages]


# --------------------------------------------------------------------------
# Values without a JSON type
# --------------------------------------------------------------------------


def plain_value(value: Any) -> Any:
    """Convert ``value`` to JSON types by fixed rules (for ``parameters``).

    ``None``, booleans, integers and strings pass; finite floats pass, others
    become their ``str``; mappings become objects with string keys; lists and
    tuples become arrays; sets become arrays sorted by their JSON text; enums
    become their value; attrs and dataclass instances become objects of their
    compared fields; paths become their ``os.fspath`` string; compiled regular
    expressions their pattern (``repr`` when flags beyond the default are set);
    classes and functions their dotted name; bytes their ``repr``; anything
    else its ``str`` with memory addresses (``" at 0x…"``) removed.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return plain_value(value.value)
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [plain_value(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if attrs.has(type(value)):
        return {
            a.name: plain_value(getattr(value, a.name)) for a in attrs.fields(type(value)) if a.eq
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain_value(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.compare
        }
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        return path if isinstance(path, str) else os.fsdecode(path)
    if isinstance(value, re.Pattern):
        default = re.UNICODE if isinstance(value.pattern, str) else 0
        if isinstance(value.pattern, str) and value.flags == default:
            return value.pattern
        return repr(value)
    if isinstance(value, bytes | bytearray):
        return repr(bytes(value))
    if isinstance(value, type) or callable(value):
        module = getattr(value, "__module__", None)
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        if isinstance(name, str):
            return f"{module}.{name}" if isinstance(module, str) else name
    return _ADDRESS.sub("", str(value))


def finding_text(value: Any) -> str | None:
    """A finding attribute as text: ``None`` stays, enums give their value.

    An object with a ``leg_id`` (a :class:`~sipchain.model.Leg`) or a
    ``chain_id`` (a :class:`~sipchain.model.Chain`) gives that id.
    """
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, Leg):
        return value.leg_id
    if isinstance(value, Chain):
        return value.chain_id
    return value if isinstance(value, str) else str(value)


def finding_frames(value: Any) -> list[tuple[str | None, int]]:
    """A finding's ``frames`` as ``(source, frame)`` pairs, in the given order.

    ``value`` is an iterable whose items are ``(source, frame)`` pairs,
    messages or provenances (their source and frame), or bare frame numbers
    (source ``None``); ``None`` is no frames.

    Raises:
        TypeError: for an item of any other shape (a document that cannot say
            which frame a finding is about must not be written).
    """
    if value is None:
        return []
    out: list[tuple[str | None, int]] = []
    for item in value:
        if isinstance(item, SipMessage):
            if item.provenance is None:
                raise TypeError(f"finding names a message without provenance: {item.start_line!r}")
            item = item.provenance
        if isinstance(item, Provenance):
            out.append((item.source, item.frame))
        elif isinstance(item, int) and not isinstance(item, bool):
            out.append((None, item))
        elif (
            isinstance(item, Sequence)
            and not isinstance(item, str)
            and len(item) == 2
            and isinstance(item[0], str | None)
            and isinstance(item[1], int)
            and not isinstance(item[1], bool)
        ):
            out.append((item[0], item[1]))
        else:
            raise TypeError(f"cannot read a frame reference from {item!r}")
    return out


def tool_version() -> str:
    """The installed sipchain version, ``"unknown"`` when it is not installed."""
    try:
        return metadata.version("sipchain")
    except metadata.PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------
# The document, part by part
# --------------------------------------------------------------------------


def _endpoint(e: Endpoint | None) -> dict[str, Any] | None:
    return None if e is None else {"ip": e.ip, "port": e.port, "transport": e.transport}


def _defect(d: Defect) -> dict[str, Any]:
    return {"code": d.code, "detail": d.detail, "offset": d.offset, "violation": d.violation}


def _problem(p: Problem) -> dict[str, Any]:
    return {
        "source": p.source,
        "frame": p.frame,
        "offset": p.offset,
        "kind": p.kind,
        "reason": p.reason,
    }


def _source(s: SourceReport) -> dict[str, Any]:
    non_sip: dict[str, int] = {}
    for reason, n in s.non_sip:
        non_sip[reason] = non_sip.get(reason, 0) + n
    return {
        "source": s.source,
        "sha256": s.sha256,
        "format": s.format,
        "frames": s.frames,
        "sip_frames": s.sip_frames,
        "sip_messages": s.sip_messages,
        "non_sip": non_sip,
        "problem_frames": s.problem_frames,
        "problems": [_problem(p) for p in s.problems],
        "time_meaning": s.time_meaning,
    }


def _message(message_id: str, m: SipMessage) -> dict[str, Any]:
    p = m.provenance
    cseq = m.cseq
    return {
        "id": message_id,
        "source": None if p is None else p.source,
        "sha256": None if p is None else p.source_sha256,
        "frame": None if p is None else p.frame,
        "frames": [] if p is None else list(p.frames),
        "offset": None if p is None else p.offset,
        "time_meaning": None if p is None else p.time_meaning,
        "parser_chain": None if p is None else p.parser_chain,
        "timestamp_ns": m.timestamp_ns,
        "src": _endpoint(m.src),
        "dst": _endpoint(m.dst),
        "start_line": m.start_line,
        "method": m.method,
        "target": m.target,
        "status": m.status,
        "reason": m.reason,
        "call_id": m.call_id,
        "cseq": None if cseq is None else {"number": cseq.number, "method": cseq.method},
        "from_tag": m.from_tag,
        "to_tag": m.to_tag,
        "branch": m.branch,
        "defects": [_defect(d) for d in m.defects],
        "metadata": [[name, value] for name, value in m.metadata],
        "raw": base64.b64encode(m.raw).decode("ascii"),
    }


def _transaction(t: Transaction, index: MessageIndex) -> dict[str, Any]:
    return {
        "key": list(t.key),
        "method": t.method,
        "state": t.state,
        "request": index.optional_id(t.request),
        "retransmissions": index.ids(t.retransmissions),
        "responses": index.ids(t.responses),
        "ack": index.optional_id(t.ack),
    }


def _leg(leg: Leg, index: MessageIndex) -> dict[str, Any]:
    return {
        "leg_id": leg.leg_id,
        "role": leg.role,
        "trunk": leg.trunk,
        "attempt": leg.attempt,
        "call_id": leg.call_id,
        "from_tag": leg.from_tag,
        "to_tags": list(leg.to_tags),
        "dialogs": [{"to_tag": tag, "state": state} for tag, state in leg.dialogs],
        "branch": leg.branch,
        "uac": _endpoint(leg.uac),
        "uas": _endpoint(leg.uas),
        "started_ns": leg.started_ns,
        "ended_ns": leg.ended_ns,
        "final_status": leg.final_status,
        "end": leg.end,
        "answered": leg.answered,
        "invite": index.optional_id(leg.invite),
        "messages": index.ids(leg.messages),
        "transactions": [_transaction(t, index) for t in leg.transactions],
    }


def _evidence(e: Evidence) -> dict[str, Any]:
    return {"field": e.field, "value": e.value, "frames": [[src, frame] for src, frame in e.frames]}


def _link(link: Link) -> dict[str, Any]:
    return {
        "a": link.a,
        "b": link.b,
        "rule": link.rule,
        "score": link.score,
        "identifier_match": link.identifier_match,
        "evidence": [_evidence(e) for e in link.evidence],
    }


def _failover(f: Failover) -> dict[str, Any]:
    return {
        "from_leg": f.from_leg,
        "to_leg": f.to_leg,
        "attempt": f.attempt,
        "cause": f.cause,
        "failed_at_ns": f.failed_at_ns,
        "next_invite_at_ns": f.next_invite_at_ns,
        "latency_ns": f.latency_ns,
        "original_trunk_id": f.original_trunk_id,
        "evidence": [_evidence(e) for e in f.evidence],
    }


def _chain(chain: Chain, index: MessageIndex) -> dict[str, Any]:
    return {
        "chain_id": chain.chain_id,
        "outcome": chain.outcome,
        "answered_by": chain.answered_by,
        "final_status": chain.final_status,
        "legs": [_leg(leg, index) for leg in chain.legs],
        "links": [_link(link) for link in chain.links],
        "failovers": [_failover(f) for f in chain.failovers],
    }


def _finding(finding: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        name: finding_text(getattr(finding, name, None))
        for name in FINDING_FIELDS
        if name != "frames"
    }
    out["frames"] = [
        [src, frame] for src, frame in finding_frames(getattr(finding, "frames", None))
    ]
    return out


def reconstruction_document(rec: ReconstructionLike) -> dict[str, Any]:
    """The document of ``rec`` as plain Python values (what the JSON text holds)."""
    index = MessageIndex(rec)
    return {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "tool": {"name": "sipchain", "version": tool_version()},
        "parameters": {str(k): plain_value(v) for k, v in rec.parameters.items()},
        "sources": [_source(s) for s in rec.report.sources],
        "messages": [_message(f"m{i}", m) for i, m in enumerate(index.messages)],
        "chains": [_chain(c, index) for c in rec.chains],
        "unlinked": [{"message": index.id(u.message), "reason": u.reason} for u in rec.unlinked],
        "other": [
            {"kind": g.kind, "call_id": g.call_id, "messages": index.ids(g.messages)}
            for g in rec.other
        ],
        "rejected": [_link(link) for link in rec.rejected],
        "findings": [_finding(f) for f in rec.findings],
    }


def reconstruction_to_json(rec: ReconstructionLike) -> str:
    """The JSON text of ``rec``: schema ``sipchain.reconstruction``, version ``"1"``.

    See ``docs/schema/README.md`` for the format and
    ``docs/schema/reconstruction-1.json`` for its JSON Schema. The same
    reconstruction always gives the same text (ASCII, sorted keys, integer
    nanoseconds, newline-terminated).

    Raises:
        TypeError: a finding's ``frames`` holds something that is not a frame
            reference.
    """
    text = json.dumps(
        reconstruction_document(rec),
        sort_keys=True,
        ensure_ascii=True,
        allow_nan=False,
        indent=2,
        separators=(",", ": "),
    )
    return text + "\n"
