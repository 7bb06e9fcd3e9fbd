"""SDP bodies (RFC 8866): torture corpora, hand-built cases, and properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipchain.model import SdpConnection, SdpOrigin, SdpRtpMap, SessionDescription
from sipchain.wire._sdp import parse_sdp

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
TORTURE = CORPUS / "torture"

skip_without_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"third-party corpus not present at {CORPUS}"
)


def body_of(name: str) -> bytes:
    """The body of a torture message: everything after the first empty line."""
    data = (TORTURE / name).read_bytes()
    _, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"{name} has no empty line"
    return body


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


def codes(sdp: SessionDescription) -> list[str]:
    return [d.code for d in sdp.defects]


MINIMAL = ("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0")


# ---------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------


@pytest.mark.corpus
@skip_without_corpus
def test_rfc4475_wsinv_sdp() -> None:
    body = body_of("rfc4475/wsinv.dat")
    sdp = parse_sdp(body)
    assert sdp.raw is body
    assert sdp.version == 0
    assert sdp.origin == SdpOrigin("mhandley", "29739", "7272939", "IN", "IP4", "192.0.2.3")
    assert sdp.session_name == "-"
    assert sdp.connection == SdpConnection("IN", "IP4", "192.0.2.4")
    assert sdp.attributes == ()
    assert sdp.direction is None
    audio, video = sdp.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == (
        "audio",
        49217,
        "RTP/AVP",
        ("0", "12"),
    )
    assert audio.rtpmaps == ()
    assert audio.connection is None
    assert (video.media, video.port, video.proto, video.formats) == (
        "video",
        3227,
        "RTP/AVP",
        ("31",),
    )
    assert video.attributes == (("rtpmap", "31 LPC"),)
    (rtpmap,) = video.rtpmaps
    assert (rtpmap.payload_type, rtpmap.encoding) == (31, "LPC")
    # RFC 8866 §6.6 makes the clock rate mandatory: kept, and said so.
    assert rtpmap.clock_rate is None
    assert codes(sdp) == ["sdp-bad-rtpmap"]
    assert sdp.defects[0].offset == body.index(b"a=rtpmap:31")
    assert sdp.defects[0].violation is False
    assert sdp.media_direction(video) == "sendrecv"


@pytest.mark.corpus
@skip_without_corpus
def test_rfc5118_ipv6_in_sdp() -> None:
    body = body_of("rfc5118/ipv6-in-sdp.dat")
    sdp = parse_sdp(body)
    assert sdp.defects == ()
    assert sdp.origin == SdpOrigin(
        "assistant", "971731711378798081", "0", "IN", "IP6", "2001:db8::20"
    )
    assert sdp.session_name == "Live video feed for today's meeting"
    assert sdp.connection == SdpConnection("IN", "IP6", "2001:db8::20")
    assert [(m.media, m.port, m.formats) for m in sdp.media] == [
        ("audio", 6000, ("2",)),
        ("video", 6024, ("107",)),
    ]
    assert sdp.media[0].rtpmaps == (SdpRtpMap(2, "G726-32", 8000),)
    assert sdp.media[1].rtpmaps == (SdpRtpMap(107, "H263-1998", 90000),)


@pytest.mark.corpus
@skip_without_corpus
def test_rfc5118_multiple_ip_in_sdp() -> None:
    body = body_of("rfc5118/mult-ip-in-sdp.dat")
    sdp = parse_sdp(body)
    assert sdp.defects == ()
    assert sdp.origin is not None
    assert sdp.origin.address == "host.example.com"
    assert sdp.session_name == ""
    assert sdp.connection is None
    audio, video = sdp.media
    assert audio.connections == (SdpConnection("IN", "IP4", "192.0.2.1"),)
    assert video.connections == (SdpConnection("IN", "IP6", "2001:db8::1"),)
    assert video.connection == SdpConnection("IN", "IP6", "2001:db8::1")
    assert video.rtpmaps == (SdpRtpMap(107, "H263-1998", 90000),)


@pytest.mark.corpus
@skip_without_corpus
@pytest.mark.parametrize(
    "name",
    [
        "rfc4475/wsinv.dat",
        "rfc4475/sdp01.dat",
        "rfc5118/ipv6-in-sdp.dat",
        "rfc5118/mult-ip-in-sdp.dat",
    ],
)
def test_corpus_bodies_read_the_same_with_bare_lf(name: str) -> None:
    body = body_of(name)
    with_crlf = parse_sdp(body)
    with_lf = parse_sdp(body.replace(b"\r\n", b"\n"))
    assert with_lf.origin == with_crlf.origin
    assert with_lf.connection == with_crlf.connection
    assert with_lf.media == with_crlf.media
    assert codes(with_lf) == codes(with_crlf)


# ---------------------------------------------------------------------------
# Hand-built cases
# ---------------------------------------------------------------------------


def test_multicast_connection_ttl_and_count() -> None:
    sdp = parse_sdp(
        crlf(
            *MINIMAL[:3],
            "c=IN IP4 224.2.36.42/127/3",
            "t=0 0",
            "m=audio 49170 RTP/AVP 0",
            "c=IN IP4 224.2.1.1/127",
            "c=IN IP6 FF15::101/3",
        )
    )
    assert sdp.defects == ()
    assert sdp.connection == SdpConnection("IN", "IP4", "224.2.36.42", ttl=127, count=3)
    assert sdp.media[0].connections == (
        SdpConnection("IN", "IP4", "224.2.1.1", ttl=127),
        SdpConnection("IN", "IP6", "FF15::101", count=3),
    )


@pytest.mark.parametrize(
    "line",
    [
        "c=IN IP4",
        "c=IN IP4 224.2.1.1/x",
        "c=IN IP4 224.2.1.1/1/2/3",
        "c=IN IP6 FF15::101/127/3",
        "c=IN IP4 /127",
    ],
)
def test_bad_connection_lines_are_defects(line: str) -> None:
    body = crlf(*MINIMAL, line, "m=audio 1 RTP/AVP 0")
    sdp = parse_sdp(body)
    assert sdp.connection is None
    assert codes(sdp) == ["sdp-bad-connection"]
    assert sdp.defects[0].offset == body.index(line.encode())
    assert len(sdp.media) == 1


def test_direction_at_session_and_media_level() -> None:
    sdp = parse_sdp(
        crlf(
            *MINIMAL,
            "a=sendonly",
            "m=audio 49170 RTP/AVP 0",
            "m=video 51372 RTP/AVP 99",
            "a=recvonly",
            "m=audio 0 RTP/AVP 8",
            "a=inactive",
        )
    )
    assert sdp.defects == ()
    assert sdp.direction == "sendonly"
    assert sdp.attributes == (("sendonly", None),)
    audio, video, disabled = sdp.media
    assert audio.direction is None
    assert video.direction == "recvonly"
    assert video.attributes == (("recvonly", None),)
    assert disabled.direction == "inactive"
    assert [sdp.media_direction(m) for m in sdp.media] == ["sendonly", "recvonly", "inactive"]


def test_conflicting_direction_keeps_the_first() -> None:
    body = crlf(*MINIMAL, "m=audio 1 RTP/AVP 0", "a=sendonly", "a=recvonly")
    sdp = parse_sdp(body)
    assert sdp.media[0].direction == "sendonly"
    assert sdp.media[0].attributes == (("sendonly", None), ("recvonly", None))
    assert codes(sdp) == ["sdp-conflicting-direction"]
    assert sdp.defects[0].offset == body.index(b"a=recvonly")


def test_rtpmap_with_channels_and_other_attributes() -> None:
    sdp = parse_sdp(
        crlf(
            *MINIMAL,
            "a=group:BUNDLE 0",
            "a=ice-lite",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 101",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fingerprint:sha-256 AB:CD:EF",
            "a=sendrecv",
        )
    )
    assert sdp.defects == ()
    assert sdp.attributes == (("group", "BUNDLE 0"), ("ice-lite", None))
    (audio,) = sdp.media
    assert audio.proto == "UDP/TLS/RTP/SAVPF"
    assert audio.formats == ("111", "0", "101")
    assert audio.rtpmaps == (
        SdpRtpMap(111, "opus", 48000, "2"),
        SdpRtpMap(0, "PCMU", 8000),
        SdpRtpMap(101, "telephone-event", 8000),
    )
    assert ("fmtp", "111 minptime=10;useinbandfec=1") in audio.attributes
    assert ("fingerprint", "sha-256 AB:CD:EF") in audio.attributes
    assert audio.direction == "sendrecv"


@pytest.mark.parametrize(
    "value", ["x PCMU/8000", "96", "96 /8000", "96 PCMU/fast", "96 PCMU/8000/2/x"]
)
def test_bad_rtpmap_keeps_the_attribute_only(value: str) -> None:
    sdp = parse_sdp(crlf(*MINIMAL, "m=audio 1 RTP/AVP 96", f"a=rtpmap:{value}"))
    assert sdp.media[0].rtpmaps == ()
    assert sdp.media[0].attributes == (("rtpmap", value),)
    assert codes(sdp) == ["sdp-bad-rtpmap"]


def test_attributes_before_and_after_media() -> None:
    sdp = parse_sdp(
        crlf(
            *MINIMAL,
            "a=tool:sipchain",
            "a=recvonly",
            "m=audio 49170 RTP/AVP 0",
            "a=ptime:20",
            "m=video 51372 RTP/AVP 31",
            "a=framerate:25",
        )
    )
    assert sdp.attributes == (("tool", "sipchain"), ("recvonly", None))
    assert sdp.media[0].attributes == (("ptime", "20"),)
    assert sdp.media[1].attributes == (("framerate", "25"),)


def test_t38_image_stream() -> None:
    sdp = parse_sdp(
        crlf(
            *MINIMAL[:3],
            "c=IN IP4 192.0.2.10",
            "t=0 0",
            "m=image 49170 udptl t38",
            "a=T38FaxVersion:0",
            "a=T38MaxBitRate:14400",
            "a=T38FaxFillBitRemoval",
            "a=T38FaxRateManagement:transferredTCF",
            "a=T38FaxUdpEC:t38UDPRedundancy",
        )
    )
    assert sdp.defects == ()
    (image,) = sdp.media
    assert (image.media, image.port, image.proto, image.formats) == (
        "image",
        49170,
        "udptl",
        ("t38",),
    )
    assert image.rtpmaps == ()
    assert image.attributes[:3] == (
        ("T38FaxVersion", "0"),
        ("T38MaxBitRate", "14400"),
        ("T38FaxFillBitRemoval", None),
    )


def test_port_count() -> None:
    sdp = parse_sdp(crlf(*MINIMAL, "m=video 49170/2 RTP/AVP 31"))
    assert sdp.defects == ()
    assert (sdp.media[0].port, sdp.media[0].port_count) == (49170, 2)


def test_bad_origin_is_a_defect_and_the_rest_is_read() -> None:
    body = crlf("v=0", "o=alice 1 IN IP4 192.0.2.1", "s=x", "t=0 0", "m=audio 1 RTP/AVP 0")
    sdp = parse_sdp(body)
    assert sdp.origin is None
    assert sdp.session_name == "x"
    assert len(sdp.media) == 1
    bad = [d for d in sdp.defects if d.code == "sdp-bad-origin"]
    assert len(bad) == 1
    assert bad[0].offset == body.index(b"o=")
    assert bad[0].violation is False
    # the o= line was present, so it is not reported missing as well
    assert "sdp-missing-line" not in codes(sdp)


def test_non_numeric_origin_ids_are_kept_with_a_defect() -> None:
    sdp = parse_sdp(crlf("v=0", "o=- abc 1 IN IP4 192.0.2.1", "s=-", "t=0 0"))
    assert sdp.origin == SdpOrigin("-", "abc", "1", "IN", "IP4", "192.0.2.1")
    assert codes(sdp) == ["sdp-bad-origin"]


def test_line_without_equals_and_bad_types() -> None:
    body = crlf(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "garbage line",
        "s=-",
        "xy=2",
        "=nothing",
        "t=0 0",
        "X=unknown",
        "m=audio 1 RTP/AVP 0",
    )
    sdp = parse_sdp(body)
    assert sdp.session_name == "-"
    assert len(sdp.media) == 1
    assert [(d.code, d.offset) for d in sdp.defects] == [
        ("sdp-bad-line", body.index(b"garbage")),
        ("sdp-bad-line", body.index(b"xy=")),
        ("sdp-bad-line", body.index(b"=nothing")),
        ("sdp-unknown-line", body.index(b"X=")),
    ]


def test_bad_media_line_drops_its_section_only() -> None:
    body = crlf(
        *MINIMAL,
        "m=audio 49170 RTP/AVP 0",
        "a=ptime:20",
        "m=video many RTP/AVP 31",
        "c=IN IP4 192.0.2.9",
        "a=rtpmap:31 H261/90000",
        "m=audio 5004 RTP/AVP 8",
        "a=sendonly",
    )
    sdp = parse_sdp(body)
    assert [m.port for m in sdp.media] == [49170, 5004]
    assert sdp.media[0].attributes == (("ptime", "20"),)
    assert sdp.media[0].connections == ()
    assert sdp.media[1].direction == "sendonly"
    assert [(d.code, d.offset) for d in sdp.defects] == [
        ("sdp-bad-media", body.index(b"m=video")),
    ]


def test_media_line_with_too_few_fields() -> None:
    sdp = parse_sdp(crlf(*MINIMAL, "m=audio 1"))
    assert sdp.media == ()
    assert codes(sdp) == ["sdp-bad-media"]


def test_media_line_without_formats_is_kept() -> None:
    sdp = parse_sdp(crlf(*MINIMAL, "m=audio 0 RTP/AVP"))
    assert sdp.media[0].formats == ()
    assert codes(sdp) == ["sdp-bad-media"]


def test_bare_lf_body_and_last_line_without_newline() -> None:
    text = (
        "v=0\no=- 7 7 IN IP4 192.0.2.1\ns=call\nt=0 0\nm=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/8000"
    )
    body = text.encode()
    sdp = parse_sdp(body)
    assert sdp.defects == ()
    assert sdp.origin is not None
    assert sdp.origin.session_id == "7"
    assert sdp.media[0].rtpmaps == (SdpRtpMap(0, "PCMU", 8000),)


def test_offsets_with_bare_lf() -> None:
    body = b"v=0\nbroken\ns=-\n"
    sdp = parse_sdp(body)
    bad = [d for d in sdp.defects if d.code == "sdp-bad-line"]
    assert [d.offset for d in bad] == [4]


def test_mixed_line_ends() -> None:
    sdp = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\ns=-\r\nt=0 0\nm=audio 1 RTP/AVP 0\r\n")
    assert sdp.defects == ()
    assert len(sdp.media) == 1


def test_empty_body_and_empty_lines() -> None:
    assert codes(parse_sdp(b"")) == ["sdp-empty"]
    assert parse_sdp(b"").raw == b""
    sdp = parse_sdp(crlf(*MINIMAL) + b"\r\n")
    assert [(d.code, d.offset) for d in sdp.defects] == [("sdp-empty-line", len(crlf(*MINIMAL)))]


def test_missing_required_lines() -> None:
    sdp = parse_sdp(crlf("s=-", "m=audio 1 RTP/AVP 0"))
    assert codes(sdp) == ["sdp-version-not-first"] + ["sdp-missing-line"] * 3
    assert all(d.violation is False for d in sdp.defects)


def test_repeated_and_misplaced_session_lines() -> None:
    body = crlf(*MINIMAL, "s=again", "m=audio 1 RTP/AVP 0", "v=0", "o=x 2 2 IN IP4 192.0.2.2")
    sdp = parse_sdp(body)
    assert sdp.session_name == "-"
    assert sdp.origin is not None
    assert sdp.origin.username == "-"
    assert [(d.code, d.offset) for d in sdp.defects] == [
        ("sdp-repeated-line", body.index(b"s=again")),
        ("sdp-misplaced-line", body.index(b"v=0", 4)),
        ("sdp-misplaced-line", body.index(b"o=x")),
    ]


def test_bad_version() -> None:
    sdp = parse_sdp(crlf("v=zero", *MINIMAL[1:]))
    assert sdp.version is None
    assert codes(sdp) == ["sdp-bad-version"]
    sdp = parse_sdp(crlf("v=1", *MINIMAL[1:]))
    assert sdp.version == 1
    assert codes(sdp) == ["sdp-unknown-version"]


def test_non_utf8_text_survives() -> None:
    body = crlf("v=0", "o=- 1 1 IN IP4 192.0.2.1") + b"s=caf\xe9\r\nt=0 0\r\n"
    sdp = parse_sdp(body)
    assert sdp.session_name is not None
    assert sdp.session_name.encode("utf-8", "surrogateescape") == b"caf\xe9"
    assert sdp.defects == ()


def test_trailing_whitespace_is_tolerated() -> None:
    sdp = parse_sdp(
        crlf(*MINIMAL, "m=audio 1 RTP/AVP 0 ", "a=sendonly \t", "a=rtpmap:0 PCMU/8000 ")
    )
    assert sdp.defects == ()
    assert sdp.media[0].direction == "sendonly"
    assert sdp.media[0].rtpmaps == (SdpRtpMap(0, "PCMU", 8000),)


def test_large_body_is_linear() -> None:
    lines = [*MINIMAL]
    for i in range(5000):
        lines += [f"m=audio {1000 + i} RTP/AVP 0 8", "a=rtpmap:0 PCMU/8000", "a=sendonly"]
    sdp = parse_sdp(crlf(*lines))
    assert sdp.defects == ()
    assert len(sdp.media) == 5000
    assert sdp.media[-1].port == 5999


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


def check_shape(body: bytes, sdp: SessionDescription) -> None:
    assert isinstance(sdp, SessionDescription)
    assert sdp.raw is body
    for defect in sdp.defects:
        assert defect.violation is False
        assert defect.offset is not None
        assert 0 <= defect.offset <= len(body)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    check_shape(body, parse_sdp(body))


_SDP_ALPHABET = "vosctmaAbi=:/ 0123456789.-IPN\t\r\n\x00\xe9"
sdp_like_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "v=0",
                "o=- 1 1 IN IP4 192.0.2.1",
                "s=-",
                "t=0 0",
                "c=IN IP4 224.2.1.1/127/3",
                "c=IN IP6 ::1/2",
                "m=audio 49170/2 RTP/AVP 0",
                "a=rtpmap:96 opus/48000/2",
                "a=sendonly",
                "a=recvonly",
            ]
        ),
        st.builds(
            lambda kind, value: f"{kind}={value}",
            st.sampled_from("vosctmaz"),
            st.text(alphabet=_SDP_ALPHABET, max_size=40),
        ),
    ),
    max_size=30,
)


@given(sdp_like_lines, st.sampled_from(["\r\n", "\n"]))
def test_sdp_like_lines_never_raise(lines: list[str], newline: str) -> None:
    body = newline.join(lines).encode("utf-8", "surrogateescape")
    check_shape(body, parse_sdp(body))


@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "v=0",
                    "o=- 1 1 IN IP4 192.0.2.1",
                    "s=-",
                    "c=IN IP4 224.2.1.1/127/3",
                    "m=audio 49170/2 RTP/AVP 0",
                    "a=rtpmap:96 opus/48000/2",
                    "a=sendonly",
                    "junk",
                ]
            ),
            st.text(alphabet="vcma=:/ 0123456789ABIPN", max_size=30),
        ),
        max_size=20,
    )
)
def test_crlf_and_lf_bodies_read_the_same(lines: list[str]) -> None:
    crlf_sdp = parse_sdp("".join(line + "\r\n" for line in lines).encode())
    lf_sdp = parse_sdp("".join(line + "\n" for line in lines).encode())
    assert lf_sdp.origin == crlf_sdp.origin
    assert lf_sdp.connection == crlf_sdp.connection
    assert lf_sdp.attributes == crlf_sdp.attributes
    assert lf_sdp.media == crlf_sdp.media
    assert codes(lf_sdp) == codes(crlf_sdp)
