"""CDRs to reconcile against: Genesys Cloud conversation details, or a documented CSV.

Genesys Cloud analytics conversation details (``POST
/api/v2/analytics/conversations/details/query`` or a job's results):
``conversations[].participants[].sessions[]`` with ``protocolCallId`` (the SIP
Call-ID of that leg), ``ani``/``dnis``, ``segments[]`` with ``segmentStart``,
``segmentEnd``, ``sipResponseCodes`` and ``disconnectType``. A bare list of
conversations is read too.

CSV (header row required, comma-separated, UTF-8)::

    call_id,trunk,start,answer,end,status
    1-27456@127.0.0.10,carrier-b,2026-12-03T18:06:31.845Z,2026-12-03T18:06:32.254Z,,200

Times are ISO 8601 with a zone or epoch numbers; empty cells are allowed.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from sipchain.errors import SipChainError

__all__ = ["CdrLeg", "load_cdr"]


@attrs.frozen
class CdrLeg:
    """One leg a CDR says existed."""

    call_id: str
    trunk: str | None = None
    status: str | None = None
    record: int = 0
    conversation: str | None = None


def _genesys(data: Any) -> Iterator[CdrLeg]:
    conversations = data.get("conversations", []) if isinstance(data, Mapping) else data
    if not isinstance(conversations, list):
        raise SipChainError("CDR JSON: expected a conversations list")
    record = 0
    for conv in conversations:
        if not isinstance(conv, Mapping):
            continue
        for participant in conv.get("participants", []) or []:
            for session in participant.get("sessions", []) or []:
                call_id = session.get("protocolCallId")
                if not call_id:
                    continue
                record += 1
                codes = [
                    str(code)
                    for segment in session.get("segments", []) or []
                    for code in segment.get("sipResponseCodes", []) or []
                ]
                trunk = session.get("edgeId") or session.get("providedBy") or participant.get("participantName")
                yield CdrLeg(
                    str(call_id),
                    str(trunk) if trunk else None,
                    codes[-1] if codes else None,
                    record,
                    str(conv.get("conversationId")) if conv.get("conversationId") else None,
                )


def _csv(text: str) -> Iterator[CdrLeg]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "call_id" not in reader.fieldnames:
        raise SipChainError("CDR CSV: the header row must name a call_id column")
    for i, row in enumerate(reader, start=1):
        if row.get("call_id"):
            yield CdrLeg(row["call_id"].strip(), (row.get("trunk") or "").strip() or None, (row.get("status") or "").strip() or None, i)


def load_cdr(spec: str | os.PathLike[str] | None) -> tuple[CdrLeg, ...]:
    """The legs of a CDR file (Genesys conversation details JSON, or CSV)."""
    if spec is None:
        return ()
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SipChainError(f"cannot read the CDR: {exc.strerror or exc}", source=str(path)) from exc
    stripped = text.lstrip()
    try:
        if stripped.startswith(("{", "[")):
            return tuple(_genesys(json.loads(text)))
        return tuple(_csv(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise SipChainError(f"unreadable CDR: {exc}", source=str(path)) from exc
