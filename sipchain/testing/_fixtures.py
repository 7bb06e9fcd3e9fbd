"""Load the lab's captures together with their ground truth.

The captures live in ``fixtures/captures/`` of the repository: ``NAME.pcap``
or ``NAME.pcapng`` beside ``NAME.truth.json`` (the format is described in
``fixtures/README.md``). ``SIPCHAIN_FIXTURES`` names another directory of the
same layout, for an installed package or a downstream project's own captures.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import attrs

from sipchain.model import SipMessage, Trace

__all__ = [
    "ENV_VAR",
    "TRUTH_FORMAT",
    "Fixture",
    "FixtureError",
    "fixture_names",
    "fixtures_dir",
    "load_fixture",
]

#: Environment variable naming the directory that holds the ``*.truth.json`` files.
ENV_VAR = "SIPCHAIN_FIXTURES"

#: The ``format`` value of the truth files this module reads.
TRUTH_FORMAT = "sipchain-lab-truth/1"

_TRUTH_SUFFIX = ".truth.json"
_CAPTURE_SUFFIXES = (".pcapng", ".pcap")


class FixtureError(Exception):
    """A fixture cannot be found, or its capture and truth file do not belong together."""


def fixtures_dir() -> Path:
    """The directory holding the captures and their truth files.

    ``$SIPCHAIN_FIXTURES`` when set, else ``fixtures/captures`` of the
    repository this package is imported from (an editable install or a
    checkout on ``sys.path``).

    Raises:
        FixtureError: the directory does not exist (for example in an installed
            wheel, which carries no fixtures: set ``SIPCHAIN_FIXTURES``).
    """
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        where = f"${ENV_VAR} ({override})"
    else:
        path = Path(__file__).resolve().parents[2] / "fixtures" / "captures"
        where = "the repository"
    if not path.is_dir():
        raise FixtureError(
            f"no fixtures directory at {path} (from {where}); "
            f"set {ENV_VAR} to a directory of NAME.truth.json files and their captures"
        )
    return path


def fixture_names() -> tuple[str, ...]:
    """The names of every fixture in :func:`fixtures_dir`, sorted."""
    return tuple(
        sorted(p.name[: -len(_TRUTH_SUFFIX)] for p in fixtures_dir().glob("*" + _TRUTH_SUFFIX))
    )


@attrs.frozen
class Fixture:
    """One lab capture and its ground truth.

    Attributes:
        name: the fixture's name (the file names without their suffixes).
        capture: path of the ``.pcap`` or ``.pcapng`` file.
        truth: the parsed ``NAME.truth.json`` (see ``fixtures/README.md``).
    """

    name: str
    capture: Path
    truth: dict[str, Any] = attrs.field(eq=False, repr=False)
    _cache: dict[str, Trace] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    @property
    def trace(self) -> Trace:
        """The capture read with :func:`sipchain.load` (once, on first use)."""
        trace = self._cache.get("trace")
        if trace is None:
            from sipchain.api import load

            trace = self._cache["trace"] = load(self.capture)
        return trace

    @property
    def calls(self) -> list[dict[str, Any]]:
        """The truth's calls, in order of their first INVITE."""
        calls: list[dict[str, Any]] = self.truth["calls"]
        return calls

    @property
    def legs(self) -> list[dict[str, Any]]:
        """Every leg of every call: each call's inbound leg, then its attempts in order."""
        return [leg for call in self.calls for leg in call["legs"]]

    @property
    def expected_findings(self) -> list[dict[str, Any]]:
        """What a validator must report (empty for a complete capture)."""
        findings: list[dict[str, Any]] = self.truth["expected_findings"]
        return findings

    @property
    def is_gap_variant(self) -> bool:
        """Whether frames were deleted from a finished capture to make this fixture."""
        return self.truth.get("gap") is not None

    def messages_at(self, frame: int) -> tuple[SipMessage, ...]:
        """The trace's messages completed in ``frame`` (1-based, as tshark counts)."""
        return tuple(
            m
            for m in self.trace.messages
            if m.provenance is not None and m.provenance.frame == frame
        )


def load_fixture(name: str, *, verify: bool = True) -> Fixture:
    """Load fixture ``name`` (see :func:`fixture_names`) from :func:`fixtures_dir`.

    With ``verify`` (the default) the capture's SHA-256 must equal the one the
    truth file was derived from, so that a regenerated capture is never paired
    with a stale truth file.

    Raises:
        FixtureError: no such fixture, an unknown truth format, a missing
            capture or a checksum mismatch.
    """
    directory = fixtures_dir()
    truth_path = directory / (name + _TRUTH_SUFFIX)
    if not truth_path.is_file():
        known = ", ".join(fixture_names()) or "none"
        raise FixtureError(f"no fixture {name!r} in {directory} (known: {known})")
    try:
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FixtureError(f"{truth_path}: cannot read the truth file: {exc}") from exc
    if not isinstance(truth, dict) or truth.get("format") != TRUTH_FORMAT:
        raise FixtureError(f"{truth_path}: not a {TRUTH_FORMAT} truth file")
    capture = directory / str(truth.get("capture", ""))
    if (
        capture.parent != directory
        or capture.suffix not in _CAPTURE_SUFFIXES
        or not capture.is_file()
    ):
        raise FixtureError(f"{truth_path}: its capture {truth.get('capture')!r} is missing")
    if verify:
        with capture.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != truth.get("sha256"):
            raise FixtureError(
                f"{capture.name} does not match {truth_path.name} (sha256 {digest}); "
                "regenerate both with fixtures/lab/make-captures"
            )
    return Fixture(name=name, capture=capture, truth=truth)
