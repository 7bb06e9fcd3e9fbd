"""A synthetic crowd of 10,000 interleaved calls: chain grouping must be exact.

Built by ``sipchain.testing`` builders with ground truth: a quarter of the calls
fail over (503, 408, 480, 5xx, 603, timeout, CANCEL after 180), B2BUA calls
whose outbound legs are linked only by Session-ID, only by X-CID, or both,
reused Call-IDs, and two merged sources concatenated out of time order.
Pairwise precision and recall of the grouping, over legs and over messages,
must both be exactly 1.0.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sipchain import Trace, reconstruct
from sipchain.model import IngestReport
from sipchain.result import Reconstruction
from sipchain.testing._crowd import Crowd, build_crowd, pairwise_scores

N_CALLS = 10_000


@pytest.fixture(scope="module")
def crowd() -> Crowd:
    return build_crowd(N_CALLS, seed=4475)


@pytest.fixture(scope="module")
def result(crowd: Crowd) -> Reconstruction:
    messages = tuple(sorted(crowd.messages, key=lambda m: m.timestamp_ns or 0))
    return reconstruct(Trace(messages, IngestReport()))


def _key(m: object) -> tuple[str, int]:
    p = getattr(m, "provenance", None)
    assert p is not None
    return (p.source, p.frame)


def _legs(result: Reconstruction) -> Iterator[tuple[str, object]]:
    for chain in result.chains:
        for leg in chain.legs:
            yield chain.chain_id, leg


def test_crowd_shape(crowd: Crowd) -> None:
    stats = crowd.stats()
    assert len(crowd.calls) == N_CALLS
    failing_over = sum(1 for c in crowd.calls if c.failovers)
    assert failing_over >= 0.2 * N_CALLS
    assert any(c.mode == "b2bua" and c.link == "session-id" for c in crowd.calls)
    assert any(c.mode == "b2bua" and c.link == "x-cid" for c in crowd.calls)
    assert any(c.reuse for c in crowd.calls)
    times = [m.timestamp_ns or 0 for m in crowd.messages]
    assert times != sorted(times)  # merged sources, out of order
    assert stats


def test_pairwise_precision_and_recall_over_legs(crowd: Crowd, result: Reconstruction) -> None:
    predicted = {}
    for chain_id, leg in _legs(result):
        invite = getattr(leg, "invite", None)
        assert invite is not None
        predicted[_key(invite)] = chain_id
    truth = crowd.leg_groups()
    assert set(predicted) == set(truth)
    precision, recall = pairwise_scores(predicted, truth)
    assert (precision, recall) == (1.0, 1.0)


def test_pairwise_precision_and_recall_over_messages(crowd: Crowd, result: Reconstruction) -> None:
    predicted = {}
    for chain_id, leg in _legs(result):
        for m in getattr(leg, "messages", ()):
            predicted[_key(m)] = chain_id
    assert len(predicted) + len(result.unlinked) == len(crowd.messages)
    precision, recall = pairwise_scores(predicted, crowd.message_groups())
    assert (precision, recall) == (1.0, 1.0)


def test_roles_attempts_and_failovers_match_the_truth(crowd: Crowd, result: Reconstruction) -> None:
    legs_by_key = {_key(leg.invite): leg for chain in result.chains for leg in chain.legs if leg.invite}
    truth_legs = {leg.leg: leg for call in crowd.calls for leg in call.legs}
    for key, leg_id in crowd.leg_keys().items():
        leg = legs_by_key[key]
        truth = truth_legs[leg_id]
        assert (leg.role, leg.attempt, leg.final_status, leg.end) == (
            truth.role,
            truth.attempt,
            truth.final_status,
            truth.end,
        ), leg_id
    found = {
        (fo.cause, fo.failed_at_ns, fo.next_invite_at_ns)
        for chain in result.chains
        for fo in chain.failovers
    }
    expected = {
        (fo.cause, fo.failed_at_ns, fo.next_invite_at_ns) for call in crowd.calls for fo in call.failovers
    }
    assert found == expected
