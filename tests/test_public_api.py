"""The public surface is exactly what ``sipchain.__all__`` lists, sorted."""

from __future__ import annotations

import inspect

import sipchain

EXPECTED = [
    "NEED_DATA",
    "CSeq",
    "CaptureError",
    "Chain",
    "Defect",
    "Endpoint",
    "Evidence",
    "Failover",
    "Headers",
    "IngestError",
    "IngestReport",
    "Leg",
    "Limits",
    "Link",
    "MessageStream",
    "NameAddr",
    "Problem",
    "Provenance",
    "Reconstruction",
    "SipChainError",
    "SipMessage",
    "SipParseError",
    "SipStreamParser",
    "SourceReport",
    "Trace",
    "Unlinked",
    "UnsupportedFormatError",
    "Uri",
    "Via",
    "__version__",
    "build_message",
    "iter_messages",
    "load",
    "parse_message",
    "reconstruct",
    "serialize",
]


def test_all_is_pinned() -> None:
    assert sipchain.__all__ == EXPECTED


def test_all_is_sorted_isort_style() -> None:
    def key(name: str) -> tuple[int, str]:
        if name.isupper():
            return (0, name)
        if name[0].isupper():
            return (1, name)
        return (2, name)

    assert sipchain.__all__ == sorted(sipchain.__all__, key=key)


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in sipchain.__all__:
        obj = getattr(sipchain, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_no_other_public_names() -> None:
    public = {n for n in vars(sipchain) if not n.startswith("_")}
    modules = {n for n in public if inspect.ismodule(getattr(sipchain, n))}
    assert public - modules == set(EXPECTED) - {"__version__"}


def test_exception_tree() -> None:
    assert issubclass(sipchain.SipParseError, sipchain.SipChainError)
    assert issubclass(sipchain.IngestError, sipchain.SipChainError)
    assert issubclass(sipchain.CaptureError, sipchain.IngestError)
    assert issubclass(sipchain.SipChainError, Exception)
    err = sipchain.SipParseError("bad", code="x", offset=3)
    err.with_context(source="a.pcap", frame=7)
    assert str(err) == "a.pcap, frame 7, offset 3: bad"
    assert (err.source, err.frame, err.offset, err.code) == ("a.pcap", 7, 3, "x")
