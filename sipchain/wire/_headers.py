"""Typed header values: URIs, name-addr, Via, CSeq, Session-ID, Reason, …

Every function takes header values as :class:`~sipchain.model.Headers` returns
them (unfolded, stripped ``str``) and never raises: what does not follow the
grammar is appended to ``defects`` (when a list is given) and the best reading
is returned. Strictness is decided by the caller from ``Defect.violation``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import unquote

from sipchain.model import (
    ChargingVector,
    CSeq,
    Defect,
    HistoryInfoEntry,
    NameAddr,
    Params,
    Reason,
    SessionId,
    Uri,
    Via,
)
from sipchain.wire import _grammar as g

Defects = list[Defect] | None
_V = TypeVar("_V")

_WS = " \t"


def _add(defects: Defects, code: str, detail: str, *, violation: bool = True) -> None:
    if defects is not None:
        defects.append(Defect(code, detail, None, violation))


def unescape(text: str) -> str:
    """Decode ``%HH`` escapes (RFC 3261 §19.1.2); invalid escapes stay as written."""
    if "%" not in text:
        return text
    return unquote(text, encoding="utf-8", errors="surrogateescape")


def unquote_string(text: str) -> str:
    """Strip the quotes of a quoted-string and resolve quoted-pairs."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return g.QUOTED_PAIR.sub(r"\1", text[1:-1])
    return text


# ---------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value outside quotes and ``<…>``."""
    if "," not in value:
        return [value]
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            depth += 1
        elif c == ">":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


# ---------------------------------------------------------------------------
# Generic parameters:  *( SEMI generic-param )
# ---------------------------------------------------------------------------


def parse_params(
    text: str, defects: Defects, what: str, *, leading_semicolon: bool = True
) -> Params:
    """Parse ``;name[=value]`` pairs (RFC 3261 generic-param), LWS allowed around
    ``;`` and ``=``. Values keep quotes; empty parameters are defects."""
    items: list[tuple[str, str | None]] = []
    i = 0
    n = len(text)
    first = not leading_semicolon
    while True:
        while i < n and text[i] in _WS:
            i += 1
        if i >= n:
            break
        if not first:
            if text[i] != ";":
                _add(defects, "bad-params", f"{what}: unexpected {text[i:]!r}")
                break
            i += 1
            while i < n and text[i] in _WS:
                i += 1
        first = False
        m = g.TOKEN.match(text, i)
        if not m:
            _add(defects, "empty-param", f"{what}: empty or malformed parameter at {text[i:]!r}")
            # skip to the next ';'
            nxt = text.find(";", i)
            if nxt < 0:
                break
            i = nxt
            continue
        name = m.group()
        i = m.end()
        while i < n and text[i] in _WS:
            i += 1
        value: str | None = None
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in _WS:
                i += 1
            if i < n and text[i] == '"':
                q = g.QUOTED_STRING.match(text, i)
                if q:
                    value = q.group()
                    i = q.end()
                else:
                    _add(defects, "unterminated-quote", f"{what}: parameter {name} has an unterminated quoted string")
                    value = text[i:]
                    i = n
            else:
                v = g.GEN_VALUE.match(text, i)
                if v:
                    value = v.group()
                    i = v.end()
                else:
                    _add(defects, "bad-param-value", f"{what}: parameter {name} has no value")
                    value = ""
        items.append((name, value))
    return Params(tuple(items))


# ---------------------------------------------------------------------------
# URIs
# ---------------------------------------------------------------------------


def _check_host(host: str, defects: Defects, what: str) -> str:
    """Classify ``host`` as ipv4 / hostname; unbracketed IPv6 is a defect."""
    if g.IPV4.fullmatch(host):
        if any(int(octet) > 255 for octet in host.split(".")):
            _add(defects, "bad-host", f"{what}: IPv4 address {host!r} out of range")
        return "ipv4"
    if g.HOSTNAME.fullmatch(host):
        return "hostname"
    _add(defects, "bad-host", f"{what}: {host!r} is not a hostname or IPv4 address")
    return "hostname"


def _check_ipv6(host: str, defects: Defects, what: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        _add(defects, "bad-host", f"{what}: [{host}] is not a valid IPv6 reference")


def parse_hostport(
    text: str, defects: Defects, what: str
) -> tuple[str, str, int | None, str]:
    """Parse ``host [":" port]`` at the start of ``text``.

    Returns ``(host, host_type, port, rest)``; IPv6 references lose their
    brackets (``host_type == "ipv6"``).
    """
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            _add(defects, "bad-host", f"{what}: unterminated IPv6 reference {text!r}")
            return text[1:], "ipv6", None, ""
        host = text[1:close]
        _check_ipv6(host, defects, what)
        host_type = "ipv6"
        rest = text[close + 1 :]
    else:
        end = len(text)
        for stop in ":;?":
            j = text.find(stop)
            if 0 <= j < end:
                end = j
        host = text[:end]
        rest = text[end:]
        host_type = _check_host(host, defects, what) if host else "hostname"
        if not host:
            _add(defects, "bad-host", f"{what}: empty host")
    port: int | None = None
    if rest.startswith(":"):
        end = len(rest)
        for stop in ";?":
            j = rest.find(stop)
            if 0 <= j < end:
                end = j
        digits = rest[1:end]
        if digits.isdigit() and digits.isascii() and int(digits) <= 65535:
            port = int(digits)
        else:
            _add(defects, "bad-port", f"{what}: port {digits!r} is not a number 0..65535")
        rest = rest[end:]
    return host, host_type, port, rest


def _uri_params(text: str, defects: Defects, what: str) -> Params:
    items: list[tuple[str, str | None]] = []
    for piece in text.split(";")[1:]:
        name, eq, value = piece.partition("=")
        if not name or not g.PARAMCHARS.fullmatch(name) or (eq and not g.PARAMCHARS.fullmatch(value)):
            _add(defects, "bad-uri-param", f"{what}: malformed URI parameter {piece!r}")
        items.append((unescape(name), unescape(value) if eq else None))
    return Params(tuple(items))


def _uri_headers(text: str, defects: Defects, what: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for piece in text.split("&"):
        name, eq, value = piece.partition("=")
        if not eq or not name or not g.HNV.fullmatch(name) or not g.HNV.fullmatch(value):
            _add(defects, "bad-uri-header", f"{what}: malformed URI header {piece!r}")
        out.append((unescape(name), unescape(value)))
    return tuple(out)


def parse_uri(text: str, defects: Defects = None, what: str = "URI") -> Uri:
    """Parse an absolute URI (RFC 3261 §19.1 for sip/sips, RFC 3966 for tel)."""
    m = g.SCHEME.match(text)
    if not m or m.end() >= len(text) + 1 or text[m.end() : m.end() + 1] != ":":
        _add(defects, "bad-uri", f"{what}: {text!r} is not an absolute URI (no scheme)")
        return Uri(scheme="", raw=text, opaque=text)
    scheme = m.group().lower()
    rest = text[m.end() + 1 :]
    if any(c in _WS for c in rest):
        _add(defects, "bad-uri", f"{what}: {text!r} contains whitespace")
    if scheme in ("sip", "sips"):
        return _parse_sip_uri(scheme, text, rest, defects, what)
    if scheme == "tel":
        number, _, params = rest.partition(";")
        return Uri(
            scheme=scheme,
            raw=text,
            user=unescape(number),
            params=_uri_params(";" + params, defects, what) if params else Params(),
        )
    if not g.URIC.fullmatch(rest):
        _add(defects, "bad-uri", f"{what}: {text!r} has characters not allowed in a URI")
    return Uri(scheme=scheme, raw=text, opaque=rest)


def _parse_sip_uri(scheme: str, text: str, rest: str, defects: Defects, what: str) -> Uri:
    # SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
    # userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
    user: str | None = None
    password: str | None = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        raw_user, colon, raw_password = userinfo.partition(":")
        if not g.USER.fullmatch(raw_user):
            _add(defects, "bad-uri-user", f"{what}: user part {raw_user!r} is malformed")
        if colon and not g.PASSWORD.fullmatch(raw_password):
            _add(defects, "bad-uri-user", f"{what}: password part is malformed")
        user = unescape(raw_user)
        password = unescape(raw_password) if colon else None
    host, host_type, port, rest = parse_hostport(rest, defects, what)
    headers: tuple[tuple[str, str], ...] = ()
    q = rest.find("?")
    if q >= 0:
        headers = _uri_headers(rest[q + 1 :], defects, what)
        rest = rest[:q]
    params = _uri_params(rest, defects, what) if rest else Params()
    if rest and not rest.startswith(";"):
        _add(defects, "bad-uri", f"{what}: unexpected {rest!r} after host")
    return Uri(
        scheme=scheme,
        raw=text,
        user=user,
        password=password,
        host=host,
        host_type=host_type,
        port=port,
        params=params,
        headers=headers,
    )


# ---------------------------------------------------------------------------
# name-addr / addr-spec
# ---------------------------------------------------------------------------


def parse_name_addr(value: str, defects: Defects = None, what: str = "name-addr") -> NameAddr:
    """Parse ``name-addr`` or ``addr-spec`` followed by header parameters.

    name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
    display-name = *(token LWS)/ quoted-string
    """
    s = value.strip(_WS)
    display: str | None = None
    i = 0
    if s.startswith('"'):
        q = g.QUOTED_STRING.match(s)
        if not q:
            _add(defects, "unterminated-quote", f"{what}: display name has an unterminated quoted string")
            lt = s.find("<")
            display = s[1:lt].strip(_WS) if lt > 0 else s[1:]
            i = lt if lt > 0 else len(s)
        else:
            display = g.QUOTED_PAIR.sub(r"\1", q.group(1))
            i = q.end()
        while i < len(s) and s[i] in _WS:
            i += 1
        if i >= len(s) or s[i] != "<":
            _add(defects, "bad-name-addr", f"{what}: quoted display name not followed by <URI>")
            return NameAddr(uri=parse_uri(s[i:], defects, what), raw=value, display_name=display)
    lt = s.find("<", i)
    if lt >= 0:
        if display is None:
            words = s[:lt].split()
            if words:
                display = " ".join(words)
                if not all(g.TOKEN.fullmatch(w) for w in words):
                    _add(defects, "bad-display-name", f"{what}: display name {s[:lt].strip()!r} has characters that need quotes")
        gt = s.find(">", lt)
        if gt < 0:
            _add(defects, "bad-name-addr", f"{what}: '<' without '>'")
            gt = len(s)
        inner = s[lt + 1 : gt]
        if inner != inner.strip(_WS):
            _add(defects, "bad-addr-spec", f"{what}: whitespace inside <{inner}>")
            inner = inner.strip(_WS)
        uri = parse_uri(inner, defects, what)
        params = parse_params(s[gt + 1 :], defects, what)
        return NameAddr(uri=uri, raw=value, display_name=display, params=params)
    # addr-spec without brackets: the URI ends at the first ';', whose
    # parameters are header parameters (RFC 3261 §20.10).
    semi = s.find(";")
    uri_text = s if semi < 0 else s[:semi]
    uri_text = uri_text.rstrip(_WS)
    if any(c in uri_text for c in ",?"):
        _add(defects, "addr-spec-needs-brackets", f"{what}: {uri_text!r} contains ',' or '?' and must be enclosed in <>")
    uri = parse_uri(uri_text, defects, what)
    params = parse_params(s[semi:], defects, what) if semi >= 0 else Params()
    return NameAddr(uri=uri, raw=value, params=params, bracketed=False)


def name_addr_of(value: str | None, defects: Defects = None, what: str = "name-addr") -> NameAddr | None:
    """``parse_name_addr`` for an optional value."""
    return None if value is None else parse_name_addr(value, defects, what)


def name_addr_list(
    values: Iterable[str], defects: Defects = None, what: str = "name-addr"
) -> tuple[NameAddr, ...]:
    """Every name-addr of every line, comma lists split; ``*`` is skipped."""
    out: list[NameAddr] = []
    for line in values:
        if line.strip() == "*":
            continue
        for part in split_list(line):
            if not part.strip(_WS):
                _add(defects, "empty-list-item", f"{what}: empty item in {line!r}")
                continue
            out.append(parse_name_addr(part, defects, what))
    return tuple(out)


# ---------------------------------------------------------------------------
# Via
# ---------------------------------------------------------------------------


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def parse_via(value: str, defects: Defects = None) -> Via | None:
    """Parse one via-parm.

    via-parm = sent-protocol LWS sent-by *( SEMI via-params )
    sent-protocol = protocol-name SLASH protocol-version SLASH transport
    sent-by = host [ COLON port ]
    """
    s = value
    parts: list[str] = []
    i = _skip_ws(s, 0)
    for k in range(3):
        m = g.TOKEN.match(s, i)
        if not m:
            _add(defects, "bad-via", f"Via: malformed sent-protocol in {value.strip()!r}")
            return None
        parts.append(m.group())
        i = _skip_ws(s, m.end())
        if k < 2:
            if i >= len(s) or s[i] != "/":
                _add(defects, "bad-via", f"Via: malformed sent-protocol in {value.strip()!r}")
                return None
            i = _skip_ws(s, i + 1)
    # sent-by: up to whitespace, ';' or end; an IPv6 reference may hold ':'.
    start = i
    if i < len(s) and s[i] == "[":
        close = s.find("]", i)
        i = len(s) if close < 0 else close + 1
    while i < len(s) and s[i] not in " \t;:":
        i += 1
    j = _skip_ws(s, i)
    if j < len(s) and s[j] == ":":
        j = _skip_ws(s, j + 1)
        while j < len(s) and s[j].isdigit():
            j += 1
        sent_by = s[start:j].replace(" ", "").replace("\t", "")
        i = j
    else:
        sent_by = s[start:i]
    if not sent_by:
        _add(defects, "bad-via", f"Via: no sent-by in {value.strip()!r}")
        return None
    host, _, port, rest = parse_hostport(sent_by, defects, "Via sent-by")
    if rest:
        _add(defects, "bad-via", f"Via: unexpected {rest!r} in sent-by")
    params = parse_params(s[i:], defects, "Via")
    via = Via(
        protocol=parts[0],
        version=parts[1],
        transport=parts[2].upper(),
        host=host,
        raw=value.strip(_WS),
        port=port,
        params=params,
    )
    _check_via_params(via, defects)
    return via


def _check_via_params(via: Via, defects: Defects) -> None:
    if defects is None:
        return
    branch = via.branch
    if "branch" not in via.params:
        _add(defects, "rfc2543-via", f"Via {via.sent_by}: no branch parameter (RFC 2543 peer)", violation=False)
    elif branch is None or branch == "":
        _add(defects, "bad-branch", f"Via {via.sent_by}: empty branch parameter")
    elif branch == g.MAGIC_COOKIE:
        _add(defects, "bad-branch", f"Via {via.sent_by}: branch is only the magic cookie, no transaction id")
    received = via.received
    if received is not None:
        if received.startswith("["):
            _add(
                defects,
                "received-brackets",
                f"Via {via.sent_by}: received={received} encloses an IPv6 address in [] (RFC 5118 §4.5)",
                violation=False,
            )
        else:
            try:
                ipaddress.ip_address(received)
            except ValueError:
                _add(defects, "bad-received", f"Via {via.sent_by}: received={received!r} is not an IP address")
    for key in ("ttl", "rport"):
        raw = via.params.get(key)
        if raw is not None and not raw.isdigit():
            _add(defects, "bad-via-param", f"Via {via.sent_by}: {key}={raw!r} is not a number")


def via_list(values: Iterable[str], defects: Defects = None) -> tuple[Via, ...]:
    """Every Via value of every line, comma lists split, top first."""
    out: list[Via] = []
    for line in values:
        for part in split_list(line):
            if not part.strip(_WS):
                _add(defects, "empty-list-item", f"Via: empty value in {line!r}")
                continue
            via = parse_via(part, defects)
            if via is not None:
                out.append(via)
    return tuple(out)


# ---------------------------------------------------------------------------
# Hot path
# ---------------------------------------------------------------------------




# Pure functions of a header value, memoised: the same From, To, top Via and
# CSeq values recur across a dialog's messages. Each memo is bounded (cleared
# when full), so hostile input cannot grow it.
_MEMO_LIMIT = 1 << 16
_cseq_memo: dict[str, CSeq | None] = {}
_tag_memo: dict[str, str | None] = {}
_branch_memo: dict[str, str | None] = {}


def _remember(memo: dict[str, _V], key: str, value: _V) -> _V:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def cseq_of(value: str | None) -> CSeq | None:
    """CSeq = 1*DIGIT LWS Method; ``None`` when absent or unreadable."""
    if value is None:
        return None
    try:
        return _cseq_memo[value]
    except KeyError:
        return _remember(_cseq_memo, value, _cseq_of(value))


def tag_of(value: str | None) -> str | None:
    """The ``tag`` header parameter of a From/To value, cheaply."""
    if value is None:
        return None
    try:
        return _tag_memo[value]
    except KeyError:
        return _remember(_tag_memo, value, _tag_of(value))


def top_branch_of(value: str | None) -> str | None:
    """The branch of the first via-parm of the first Via line, cheaply."""
    if value is None:
        return None
    try:
        return _branch_memo[value]
    except KeyError:
        return _remember(_branch_memo, value, _top_branch_of(value))


def _cseq_of(value: str) -> CSeq | None:
    number, sp, method = value.partition(" ")
    if sp and method in g.COMMON_METHODS and number.isdigit() and number.isascii():
        return CSeq(int(number), method)
    m = g.CSEQ.fullmatch(value)
    if not m:
        return None
    return CSeq(int(m.group(1)), m.group(2))


def _tag_of(value: str) -> str | None:
    """The ``tag`` header parameter of a From/To value.

    Header parameters follow the URI's closing ``>`` (or, for a bare
    addr-spec, the URI itself); a display name cannot hide a ``>`` after the
    real one, so only a quote among the parameters needs the full grammar.
    """
    value = value.strip(" \t")
    gt = value.rfind(">")
    tail = value[gt + 1 :] if gt >= 0 else value
    if '"' in tail:
        return parse_name_addr(value).tag
    i = tail.find(";tag=")
    if i >= 0:  # the usual spelling: no LWS, lower case
        m = g.TOKEN.match(tail, i + 5)
        if m:
            return m.group()
    elif "tag" not in tail.lower():
        return None
    m = g.TAG_PARAM.search(tail)
    return m.group(1) if m else None


def _top_branch_of(value: str) -> str | None:
    comma = value.find(",")
    first = value if comma < 0 else value[:comma]
    i = first.find(";branch=")
    if i >= 0:  # the usual spelling: no LWS, lower case
        i += 8
        end = first.find(";", i)
        branch = first[i:] if end < 0 else first[i:end]
        branch = branch.rstrip(" \t")
        if branch and " " not in branch and "\t" not in branch:
            return branch
    m = g.BRANCH_PARAM.search(first)
    return m.group(1) if m else None


def int_of(value: str | None) -> int | None:
    """A header that is ``1*DIGIT``, as int; ``None`` when absent or not digits."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() and value.isascii() else None


# ---------------------------------------------------------------------------
# RFC 7989, 3326, 7044, 7315
# ---------------------------------------------------------------------------


def session_id_of(value: str | None, defects: Defects = None) -> SessionId | None:
    """RFC 7989 §4: session-id *( SEMI generic-param ), remote in ``remote``."""
    if value is None:
        return None
    local, _, rest = value.partition(";")
    local = local.strip(_WS)
    params = parse_params(";" + rest, defects, "Session-ID") if rest else Params()
    if not g.SESSION_UUID.fullmatch(local):
        _add(
            defects,
            "bad-session-id",
            f"Session-ID: {local!r} is not 32 hex digits (RFC 7989; RFC 7329 form?)",
            violation=False,
        )
    remote = params.get("remote")
    if remote is not None and not g.SESSION_UUID.fullmatch(remote):
        _add(defects, "bad-session-id", f"Session-ID: remote={remote!r} is not 32 hex digits", violation=False)
    return SessionId(
        local=local.lower(), remote=remote.lower() if remote is not None else None, params=params
    )


def parse_reason(value: str, defects: Defects = None) -> Reason:
    """RFC 3326: reason-value = protocol *(SEMI reason-params)."""
    protocol, _, rest = value.partition(";")
    params = parse_params(";" + rest, defects, "Reason") if rest else Params()
    cause_text = params.get("cause")
    cause = int(cause_text) if cause_text is not None and cause_text.isdigit() else None
    if cause_text is not None and cause is None:
        _add(defects, "bad-reason", f"Reason: cause={cause_text!r} is not a number")
    text = params.get("text")
    return Reason(
        protocol=protocol.strip(_WS),
        cause=cause,
        text=unquote_string(text) if text is not None else None,
        params=params,
    )


def reason_list(values: Iterable[str], defects: Defects = None) -> tuple[Reason, ...]:
    """Every Reason value, comma lists split."""
    return tuple(
        parse_reason(part, defects)
        for line in values
        for part in split_list(line)
        if part.strip(_WS)
    )


def history_info_list(values: Iterable[str], defects: Defects = None) -> tuple[HistoryInfoEntry, ...]:
    """RFC 7044 entries; the Reason embedded in the URI's headers is parsed."""
    out: list[HistoryInfoEntry] = []
    for target in name_addr_list(values, defects, "History-Info"):
        reasons = tuple(
            r
            for name, val in target.uri.headers
            if name.lower() == "reason"
            for r in reason_list([val], defects)
        )
        out.append(HistoryInfoEntry(target=target, index=target.params.get("index"), reasons=reasons))
    return tuple(out)


def charging_vector_of(value: str | None, defects: Defects = None) -> ChargingVector | None:
    """RFC 7315 §4.6: icid-value *(SEMI charge-params)."""
    if value is None:
        return None
    params = parse_params(value, defects, "P-Charging-Vector", leading_semicolon=False)

    def get(name: str) -> str | None:
        v = params.get(name)
        return unquote_string(v) if v is not None else None

    if "icid-value" not in params:
        _add(defects, "bad-charging-vector", "P-Charging-Vector: no icid-value")
    return ChargingVector(
        icid_value=get("icid-value"),
        related_icid=get("related-icid"),
        icid_generated_at=get("icid-generated-at"),
        orig_ioi=get("orig-ioi"),
        term_ioi=get("term-ioi"),
        params=params,
    )
