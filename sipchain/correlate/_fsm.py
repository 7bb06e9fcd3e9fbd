"""Transaction and dialog state machines as tables (RFC 3261 §17, §12; RFC 6026).

These are the machines as an observer on the wire sees them: events are
messages captured on the hop, not timers (a timer firing is not on the wire).
The correlator runs them to record the state each transaction and dialog
reached; the validator and the documentation read the same tables.

Events:
    ``request``     the request (first copy)
    ``retransmit``  another copy of the request
    ``1xx``         a provisional response
    ``2xx``         a success final response
    ``3xx-6xx``     a failure final response
    ``ack``         the ACK to a failure final response (INVITE only)
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "DIALOG",
    "INVITE_TRANSACTION",
    "NON_INVITE_TRANSACTION",
    "event_of_status",
    "run",
]

#: INVITE transaction (RFC 3261 §17.1.1 client / §17.2.1 server; RFC 6026
#: "accepted" for 2xx). Missing pairs leave the state unchanged.
INVITE_TRANSACTION: Mapping[tuple[str, str], str] = {
    ("", "request"): "calling",
    ("", "1xx"): "proceeding",  # the request was not captured
    ("", "2xx"): "accepted",
    ("", "3xx-6xx"): "completed",
    ("calling", "retransmit"): "calling",
    ("calling", "1xx"): "proceeding",
    ("calling", "2xx"): "accepted",
    ("calling", "3xx-6xx"): "completed",
    ("proceeding", "retransmit"): "proceeding",
    ("proceeding", "1xx"): "proceeding",
    ("proceeding", "2xx"): "accepted",
    ("proceeding", "3xx-6xx"): "completed",
    ("accepted", "2xx"): "accepted",  # 2xx retransmissions, forked 2xx
    ("completed", "3xx-6xx"): "completed",  # final response retransmitted
    ("completed", "ack"): "confirmed",
    ("confirmed", "ack"): "confirmed",
}

#: Non-INVITE transaction (RFC 3261 §17.1.2 / §17.2.2).
NON_INVITE_TRANSACTION: Mapping[tuple[str, str], str] = {
    ("", "request"): "trying",
    ("", "1xx"): "proceeding",
    ("", "2xx"): "completed",
    ("", "3xx-6xx"): "completed",
    ("trying", "retransmit"): "trying",
    ("trying", "1xx"): "proceeding",
    ("trying", "2xx"): "completed",
    ("trying", "3xx-6xx"): "completed",
    ("proceeding", "retransmit"): "proceeding",
    ("proceeding", "1xx"): "proceeding",
    ("proceeding", "2xx"): "completed",
    ("proceeding", "3xx-6xx"): "completed",
    ("completed", "2xx"): "completed",
    ("completed", "3xx-6xx"): "completed",
}

#: Dialog created by an INVITE (RFC 3261 §12): a 1xx with a To-tag makes an
#: early dialog, a 2xx confirms it, a BYE (or a failure final) ends it.
DIALOG: Mapping[tuple[str, str], str] = {
    ("", "1xx"): "early",
    ("", "2xx"): "confirmed",
    ("", "3xx-6xx"): "terminated",
    ("early", "1xx"): "early",
    ("early", "2xx"): "confirmed",
    ("early", "3xx-6xx"): "terminated",
    ("confirmed", "bye"): "terminated",
    ("confirmed", "2xx"): "confirmed",
    ("early", "bye"): "terminated",
}


def event_of_status(status: int) -> str:
    """The table event for a response status."""
    if status < 200:
        return "1xx"
    if status < 300:
        return "2xx"
    return "3xx-6xx"


def run(table: Mapping[tuple[str, str], str], events: list[str], state: str = "") -> str:
    """The state reached from ``state`` after ``events`` (unknown pairs: no change)."""
    for event in events:
        state = table.get((state, event), state)
    return state
