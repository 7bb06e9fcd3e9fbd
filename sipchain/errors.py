"""The sipchain exception tree.

Every exception sipchain raises on purpose derives from one root, so a caller can
catch ``SipChainError`` and know that nothing else escapes for bad input::

    SipChainError                  root; carries source, frame, offset, reason
    ├── SipParseError              bytes are not a SIP message (wire layer)
    └── IngestError                a source cannot be read (sources layer)
        ├── CaptureError           a pcap/pcapng file is malformed (strict mode)
        └── UnsupportedFormatError no reader knows the file's format

Each error names, as far as it is known where it is raised, the file or source it
came from, the 1-based frame or record number, the byte offset and a readable
reason. Context is attached while the error passes outward (``with_context``), so
the wire layer, which never knows the file, can still produce an error that names
it by the time it reaches the user.

Compliance failures are never exceptions: they are findings.
"""

from __future__ import annotations

__all__ = ["CaptureError", "IngestError", "SipChainError", "SipParseError", "UnsupportedFormatError"]


class SipChainError(Exception):
    """Root of every error sipchain raises on purpose.

    Attributes:
        reason: what went wrong, in words.
        source: the file or source name, when known.
        frame: the 1-based frame or record number, when known.
        offset: the byte offset (in the message, stream or file), when known.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str | None = None,
        frame: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.frame = frame
        self.offset = offset
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.source is not None:
            where.append(self.source)
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def with_context(
        self,
        *,
        source: str | None = None,
        frame: int | None = None,
        offset: int | None = None,
    ) -> SipChainError:
        """Fill in what the raiser could not know; keep what it already said.

        Returns ``self`` so it can be used as ``raise err.with_context(...)``.
        """
        if self.source is None:
            self.source = source
        if self.frame is None:
            self.frame = frame
        if self.offset is None:
            self.offset = offset
        self.args = (self._render(),)
        return self


class SipParseError(SipChainError):
    """The bytes are not a SIP message, or break RFC 3261 in strict mode.

    ``offset`` is the byte offset inside the message (or stream) where the
    problem was found; ``code`` is the machine-readable defect code, the same
    one a lenient parse records in ``SipMessage.defects``.
    """

    def __init__(
        self,
        reason: str,
        *,
        code: str = "malformed",
        source: str | None = None,
        frame: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.code = code
        super().__init__(reason, source=source, frame=frame, offset=offset)


class IngestError(SipChainError):
    """A source cannot be read: missing file, unreadable, or unusable as a whole.

    In lenient mode problems inside a source are recorded in the trace report
    and reading goes on; this is raised only when there is nothing to read, or
    in strict mode.
    """


class CaptureError(IngestError):
    """A capture file (pcap/pcapng) is malformed at ``frame``/``offset``.

    Raised in strict mode; lenient mode records the same problem in the report
    and keeps everything before and after it.
    """


class UnsupportedFormatError(IngestError):
    """No reader recognises the file's content (the file name is never used).

    The message lists the supported formats and what the file looked like.
    """
