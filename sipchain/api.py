"""The public entry points that compose the layers: ``load`` and ``iter_messages``.

This is the only module that knows the whole pipeline (sources -> wire, and
later correlate -> validate).
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs

from sipchain.correlate import correlate, load_trunks
from sipchain.errors import IngestError, UnsupportedFormatError
from sipchain.model import IngestReport, Link, SipMessage, SourceReport, Trace
from sipchain.result import OtherTraffic, Reconstruction
from sipchain.sources._capture import sniff_capture
from sipchain.sources._export import SipchainExportReader, looks_like_export
from sipchain.sources._homer import HomerJsonReader, looks_like_homer_json
from sipchain.sources._limits import Limits
from sipchain.sources._merge import merge_sources
from sipchain.sources._records import RecordReader
from sipchain.sources._textlog import (
    KamailioSiptraceReader,
    PjsipLoggerReader,
    SngrepTextReader,
    SofiaSiptraceReader,
    _TextLogReader,
    looks_like_text_log,
)
from sipchain.validate import load_cdr, load_policy, validate

if TYPE_CHECKING:  # imported lazily below: the tshark backend is optional
    from sipchain.sources._ingest import CaptureIngest
    from sipchain.sources._tshark import TsharkIngest

__all__ = ["Limits", "MessageStream", "iter_messages", "load", "reconstruct"]

Source = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
Backend = Literal["native", "tshark"]


def _expand(source: Source) -> list[Path]:
    """Files named by ``source``: a path, a directory (its files, sorted), or a list."""
    items: list[str | os.PathLike[str]] = (
        [source] if isinstance(source, str | os.PathLike) else list(source)
    )
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            out.append(path)
        elif path.exists():
            raise IngestError("not a regular file or directory", source=str(path))
        else:
            raise IngestError("no such file or directory", source=str(path))
    return out


#: Readers of record-oriented formats (exports, logs), by format name.
RECORD_READERS: dict[str, type[RecordReader]] = {
    "sipchain-export": SipchainExportReader,
    "genesys-json": HomerJsonReader,
    "homer-json": HomerJsonReader,
    "homer-ndjson": HomerJsonReader,
    "sngrep-text": SngrepTextReader,
    "asterisk-pjsip": PjsipLoggerReader,
    "freeswitch-sofia": SofiaSiptraceReader,
    "kamailio-siptrace": KamailioSiptraceReader,
}
#: Formats ``load()`` reads, detected from the content of each file.
SUPPORTED_FORMATS = ("pcap", "pcapng", *RECORD_READERS)


def _detect(head: bytes) -> str | None:
    """The format of a file from its first bytes, or ``None``."""
    kind = sniff_capture(head)
    if kind is not None:
        return "pcapng" if kind == "pcapng" else "pcap"
    if looks_like_export(head):
        return "sipchain-export"
    return looks_like_homer_json(head) or looks_like_text_log(head)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class MessageStream(Iterator[SipMessage]):
    """Messages of one or more sources, as they are read; ``report`` at the end.

    Messages come source by source, each in the order it completes in the
    capture (a TCP message when its last segment arrives). ``report`` covers
    what has been read so far and is complete once iteration has ended.
    """

    def __init__(
        self,
        paths: list[Path],
        *,
        strict: bool,
        limits: Limits | None,
        backend: Backend,
        tls_keylog: str | os.PathLike[str] | None = None,
        decode_as: Mapping[str, str] | None = None,
        format: str | None = None,
        timezone: tzinfo | None = None,
    ) -> None:
        self._paths = paths
        self._timezone = timezone
        self._tls_keylog = tls_keylog
        self._decode_as = decode_as
        self._format = format
        self._strict = strict
        self._limits = limits
        self._backend = backend
        self._reports: list[SourceReport] = []
        self._current: CaptureIngest | TsharkIngest | RecordReader | None = None
        self._it = self._run()

    @property
    def report(self) -> IngestReport:
        """What was read so far (complete once iteration has ended)."""
        reports = list(self._reports)
        if self._current is not None:
            reports.append(self._current.report())
        return IngestReport(tuple(reports))

    def __next__(self) -> SipMessage:
        return next(self._it)

    def _run(self) -> Iterator[SipMessage]:
        for path in self._paths:
            source = str(path)
            try:
                digest = _sha256(path)
                f = path.open("rb")
            except OSError as exc:
                raise IngestError(f"cannot read: {exc.strerror or exc}", source=source) from exc
            with f:
                head = f.read(65536)
                f.seek(0)
                kind = self._format or _detect(head)
                if kind is None:
                    raise UnsupportedFormatError(
                        f"unknown format; supported: {', '.join(SUPPORTED_FORMATS)}; "
                        f"the file starts with {head[:24]!r}",
                        source=source,
                    )
                reader_class = RECORD_READERS.get(kind)
                if reader_class is not None:
                    if issubclass(reader_class, _TextLogReader):
                        reader: RecordReader = reader_class(
                            f.read(), source, digest, strict=self._strict, tz=self._timezone
                        )
                    else:
                        reader = reader_class(f.read(), source, digest, strict=self._strict)
                    self._current = reader
                    yield from reader.messages()
                    self._reports.append(reader.report())
                    self._current = None
                    continue
                if self._backend == "tshark":
                    from sipchain.sources._tshark import TsharkIngest

                    ingest: CaptureIngest | TsharkIngest = TsharkIngest(
                        path,
                        digest,
                        strict=self._strict,
                        tls_keylog=self._tls_keylog,
                        decode_as=self._decode_as,
                    )
                else:
                    from sipchain.sources._ingest import CaptureIngest

                    ingest = CaptureIngest(f, source, digest, strict=self._strict, limits=self._limits)
                self._current = ingest
                try:
                    yield from ingest.messages()
                except OSError as exc:
                    raise IngestError(f"cannot read: {exc}", source=source) from exc
                self._reports.append(ingest.report())
                self._current = None


def iter_messages(
    source: Source,
    *,
    strict: bool = False,
    backend: Backend = "native",
    limits: Limits | None = None,
    tls_keylog: str | os.PathLike[str] | None = None,
    decode_as: Mapping[str, str] | None = None,
    format: str | None = None,
    timezone: tzinfo | None = None,
) -> MessageStream:
    """Stream the SIP messages of ``source`` without holding them all.

    ``source`` is a path, a directory (every file in it, sorted by path) or a
    list of them. Memory is bounded by the open TCP streams and pending IP
    fragments, each within ``limits``. Lenient by default: what cannot be used
    is recorded in ``stream.report``; with ``strict=True`` the first problem
    raises a :class:`~sipchain.errors.CaptureError`.

    ``backend="tshark"`` takes the SIP payloads from Wireshark's dissectors
    instead (tshark must be installed): anything Wireshark reassembles or
    decrypts becomes a message, e.g. TLS with ``tls_keylog`` (an SSLKEYLOGFILE);
    ``decode_as`` maps selectors to protocols, e.g. ``{"tcp.port==6060": "sip"}``.
    Both options apply to that backend only.

    The format of each file is detected from its content, never its name
    (``format=`` forces one of ``SUPPORTED_FORMATS``); a file no reader
    recognises raises :class:`~sipchain.errors.UnsupportedFormatError`.
    ``timezone`` is the zone of text logs that write local times without one
    (sngrep, Asterisk, FreeSWITCH); without it their times are left unset and
    a problem says so, never guessed.
    """
    if backend not in ("native", "tshark"):
        raise ValueError(f"unknown backend {backend!r}: use 'native' or 'tshark'")
    if backend == "native" and (tls_keylog is not None or decode_as):
        raise ValueError("tls_keylog and decode_as need backend='tshark'")
    if format is not None and format not in SUPPORTED_FORMATS:
        raise ValueError(f"unknown format {format!r}: use one of {', '.join(SUPPORTED_FORMATS)}")
    return MessageStream(
        _expand(source),
        strict=strict,
        limits=limits,
        backend=backend,
        tls_keylog=tls_keylog,
        decode_as=decode_as,
        format=format,
        timezone=timezone,
    )


def load(
    source: Source,
    *,
    strict: bool = False,
    backend: Backend = "native",
    limits: Limits | None = None,
    tls_keylog: str | os.PathLike[str] | None = None,
    decode_as: Mapping[str, str] | None = None,
    format: str | None = None,
    timezone: tzinfo | None = None,
) -> Trace:
    """Read every SIP message of ``source`` into a :class:`~sipchain.model.Trace`.

    Messages are ordered by capture time; ties keep capture order (and source
    order across sources). ``trace.report`` accounts for every frame read.
    With several sources, the same message seen in two of them (the edge's
    capture and the platform's export) is one message listing both
    provenances (``m.provenances``); each source's clock offset against the
    first is estimated and reported (``trace.report.clock_offsets``).
    Arguments as for :func:`iter_messages`.
    """
    stream = iter_messages(
        source,
        strict=strict,
        backend=backend,
        limits=limits,
        tls_keylog=tls_keylog,
        decode_as=decode_as,
        format=format,
        timezone=timezone,
    )
    # Ingestion builds many objects and no reference cycles: the cyclic
    # collector would only re-scan the growing list of messages.
    collecting = gc.isenabled()
    gc.disable()
    try:
        messages = list(stream)
        report = stream.report
        sources = [s.source for s in report.sources]
        messages, offsets, merged = merge_sources(messages, sources)
        messages.sort(key=_by_time)  # stable: ties keep capture order
    finally:
        if collecting:
            gc.enable()
    return Trace(tuple(messages), attrs.evolve(report, clock_offsets=offsets, merged=merged))


def _by_time(message: SipMessage) -> int:
    return message.timestamp_ns if message.timestamp_ns is not None else 0


def reconstruct(
    sources: Source | Trace,
    *,
    trunks: Mapping[str, Iterable[str]] | str | os.PathLike[str] | None = None,
    correlation: Mapping[str, str | None] | None = None,
    policy: object = None,
    cdr: object = None,
    strict: bool = False,
    backend: Backend = "native",
    limits: Limits | None = None,
    timezone: tzinfo | None = None,
) -> Reconstruction:
    """Rebuild every call chain in ``sources``: legs, links with evidence, failovers.

    ``sources`` is anything :func:`load` accepts, or a :class:`Trace`.
    ``trunks`` maps trunk names to addresses, networks, ``host:port`` or host
    names (a mapping or a TOML file); ``correlation`` adds or overrides
    correlation headers (name -> regex whose group 1 is the value, or ``None``
    for the whole value). ``policy`` (a TOML file, a mapping or a
    ``Policy``) selects the compliance rules whose findings fill
    ``result.findings``; ``cdr`` is recorded for CDR reconciliation. The result can be recomputed without links a reviewer rejects:
    ``result.without(link)``.
    """
    trace = (
        sources
        if isinstance(sources, Trace)
        else load(sources, strict=strict, backend=backend, limits=limits, timezone=timezone)
    )
    trunk_map = load_trunks(trunks)
    rules = load_policy(policy)  # type: ignore[arg-type]
    cdr_legs = load_cdr(cdr) if cdr is not None else None  # type: ignore[arg-type]
    parameters: dict[str, object] = {
        "trunks": {name: list(entries) for name, entries in trunk_map.spec.items()},
        "correlation": dict(correlation or {}),
        "policy": {
            "route": list(rules.route),
            "disabled": sorted(rules.disabled),
            "severities": dict(sorted(rules.severities.items())),
        },
        "cdr": None if cdr is None else str(cdr),
    }

    def compute(rejected: tuple[Link, ...]) -> Reconstruction:
        collecting = gc.isenabled()
        gc.disable()  # many new objects, no cycles: see load()
        try:
            found = correlate(trace.messages, trunks=trunk_map, correlation=correlation, rejected=rejected)
        finally:
            if collecting:
                gc.enable()
        return Reconstruction(
            chains=found.chains,
            findings=validate(
                found.chains,
                rules,
                trace.report.problems,
                cdr_legs,
                capture_end_ns=max((m.timestamp_ns or 0 for m in trace.messages), default=None),
                clock_offsets=trace.report.clock_offsets,
            ),
            unlinked=found.unlinked,
            other=tuple(OtherTraffic(kind, call_id, msgs) for kind, call_id, msgs in found.other),
            report=trace.report,
            messages=trace.messages,
            rejected=rejected,
            parameters=parameters,
            recompute=compute,
        )

    return compute(())
