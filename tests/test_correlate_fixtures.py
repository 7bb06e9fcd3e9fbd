"""The correlator on real failover captures (Kamailio + SIPp) against their truth.

Every fixture under ``fixtures/captures``: one chain per call; legs in order
with roles, trunks, Call-IDs, From-tags, INVITE branches and frames, final
statuses; attempt numbers; failover cause and latency within 1 ms.
"""

from __future__ import annotations

from typing import Any

import pytest

from sipchain import reconstruct
from sipchain.model import Chain
from sipchain.result import Reconstruction
from sipchain.testing import Fixture, fixture_names, load_fixture

NAMES = fixture_names()
CAUSES = {"cancelled after 180": "cancelled"}


def _trunks(fixture: Fixture) -> dict[str, list[str]]:
    topology = fixture.truth["scenario"]["topology"]
    return {
        name: [address.split("/")[0]]
        for name, address in topology.items()
        if name != "edge"
    }


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[Fixture, Reconstruction]]:
    out = {}
    for name in NAMES:
        fixture = load_fixture(name)
        out[name] = (fixture, reconstruct(fixture.trace, trunks=_trunks(fixture)))
    return out


def _chain_of(result: Reconstruction, call: dict[str, Any]) -> Chain:
    frames = {f for leg in call["legs"] for f in leg["invite_frames"]}
    found = [
        chain
        for chain in result.chains
        if any(leg.invite is not None and leg.invite.provenance and leg.invite.provenance.frame in frames for leg in chain.legs)
    ]
    assert len(found) == 1, f"call {call['call_id']} spread over {len(found)} chains"
    return found[0]


def test_there_are_fixtures() -> None:
    assert len(NAMES) >= 15


@pytest.mark.parametrize("name", NAMES)
def test_one_chain_per_call(name: str, results: dict[str, tuple[Fixture, Reconstruction]]) -> None:
    fixture, result = results[name]
    calls = fixture.calls
    assert len(result.chains) == len(calls)
    chains = {_chain_of(result, call).chain_id for call in calls}
    assert len(chains) == len(calls)


@pytest.mark.parametrize("name", NAMES)
def test_legs_in_order(name: str, results: dict[str, tuple[Fixture, Reconstruction]]) -> None:
    fixture, result = results[name]
    for call in fixture.calls:
        chain = _chain_of(result, call)
        truth_legs = [leg for leg in call["legs"] if leg["invite_frames"]]
        legs = [leg for leg in chain.legs if leg.invite is not None]
        assert len(legs) == len(truth_legs), call["call_id"]
        for leg, truth in zip(legs, truth_legs, strict=True):
            assert leg.role == ("inbound" if truth["role"] == "inbound" else "outbound")
            assert leg.trunk == truth["trunk"]
            assert leg.call_id == truth["call_id"]
            assert leg.from_tag == truth["from_tag"]
            assert leg.branch == truth["invite_branch"]
            assert leg.invite is not None
            assert leg.invite.provenance is not None
            assert leg.invite.provenance.frame == truth["invite_frames"][0]
            assert leg.final_status == truth["final_status"]
            if not fixture.is_gap_variant:
                assert (leg.attempt or 0) == truth["attempt"]
        assert chain.final_status == call["final_status"]


@pytest.mark.parametrize("name", NAMES)
def test_failovers(name: str, results: dict[str, tuple[Fixture, Reconstruction]]) -> None:
    fixture, result = results[name]
    for call in fixture.calls:
        chain = _chain_of(result, call)
        expected = [fo for fo in call["failovers"] if fo["cause"] is not None and fo["latency_ms"] is not None]
        found = {(fo.original_trunk_id, chain.leg(fo.to_leg).trunk): fo for fo in chain.failovers}
        for truth in expected:
            fo = found[(truth["from_trunk"], truth["to_trunk"])]
            assert fo.cause == CAUSES.get(truth["cause"], truth["cause"])
            assert abs(fo.latency_ns - truth["latency_ms"] * 1_000_000) <= 1_000_000
            assert fo.next_invite_at_ns == truth["next_invite_ns"]
        if not fixture.is_gap_variant:
            assert len(chain.failovers) == len(call["failovers"])


@pytest.mark.parametrize("name", NAMES)
def test_every_message_accounted_for(name: str, results: dict[str, tuple[Fixture, Reconstruction]]) -> None:
    _, result = results[name]
    placed = sum(len(leg.messages) for chain in result.chains for leg in chain.legs)
    assert placed + len(result.unlinked) == len(result.messages)
