"""Property-based tests: round trips, compact forms, and no crash on any bytes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipchain import NEED_DATA, SipMessage, SipParseError, SipStreamParser, parse_message, serialize
from sipchain.model import COMPACT_FORMS

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=12)
hosts = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,3}", fullmatch=True)
users = st.from_regex(r"[a-zA-Z0-9_.+\-]{1,12}", fullmatch=True)
methods = st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "UPDATE", "PRACK", "INFO"]) | st.from_regex(r"[A-Z]{3,10}", fullmatch=True)
ports = st.none() | st.integers(1, 65535)
value_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("éü大"), max_size=40
).map(str.strip)


@st.composite
def uris(draw: st.DrawFn) -> str:
    port = draw(ports)
    hostport = draw(hosts) + (f":{port}" if port else "")
    return f"sip:{draw(users)}@{hostport}"


@st.composite
def name_addrs(draw: st.DrawFn, tag: bool) -> str:
    display = draw(st.none() | st.from_regex(r"[A-Za-z][A-Za-z ]{0,10}[A-Za-z]", fullmatch=True))
    text = f'"{display}" <{draw(uris())}>' if display else f"<{draw(uris())}>"
    if tag:
        text += f";tag={draw(tokens)}"
    return text


@st.composite
def vias(draw: st.DrawFn) -> str:
    transport = draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"]))
    port = draw(ports)
    sent_by = draw(hosts) + (f":{port}" if port else "")
    return f"SIP/2.0/{transport} {sent_by};branch=z9hG4bK{draw(tokens)}"


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    """Well-formed wire bytes plus the values they were built from."""
    method = draw(methods)
    is_request = draw(st.booleans())
    call_id = draw(tokens) + "@" + draw(hosts)
    cseq = draw(st.integers(0, 2**31 - 1))
    from_ = draw(name_addrs(tag=True))
    to = draw(name_addrs(tag=draw(st.booleans())))
    via_list = draw(st.lists(vias(), min_size=1, max_size=4))
    extra = draw(
        st.lists(
            st.tuples(st.from_regex(r"X-[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True), value_text),
            max_size=5,
        )
    )
    body = draw(st.binary(max_size=200))
    if is_request:
        start = f"{method} {draw(uris())} SIP/2.0"
    else:
        status = draw(st.integers(100, 699))
        start = f"SIP/2.0 {status} {draw(value_text)}".rstrip()
    headers = [("Via", v) for v in via_list]
    headers += [
        ("From", from_),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
        ("Max-Forwards", "70"),
    ]
    headers += extra
    if body:
        headers.append(("Content-Type", "application/octet-stream"))
    headers.append(("Content-Length", str(len(body))))
    order = draw(st.permutations(range(len(headers))))
    ordered = [headers[i] for i in order]
    wire = (
        "\r\n".join([start] + [f"{n}: {v}" for n, v in ordered]).encode("utf-8") + b"\r\n\r\n" + body
    )
    facts: dict[str, object] = {
        "call_id": call_id,
        "cseq": cseq,
        "method": method if is_request else None,
        "headers": ordered,
        "body": body,
        "vias": len(via_list),
    }
    return wire, facts


@given(messages())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip(case: tuple[bytes, dict[str, object]]) -> None:
    wire, facts = case
    m = parse_message(wire, strict=True)
    assert serialize(m) == wire
    assert m.call_id == facts["call_id"]
    assert m.cseq is not None
    assert m.cseq.number == facts["cseq"]
    assert m.method == facts["method"]
    assert m.body == facts["body"]
    assert len(m.via) == facts["vias"]
    assert [(n, v) for n, _, v in m.headers.entries] == [(n, " " + v) for n, v in facts["headers"]]  # type: ignore[attr-defined]
    assert m.from_tag is not None
    assert m.branch == m.via[0].branch


def _compact(wire: bytes) -> bytes:
    long_to_short = {v.lower(): k for k, v in COMPACT_FORMS.items()}
    head, sep, body = wire.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        short = long_to_short.get(name.decode().lower())
        out.append((short.encode() if short else name) + b":" + value)
    return b"\r\n".join(out) + sep + body


def _typed(m: SipMessage) -> tuple[object, ...]:
    return (
        m.call_id,
        m.cseq,
        m.from_,
        m.to,
        m.from_tag,
        m.to_tag,
        m.via,
        m.branch,
        m.contact,
        m.content_length,
        m.content_type,
    )


@given(messages(), st.lists(uris(), min_size=0, max_size=2))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_compact_and_long_forms_agree(case: tuple[bytes, dict[str, object]], contacts: list[str]) -> None:
    wire, _ = case
    if contacts:
        head, sep, body = wire.partition(b"\r\n\r\n")
        extra = b"".join(b"\r\nContact: <%s>" % c.encode() for c in contacts)
        wire = head + extra + sep + body
    long_form = parse_message(wire, strict=True)
    short_form = parse_message(_compact(wire), strict=True)
    assert _typed(long_form) == _typed(short_form)
    assert long_form.headers.names() == short_form.headers.names()


def _touch_everything(m: SipMessage) -> None:
    """Read every accessor: none may raise."""
    for name in (
        "defects", "request_uri", "call_id", "cseq", "from_tag", "to_tag", "branch", "from_",
        "to", "via", "contact", "contact_is_wildcard", "route", "record_route", "diversion",
        "asserted_identity", "max_forwards", "content_length", "content_type", "session_id",
        "reasons", "history_info", "charging_vector", "parts", "sdp",
    ):
        getattr(m, name)
    m.headers.items()
    m.headers.fields()


sip_like = st.builds(
    lambda start, lines, body: start + b"\r\n" + b"\r\n".join(lines) + b"\r\n\r\n" + body,
    st.sampled_from([b"INVITE sip:a@b SIP/2.0", b"SIP/2.0 200 OK", b"BYE x SIP/2.0", b"SIP/2.0 999 ?"]),
    st.lists(
        st.builds(
            lambda n, v: n + b":" + v,
            st.sampled_from([b"Via", b"v", b"From", b"To", b"t", b"Contact", b"m", b"CSeq", b"Call-ID",
                             b"Content-Length", b"l", b"Content-Type", b"Session-ID", b"Reason",
                             b"History-Info", b"P-Charging-Vector", b"Route", b"Date", b"Warning"]),
            st.binary(max_size=40) | st.sampled_from([b" <sip:[::1]:99999>;;", b' "unterminated <', b" SIP/2.0/UDP [", b" multipart/mixed;boundary=x"]),
        ),
        max_size=8,
    ),
    st.binary(max_size=60),
)


@given(st.binary(max_size=400) | sip_like)
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_bytes_only_raise_sip_parse_error(data: bytes) -> None:
    for strict in (False, True):
        try:
            m = parse_message(data, strict=strict)
        except SipParseError:
            continue
        _touch_everything(m)
        assert m.raw == data
    assert not any(d.code == "internal" for d in _safe_defects(data))


def _safe_defects(data: bytes) -> tuple[object, ...]:
    try:
        m = parse_message(data)
    except SipParseError:
        return ()
    return tuple(d for d in m.defects)


@given(st.lists(st.binary(max_size=80) | sip_like, max_size=8), st.booleans())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_stream_parser_never_crashes(chunks: list[bytes], strict: bool) -> None:
    p = SipStreamParser(strict=strict, max_buffer=512)
    total = 0
    for chunk in chunks:
        p.receive_data(chunk)
        total += len(chunk)
        for _ in range(1000):
            try:
                item = p.next_message()
            except SipParseError:
                continue
            if item is NEED_DATA:
                break
            _touch_everything(item)
    assert p.consumed + p.buffered == total


header_lines = st.lists(
    st.builds(
        lambda n, sep, v: n + sep + v,
        st.sampled_from(["Session-ID", "session-id", "SESSION-ID", "X-CID", "x-cid", "Via", "v", "Subject", "X-CIDX", "Session-IDs"]),
        st.sampled_from([":", " :", "\t: ", ":  ", ""]),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20) | st.sampled_from(["\r\n folded", "a\rb", "x\ny"]),
    ),
    max_size=8,
)


@given(header_lines, st.sampled_from(["Session-ID", "X-CID", "Subject", "Via", "Missing"]))
@settings(max_examples=800)
def test_header_scan_agrees_with_the_table(lines: list[str], name: str) -> None:
    from sipchain import Headers

    text = "\r\n".join(lines)
    scanned = Headers(text)
    tabled = Headers(text)
    _ = tabled.entries  # build the table first
    assert scanned.get(name) == tabled.get(name)
    assert (name in Headers(text)) == (name in tabled)
