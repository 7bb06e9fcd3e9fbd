"""Compliance rules over call chains: findings a reviewer can act on.

Rules are data: :data:`RULES` maps each id to its default severity, its
description and the function that checks it. A :class:`Policy` selects rules,
changes severities and sets parameters (``route``, the primary trunk first).
Compliance failures are :class:`~sipchain.model.Finding` values, never
exceptions.

Rules implemented here:

======================================  ========  ===========================================
rule                                    severity  says
======================================  ========  ===========================================
``leg-has-invite``                      error     responses, ACK or BYE of a leg whose INVITE
                                                  is absent
``leg-has-final-response``              error     the INVITE was evidently answered (an ACK
                                                  or BYE on the leg) but no final response
``failover-trigger-recorded``           error     the attempt was followed by another and an
                                                  ACK with its INVITE's branch proves a final
                                                  failure that is absent
``route-order``                         error     with ``route`` set, the first attempt is on
                                                  a later trunk and no attempt on an earlier
                                                  one was recorded
======================================  ========  ===========================================
"""

from __future__ import annotations

import itertools
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from sipchain.errors import SipChainError
from sipchain.model import Chain, ClockOffset, Finding, Leg, Problem, SipMessage, parse_instant
from sipchain.validate._cdr import CdrLeg, load_cdr

__all__ = ["RULES", "CdrLeg", "Policy", "load_cdr", "load_policy", "validate"]


@attrs.frozen
class Policy:
    """Which rules run, at which severity, with which parameters.

    Attributes:
        route: trunk names in order of preference, primary first (optional).
        disabled: rule ids not to run.
        severities: rule id -> severity, overriding the defaults.
        failover_threshold_ms: the longest failover latency allowed.
        tolerance_ms: slack on every time comparison (timers fire early or late).
        allowed_causes: failover causes allowed (status codes, ``timeout``,
            ``cancelled``).
        allow_after_ringing: whether a failover after a 18x is allowed.
    """

    route: tuple[str, ...] = ()
    disabled: frozenset[str] = frozenset()
    severities: Mapping[str, str] = attrs.field(factory=dict)
    failover_threshold_ms: float = 5000.0
    tolerance_ms: float = 200.0
    allowed_causes: frozenset[str] = frozenset({"408", "480", "500", "502", "503", "504", "timeout"})
    allow_after_ringing: bool = False
    problems: tuple[Problem, ...] = attrs.field(default=(), eq=False, repr=False)
    cdr: tuple[CdrLeg, ...] | None = attrs.field(default=None, eq=False, repr=False)
    capture_end_ns: int | None = attrs.field(default=None, eq=False, repr=False)


def load_policy(spec: Policy | Mapping[str, Any] | str | os.PathLike[str] | None) -> Policy:
    """A :class:`Policy` from a Policy, a mapping, a TOML file, or the defaults."""
    if spec is None:
        return Policy()
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, str | os.PathLike):
        path = Path(spec)
        try:
            data: Mapping[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SipChainError(f"cannot read the policy: {exc}", source=str(path)) from exc
    else:
        data = spec
    rules = data.get("rules", {})
    if not isinstance(rules, Mapping):
        raise SipChainError("policy: [rules] must be a table of rule = {enabled, severity}")
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise SipChainError(f"policy: unknown rules {', '.join(unknown)}; known: {', '.join(RULES)}")
    disabled = frozenset(r for r, cfg in rules.items() if isinstance(cfg, Mapping) and cfg.get("enabled") is False)
    severities = {r: str(cfg["severity"]) for r, cfg in rules.items() if isinstance(cfg, Mapping) and "severity" in cfg}
    for rule, severity in severities.items():
        if severity not in ("error", "warning", "info"):
            raise SipChainError(f"policy: rule {rule} has severity {severity!r}; use error, warning or info")
    route = data.get("route", ())
    if isinstance(route, str) or not isinstance(route, Sequence):
        raise SipChainError("policy: route must be a list of trunk names, primary first")
    extra: dict[str, Any] = {}
    for key in ("failover_threshold_ms", "tolerance_ms"):
        if key in data:
            extra[key] = float(data[key])
    if "allowed_causes" in data:
        extra["allowed_causes"] = frozenset(str(c) for c in data["allowed_causes"])
    if "allow_after_ringing" in data:
        extra["allow_after_ringing"] = bool(data["allow_after_ringing"])
    return Policy(route=tuple(str(r) for r in route), disabled=disabled, severities=severities, **extra)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _frames(messages: Iterable[SipMessage]) -> tuple[tuple[str, int], ...]:
    return tuple(
        (m.provenance.source, m.provenance.frame) for m in messages if m.provenance is not None
    )


def _frame(m: SipMessage | None) -> str:
    if m is None or m.provenance is None:
        return "frame ?"
    return f"frame {m.provenance.frame}"


def _clock(ns: int | None) -> str:
    if ns is None:
        return "?"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]


def _where(leg: Leg) -> str:
    if leg.role == "outbound":
        return f"sent to {leg.trunk}" if leg.trunk else "sent outbound"
    return f"received from {leg.trunk}" if leg.trunk else "received inbound"


def _is_invite_response(m: SipMessage) -> bool:
    return m.status is not None and m.cseq is not None and m.cseq.method == "INVITE"


# --------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------

#: What a rule yields per finding: (leg id or None, proving frames, message, hint).
Verdicts = Iterable[tuple[str | None, tuple[tuple[str, int], ...], str, str]]
Check = Callable[[Chain, Policy], Verdicts]


def _leg_has_invite(chain: Chain, policy: Policy) -> Verdicts:
    for leg in chain.legs:
        if leg.invite is None and leg.messages:
            first = leg.messages[0]
            yield (
                leg.leg_id,
                _frames(leg.messages),
                f"The INVITE of the {leg.role} leg {_where(leg)} (Call-ID {leg.call_id}) is missing: "
                f"{len(leg.messages)} of its messages are in the capture, the first at "
                f"{_clock(first.timestamp_ns)} ({_frame(first)}), but not the request that started it.",
                "Look for the INVITE in the other sources of this hop; the audit trail lacks the start of this leg.",
            )


def _answer_evidence(leg: Leg) -> SipMessage | None:
    """An ACK for a 2xx or a BYE on the leg: proof the INVITE was answered."""
    branch = leg.branch
    for m in leg.messages:
        if m.method == "BYE" or (m.method == "ACK" and m.branch != branch):
            return m
    return None


#: RFC 3261 Timer B (64 * T1): an INVITE client gives up after this.
TIMER_B_NS = 32_000_000_000


def _leg_has_final_response(chain: Chain, policy: Policy) -> Verdicts:
    failed_over = {fo.from_leg for fo in chain.failovers}
    for leg in chain.legs:
        if leg.invite is None or leg.final_status is not None:
            continue
        proof = _answer_evidence(leg) or _failure_ack(leg)
        if proof is None:
            # no final response and no explanation: no failover, no retransmitting
            # timer, no CANCEL, and the capture went on past Timer B
            retransmitted = any(t.retransmissions for t in leg.transactions if t.method == "INVITE")
            sent = leg.invite.timestamp_ns or 0
            if (
                leg.leg_id not in failed_over
                and not retransmitted
                and leg.end not in ("cancelled",)
                and policy.capture_end_ns is not None
                and policy.capture_end_ns - sent > TIMER_B_NS
            ):
                yield (
                    leg.leg_id,
                    _frames((leg.invite,)),
                    f"The INVITE {_where(leg)} at {_clock(sent)} ({_frame(leg.invite)}) has no final response, "
                    "no failover followed it, it was not retransmitted or cancelled, and the capture went on "
                    f"{(policy.capture_end_ns - sent) / 1e9:.0f} s after it.",
                    "Its outcome is not in the trace; find the final response in other sources.",
                )
            continue
        kind = "200 OK" if proof.method == "BYE" or proof.branch != leg.branch else "final response"
        yield (
            leg.leg_id,
            _frames((leg.invite, proof)),
            f"The {kind} that answered the INVITE {_where(leg)} at {_clock(leg.invite.timestamp_ns)} "
            f"({_frame(leg.invite)}) is missing; the {proof.method} in {_frame(proof)} proves it was sent.",
            "The final response of this leg is absent from the trace: check the capture point and the export's completeness.",
        )


def _failure_ack(leg: Leg) -> SipMessage | None:
    """An ACK with the INVITE's branch: the ACK to a final failure (RFC 3261 §17.1.1.3)."""
    for m in leg.messages:
        if m.method == "ACK" and leg.branch is not None and m.branch == leg.branch:
            return m
    return None


def _failover_trigger(chain: Chain, policy: Policy) -> Verdicts:
    for fo in chain.failovers:
        earlier = chain.leg(fo.from_leg)
        if earlier.final_status is not None:
            continue
        ack = _failure_ack(earlier)
        if ack is None:
            continue  # a silent primary: the normal shape of a timeout, not a gap
        later = chain.leg(fo.to_leg)
        yield (
            earlier.leg_id,
            _frames(m for m in (earlier.invite, ack, later.invite) if m is not None),
            f"The failure response that made the call fail over from {earlier.trunk} is missing: "
            f"the ACK in {_frame(ack)} acknowledges a final failure to the INVITE in {_frame(earlier.invite)}, "
            f"and attempt {later.attempt} on {later.trunk} followed ({_frame(later.invite)}).",
            "The trigger of this failover (e.g. 503 or 408) is not in the trace; its cause cannot be proved.",
        )


def _route_order(chain: Chain, policy: Policy) -> Verdicts:
    if not policy.route:
        return
    rank = {trunk: i for i, trunk in enumerate(policy.route)}
    attempts = [leg for leg in chain.legs if leg.role == "outbound" and leg.trunk in rank]
    if not attempts:
        return
    first = min(attempts, key=lambda leg: leg.started_ns)
    tried = {leg.trunk for leg in attempts}
    skipped = [t for t in policy.route[: rank[first.trunk or ""]] if t not in tried]
    if not skipped:
        return
    inbound = next((leg for leg in chain.legs if leg.role == "inbound"), None)
    gap = (
        f", {(first.started_ns - inbound.started_ns) / 1e6:.1f} ms after the inbound INVITE"
        if inbound is not None
        else ""
    )
    frames = _frames(m for m in ((inbound.invite if inbound else None), first.invite) if m is not None)
    yield (
        first.leg_id,
        frames,
        f"The first outbound attempt is on {first.trunk}{gap} ({_frame(first.invite)}), but the route "
        f"puts {', '.join(skipped)} first and no attempt on it was recorded: the primary attempt is "
        "missing from the trace.",
        "Find the attempt on the primary trunk in other sources, or check why the route was not followed.",
    )


def _ack_for_2xx(chain: Chain, policy: Policy) -> Verdicts:
    for leg in chain.legs:
        if not leg.answered or leg.invite is None:
            continue
        final = next((m for m in leg.messages if _is_invite_response(m) and m.status is not None and 200 <= m.status < 300), None)
        acks = [m for m in leg.messages if m.method == "ACK" and m.branch != leg.branch]
        if final is None or acks:
            continue
        later = [m for m in leg.messages if (m.timestamp_ns or 0) > (final.timestamp_ns or 0) and m is not final]
        if not later:
            continue  # the capture may have ended right after the 200 OK
        yield (
            leg.leg_id,
            _frames((leg.invite, final)),
            f"The ACK to the {final.status} that answered the INVITE {_where(leg)} ({_frame(final)}) is missing, "
            f"although the dialog went on ({len(later)} later messages).",
            "RFC 3261 §13.2.2.4: every 2xx to an INVITE is ACKed; look for it in other sources.",
        )


def _requests_answered(chain: Chain, policy: Policy) -> Verdicts:
    for leg in chain.legs:
        for tx in leg.transactions:
            if tx.method not in ("BYE", "CANCEL") or tx.request is None or tx.final is not None:
                continue
            yield (
                leg.leg_id,
                _frames((tx.request, *tx.retransmissions)),
                f"The {tx.method} {_where(leg)} at {_clock(tx.request.timestamp_ns)} ({_frame(tx.request)}) "
                f"has no final response in the trace"
                + (f" ({len(tx.retransmissions)} retransmissions)." if tx.retransmissions else "."),
                f"Every {tx.method} is answered (RFC 3261 §15.1.2, §9.2); the answer is missing or was never sent.",
            )


def _failover_latency(chain: Chain, policy: Policy) -> Verdicts:
    limit_ns = (policy.failover_threshold_ms + policy.tolerance_ms) * 1_000_000
    for fo in chain.failovers:
        if fo.latency_ns <= limit_ns:
            continue
        later = chain.leg(fo.to_leg)
        yield (
            fo.to_leg,
            tuple(f for e in fo.evidence for f in e.frames),
            f"The failover from {fo.original_trunk_id} to {later.trunk} took {fo.latency_ns / 1e6:.1f} ms "
            f"(cause {fo.cause}), beyond the {policy.failover_threshold_ms:.0f} ms threshold.",
            "Check the edge's failover timer (fr_timer) against the policy.",
        )


def _failover_cause(chain: Chain, policy: Policy) -> Verdicts:
    for fo in chain.failovers:
        earlier = chain.leg(fo.from_leg)
        ringing = next((m for m in earlier.messages if _is_invite_response(m) and m.status in (180, 183)), None)
        proof = tuple(f for e in fo.evidence for f in e.frames)
        if fo.cause not in policy.allowed_causes:
            yield (
                fo.from_leg,
                proof,
                f"The call failed over from {fo.original_trunk_id} on cause {fo.cause}, which the policy does not allow "
                f"(allowed: {', '.join(sorted(policy.allowed_causes))}).",
                "A failover on this cause may hide a routing decision the policy forbids.",
            )
        elif ringing is not None and not policy.allow_after_ringing:
            yield (
                fo.from_leg,
                (*proof, *_frames((ringing,))),
                f"The call failed over from {fo.original_trunk_id} after it had rung ({ringing.status} in "
                f"{_frame(ringing)}), which the policy does not allow.",
                "Set allow_after_ringing in the policy if ringing attempts may fail over.",
            )


def _chronology(chain: Chain, policy: Policy) -> Verdicts:
    slack = policy.tolerance_ms * 1_000_000
    # per source, time must not run backwards as frames go forwards
    by_source: dict[str, list[tuple[int, int, SipMessage]]] = {}
    for leg in chain.legs:
        for m in leg.messages:
            if m.provenance is not None and m.timestamp_ns is not None:
                by_source.setdefault(m.provenance.source, []).append((m.provenance.frame, m.timestamp_ns, m))
    for source, items in sorted(by_source.items()):
        items.sort(key=lambda x: x[0])
        for (_, t1, m1), (_, t2, m2) in itertools.pairwise(items):
            if t2 + slack < t1:
                yield (
                    None,
                    _frames((m1, m2)),
                    f"In {source}, {_frame(m2)} is stamped {(t1 - t2) / 1e6:.1f} ms before {_frame(m1)}, "
                    "which comes earlier in the file: the source's clock went backwards.",
                    "Times of this source are not monotonic; orderings based on them are unreliable.",
                )
                break
    for leg in chain.legs:
        for tx in leg.transactions:
            if tx.request is None or tx.request.timestamp_ns is None:
                continue
            early = [r for r in tx.responses if r.timestamp_ns is not None and r.timestamp_ns + slack < tx.request.timestamp_ns]
            if not early:
                continue
            r = early[0]
            assert r.timestamp_ns is not None
            yield (
                leg.leg_id,
                _frames((tx.request, r)),
                f"The {r.status} to the {tx.method} ({_frame(r)}) is stamped "
                f"{(tx.request.timestamp_ns - r.timestamp_ns) / 1e6:.1f} ms before its request ({_frame(tx.request)}).",
                "Clocks of the sources disagree, or the capture's time is wrong; see the report's clock offsets.",
            )


def _sequence(chain: Chain, policy: Policy) -> Verdicts:
    numbered: dict[str, list[tuple[int, SipMessage]]] = {}
    for leg in chain.legs:
        for m in leg.messages:
            value = m.meta("sip_sequence") if m.metadata else None
            if value is not None and value.strip().isdigit() and m.provenance is not None:
                numbered.setdefault(m.provenance.source, []).append((int(value), m))
    for items in numbered.values():
        items.sort(key=lambda x: x[0])
        for (a, ma), (b, mb) in itertools.pairwise(items):
            if b > a + 1:
                yield (
                    None,
                    _frames((ma, mb)),
                    f"sip_sequence jumps from {a} ({_frame(ma)}) to {b} ({_frame(mb)}): "
                    f"{b - a - 1} export records of this call are missing.",
                    "The export lost records; ask the platform for a complete export (all legs).",
                )


def _metadata(chain: Chain, policy: Policy) -> Verdicts:
    slack = policy.tolerance_ms * 1_000_000
    incoming = {fo.to_leg: fo for fo in chain.failovers}
    for leg in chain.legs:
        carrier = next((m for m in leg.messages if m.metadata and m.meta("original_trunk_id")), None)
        if carrier is None:
            continue
        original = carrier.meta("original_trunk_id") or ""
        fo = incoming.get(leg.leg_id)
        if fo is None:
            yield (
                leg.leg_id,
                _frames((carrier,)),
                f"The export says this leg on {leg.trunk} replaced an attempt on {original} "
                f"(original_trunk_id in {_frame(carrier)}), but that attempt is not in the trace: "
                "the export lost that leg.",
                "Export all legs of the call (e.g. a capture mode covering every leg).",
            )
            continue
        if fo.original_trunk_id != original:
            yield (
                leg.leg_id,
                _frames((carrier,)),
                f"The export names {original} as the original trunk, but the attempt before this one was on "
                f"{fo.original_trunk_id}.",
                "The export's original_trunk_id contradicts the signalling.",
            )
        stamp = carrier.meta("failover_timestamp")
        if stamp:
            try:
                at = parse_instant(stamp)
            except ValueError:
                continue
            if min(abs(at - fo.failed_at_ns), abs(at - fo.next_invite_at_ns)) > slack:
                yield (
                    leg.leg_id,
                    _frames((carrier,)),
                    f"The export's failover_timestamp ({stamp}) is more than {policy.tolerance_ms:.0f} ms from "
                    f"the failure ({_clock(fo.failed_at_ns)}) and from the next INVITE ({_clock(fo.next_invite_at_ns)}).",
                    "The export's failover time contradicts the signalling (or its clock is off).",
                )


def _capture_complete(chain: Chain, policy: Policy) -> Verdicts:
    problems = policy.problems
    if not problems:
        return
    spans: dict[str, tuple[int, int]] = {}
    for leg in chain.legs:
        for m in leg.messages:
            for p in m.provenances:
                lo, hi = spans.get(p.source, (p.frame, p.frame))
                spans[p.source] = (min(lo, p.frame), max(hi, p.frame))
    for source, (lo, hi) in sorted(spans.items()):
        inside = [p for p in problems if p.source == source and p.frame is not None and lo <= p.frame <= hi]
        if inside:
            yield (
                None,
                tuple((source, p.frame) for p in inside if p.frame is not None),
                f"{len(inside)} frames of {source} between this call's first and last frame ({lo}-{hi}) "
                f"could not be used ({inside[0].reason}); messages of this call may be among them.",
                "See trace.report.problems; the capture around this call is incomplete.",
            )


def _cdr_chain(chain: Chain, policy: Policy) -> Verdicts:
    if policy.cdr is None:
        return
    known = {leg.call_id for leg in policy.cdr}
    for leg in chain.legs:
        if leg.invite is not None and leg.call_id not in known:
            yield (
                leg.leg_id,
                _frames((leg.invite,)),
                f"The {leg.role} leg {_where(leg)} (Call-ID {leg.call_id}, INVITE in {_frame(leg.invite)}) "
                "is signalled but the CDR has no leg with that Call-ID.",
                "Billing and signalling disagree: a leg without a CDR.",
            )


#: rule id -> (default severity, description, check)
RULES: Mapping[str, tuple[str, str, Check]] = {
    "leg-has-invite": ("error", "every leg has its INVITE", _leg_has_invite),
    "leg-has-final-response": ("error", "an answered INVITE has its final response", _leg_has_final_response),
    "failover-trigger-recorded": ("error", "the failure that triggered a failover is in the trace", _failover_trigger),
    "route-order": ("error", "attempts follow the configured route", _route_order),
    "2xx-has-ack": ("error", "every 2xx to an INVITE is ACKed", _ack_for_2xx),
    "bye-cancel-answered": ("error", "BYE and CANCEL get a final response", _requests_answered),
    "failover-within-threshold": ("error", "failover latency within the policy threshold", _failover_latency),
    "failover-cause-allowed": ("error", "failovers happen on allowed causes only", _failover_cause),
    "chronology": ("warning", "no response stamped before its request", _chronology),
    "sequence-contiguous": ("error", "export sip_sequence numbers have no gaps", _sequence),
    "metadata-consistent": ("error", "export failover metadata agrees with the signalling", _metadata),
    "capture-complete": ("warning", "no unusable frames amid a call's frames", _capture_complete),
    "cdr-reconciled": ("error", "every CDR leg is signalled and every signalled leg is in the CDR", _cdr_chain),
}


def validate(
    chains: Sequence[Chain],
    policy: Policy | None = None,
    problems: Sequence[Problem] = (),
    cdr: Sequence[CdrLeg] | None = None,
    *,
    capture_end_ns: int | None = None,
    clock_offsets: Sequence[ClockOffset] = (),
) -> tuple[Finding, ...]:
    """Every finding of every enabled rule over ``chains``, in chain then rule order.

    ``problems`` are the ingestion problems (``trace.report.problems``), for
    the capture-completeness rule; ``cdr`` the legs of a CDR to reconcile;
    ``capture_end_ns`` the time of the last message read; ``clock_offsets``
    those estimated between sources (one above the tolerance is reported).
    """
    policy = attrs.evolve(
        policy or Policy(),
        problems=tuple(problems),
        cdr=None if cdr is None else tuple(cdr),
        capture_end_ns=capture_end_ns,
    )
    findings: list[Finding] = []
    for chain in chains:
        for rule, (severity, _, check) in RULES.items():
            if rule in policy.disabled:
                continue
            level = policy.severities.get(rule, severity)
            for leg, frames, message, hint in check(chain, policy):
                findings.append(Finding(rule, level, chain.chain_id, leg, frames, message, hint))
    if "chronology" not in policy.disabled:
        level = policy.severities.get("chronology", "warning")
        for offset in clock_offsets:
            if abs(offset.offset_ns) > policy.tolerance_ms * 1_000_000:
                findings.append(
                    Finding(
                        "chronology",
                        level,
                        "",
                        None,
                        (),
                        f"The clock of {offset.source} is {offset.offset_ns / 1e6:+.1f} ms off {offset.reference} "
                        f"(estimated from {offset.pairs} messages both carried).",
                        "Times from these sources are compared after correcting this offset.",
                    )
                )
    if policy.cdr is not None and "cdr-reconciled" not in policy.disabled:
        signalled = {leg.call_id for chain in chains for leg in chain.legs}
        level = policy.severities.get("cdr-reconciled", "error")
        for cdr_leg in policy.cdr:
            if cdr_leg.call_id not in signalled:
                trunk = f" on {cdr_leg.trunk}" if cdr_leg.trunk else ""
                status = f" ending {cdr_leg.status}" if cdr_leg.status else ""
                findings.append(
                    Finding(
                        "cdr-reconciled",
                        level,
                        "",
                        None,
                        (),
                        f"The CDR records a leg{trunk}{status} (Call-ID {cdr_leg.call_id}, CDR record "
                        f"{cdr_leg.record}) with no signalling in the trace.",
                        "The signalling of a billed leg is missing: look for it in other captures or exports.",
                    )
                )
    return tuple(findings)
