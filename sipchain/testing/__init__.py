"""Test helpers for sipchain and for projects that test with it.

``import sipchain`` does not import this module; tests (here and downstream) do.

Real SIP captures made by the project's lab, with their ground truth::

    from sipchain.testing import fixture_names, load_fixture

    fixture = load_fixture("failover-timeout")
    fixture.trace          # sipchain.load(fixture.capture), read once
    fixture.truth          # the parsed failover-timeout.truth.json
    fixture.calls[0]["legs"][1]["invite_frames"]

The captures and the truth format are described in ``fixtures/README.md``;
``fixtures/lab/make-captures`` regenerates them.

Synthetic calls with exact truth, one at a time or as a crowd::

    from sipchain.testing import CallBuilder, build_crowd, pairwise_scores

    crowd = build_crowd(10_000, seed=1)   # interleaved, a quarter failing over
    crowd.messages, crowd.calls, crowd.leg_groups()
"""

from sipchain.testing._builders import (
    DEFAULT_TRUNKS,
    EDGE,
    PLATFORM,
    BuiltCall,
    CallBuilder,
    CallTruth,
    FailoverTruth,
    LegTruth,
    MessageTruth,
    Node,
    Packet,
    Timing,
    materialise,
)
from sipchain.testing._crowd import Crowd, build_crowd, pair_counts, pairwise_scores
from sipchain.testing._fixtures import (
    ENV_VAR,
    TRUTH_FORMAT,
    Fixture,
    FixtureError,
    fixture_names,
    fixtures_dir,
    load_fixture,
)

__all__ = [
    "DEFAULT_TRUNKS",
    "EDGE",
    "ENV_VAR",
    "PLATFORM",
    "TRUTH_FORMAT",
    "BuiltCall",
    "CallBuilder",
    "CallTruth",
    "Crowd",
    "FailoverTruth",
    "Fixture",
    "FixtureError",
    "LegTruth",
    "MessageTruth",
    "Node",
    "Packet",
    "Timing",
    "build_crowd",
    "fixture_names",
    "fixtures_dir",
    "load_fixture",
    "materialise",
    "pair_counts",
    "pairwise_scores",
]
