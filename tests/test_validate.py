"""Compliance rules on the real captures: the audit gaps are found, intact calls are clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipchain import reconstruct
from sipchain.errors import SipChainError
from sipchain.result import Reconstruction
from sipchain.testing import fixture_names, load_fixture
from sipchain.validate import RULES, Policy, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TRUNKS = FIXTURES / "trunks.toml"
POLICY = {"route": ["carrier-a", "carrier-b"]}
NAMES = fixture_names()
GAPS = [n for n in NAMES if load_fixture(n).is_gap_variant]
INTACT = [n for n in NAMES if not load_fixture(n).is_gap_variant]


def _result(name: str) -> Reconstruction:
    return reconstruct(load_fixture(name).trace, trunks=TRUNKS, policy=POLICY)


def test_every_gap_variant_is_a_case() -> None:
    assert len(GAPS) == 4


@pytest.mark.parametrize("name", GAPS)
def test_gap_is_found_with_its_frames(name: str) -> None:
    fixture = load_fixture(name)
    result = _result(name)
    errors = [f for f in result.findings if f.severity == "error"]
    for expected in fixture.expected_findings:
        matching = [f for f in errors if f.rule == expected["rule"]]
        assert matching, f"{expected['rule']} not found; got {[f.rule for f in errors]}"
        finding = matching[0]
        chain = result.chain(finding.chain_id)
        assert chain.legs[0].call_id == expected["call_id"]
        frames = {frame for _, frame in finding.frames}
        assert set(expected["frames"]) & frames, (expected["frames"], frames)
        assert finding.message
        assert finding.hint
    # the intact control call in the same capture raises nothing
    assert {f.chain_id for f in errors} == {
        c.chain_id for c in result.chains if c.legs[0].call_id == fixture.expected_findings[0]["call_id"]
    }


@pytest.mark.parametrize("name", INTACT)
def test_no_error_finding_on_an_intact_capture(name: str) -> None:
    assert [f for f in _result(name).findings if f.severity == "error"] == []


def test_finding_messages_read_like_a_reviewers_note() -> None:
    result = _result("gap-missing-failover-200")
    (finding,) = [f for f in result.findings if f.rule == "leg-has-final-response"]
    assert finding.message.startswith("The 200 OK that answered the INVITE sent to carrier-b at ")
    assert "is missing; the ACK in frame" in finding.message
    assert finding.message.endswith("proves it was sent.")
    (route,) = [f for f in _result("gap-missing-primary-attempt").findings if f.rule == "route-order"]
    assert "the primary attempt is missing from the trace" in route.message
    (trigger,) = [f for f in _result("gap-missing-primary-failure").findings if f.rule == "failover-trigger-recorded"]
    assert "The failure response that made the call fail over from carrier-a is missing" in trigger.message


def test_policy_selects_rules_and_severities(tmp_path: Path) -> None:
    toml = tmp_path / "policy.toml"
    toml.write_text('route = ["carrier-a", "carrier-b"]\n[rules.route-order]\nseverity = "warning"\n[rules.leg-has-invite]\nenabled = false\n')
    policy = load_policy(toml)
    assert policy == Policy(("carrier-a", "carrier-b"), frozenset({"leg-has-invite"}), {"route-order": "warning"})
    fixture = load_fixture("gap-missing-primary-attempt")
    result = reconstruct(fixture.trace, trunks=TRUNKS, policy=toml)
    assert [(f.rule, f.severity) for f in result.findings] == [("route-order", "warning")]
    fixture = load_fixture("gap-missing-failover-invite")
    assert reconstruct(fixture.trace, trunks=TRUNKS, policy=toml).findings == ()
    with pytest.raises(SipChainError, match="unknown rules"):
        load_policy({"rules": {"no-such-rule": {"enabled": False}}})
    with pytest.raises(SipChainError, match="severity"):
        load_policy({"rules": {"route-order": {"severity": "fatal"}}})
    assert set(RULES) == {"leg-has-invite", "leg-has-final-response", "failover-trigger-recorded", "route-order"}


def test_silent_primary_is_not_a_gap() -> None:
    result = _result("failover-timeout")
    assert result.findings == ()
    assert all(fo.cause == "timeout" for c in result.chains for fo in c.failovers)
