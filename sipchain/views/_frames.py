"""pandas DataFrames of a reconstruction: one table per kind of item, columns as constants.

:func:`reconstruction_frames` gives six frames, keyed ``messages``, ``legs``,
``links``, ``failovers``, ``chains`` and ``findings``. Each has exactly the
columns of its constant below (``MESSAGE_COLUMNS`` …), in that order, with
those dtypes, one row per item, and the right columns when there are no items.

The frames are a flat copy of the model, nothing more: every cell is a field of
the model (or of its provenance or endpoint), a length, or a message id. The
conventions:

* Nanosecond times are integers (``*_ns``) with a twin column of the same
  instant as a timezone-aware ``datetime64[ns, UTC]`` (``time``, ``started``,
  ``ended``, ``failed_at``, ``next_invite_at``); the failover latency also as
  ``timedelta64[ns]``.
* ``int64`` where the model always has a number, nullable ``Int64`` where it
  may have none (a message without provenance or capture time, a leg without a
  final response); ``string`` (nullable) for text; ``bool`` for flags.
* Frames are frame numbers (``frame``), or ``(source, frame)`` tuples where a
  cell names several (``object`` columns).
* ``message_id`` is the same ``"m<index>"`` id as in the JSON document, so a
  leg's ``message_ids`` (or a JSON reference) joins to the ``messages`` frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pandas as pd

from sipchain.model import Endpoint, Evidence, Leg
from sipchain.views._json import (
    FINDING_FIELDS,
    MessageIndex,
    ReconstructionLike,
    finding_frames,
    finding_text,
)

__all__ = [
    "CHAIN_COLUMNS",
    "FAILOVER_COLUMNS",
    "FINDING_COLUMNS",
    "FRAME_COLUMNS",
    "LEG_COLUMNS",
    "LINK_COLUMNS",
    "MESSAGE_COLUMNS",
    "reconstruction_frames",
]

_UTC: Final = "datetime64[ns, UTC]"
_SPAN: Final = "timedelta64[ns]"

#: ``messages``: every message of the reconstruction once, in time order.
MESSAGE_COLUMNS: Final[Mapping[str, str]] = {
    "message_id": "string",  # "m<index>", as in the JSON document
    "source": "string",  # provenance: source file
    "sha256": "string",  # SHA-256 of the source file
    "frame": "Int64",  # 1-based frame or record number
    "frames": "object",  # tuple of every contributing frame number
    "offset": "Int64",  # byte offset of the record in the source file
    "timestamp_ns": "Int64",  # capture time, integer nanoseconds
    "time": _UTC,  # the same instant
    "time_meaning": "string",  # what the time means
    "parser_chain": "string",  # e.g. "pcapng/ethernet/ipv4/udp/sip"
    "src_ip": "string",
    "src_port": "Int64",
    "src_transport": "string",
    "dst_ip": "string",
    "dst_port": "Int64",
    "dst_transport": "string",
    "start_line": "string",
    "method": "string",  # requests only
    "target": "string",  # Request-URI, requests only
    "status": "Int64",  # responses only
    "reason": "string",  # responses only
    "call_id": "string",
    "cseq_number": "Int64",
    "cseq_method": "string",
    "from_tag": "string",
    "to_tag": "string",
    "branch": "string",  # top Via branch
    "defects": "object",  # tuple of defect codes
    "size": "int64",  # length of the exact bytes
}

#: ``legs``: every leg of every chain, chain by chain, in the chain's order.
LEG_COLUMNS: Final[Mapping[str, str]] = {
    "chain_id": "string",
    "leg_id": "string",
    "role": "string",  # "inbound" or "outbound"
    "trunk": "string",
    "attempt": "Int64",  # 1-based among outbound attempts; NA for inbound
    "call_id": "string",
    "from_tag": "string",
    "to_tags": "object",  # tuple of str
    "branch": "string",
    "uac_ip": "string",
    "uac_port": "Int64",
    "uac_transport": "string",
    "uas_ip": "string",
    "uas_port": "Int64",
    "uas_transport": "string",
    "started_ns": "int64",
    "started": _UTC,
    "ended_ns": "int64",
    "ended": _UTC,
    "final_status": "Int64",
    "end": "string",  # answered / failed / cancelled / timeout / open
    "answered": "bool",
    "invite": "string",  # message id of the first INVITE
    "message_ids": "object",  # tuple of message ids, time order
    "transactions": "int64",  # number of transactions
}

#: ``links``: every link of every chain, then the rejected links (``rejected``
#: true, ``chain_id`` NA).
LINK_COLUMNS: Final[Mapping[str, str]] = {
    "chain_id": "string",
    "a": "string",  # leg id
    "b": "string",  # leg id
    "rule": "string",
    "score": "int64",  # 0-100
    "identifier_match": "bool",
    "rejected": "bool",
    "evidence": "object",  # tuple of (field, value, ((source, frame), ...))
}

#: ``failovers``: every failover of every chain.
FAILOVER_COLUMNS: Final[Mapping[str, str]] = {
    "chain_id": "string",
    "from_leg": "string",
    "to_leg": "string",
    "attempt": "int64",
    "cause": "string",  # "408", "503", …, "timeout" or "cancelled"
    "failed_at_ns": "int64",
    "failed_at": _UTC,
    "next_invite_at_ns": "int64",
    "next_invite_at": _UTC,
    "latency_ns": "int64",
    "latency": _SPAN,
    "original_trunk_id": "string",
    "evidence": "object",  # tuple of (field, value, ((source, frame), ...))
}

#: ``chains``: one row per chain.
CHAIN_COLUMNS: Final[Mapping[str, str]] = {
    "chain_id": "string",
    "outcome": "string",  # answered / failed / cancelled / open
    "answered_by": "string",  # leg id
    "final_status": "Int64",  # what the caller got
    "leg_ids": "object",  # tuple of leg ids, inbound first
    "legs": "int64",
    "links": "int64",
    "failovers": "int64",
}

#: ``findings``: one row per finding, in the validator's order.
FINDING_COLUMNS: Final[Mapping[str, str]] = {
    "rule": "string",
    "severity": "string",  # info / warning / error
    "chain_id": "string",
    "leg": "string",  # leg id
    "frames": "object",  # tuple of (source, frame)
    "message": "string",
    "hint": "string",
}

#: The frames :func:`reconstruction_frames` returns, and their columns.
FRAME_COLUMNS: Final[Mapping[str, Mapping[str, str]]] = {
    "messages": MESSAGE_COLUMNS,
    "legs": LEG_COLUMNS,
    "links": LINK_COLUMNS,
    "failovers": FAILOVER_COLUMNS,
    "chains": CHAIN_COLUMNS,
    "findings": FINDING_COLUMNS,
}

_Row = dict[str, Any]


def _column(values: list[Any], dtype: str) -> pd.Series[Any]:
    if dtype == _UTC:
        ns = pd.array(values, dtype="Int64")
        return pd.Series(pd.to_datetime(ns, unit="ns", utc=True)).astype(_UTC)
    if dtype == _SPAN:
        return pd.Series(pd.to_timedelta(pd.array(values, dtype="Int64"), unit="ns")).astype(_SPAN)
    return pd.Series(values, dtype=dtype)


def _frame(columns: Mapping[str, str], rows: Sequence[_Row]) -> pd.DataFrame:
    data = {name: _column([row[name] for row in rows], dtype) for name, dtype in columns.items()}
    return pd.DataFrame(data, columns=list(columns))


def _ends(prefix: str, e: Endpoint | None) -> _Row:
    return {
        f"{prefix}_ip": None if e is None else e.ip,
        f"{prefix}_port": None if e is None else e.port,
        f"{prefix}_transport": None if e is None else e.transport,
    }


def _evidence(
    items: tuple[Evidence, ...],
) -> tuple[tuple[str, str, tuple[tuple[str, int], ...]], ...]:
    return tuple((e.field, e.value, e.frames) for e in items)


def _message_rows(index: MessageIndex) -> list[_Row]:
    rows: list[_Row] = []
    for i, m in enumerate(index.messages):
        p = m.provenance
        cseq = m.cseq
        rows.append(
            {
                "message_id": f"m{i}",
                "source": None if p is None else p.source,
                "sha256": None if p is None else p.source_sha256,
                "frame": None if p is None else p.frame,
                "frames": () if p is None else p.frames,
                "offset": None if p is None else p.offset,
                "timestamp_ns": m.timestamp_ns,
                "time": m.timestamp_ns,
                "time_meaning": None if p is None else p.time_meaning,
                "parser_chain": None if p is None else p.parser_chain,
                **_ends("src", m.src),
                **_ends("dst", m.dst),
                "start_line": m.start_line,
                "method": m.method,
                "target": m.target,
                "status": m.status,
                "reason": m.reason,
                "call_id": m.call_id,
                "cseq_number": None if cseq is None else cseq.number,
                "cseq_method": None if cseq is None else cseq.method,
                "from_tag": m.from_tag,
                "to_tag": m.to_tag,
                "branch": m.branch,
                "defects": tuple(d.code for d in m.defects),
                "size": len(m.raw),
            }
        )
    return rows


def _leg_row(chain_id: str, leg: Leg, index: MessageIndex) -> _Row:
    return {
        "chain_id": chain_id,
        "leg_id": leg.leg_id,
        "role": leg.role,
        "trunk": leg.trunk,
        "attempt": leg.attempt,
        "call_id": leg.call_id,
        "from_tag": leg.from_tag,
        "to_tags": leg.to_tags,
        "branch": leg.branch,
        **_ends("uac", leg.uac),
        **_ends("uas", leg.uas),
        "started_ns": leg.started_ns,
        "started": leg.started_ns,
        "ended_ns": leg.ended_ns,
        "ended": leg.ended_ns,
        "final_status": leg.final_status,
        "end": leg.end,
        "answered": leg.answered,
        "invite": index.optional_id(leg.invite),
        "message_ids": tuple(index.ids(leg.messages)),
        "transactions": len(leg.transactions),
    }


def reconstruction_frames(rec: ReconstructionLike) -> dict[str, pd.DataFrame]:
    """DataFrames of ``rec``, keyed as :data:`FRAME_COLUMNS`, with exactly those columns.

    Raises:
        TypeError: a finding's ``frames`` holds something that is not a frame
            reference (as :func:`sipchain.views.reconstruction_to_json`).
    """
    index = MessageIndex(rec)
    legs: list[_Row] = []
    links: list[_Row] = []
    failovers: list[_Row] = []
    chains: list[_Row] = []
    for chain in rec.chains:
        cid = chain.chain_id
        legs += [_leg_row(cid, leg, index) for leg in chain.legs]
        links += [
            {
                "chain_id": cid,
                "a": link.a,
                "b": link.b,
                "rule": link.rule,
                "score": link.score,
                "identifier_match": link.identifier_match,
                "rejected": False,
                "evidence": _evidence(link.evidence),
            }
            for link in chain.links
        ]
        failovers += [
            {
                "chain_id": cid,
                "from_leg": f.from_leg,
                "to_leg": f.to_leg,
                "attempt": f.attempt,
                "cause": f.cause,
                "failed_at_ns": f.failed_at_ns,
                "failed_at": f.failed_at_ns,
                "next_invite_at_ns": f.next_invite_at_ns,
                "next_invite_at": f.next_invite_at_ns,
                "latency_ns": f.latency_ns,
                "latency": f.latency_ns,
                "original_trunk_id": f.original_trunk_id,
                "evidence": _evidence(f.evidence),
            }
            for f in chain.failovers
        ]
        chains.append(
            {
                "chain_id": cid,
                "outcome": chain.outcome,
                "answered_by": chain.answered_by,
                "final_status": chain.final_status,
                "leg_ids": tuple(leg.leg_id for leg in chain.legs),
                "legs": len(chain.legs),
                "links": len(chain.links),
                "failovers": len(chain.failovers),
            }
        )
    links += [
        {
            "chain_id": None,
            "a": link.a,
            "b": link.b,
            "rule": link.rule,
            "score": link.score,
            "identifier_match": link.identifier_match,
            "rejected": True,
            "evidence": _evidence(link.evidence),
        }
        for link in rec.rejected
    ]
    findings: list[_Row] = []
    for finding in rec.findings:
        row: _Row = {
            name: finding_text(getattr(finding, name, None))
            for name in FINDING_FIELDS
            if name != "frames"
        }
        row["frames"] = tuple(finding_frames(getattr(finding, "frames", None)))
        findings.append(row)
    rows: dict[str, list[_Row]] = {
        "messages": _message_rows(index),
        "legs": legs,
        "links": links,
        "failovers": failovers,
        "chains": chains,
        "findings": findings,
    }
    return {name: _frame(columns, rows[name]) for name, columns in FRAME_COLUMNS.items()}
