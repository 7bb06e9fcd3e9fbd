"""The ``sipchain`` command, run in-process on the bundled fixture."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sipchain.cli import MESSAGE_COLUMNS, format_table, main

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "failover-exchange"

CALL_ID = "5f2c9e1a7b3d4c8e9f0a1b2c3d4e5f60@127.0.0.10"
FROM_TAG = "cc7d2e91a4"
TO_TAG = "cb4471a9e2"
BR_CALLER_INVITE = "z9hG4bK-cc-1f3a5c7e9b"
BR_EDGE_A = "z9hG4bK-edge-a-60d2e4f1"
BR_EDGE_B = "z9hG4bK-edge-b-71e3f502"

# (file, kind, CSeq, To tag, top Via branch); Call-ID and From tag are the same
# on every row, and no message has a defect.
EXPECTED = [
    ("01-caller-invite.sip", "INVITE", "1 INVITE", "-", BR_CALLER_INVITE),
    ("02-edge-100-trying.sip", "100 Trying", "1 INVITE", "-", BR_CALLER_INVITE),
    ("03-edge-invite-carrier-a.sip", "INVITE", "1 INVITE", "-", BR_EDGE_A),
    ("04-edge-invite-carrier-a-retransmission.sip", "INVITE", "1 INVITE", "-", BR_EDGE_A),
    ("05-edge-invite-carrier-b.sip", "INVITE", "1 INVITE", "-", BR_EDGE_B),
    ("06-carrier-b-100-trying.sip", "100 Trying", "1 INVITE", "-", BR_EDGE_B),
    ("07-carrier-b-180-ringing.sip", "180 Ringing", "1 INVITE", TO_TAG, BR_EDGE_B),
    ("08-edge-180-ringing.sip", "180 Ringing", "1 INVITE", TO_TAG, BR_CALLER_INVITE),
    ("09-carrier-b-200-ok.sip", "200 OK", "1 INVITE", TO_TAG, BR_EDGE_B),
    ("10-edge-200-ok.sip", "200 OK", "1 INVITE", TO_TAG, BR_CALLER_INVITE),
    ("11-caller-ack.sip", "ACK", "1 ACK", TO_TAG, "z9hG4bK-cc-2a4b6d8f0c"),
    ("12-edge-ack-carrier-b.sip", "ACK", "1 ACK", TO_TAG, "z9hG4bK-edge-b-82f40613"),
    ("13-caller-bye.sip", "BYE", "2 BYE", TO_TAG, "z9hG4bK-cc-3b5c7e9a1d"),
    ("14-edge-bye-carrier-b.sip", "BYE", "2 BYE", TO_TAG, "z9hG4bK-edge-b-93051724"),
    ("15-carrier-b-200-ok-bye.sip", "200 OK", "2 BYE", TO_TAG, "z9hG4bK-edge-b-93051724"),
    ("16-edge-200-ok-bye.sip", "200 OK", "2 BYE", TO_TAG, "z9hG4bK-cc-3b5c7e9a1d"),
]


def split_table(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the printed table; cells are separated by 2+ spaces."""
    lines = text.splitlines()
    assert len(lines) >= 2
    assert set(lines[1].replace(" ", "")) == {"-"}, "second line is the rule"
    header = re.split(r" {2,}", lines[0])
    rows = [re.split(r" {2,}", line) for line in lines[2:]]
    return header, rows


def test_messages_lists_every_fixture_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["messages", str(FIXTURE)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    header, rows = split_table(out)
    assert header == list(MESSAGE_COLUMNS)
    assert len(rows) == 16
    expected = [
        [str(n), name, kind, CALL_ID, cseq, FROM_TAG, to_tag, branch, "0"]
        for n, (name, kind, cseq, to_tag, branch) in enumerate(EXPECTED, start=1)
    ]
    assert rows == expected


def test_messages_retransmission_shows_twice_with_one_branch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["messages", str(FIXTURE)])
    _, rows = split_table(capsys.readouterr().out)
    to_carrier_a = [row for row in rows if row[7] == BR_EDGE_A]
    assert [row[1] for row in to_carrier_a] == [
        "03-edge-invite-carrier-a.sip",
        "04-edge-invite-carrier-a-retransmission.sip",
    ]
    assert {row[2] for row in to_carrier_a} == {"INVITE"}


def test_messages_carrier_b_answer_has_to_tag(capsys: pytest.CaptureFixture[str]) -> None:
    main(["messages", str(FIXTURE)])
    _, rows = split_table(capsys.readouterr().out)
    (answer,) = [row for row in rows if row[1] == "09-carrier-b-200-ok.sip"]
    assert answer[2] == "200 OK"
    assert answer[6] == TO_TAG
    assert answer[7] == BR_EDGE_B


def test_messages_reports_no_defects(capsys: pytest.CaptureFixture[str]) -> None:
    main(["messages", str(FIXTURE)])
    _, rows = split_table(capsys.readouterr().out)
    assert [row[8] for row in rows] == ["0"] * 16


def test_messages_accepts_single_files_in_given_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = [FIXTURE / "09-carrier-b-200-ok.sip", FIXTURE / "01-caller-invite.sip"]
    assert main(["messages", *map(str, files)]) == 0
    _, rows = split_table(capsys.readouterr().out)
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("1", "09-carrier-b-200-ok.sip", "200 OK"),
        ("2", "01-caller-invite.sip", "INVITE"),
    ]


def test_messages_skips_readme_dotfiles_and_subdirectories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "b.sip").write_bytes((FIXTURE / "13-caller-bye.sip").read_bytes())
    (tmp_path / "a.sip").write_bytes((FIXTURE / "01-caller-invite.sip").read_bytes())
    (tmp_path / "README.md").write_text("notes\n")
    (tmp_path / ".hidden").write_text("x\n")
    (tmp_path / "nested").mkdir()
    assert main(["messages", str(tmp_path)]) == 0
    _, rows = split_table(capsys.readouterr().out)
    assert [(row[1], row[2]) for row in rows] == [("a.sip", "INVITE"), ("b.sip", "BYE")]


def test_messages_missing_path_exits_2_and_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-capture"
    assert main(["messages", str(FIXTURE), str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert str(missing) in err
    assert "no such file or directory" in err


def test_messages_not_sip_exits_2_and_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.sip"
    junk.write_bytes(b"hello world\r\n")
    assert main(["messages", str(junk)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert str(junk) in err
    assert "not a SIP message" in err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["messages"])
    assert excinfo.value.code == 2
    assert "PATH" in capsys.readouterr().err


def test_format_table_pads_columns_and_strips_trailing_space() -> None:
    text = format_table(("a", "bb"), [("xyz", "1"), ("q", "")])
    assert text == "a    bb\n---  --\nxyz  1\nq\n"


# --------------------------------------------------------------------------
# sipchain reconstruct
# --------------------------------------------------------------------------

LAB = Path(__file__).resolve().parents[1] / "fixtures"


def test_reconstruct_prints_chains_and_failovers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_json = tmp_path / "result.json"
    code = main(
        [
            "reconstruct",
            str(LAB / "captures" / "failover-timeout.pcap"),
            "--trunks",
            str(LAB / "trunks.toml"),
            "--json",
            str(out_json),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("chain C") == 2
    assert "failover to attempt 2: timeout on carrier-a" in out
    assert "outbound  2        carrier-b" in out
    assert out.rstrip().endswith("2 chains, 6 legs, 2 failovers; 34 messages, 0 outside calls, 0 unlinked; 0 findings")
    document = json.loads(out_json.read_text(encoding="utf-8"))
    assert document["schema"] == "sipchain.reconstruction"
    assert len(document["chains"]) == 2


def test_reconstruct_unusable_input_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["reconstruct", str(tmp_path / "absent.pcap")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "trunks.toml"
    bad.write_text("not = [toml")
    assert main(["reconstruct", str(LAB / "captures" / "failover-503.pcapng"), "--trunks", str(bad)]) == 2
    assert "trunk file" in capsys.readouterr().err


def test_reconstruct_exits_1_on_an_error_finding(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('route = ["carrier-a", "carrier-b"]\n')
    gap = LAB / "captures" / "gap-missing-failover-200.pcapng"
    assert main(["reconstruct", str(gap), "--trunks", str(LAB / "trunks.toml"), "--policy", str(policy)]) == 1
    out = capsys.readouterr().out
    assert "ERROR leg-has-final-response" in out
    assert "1 findings" in out
    intact = LAB / "captures" / "failover-503.pcapng"
    assert main(["reconstruct", str(intact), "--trunks", str(LAB / "trunks.toml"), "--policy", str(policy)]) == 0
