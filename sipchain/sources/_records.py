"""Shared machinery of the record-oriented readers (trace exports, text logs).

A record reader turns each record of a file (a JSON object, an NDJSON line, a
block of a text log) into at most one SIP message. Each record lands in
exactly one bucket of its :class:`~sipchain.model.SourceReport` (``frames``
counts records): SIP, non-SIP (by reason), or problem (with its record number).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from sipchain.errors import IngestError, SipParseError
from sipchain.model import Endpoint, Problem, Provenance, SipMessage, SourceReport
from sipchain.wire._message import parse_with_origin

__all__ = ["RecordReader"]


class RecordReader:
    """Base of the readers of records: counting, provenance, problems.

    Subclasses implement :meth:`_records`, yielding nothing themselves but
    calling :meth:`emit`, :meth:`non_sip` or :meth:`problem` once per record.
    """

    format = "records"

    def __init__(self, data: bytes, source: str, sha256: str, *, strict: bool = False) -> None:
        self.data = data
        self.source = source
        self.sha256 = sha256
        self.strict = strict
        self.records = 0
        self.sip_records = 0
        self.problem_records = 0
        self.non_sip_counts: Counter[str] = Counter()
        self.problems: list[Problem] = []
        self._out: list[SipMessage] = []

    # ------------------------------------------------------------ subclass API
    def _records(self) -> Iterator[None]:
        """Walk the records, calling emit/non_sip/problem once each; yield after each."""
        raise NotImplementedError

    def emit(
        self,
        raw: bytes,
        record: int,
        *,
        offset: int | None,
        ts_ns: int | None,
        time_meaning: str,
        src: Endpoint | None,
        dst: Endpoint | None,
        chain: str,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> SipMessage | None:
        """One record that carries a SIP message."""
        self.records += 1
        provenance = Provenance(self.source, self.sha256, record, (record,), offset, time_meaning, chain)
        try:
            message = parse_with_origin(raw, (provenance, ts_ns, src, dst, metadata), strict=self.strict)
        except SipParseError as exc:
            if self.strict:
                raise exc.with_context(source=self.source, frame=record, offset=offset) from None
            self._count_problem(record, offset, "malformed-sip", f"malformed SIP: {exc.reason}")
            return None
        self.sip_records += 1
        self._out.append(message)
        return message

    def non_sip(self, reason: str) -> None:
        """One record that is ordinary non-SIP content."""
        self.records += 1
        self.non_sip_counts[reason] += 1

    def problem(self, record: int, offset: int | None, kind: str, reason: str) -> None:
        """One record that cannot be used."""
        self.records += 1
        self._count_problem(record, offset, kind, reason)

    def note(self, record: int | None, offset: int | None, kind: str, reason: str) -> None:
        """A problem that does not stand for a record of its own (e.g. a naive time)."""
        if self.strict:
            raise IngestError(reason, source=self.source, frame=record, offset=offset)
        self.problems.append(Problem(self.source, record, offset, kind, reason))

    def _count_problem(self, record: int, offset: int | None, kind: str, reason: str) -> None:
        if self.strict:
            raise IngestError(reason, source=self.source, frame=record, offset=offset)
        self.problem_records += 1
        self.problems.append(Problem(self.source, record, offset, kind, reason))

    # ------------------------------------------------------------ ingest API
    def messages(self) -> Iterator[SipMessage]:
        """Messages in record order."""
        for _ in self._records():
            if self._out:
                yield from self._out
                self._out.clear()
        if self._out:
            yield from self._out
            self._out.clear()

    def report(self) -> SourceReport:
        """Every record in one bucket (``frames`` counts records)."""
        return SourceReport(
            source=self.source,
            sha256=self.sha256,
            format=self.format,
            frames=self.records,
            sip_frames=self.sip_records,
            sip_messages=self.sip_records,
            non_sip=tuple(sorted(self.non_sip_counts.items())),
            problem_frames=self.problem_records,
            problems=tuple(self.problems),
            time_meaning="",
        )
