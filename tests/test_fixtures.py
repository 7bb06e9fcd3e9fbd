"""The bundled fixtures are well-formed SIP, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipchain import parse_message

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MESSAGE_FILES = sorted(FIXTURES.glob("*/*.sip"))


def test_fixture_files_are_present() -> None:
    assert len(MESSAGE_FILES) >= 16


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_parses_strictly(path: Path) -> None:
    data = path.read_bytes()
    message = parse_message(data, strict=True)
    assert message.raw == data
    assert message.defects == ()
    assert message.call_id is not None
    assert message.cseq is not None
    assert message.branch is not None
    assert message.branch.startswith("z9hG4bK")


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_bytes_are_framed_exactly(path: Path) -> None:
    """CRLF everywhere, and Content-Length counts the body to the byte.

    Checked on the bytes alone, independently of the parser.
    """
    data = path.read_bytes()
    bare = data.replace(b"\r\n", b"")
    assert b"\n" not in bare, "bare LF"
    assert b"\r" not in bare, "bare CR"
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "no blank line after the headers"
    lengths = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")[1:]
        if line.split(b":", 1)[0].strip().lower() in (b"content-length", b"l")
    ]
    assert lengths == [len(body)]
