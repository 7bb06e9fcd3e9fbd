"""Several sources, one evidence set: the same message seen twice is one message.

A message captured at the edge and exported by the platform appears in both
sources. Messages are matched across sources by the digest of their bytes
(line ends normalised, since exports often rewrite them) and their time, after
correcting each source's clock by the offset estimated from the messages that
match unambiguously. The kept message lists every provenance; nothing is
counted twice.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

import attrs

from sipchain.model import ClockOffset, SipMessage

__all__ = ["MERGE_WINDOW_NS", "merge_sources"]

#: Two copies of one message are at most this far apart once clocks are corrected.
MERGE_WINDOW_NS = 2_000_000_000


def _digest(message: SipMessage) -> bytes:
    return hashlib.sha256(message.raw.replace(b"\r\n", b"\n")).digest()


def _time(message: SipMessage) -> int:
    return message.timestamp_ns if message.timestamp_ns is not None else 0


def _source(message: SipMessage) -> str:
    return message.provenance.source if message.provenance is not None else ""


def merge_sources(
    messages: Sequence[SipMessage], sources: Sequence[str]
) -> tuple[list[SipMessage], tuple[ClockOffset, ...], int]:
    """Merge copies of one message across ``sources`` (in the given order).

    Returns the messages (copies folded into the first source's message, which
    gains the others' provenances in ``also``), the clock offset of each later
    source against the first, and how many copies were folded.
    """
    if len(sources) < 2:
        return list(messages), (), 0
    reference = sources[0]
    by_digest: dict[bytes, dict[str, list[SipMessage]]] = defaultdict(lambda: defaultdict(list))
    for m in messages:
        by_digest[_digest(m)][_source(m)].append(m)

    # clock offsets from the digests seen exactly once in both sources
    offsets: dict[str, int] = {reference: 0}
    reports: list[ClockOffset] = []
    for source in sources[1:]:
        diffs = sorted(
            _time(group[source][0]) - _time(group[reference][0])
            for group in by_digest.values()
            if len(group.get(source, ())) == 1 and len(group.get(reference, ())) == 1
        )
        if diffs:
            offsets[source] = diffs[len(diffs) // 2]
            reports.append(ClockOffset(source, reference, offsets[source], len(diffs)))

    replaced: dict[int, SipMessage] = {}
    folded: set[int] = set()
    order = {source: i for i, source in enumerate(sources)}
    for group in by_digest.values():
        if len(group) < 2:
            continue
        kept: list[SipMessage] = []  # messages that stay, in source order
        for source in sorted(group, key=lambda s: order.get(s, len(order))):
            shift = offsets.get(source, 0)
            for m in sorted(group[source], key=_time):
                when = _time(m) - shift
                match = None
                for i, k in enumerate(kept):
                    current = replaced.get(id(k), k)
                    if any(p.source == source for p in current.provenances):
                        continue  # one copy per source: a retransmission is another message
                    if abs(when - (_time(k) - offsets.get(_source(k), 0))) <= MERGE_WINDOW_NS:
                        match = i
                        break
                if match is None or m.provenance is None:
                    kept.append(m)
                    continue
                k = kept[match]
                current = replaced.get(id(k), k)
                replaced[id(k)] = attrs.evolve(current, also=(*current.also, m.provenance))
                folded.add(id(m))
    out = [replaced.get(id(m), m) for m in messages if id(m) not in folded]
    return out, tuple(reports), len(folded)
