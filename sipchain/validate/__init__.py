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

import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from sipchain.errors import SipChainError
from sipchain.model import Chain, Finding, Leg, SipMessage

__all__ = ["RULES", "Policy", "load_policy", "validate"]


@attrs.frozen
class Policy:
    """Which rules run, at which severity, with which parameters.

    Attributes:
        route: trunk names in order of preference, primary first (optional).
        disabled: rule ids not to run.
        severities: rule id -> severity, overriding the defaults.
    """

    route: tuple[str, ...] = ()
    disabled: frozenset[str] = frozenset()
    severities: Mapping[str, str] = attrs.field(factory=dict)


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
    return Policy(route=tuple(str(r) for r in route), disabled=disabled, severities=severities)


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

Check = Callable[[Chain, Policy], Iterable[tuple[str | None, tuple[tuple[str, int], ...], str, str]]]


def _leg_has_invite(chain: Chain, policy: Policy) -> Iterable[tuple[str | None, tuple[tuple[str, int], ...], str, str]]:
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


def _leg_has_final_response(chain: Chain, policy: Policy) -> Iterable[tuple[str | None, tuple[tuple[str, int], ...], str, str]]:
    for leg in chain.legs:
        if leg.invite is None or leg.final_status is not None:
            continue
        proof = _answer_evidence(leg) or _failure_ack(leg)
        if proof is None:
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


def _failover_trigger(chain: Chain, policy: Policy) -> Iterable[tuple[str | None, tuple[tuple[str, int], ...], str, str]]:
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


def _route_order(chain: Chain, policy: Policy) -> Iterable[tuple[str | None, tuple[tuple[str, int], ...], str, str]]:
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


#: rule id -> (default severity, description, check)
RULES: Mapping[str, tuple[str, str, Check]] = {
    "leg-has-invite": ("error", "every leg has its INVITE", _leg_has_invite),
    "leg-has-final-response": ("error", "an answered INVITE has its final response", _leg_has_final_response),
    "failover-trigger-recorded": ("error", "the failure that triggered a failover is in the trace", _failover_trigger),
    "route-order": ("error", "attempts follow the configured route", _route_order),
}


def validate(chains: Sequence[Chain], policy: Policy | None = None) -> tuple[Finding, ...]:
    """Every finding of every enabled rule over ``chains``, in chain then rule order."""
    policy = policy or Policy()
    findings: list[Finding] = []
    for chain in chains:
        for rule, (severity, _, check) in RULES.items():
            if rule in policy.disabled:
                continue
            level = policy.severities.get(rule, severity)
            for leg, frames, message, hint in check(chain, policy):
                findings.append(Finding(rule, level, chain.chain_id, leg, frames, message, hint))
    return tuple(findings)
