"""A crowd of interleaved synthetic calls with exact ground truth.

:func:`build_crowd` builds many calls with :class:`~sipchain.testing._builders.CallBuilder`
whose start times follow a Poisson process, so thousands overlap. It mixes
what makes chain grouping hard: failovers of every cause (status codes,
timeouts with timer-A retransmissions, CANCEL after 180), B2BUA calls linked
only by ``Session-ID``, only by ``X-CID`` or by both, and later calls that
reuse an earlier Call-ID (with a new From-tag soon after, or with the same
From-tag minutes later).

With ``merge_sources`` the messages are split between two synthetic captures
taken at the edge, ``memory:edge-in`` (the caller side) and
``memory:edge-out`` (the trunk side), each numbering its own frames in time
order, and the two are concatenated: the combined list is NOT time-ordered
and a consumer has to sort it.

:func:`pairwise_scores` measures a grouping against the truth by pairs, in
time linear in the number of keys.
"""

from __future__ import annotations

import gc
import random
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs

from sipchain.model import SipMessage
from sipchain.testing._builders import (
    ANSWER,
    CANCEL_AFTER_180,
    DEFAULT_T0_NS,
    DEFAULT_TIMING,
    DEFAULT_TRUNKS,
    EDGE,
    PLATFORM,
    TIMEOUT,
    CallBuilder,
    CallTruth,
    MessageKey,
    MessageTruth,
    Node,
    Packet,
    Timing,
    materialise,
)

__all__ = [
    "FAILOVER_CAUSES",
    "FINAL_FAILURES",
    "Crowd",
    "build_crowd",
    "pair_counts",
    "pairwise_scores",
]

#: Outcomes of attempts that fail over, with relative weights.
FAILOVER_CAUSES: Final[tuple[tuple[str, int], ...]] = (
    ("503", 30),
    (TIMEOUT, 20),
    (CANCEL_AFTER_180, 15),
    ("408", 10),
    ("480", 7),
    ("500", 6),
    ("502", 5),
    ("504", 4),
    ("603", 3),
)
#: Outcomes of a last attempt that does not answer, with relative weights.
FINAL_FAILURES: Final[tuple[tuple[str, int], ...]] = (
    ("486", 40),
    ("480", 20),
    ("603", 15),
    ("503", 15),
    ("404", 10),
)
#: The B2BUA link modes the crowd cycles through.
B2BUA_LINKS: Final = ("x-cid", "session-id", "both")


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


@attrs.frozen
class Crowd:
    """Messages of many calls and the truth about each of them.

    Attributes:
        messages: every message; with merged sources, one source after the
            other (not time-ordered as a whole).
        message_truth: the truth of ``messages[i]``, index for index.
        calls: the truth of each call; ``calls[k].call == k``.
        sources: the synthetic source names, in the order of ``messages``.
    """

    messages: tuple[SipMessage, ...]
    message_truth: tuple[MessageTruth, ...] = attrs.field(repr=False)
    calls: tuple[CallTruth, ...] = attrs.field(repr=False)
    sources: tuple[str, ...]
    _index: dict[MessageKey, int] = attrs.field(eq=False, repr=False, hash=False)

    @classmethod
    def from_messages(
        cls,
        messages: tuple[SipMessage, ...],
        message_truth: tuple[MessageTruth, ...],
        calls: tuple[CallTruth, ...],
    ) -> Crowd:
        """Index the messages by ``(source, frame)``."""
        index: dict[MessageKey, int] = {}
        for i, m in enumerate(messages):
            index[_key(m)] = i
        if len(index) != len(messages):
            raise ValueError("two messages share a (source, frame)")
        sources = tuple(dict.fromkeys(_key(m)[0] for m in messages))
        return cls(messages, message_truth, calls, sources, index)

    # ------------------------------------------------------------ per message
    def truth_of(self, message: SipMessage) -> MessageTruth:
        """The truth of a message, found by its ``(source, frame)``.

        Works for this crowd's messages and for copies of them (re-parsed,
        sorted, loaded back from a capture written from them), as long as the
        provenance is kept.
        """
        return self.message_truth[self._index[_key(message)]]

    def truth_call_of(self, message: SipMessage) -> int:
        """The index of the logical call a message belongs to."""
        return self.truth_of(message).call

    def truth_leg_of(self, message: SipMessage) -> str:
        """The id of the leg a message belongs to (``"c<call>.in"``, ``"c<call>.out<n>"``)."""
        return self.truth_of(message).leg

    # ------------------------------------------------------------ groupings
    def message_groups(self) -> dict[MessageKey, int]:
        """``(source, frame)`` of every message -> its call, for :func:`pairwise_scores`."""
        return {_key(m): t.call for m, t in zip(self.messages, self.message_truth, strict=True)}

    def leg_keys(self) -> dict[MessageKey, str]:
        """``(source, frame)`` of each leg's first INVITE -> the leg's id.

        A correlator's leg can be matched to a true leg through its initial
        INVITE (``Leg.invite``); every leg here has one.
        """
        out: dict[MessageKey, str] = {}
        seen: set[str] = set()
        for m, t in sorted(
            zip(self.messages, self.message_truth, strict=True),
            key=lambda mt: (mt[0].timestamp_ns or 0, _key(mt[0])),
        ):
            if t.leg not in seen and m.method == "INVITE":
                seen.add(t.leg)
                out[_key(m)] = t.leg
        return out

    def leg_groups(self) -> dict[MessageKey, int]:
        """Each leg (keyed by its first INVITE's ``(source, frame)``) -> its call.

        Compare with ``{leg.invite's (source, frame): chain_id}`` from a
        correlator for pairwise scores over legs.
        """
        leg_call = {leg.leg: c.call for c in self.calls for leg in c.legs}
        return {key: leg_call[leg] for key, leg in self.leg_keys().items()}

    # ------------------------------------------------------------ summaries
    def stats(self) -> dict[str, Any]:
        """Counts that describe the crowd (JSON-serialisable)."""
        causes: Counter[str] = Counter(f.cause for c in self.calls for f in c.failovers)
        return {
            "calls": len(self.calls),
            "messages": len(self.messages),
            "legs": sum(len(c.legs) for c in self.calls),
            "sources": list(self.sources),
            "failover_calls": sum(1 for c in self.calls if c.failovers),
            "failovers": sum(causes.values()),
            "failover_causes": dict(sorted(causes.items())),
            "outcomes": dict(sorted(Counter(c.outcome for c in self.calls).items())),
            "modes": dict(sorted(Counter(c.mode for c in self.calls).items())),
            "b2bua_links": dict(
                sorted(Counter(c.link for c in self.calls if c.mode == "b2bua").items())
            ),
            "reuse": dict(sorted(Counter(c.reuse for c in self.calls if c.reuse).items())),
            "retransmissions": sum(1 for t in self.message_truth if t.retransmission),
        }

    def to_json(self) -> dict[str, Any]:
        """The whole truth: statistics, every call, and per message ``[source, frame, leg]``."""
        return {
            "stats": self.stats(),
            "calls": [c.to_json() for c in self.calls],
            "messages": [
                [*_key(m), t.leg] for m, t in zip(self.messages, self.message_truth, strict=True)
            ],
        }


def _key(message: SipMessage) -> MessageKey:
    p = message.provenance
    if p is None:
        raise ValueError("message has no provenance")
    return (p.source, p.frame)


def _plan(rng: random.Random, failover: bool, answer_share: float) -> tuple[str, ...]:
    """The attempts of one call: at least two when it fails over."""
    last = ANSWER if rng.random() < answer_share else _weighted(rng, FINAL_FAILURES)
    if not failover:
        return (last,)
    n_failed = 1 if rng.random() < 0.75 else 2
    return (*(_weighted(rng, FAILOVER_CAUSES) for _ in range(n_failed)), last)


def build_crowd(
    n_calls: int = 10_000,
    *,
    seed: int = 0,
    failover_share: float = 0.25,
    b2bua_share: float = 0.1,
    reuse_share: float = 0.02,
    merge_sources: bool = True,
    calls_per_second: float = 20.0,
    answer_share: float = 0.85,
    reinvite_share: float = 0.05,
    session_id_share: float = 0.4,
    charging_vector_share: float = 0.3,
    t0_ns: int = DEFAULT_T0_NS,
    caller: Node = PLATFORM,
    edge: Node = EDGE,
    trunks: Sequence[Node] = DEFAULT_TRUNKS,
    timing: Timing = DEFAULT_TIMING,
) -> Crowd:
    """Build ``n_calls`` interleaved calls and their truth.

    Args:
        n_calls: logical calls, Call-ID reusing ones included.
        seed: everything follows from it; same seed, same bytes.
        failover_share: exactly ``round(share * n_calls)`` calls fail over
            (two or three attempts; causes drawn from ``FAILOVER_CAUSES``).
        b2bua_share: exactly ``round(share * n_calls)`` calls go through the
            edge as a B2BUA, linked by ``X-CID`` only, ``Session-ID`` only, or
            both, in equal thirds.
        reuse_share: exactly ``round(share * n_calls)`` extra calls reuse the
            Call-ID of an earlier call, alternately with a new From-tag 1-60 s
            after it ended and with the same From-tag 2-10 min after. They go
            through the edge as a proxy, so Call-ID, From-tag and hop alone
            would merge them with the earlier call; only time separates them.
        merge_sources: split into ``memory:edge-in`` and ``memory:edge-out``
            and concatenate (not time-ordered); otherwise one time-ordered
            ``memory:crowd``.
        calls_per_second: rate of the Poisson arrivals of the first calls.
        answer_share: share of calls whose last attempt answers.
        reinvite_share: share of answered calls with a mid-call re-INVITE.
        session_id_share: share of proxy calls that also carry Session-ID.
        charging_vector_share: share of calls whose caller sends
            P-Charging-Vector.
        t0_ns, caller, edge, trunks, timing: as for ``CallBuilder``.
    """
    for name, share in (
        ("failover_share", failover_share),
        ("b2bua_share", b2bua_share),
        ("reuse_share", reuse_share),
        ("answer_share", answer_share),
        ("reinvite_share", reinvite_share),
        ("session_id_share", session_id_share),
        ("charging_vector_share", charging_vector_share),
    ):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], not {share}")
    if calls_per_second <= 0:
        raise ValueError("calls_per_second must be positive")
    # many objects and no reference cycles: the cyclic collector would only
    # re-scan the growing lists (as in ``sipchain.load``)
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(
            n_calls,
            seed,
            failover_share,
            b2bua_share,
            reuse_share,
            merge_sources,
            calls_per_second,
            answer_share,
            reinvite_share,
            session_id_share,
            charging_vector_share,
            t0_ns,
            caller,
            edge,
            tuple(trunks),
            timing,
        )
    finally:
        if collecting:
            gc.enable()


def _build(  # the arguments of build_crowd, checked
    n_calls: int,
    seed: int,
    failover_share: float,
    b2bua_share: float,
    reuse_share: float,
    merge_sources: bool,
    calls_per_second: float,
    answer_share: float,
    reinvite_share: float,
    session_id_share: float,
    charging_vector_share: float,
    t0_ns: int,
    caller: Node,
    edge: Node,
    trunks: tuple[Node, ...],
    timing: Timing,
) -> Crowd:
    rng = random.Random(seed)
    n_reuse = round(n_calls * reuse_share)
    n_base = n_calls - n_reuse
    n_b2bua = round(n_calls * b2bua_share)
    if n_reuse > n_base or n_b2bua > n_base:
        raise ValueError("too few ordinary calls for the reuse and B2BUA shares")
    failing_over = set(rng.sample(range(n_calls), round(n_calls * failover_share)))
    b2bua_calls = rng.sample(range(n_base), n_b2bua)
    link_of = {k: B2BUA_LINKS[i % len(B2BUA_LINKS)] for i, k in enumerate(b2bua_calls)}

    packets: list[Packet] = []
    calls: list[CallTruth] = []
    t = t0_ns

    def numbers(k: int) -> tuple[str, str]:
        # bijections of the index, so no two calls share a number pair
        return (
            f"+1555{(k * 7919 + 1_234_567) % 10**7:07d}",
            f"+4420{(k * 104_729 + 13) % 10**8:08d}",
        )

    def options(call_rng: random.Random, k: int) -> dict[str, Any]:
        return {
            "index": k,
            "attempts": _plan(call_rng, k in failing_over, answer_share),
            "charging_vector": call_rng.random() < charging_vector_share,
            "early_media": call_rng.random() < 0.2,
            "reinvite": call_rng.random() < reinvite_share,
            "bye_from": "caller" if call_rng.random() < 0.6 else "callee",
            "timing": timing,
            "caller": caller,
            "edge": edge,
            "trunks": _hunting_order(call_rng, trunks),
        }

    for k in range(n_base):
        t += round(rng.expovariate(calls_per_second) * 1e9)
        call_rng = random.Random(rng.getrandbits(64))
        opts = options(call_rng, k)
        caller_number, callee_number = numbers(k)
        if k in link_of:
            opts.update(mode="b2bua", link=link_of[k])
        else:
            opts.update(link="session-id" if call_rng.random() < session_id_share else "none")
        builder = CallBuilder(
            call_rng, t, caller_number=caller_number, callee_number=callee_number, **opts
        )
        call_packets, truth = builder.packets()
        packets.extend(call_packets)
        calls.append(truth)

    for j, k0 in enumerate(rng.sample(range(n_base), n_reuse)):
        k = n_base + j
        earlier = calls[k0]
        same_tag = j % 2 == 1
        gap = rng.randint(120, 600) if same_tag else rng.randint(1, 60)
        call_rng = random.Random(rng.getrandbits(64))
        opts = options(call_rng, k)
        opts["link"] = "session-id" if call_rng.random() < session_id_share else "none"
        _, callee_number = numbers(k)
        builder = CallBuilder.reusing(
            earlier,
            call_rng,
            earlier.ended_ns + gap * 1_000_000_000 + rng.randrange(1_000_000_000),
            same_from_tag=same_tag,
            callee_number=callee_number,
            **opts,
        )
        call_packets, truth = builder.packets()
        packets.extend(call_packets)
        calls.append(truth)

    sources: str | dict[str, str] = (
        {"inbound": "edge-in", "outbound": "edge-out"} if merge_sources else "crowd"
    )
    messages, message_truth = materialise(packets, sources)
    return Crowd.from_messages(messages, message_truth, tuple(calls))


def _hunting_order(rng: random.Random, trunks: Sequence[Node]) -> tuple[Node, ...]:
    """Trunks in the order a call tries them: mostly the configured order."""
    order = tuple(trunks)
    if len(order) > 1 and rng.random() < 0.3:
        start = rng.randrange(1, len(order))
        order = order[start:] + order[:start]
    return order


# ---------------------------------------------------------------------------
# Pairwise precision and recall of a grouping
# ---------------------------------------------------------------------------

K = TypeVar("K", bound=Hashable)


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pair_counts(
    predicted: Mapping[K, Hashable], truth: Mapping[K, Hashable]
) -> tuple[int, int, int]:
    """``(agreeing, predicted, true)`` numbers of pairs of keys.

    A pair of keys is *predicted* when both keys map to the same group in
    ``predicted``, *true* when they do in ``truth``, and *agreeing* when both.
    A key missing from one mapping is alone in its own group there (so it is
    in no pair on that side). Computed from group sizes and the contingency
    table (``sum C(n, 2)``), in O(number of keys), never by listing pairs.
    """
    cells: Counter[tuple[Hashable, Hashable]] = Counter()
    for key, group in predicted.items():
        if key in truth:
            cells[(group, truth[key])] += 1
    agreeing = sum(_pairs(n) for n in cells.values())
    n_predicted = sum(_pairs(n) for n in Counter(predicted.values()).values())
    n_true = sum(_pairs(n) for n in Counter(truth.values()).values())
    return agreeing, n_predicted, n_true


def pairwise_scores(
    predicted: Mapping[K, Hashable], truth: Mapping[K, Hashable]
) -> tuple[float, float]:
    """Pairwise ``(precision, recall)`` of a grouping against the truth.

    Keys are whatever is grouped: messages (``(source, frame)``, see
    :meth:`Crowd.message_groups`) or legs (the key of each leg's first
    INVITE, see :meth:`Crowd.leg_groups`); values are group labels (chain ids,
    call indices). Precision is the share of predicted same-group pairs that
    are truly in one group; recall the share of true same-group pairs that
    were predicted. With no predicted pairs precision is 1.0; with no true
    pairs recall is 1.0. See :func:`pair_counts` for missing keys.
    """
    agreeing, n_predicted, n_true = pair_counts(predicted, truth)
    precision = agreeing / n_predicted if n_predicted else 1.0
    recall = agreeing / n_true if n_true else 1.0
    return precision, recall
