"""The result of :func:`sipchain.reconstruct`: chains, what is not in them, and views."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from sipchain.model import Chain, IngestReport, Link, SipMessage, Unlinked

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import pandas as pd

__all__ = ["OtherTraffic", "Reconstruction"]


@attrs.frozen
class OtherTraffic:
    """Messages outside calls, grouped: OPTIONS keep-alives, REGISTER, SUBSCRIBE/NOTIFY, MESSAGE …

    ``kind`` is the method of the dialog- or transaction-starting request;
    ``call_id`` the Call-ID shared by the group.
    """

    kind: str
    call_id: str
    messages: tuple[SipMessage, ...]


@attrs.frozen
class Reconstruction:
    """Every call chain found in the sources, and everything else, accounted for.

    Attributes:
        chains: one per logical call, in order of first INVITE.
        findings: compliance findings (filled by the validator).
        unlinked: messages in no chain, each with the reason.
        other: non-call traffic grouped by kind and Call-ID.
        report: what ingestion read and did not use.
        messages: every message read, time-ordered.
        rejected: links a reviewer rejected (see :meth:`without`).
        parameters: the parameters the reconstruction ran with (trunks,
            correlation headers, …), recorded for the evidence.
    """

    chains: tuple[Chain, ...]
    findings: tuple[Any, ...] = ()
    unlinked: tuple[Unlinked, ...] = ()
    other: tuple[OtherTraffic, ...] = ()
    report: IngestReport = attrs.field(factory=IngestReport)
    messages: tuple[SipMessage, ...] = ()
    rejected: tuple[Link, ...] = ()
    parameters: Mapping[str, Any] = attrs.field(factory=dict)
    _recompute: Callable[[tuple[Link, ...]], Reconstruction] | None = attrs.field(
        default=None, eq=False, repr=False
    )

    def chain(self, chain_id: str) -> Chain:
        """The chain with that id."""
        for chain in self.chains:
            if chain.chain_id == chain_id:
                return chain
        raise KeyError(chain_id)

    def without(self, *links: Link) -> Reconstruction:
        """The reconstruction recomputed with ``links`` rejected by a reviewer.

        A rejected link is never made again, so the legs it tied fall apart
        unless another link still ties them.
        """
        if self._recompute is None:
            raise ValueError("this reconstruction cannot be recomputed (built by hand)")
        return self._recompute((*self.rejected, *links))

    def to_json(self) -> str:
        """The documented, versioned JSON form (``docs/schema``); deterministic."""
        from sipchain.views._json import reconstruction_to_json

        return reconstruction_to_json(self)

    def to_junit(self) -> str:
        """The findings as JUnit XML, so a pipeline can gate on an audit.

        One test case per chain (per rule when it has findings); an
        error-severity finding is a failure, a warning is written to the
        case's output.
        """
        from xml.sax.saxutils import escape, quoteattr

        cases: list[str] = []
        failures = 0
        by_chain: dict[str, list[Any]] = {c.chain_id: [] for c in self.chains}
        for f in self.findings:
            by_chain.setdefault(f.chain_id, []).append(f)
        for chain_id, findings in by_chain.items():
            if not findings:
                cases.append(f"  <testcase classname=\"sipchain.chain\" name={quoteattr(chain_id)}/>")
                continue
            for f in findings:
                name = quoteattr(f"{chain_id} {f.rule}")
                if f.severity == "error":
                    failures += 1
                    body = f"    <failure message={quoteattr(f.message)} type={quoteattr(f.rule)}>{escape(f.hint)}</failure>"
                else:
                    body = f"    <system-out>{escape(f.severity + ': ' + f.message)}</system-out>"
                cases.append(f"  <testcase classname=\"sipchain.chain\" name={name}>\n{body}\n  </testcase>")
        head = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuite name="sipchain" tests="{len(cases)}" failures="{failures}" errors="0">'
        )
        return "\n".join([head, *cases, "</testsuite>"]) + "\n"

    def to_pandas(self) -> dict[str, pd.DataFrame]:
        """DataFrames: ``messages``, ``legs``, ``links``, ``failovers``, ``chains``, ``findings``."""
        from sipchain.views._frames import reconstruction_frames

        return reconstruction_frames(self)
