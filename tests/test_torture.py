"""RFC 4475 and RFC 5118 torture messages: every verdict, and exact values.

The messages live in ``tests/data/torture`` (copied from the RFCs). Each test id
carries the RFC and section, e.g. ``RFC4475-3.1.2.6-quotbal``.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from sipchain import SipMessage, SipParseError, parse_message

DATA = Path(__file__).parent / "data" / "torture"


def _rows() -> list[dict[str, str]]:
    with (DATA / "MANIFEST.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


ROWS = _rows()


def _id(row: dict[str, str]) -> str:
    name = Path(row["file"]).stem
    rfc = row["rfc"].replace(" ", "")
    return f"{rfc}-{row['section'] or 'unclassified'}-{name}"


def _load(row: dict[str, str]) -> bytes:
    data = (DATA / row["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == row["sha256"], "torture file changed on disk"
    return data


VALID = [pytest.param(r, id=_id(r)) for r in ROWS if r["verdict"] == "valid"]
INVALID = [pytest.param(r, id=_id(r)) for r in ROWS if r["verdict"] == "invalid"]

#: The defect code sipchain reports for each invalid message.
EXPECTED_CODE = {
    "badinv01": "empty-param",
    "clerr": "body-truncated",
    "ncl": "bad-content-length",
    "scalar02": "number-too-large",
    "scalarlg": "number-too-large",
    "quotbal": "unterminated-quote",
    "ltgtruri": "bracketed-request-uri",
    "lwsruri": "lws-in-request-uri",
    "lwsstart": "start-line-whitespace",
    "trws": "start-line-whitespace",
    "escruri": "headers-in-request-uri",
    "baddate": "bad-date",
    "regbadct": "addr-spec-needs-brackets",
    "badaspec": "bad-addr-spec",
    "baddn": "bad-display-name",
    "badvers": "bad-version",
    "mismatch01": "cseq-method-mismatch",
    "mismatch02": "cseq-method-mismatch",
    "bigcode": "bad-status-code",
    "badbranch": "bad-branch",
    "insuf": "missing-header",
    "multi01": "repeated-header",
    "mcl01": "conflicting-content-length",
    "ipv6-bad": "bad-port",
    "ipv6-bug-abnf-3-colons": "bad-host",
}


def test_manifest_is_complete() -> None:
    names = {Path(r["file"]).stem for r in ROWS}
    on_disk = {p.stem for p in DATA.glob("rfc*/*.dat")}
    assert names == on_disk
    assert len(VALID) == 36
    assert len(INVALID) == 25
    invalid = {Path(r["file"]).stem for r in ROWS if r["verdict"] == "invalid"}
    assert invalid == set(EXPECTED_CODE)


@pytest.mark.parametrize("row", VALID)
def test_valid_message_parses(row: dict[str, str]) -> None:
    data = _load(row)
    if row["liberal_acceptance_allowed"] == "yes":
        message = parse_message(data)
    else:
        message = parse_message(data, strict=True)
    assert isinstance(message, SipMessage)
    assert not [d for d in message.defects if d.violation]
    assert message.raw == data


@pytest.mark.parametrize("row", INVALID)
def test_invalid_message_rejected_in_strict_mode(row: dict[str, str]) -> None:
    data = _load(row)
    with pytest.raises(SipParseError) as info:
        parse_message(data, strict=True)
    codes = {info.value.code}
    # strict mode raises on the first violation; the expected one must be among all
    codes |= {d.code for d in parse_message(data).defects if d.violation}
    assert EXPECTED_CODE[Path(row["file"]).stem] in codes


@pytest.mark.parametrize("row", INVALID)
def test_invalid_message_named_in_lenient_mode(row: dict[str, str]) -> None:
    data = _load(row)
    message = parse_message(data)  # lenient mode reads every invalid message
    codes = [d.code for d in message.defects if d.violation]
    assert EXPECTED_CODE[Path(row["file"]).stem] in codes
    assert message.raw == data


def test_unclassified_test_dat_is_flagged() -> None:
    data = (DATA / "rfc4475" / "test.dat").read_bytes()
    with pytest.raises(SipParseError):
        parse_message(data, strict=True)
    codes = {d.code for d in parse_message(data).defects}
    assert {"no-sip-version", "header-without-colon", "bad-uri"} <= codes


# ---------------------------------------------------------------------------
# Exact values
# ---------------------------------------------------------------------------


def _msg(name: str, *, strict: bool = True) -> SipMessage:
    rfc = "rfc5118" if (DATA / "rfc5118" / f"{name}.dat").exists() else "rfc4475"
    return parse_message((DATA / rfc / f"{name}.dat").read_bytes(), strict=strict)


def test_RFC4475_3_1_1_1_wsinv_values() -> None:
    m = _msg("wsinv")
    assert m.method == "INVITE"
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert m.cseq is not None
    assert (m.cseq.number, m.cseq.method) == (9, "INVITE")
    assert m.max_forwards == 68
    assert m.to_tag == "1918181833n"
    assert m.from_tag == "98asjd8"
    assert m.from_ is not None
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert [(v.transport, v.host, v.branch) for v in m.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.branch == "390skdjuw"
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    (field,) = m.headers.fields("newfangledheader")
    assert field.raw_value == "   newfangled value\r\n continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = m.contact
    assert contact.display_name == 'Quoted string ""'
    assert contact.params.get("newparam") == "newvalue"
    assert "secondparam" in contact.params
    assert contact.params.get("q") == "0.33"
    (route,) = m.route
    assert route.uri.host == "services.example.com"
    assert route.uri.params.items == (("lr", None), ("unknownwith", "value"), ("unknown-no-value", None))
    assert m.content_length == 150
    assert len(m.body) == 150
    assert m.content_type == "application/sdp"


def test_RFC4475_3_1_1_2_intmeth_values() -> None:
    m = _msg("intmeth")
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.method == method
    assert m.cseq is not None
    assert m.cseq.method == method
    assert m.request_uri is not None
    assert m.request_uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.request_uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.request_uri.host == "example.com"
    assert m.to is not None
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_ is not None
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_tag == "_token~1'+`*%!-."
    assert m.from_.params.get("fromParam''~+*_!.-%") == '"работающий"'
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_RFC4475_3_1_1_3_esc01_unescaped_uris() -> None:
    m = _msg("esc01")
    assert m.request_uri is not None
    assert m.request_uri.user == "sips:user@example.com"
    assert m.request_uri.host == "example.net"
    assert m.to is not None
    assert m.to.uri.user == "user"
    assert m.from_ is not None
    assert m.from_.uri.user == "I have spaces"
    (contact,) = m.contact
    assert contact.uri.user == "caller"
    assert contact.uri.params.items == (("lr", None), ("name", "value%41"))
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact "i:"
    assert m.content_type == "application/sdp"  # compact "C:"


def test_RFC4475_3_1_1_4_escnull_two_distinct_contacts() -> None:
    m = _msg("escnull")
    assert [c.uri.user for c in m.contact] == ["\x00", "\x00\x00"]
    assert m.to is not None
    assert m.to.uri.user == "null-\x00-null"
    assert m.content_length == 0  # "L:0"


def test_RFC4475_3_1_1_5_esc02_percent_is_not_an_escape_in_tokens() -> None:
    m = _msg("esc02")
    assert m.method == "RE%47IST%45R"
    assert m.method != "REGISTER"
    assert m.to is not None
    assert m.to.display_name == "%Z%45"
    assert m.branch == "z9hG4bK209%fzsnel234"
    assert [c.uri.host for c in m.contact] == ["host1.example.com", "host3.example.com"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_RFC4475_3_1_1_8_dblreq_first_request_only() -> None:
    data = (DATA / "rfc4475" / "dblreq.dat").read_bytes()
    m = parse_message(data, strict=True)
    assert m.method == "REGISTER"
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert m.body == b""
    assert m.length is not None
    assert data[m.length :].startswith(b"\r\nINVITE sip:joe@example.com SIP/2.0\r\n")
    (trailing,) = [d for d in m.defects if d.code == "trailing-data"]
    assert not trailing.violation
    assert trailing.offset == m.length
    assert m.raw == data


def test_RFC4475_3_1_1_9_semiuri_user_with_semicolon() -> None:
    m = _msg("semiuri")
    assert m.request_uri is not None
    assert m.request_uri.user == "user;par=u@example.net"
    assert m.request_uri.host == "example.com"
    assert not m.request_uri.params
    assert m.headers.get("Accept") == (
        "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed,"
        " message/sip, message/sipfrag"
    )


def test_RFC4475_3_1_1_10_transports() -> None:
    m = _msg("transports")
    assert [v.transport for v in m.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_RFC4475_3_1_1_11_mpart01_multipart_parts() -> None:
    m = _msg("mpart01")
    assert m.content_type == "multipart/mixed"
    assert m.content_length == 553
    text, binary = m.parts
    assert (text.content_type, text.body) == ("text/plain", b"Hello")
    assert binary.content_type == "application/octet-stream"
    assert binary.headers.get("Content-Transfer-Encoding") == "binary"
    assert binary.body.startswith(b"0\x82\x01R\x06\t*\x86H")
    assert b"\x00" in binary.body
    assert m.sdp is None


def test_RFC4475_3_1_1_12_unreason_utf8_reason_phrase() -> None:
    m = _msg("unreason")
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


def test_RFC4475_3_1_1_13_noreason_empty_phrase() -> None:
    m = _msg("noreason")
    assert (m.status, m.reason) == (100, "")


def test_RFC4475_3_3_4_unksm2_non_sip_uris() -> None:
    m = _msg("unksm2")
    assert m.to is not None
    assert (m.to.uri.scheme, m.to.uri.opaque) == ("isbn", "2983792873")
    assert m.from_ is not None
    assert m.from_.uri.scheme == "http"
    assert m.contact[0].uri.scheme == "name"


def test_RFC4475_3_4_1_inv2543_accepted_with_notes() -> None:
    m = _msg("inv2543")
    assert m.branch is None
    assert m.from_tag is None
    assert m.content_length is None
    assert m.body.startswith(b"v=0")
    codes = {d.code for d in m.defects}
    assert {"rfc2543-via", "missing-max-forwards"} <= codes
    assert not any(d.violation for d in m.defects)


def test_RFC5118_4_3_port_ambiguous_is_an_address() -> None:
    m = _msg("port-ambiguous")
    assert m.request_uri is not None
    assert (m.request_uri.host, m.request_uri.host_type, m.request_uri.port) == (
        "2001:db8::10:5070",
        "ipv6",
        None,
    )
    m = _msg("port-unambiguous")
    assert m.request_uri is not None
    assert (m.request_uri.host, m.request_uri.port) == ("2001:db8::10", 5070)


def test_RFC5118_4_5_via_received_forms() -> None:
    m = _msg("via-received-param-no-delim")
    assert m.via[0].received == "2001:db8::9:255"
    m = _msg("via-received-param-with-delim", strict=False)
    assert m.via[0].received == "[2001:db8::9:255]"
    assert m.via[0].branch == "z9hG4bKas3-111"
    (note,) = [d for d in m.defects if d.code == "received-brackets"]
    assert not note.violation


def test_RFC5118_4_7_mixed_ip_vias() -> None:
    m = _msg("mult-ip-in-header")
    assert [(v.host, v.port, v.sent_by) for v in m.via] == [
        ("2001:db8::9:1", 6050, "[2001:db8::9:1]:6050"),
        ("192.0.2.1", None, "192.0.2.1"),
        ("2001:db8::9:255", None, "[2001:db8::9:255]"),
    ]
    assert m.via[2].received == "192.0.2.200"


def test_RFC5118_4_6_ipv6_in_sdp() -> None:
    m = _msg("ipv6-in-sdp")
    assert m.sdp is not None
    assert m.sdp.connection is not None
    assert (m.sdp.connection.addrtype, m.sdp.connection.address) == ("IP6", "2001:db8::20")
