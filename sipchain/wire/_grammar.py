"""The RFC 3261 grammar (and friends) as regular expressions, in one place.

Each pattern quotes the ABNF rule it implements (RFC 3261 §25.1 unless another
RFC is named). Patterns work on ``str`` decoded from UTF-8 with
``surrogateescape``, so octets that are not UTF-8 survive as lone surrogates and
never match a grammar class they do not belong to.

LWS and folding: header values are unfolded (CRLF + whitespace -> one SP)
before these patterns see them, so ``LWS``/``SWS`` below reduce to
``[ \\t]*``.
"""

from __future__ import annotations

import re

# alphanum = ALPHA / DIGIT
_ALNUM = "A-Za-z0-9"

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN_CHARS = _ALNUM + r"\-.!%*_+`'~"
TOKEN = re.compile(f"[{TOKEN_CHARS}]+")

# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#        "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )
WORD_CHARS = TOKEN_CHARS + r'()<>:\\"/\[\]?{}'
# callid = word [ "@" word ]
CALL_ID = re.compile(f"[{WORD_CHARS}]+(?:@[{WORD_CHARS}]+)?")

# Method = INVITEm / ACKm / OPTIONSm / BYEm / CANCELm / REGISTERm / extension-method
# extension-method = token
METHOD = TOKEN
#: Methods of RFC 3261 and its extensions, known to be tokens (skips the regex).
COMMON_METHODS = frozenset(
    [
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE",
        "INFO", "REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE", "PUBLISH",
    ]
)

# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT
SIP_VERSION = re.compile(r"SIP/(\d+)\.(\d+)", re.IGNORECASE)

# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
# Status-Code = 3DIGIT   (extension-code = 3DIGIT; RFC 3261 §21: 100..699)
STATUS_CODE = re.compile(r"[1-6]\d\d")

# Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
# i.e. anything but CTLs other than HTAB; checked by REASON_BAD_CHARS.
REASON_BAD_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# Header values are TEXT-UTF8 / LWS / quoted-pair; a CTL other than HTAB may
# appear only escaped in a quoted-pair ("\" %x00-09 / %x0B-0C / %x0E-7F).
VALUE_BAD_CTL = re.compile(r"(?<!\\)[\x00-\x08\x0a-\x1f\x7f]")
# octets that are not UTF-8 survive decoding as lone surrogates U+DC80..U+DCFF
NOT_UTF8 = re.compile("[\udc80-\udcff]")

# header-name = token ; HCOLON = *( SP / HTAB ) ":" SWS
HEADER_NAME = TOKEN

# unreserved = alphanum / mark
# mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
_UNRESERVED = _ALNUM + r"\-_.!~*'()"
# escaped = "%" HEXDIG HEXDIG
_ESCAPED = "%[0-9A-Fa-f]{2}"
ESCAPED = re.compile(_ESCAPED)

# user = 1*( unreserved / escaped / user-unreserved )
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
USER = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESCAPED})+")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
PASSWORD = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESCAPED})*")

# hostname = *( domainlabel "." ) toplabel [ "." ]
# domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
# toplabel = ALPHA / ALPHA *( alphanum / "-" ) alphanum
# (toplabel starting with ALPHA is relaxed to alphanum, as deployed stacks are.)
HOSTNAME = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?"
)
# IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
# port = 1*DIGIT
PORT = re.compile(r"\d+")

# uri-parameter / other-param = pname [ "=" pvalue ]
# pname = 1*paramchar ; pvalue = 1*paramchar
# paramchar = param-unreserved / unreserved / escaped
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
PARAMCHARS = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESCAPED})+")

# header = hname "=" hvalue ; hname = 1*( hnv-unreserved / unreserved / escaped )
# hvalue = *( hnv-unreserved / unreserved / escaped )
# hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
HNV = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESCAPED})*")

# absoluteURI = scheme ":" ( hier-part / opaque-part )   (RFC 2396)
# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# uric = reserved / unreserved / escaped ; reserved = ";" / "/" / "?" / ":" / "@" /
#        "&" / "=" / "+" / "$" / ","
URIC = re.compile(rf"(?:[{_UNRESERVED};/?:@&=+$,\[\]]|{_ESCAPED})*")

# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED_STRING = re.compile(r'"((?:[^"\\\r\n]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*)"')
QUOTED_PAIR = re.compile(r"\\([\x00-\x09\x0b\x0c\x0e-\x7f])")

# generic-param = token [ EQUAL gen-value ] ; gen-value = token / host / quoted-string
# host = hostname / IPv4address / IPv6reference ; and for Via (§20.42):
# via-received = "received" EQUAL (IPv4address / IPv6address)  -- a bare IPv6address
GEN_VALUE = re.compile(
    rf"\[[0-9A-Fa-f:.]+\]|(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}[0-9A-Fa-f.]*|[{TOKEN_CHARS}]+"
)

# via-branch = "branch" EQUAL token ; branch-cookie (RFC 3261 §8.1.1.7) = "z9hG4bK"
MAGIC_COOKIE = "z9hG4bK"

# Session-ID = "Session-ID" HCOLON session-id *( SEMI generic-param )   (RFC 7989 §4)
# session-id = 32(DIGIT / %x61-66)   ; 32 chars of [0-9a-f]
SESSION_UUID = re.compile(r"[0-9a-fA-F]{32}")

# SIP-date = rfc1123-date ; rfc1123-date = wkday "," SP date1 SP time SP "GMT"
SIP_DATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d{2}:\d{2}:\d{2} GMT"
)

# warning-value = warn-code SP warn-agent SP warn-text ; warn-code = 3DIGIT
WARNING_VALUE = re.compile(r"\d{3} [^ ]+ \"")

# ---------------------------------------------------------------------------
# Hot path: cheap extraction of the fields a correlator reads first.
# ---------------------------------------------------------------------------

# CSeq = "CSeq" HCOLON 1*DIGIT LWS Method
CSEQ = re.compile(rf"\s*(\d+)\s+([{TOKEN_CHARS}]+)\s*")
# tag-param = "tag" EQUAL token   (EQUAL = SWS "=" SWS)
TAG_PARAM = re.compile(rf";\s*tag\s*=\s*([{TOKEN_CHARS}]+)", re.IGNORECASE)
# via-branch = "branch" EQUAL token
BRANCH_PARAM = re.compile(rf";\s*branch\s*=\s*([{TOKEN_CHARS}]+)", re.IGNORECASE)

#: Scalar limits from RFC 3261 and RFC 4475 §3.1.2.4/§3.1.2.5.
MAX_UINT32 = 2**32 - 1
MAX_FORWARDS_MAX = 255

#: Headers that RFC 3261 §7.3.1 allows only once (no comma list).
SINGLE_VALUED = frozenset(
    {
        "call-id",
        "content-length",
        "content-type",
        "cseq",
        "expires",
        "from",
        "max-forwards",
        "to",
        "min-expires",
        "retry-after",
    }
)

#: Headers whose value is a comma-separated list of name-addr / addr-spec.
NAME_ADDR_LISTS = frozenset(
    {
        "contact",
        "route",
        "record-route",
        "diversion",
        "p-asserted-identity",
        "p-preferred-identity",
        "path",
        "service-route",
        "history-info",
    }
)
