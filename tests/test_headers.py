"""Typed header values and the header table."""

from __future__ import annotations

import pytest

from sipchain import Headers, build_message, parse_message
from sipchain.model import COMPACT_FORMS, Params, canonical_header_name
from sipchain.wire import parse_name_addr, parse_uri, parse_via


def _msg(*headers: tuple[str, str], start: str = "INVITE sip:bob@example.com SIP/2.0") -> object:
    base = [
        ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9"),
        ("From", "<sip:alice@example.com>;tag=9fxced76sl"),
        ("To", "<sip:bob@example.com>"),
        ("Call-ID", "3848276298220188511@example.com"),
        ("CSeq", "1 INVITE"),
        ("Max-Forwards", "70"),
    ]
    return build_message(start, base + list(headers))


def test_headers_lookup_is_case_insensitive_and_expands_compact_forms() -> None:
    m = parse_message(
        b"OPTIONS sip:a@b SIP/2.0\r\ni: abc\r\nCALL-id: def\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"VIA: SIP/2.0/UDP g;branch=z9hG4bK2\r\n\r\n"
    )
    assert m.headers.get("call-id") == "abc"
    assert m.headers.get_all("Call-ID") == ("abc", "def")
    assert m.headers.get_all("v") == ("SIP/2.0/UDP h;branch=z9hG4bK1", "SIP/2.0/UDP g;branch=z9hG4bK2")
    assert m.headers.entries[0] == ("i", "Call-ID", " abc")
    assert m.headers.entries[1] == ("CALL-id", "Call-ID", " def")
    assert m.headers.get("Missing") is None
    assert m.headers.get("Missing", "x") == "x"
    assert m.headers.get_all("Missing") == ()
    assert "call-ID" in m.headers
    assert "i" in m.headers
    assert len(m.headers) == 4
    assert m.headers.offsets[0] == len(b"OPTIONS sip:a@b SIP/2.0\r\n")


@pytest.mark.parametrize(("short", "long"), sorted(COMPACT_FORMS.items()))
def test_every_compact_form(short: str, long: str) -> None:
    assert canonical_header_name(short) == long
    assert canonical_header_name(short.upper()) == long
    h = Headers.from_pairs([(short, "value")])
    assert h.get(long) == "value"
    assert h.get(long.upper()) == "value"
    assert h.names() == (long,)


def test_unknown_header_keeps_its_spelling() -> None:
    assert canonical_header_name("x-inin-cnv") == "x-inin-cnv"
    assert canonical_header_name("session-id") == "Session-ID"
    assert canonical_header_name("WWW-AUTHENTICATE") == "WWW-Authenticate"


def test_params_are_case_insensitive() -> None:
    p = Params((("Tag", "a"), ("lr", None), ("tag", "b")))
    assert p.get("TAG") == "a"
    assert "LR" in p
    assert p.get("lr") is None
    assert p.as_dict() == {"tag": "a", "lr": None}
    assert list(p) == ["Tag", "lr", "tag"]


def test_sip_uri_parts() -> None:
    u = parse_uri("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi%20there&x=1")
    assert (u.scheme, u.user, u.password) == ("sips", "alice", "secret")
    assert (u.host, u.host_type, u.port) == ("2001:db8::1", "ipv6", 5061)
    assert u.params.get("transport") == "tcp"
    assert "lr" in u.params
    assert u.headers == (("subject", "hi there"), ("x", "1"))
    assert u.hostport == "[2001:db8::1]:5061"
    u = parse_uri("sip:192.0.2.10")
    assert (u.user, u.host, u.host_type, u.port) == (None, "192.0.2.10", "ipv4", None)


def test_tel_and_opaque_uris() -> None:
    u = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert (u.scheme, u.user) == ("tel", "+1-201-555-0123")
    assert u.params.get("phone-context") == "example.com"
    u = parse_uri("urn:service:sos")
    assert (u.scheme, u.opaque) == ("urn", "service:sos")


def test_bad_uris_give_defects_not_exceptions() -> None:
    defects: list = []
    parse_uri("sip:user@host:99999", defects)
    assert [d.code for d in defects] == ["bad-port"]
    defects.clear()
    parse_uri("no-scheme-here", defects)
    assert [d.code for d in defects] == ["bad-uri"]


def test_name_addr_forms() -> None:
    na = parse_name_addr('"Alice \\"A\\" Smith" <sip:alice@example.com;transport=udp>;tag=abc;expires=60')
    assert na.display_name == 'Alice "A" Smith'
    assert na.uri.params.get("transport") == "udp"
    assert na.tag == "abc"
    assert na.params.get("expires") == "60"
    na = parse_name_addr("sip:bob@example.com;tag=xyz")
    assert not na.bracketed
    assert na.tag == "xyz"
    assert not na.uri.params  # params of a bare addr-spec belong to the header
    na = parse_name_addr("Bob Smith <tel:+15551234>")
    assert na.display_name == "Bob Smith"
    assert na.uri.user == "+15551234"


def test_via_forms() -> None:
    v = parse_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9;received=198.51.100.7;rport=34567;ttl=16;maddr=224.0.1.75")
    assert v is not None
    assert (v.protocol, v.version, v.transport, v.host, v.port) == ("SIP", "2.0", "UDP", "192.0.2.1", 5060)
    assert (v.branch, v.received, v.rport, v.ttl, v.maddr) == (
        "z9hG4bK74bf9", "198.51.100.7", 34567, 16, "224.0.1.75",
    )
    v = parse_via("SIP/2.0/tcp proxy.example.com;branch=z9hG4bKx;rport")
    assert v is not None
    assert v.transport == "TCP"
    assert v.rport is None
    assert "rport" in v.params
    assert v.sent_by == "proxy.example.com"


def test_hot_path_fields() -> None:
    m = _msg()
    assert m.call_id == "3848276298220188511@example.com"  # type: ignore[attr-defined]
    assert m.from_tag == "9fxced76sl"  # type: ignore[attr-defined]
    assert m.to_tag is None  # type: ignore[attr-defined]
    assert m.branch == "z9hG4bK74bf9"  # type: ignore[attr-defined]


def test_tag_inside_uri_is_not_the_header_tag() -> None:
    m = _msg(start="BYE sip:bob@example.com SIP/2.0")
    m2 = parse_message(
        m.raw.replace(b"To: <sip:bob@example.com>", b"To: <sip:bob@example.com;tag=fake>;tag=real")  # type: ignore[attr-defined]
    )
    assert m2.to_tag == "real"
    m3 = parse_message(
        m.raw.replace(b"To: <sip:bob@example.com>", b'To: "x>;tag=no" <sip:bob@example.com>;tag=yes')  # type: ignore[attr-defined]
    )
    assert m3.to_tag == "yes"


def test_session_id_rfc7989() -> None:
    m = _msg(("Session-ID", "AB30317F1A784DC48FF824D0D3715D86;remote=47755a9de7794ba387653f2099600ef2"))
    sid = m.session_id  # type: ignore[attr-defined]
    assert sid.local == "ab30317f1a784dc48ff824d0d3715d86"
    assert sid.remote == "47755a9de7794ba387653f2099600ef2"
    assert sid.uuids() == {"ab30317f1a784dc48ff824d0d3715d86", "47755a9de7794ba387653f2099600ef2"}
    m = _msg(("Session-ID", "ab30317f1a784dc48ff824d0d3715d86;remote=00000000000000000000000000000000"))
    assert m.session_id.uuids() == {"ab30317f1a784dc48ff824d0d3715d86"}  # type: ignore[attr-defined]


def test_reason_rfc3326_several() -> None:
    m = _msg(("Reason", 'SIP ;cause=200 ;text="Call completed elsewhere"'), ("Reason", "Q.850;cause=16;text=\"Terminated\""))
    r1, r2 = m.reasons  # type: ignore[attr-defined]
    assert (r1.protocol, r1.cause, r1.text) == ("SIP", 200, "Call completed elsewhere")
    assert (r2.protocol, r2.cause, r2.text) == ("Q.850", 16, "Terminated")
    m = _msg(("Reason", "SIP;cause=408, Q.850;cause=102"))
    assert [r.cause for r in m.reasons] == [408, 102]  # type: ignore[attr-defined]


def test_history_info_rfc7044() -> None:
    m = _msg(
        (
            "History-Info",
            "<sip:bob@example.com?Reason=SIP%3Bcause%3D302%3Btext%3D%22Moved%22>;index=1, "
            "<sip:bob@192.0.2.5>;index=1.1;rc=1",
        )
    )
    e1, e2 = m.history_info  # type: ignore[attr-defined]
    assert e1.index == "1"
    assert [(r.protocol, r.cause, r.text) for r in e1.reasons] == [("SIP", 302, "Moved")]
    assert e2.index == "1.1"
    assert e2.params.get("rc") == "1"
    assert e2.target.uri.host == "192.0.2.5"


def test_charging_vector_rfc7315() -> None:
    m = _msg(("P-Charging-Vector", 'icid-value="AyretyU0dm+6O2IrT5tAFrbHLso=";icid-generated-at=192.0.6.8;orig-ioi=home1.net;related-icid=abc123'))
    cv = m.charging_vector  # type: ignore[attr-defined]
    assert cv.icid_value == "AyretyU0dm+6O2IrT5tAFrbHLso="
    assert cv.related_icid == "abc123"
    assert cv.orig_ioi == "home1.net"
    assert cv.icid_generated_at == "192.0.6.8"


def test_diversion_and_asserted_identity() -> None:
    m = _msg(
        ("Diversion", "<sip:+15551110000@example.com>;reason=unconditional;counter=1"),
        ("P-Asserted-Identity", '"Agent 7" <sip:+15552223333@cc.example.com>, <tel:+15552223333>'),
    )
    (div,) = m.diversion  # type: ignore[attr-defined]
    assert div.params.get("reason") == "unconditional"
    pai = m.asserted_identity  # type: ignore[attr-defined]
    assert [p.uri.scheme for p in pai] == ["sip", "tel"]
    assert pai[0].display_name == "Agent 7"


def test_contact_wildcard_and_lists() -> None:
    m = build_message(
        "REGISTER sip:example.com SIP/2.0",
        [
            ("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"),
            ("From", "<sip:a@example.com>;tag=1"),
            ("To", "<sip:a@example.com>"),
            ("Call-ID", "reg1"),
            ("CSeq", "2 REGISTER"),
            ("Contact", "*"),
            ("Expires", "0"),
        ],
    )
    assert m.contact_is_wildcard
    assert m.contact == ()
    assert not [d for d in m.defects if d.violation]
    m = _msg(("Contact", "<sip:a@h1>;q=0.5, <sip:a@h2>"), ("Record-Route", "<sip:p1;lr>, <sip:p2;lr>"))
    assert [c.uri.host for c in m.contact] == ["h1", "h2"]  # type: ignore[attr-defined]
    assert [r.uri.host for r in m.record_route] == ["p1", "p2"]  # type: ignore[attr-defined]


def test_build_message_writes_content_length() -> None:
    m = build_message("MESSAGE sip:a@b SIP/2.0", [("Content-Type", "text/plain")], b"hello")
    assert m.content_length == 5
    assert m.body == b"hello"
    assert m.raw.endswith(b"Content-Length: 5\r\n\r\nhello")
