"""The ``sipchain`` command.

A thin layer over the public API: it reads files, hands their bytes to
:func:`sipchain.parse_message` and prints what came back. Exit codes follow the
contract in the design card: 0 when the work was done, 2 on unusable input or
usage (argparse itself exits with 2 on a usage error).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from sipchain.model import SipMessage
    from sipchain.result import Reconstruction

__all__ = ["main"]

PROG = "sipchain"

#: Exit status: the command did its work.
EXIT_OK = 0
#: Exit status: unusable input or usage (same as argparse's usage error).
EXIT_USAGE = 2

#: Column titles of ``sipchain messages``, in print order.
MESSAGE_COLUMNS: tuple[str, ...] = (
    "#",
    "file",
    "kind",
    "Call-ID",
    "CSeq",
    "from-tag",
    "to-tag",
    "branch",
    "defects",
)

#: Printed in a cell whose value is absent.
MISSING = "-"

#: Spaces between two columns; values never contain this many spaces in a row
#: once collapsed by :func:`_cell`, so the table stays machine-splittable.
COLUMN_GAP = "  "


class InputError(Exception):
    """A path given on the command line cannot be used."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read {path!r}: {reason}")


def main(argv: list[str] | None = None) -> int:
    """Run the ``sipchain`` command and return its exit status.

    ``argv`` defaults to ``sys.argv[1:]``. Usage errors exit through argparse
    with status 2.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "messages":
        return _cmd_messages(args.paths, out=sys.stdout, err=sys.stderr)
    if args.command == "reconstruct":
        return _cmd_reconstruct(args, out=sys.stdout, err=sys.stderr)
    if args.command == "export":
        return _cmd_export(args, out=sys.stdout, err=sys.stderr)
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Rebuild the SIP signalling path of a call from captures and exports.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    messages = sub.add_parser(
        "messages",
        help="parse raw SIP message files and list one row per message",
        description=(
            "Parse each file as one raw SIP message (lenient) and print a table: "
            "kind, Call-ID, CSeq, From and To tags, top Via branch and defect count. "
            "A directory stands for its files, sorted by name; README files, "
            "dotfiles and subdirectories are skipped."
        ),
    )
    messages.add_argument("paths", nargs="+", metavar="PATH", help="a message file or a directory")
    rec = sub.add_parser(
        "reconstruct",
        help="rebuild every call chain of captures: legs, links, failovers",
        description=(
            "Read the sources (captures, directories), rebuild each call chain and print "
            "its legs in order (role, trunk, Call-ID, attempt, final status) and its "
            "failovers (cause, latency). Exit 0 when no error finding exists, 1 when one "
            "does, 2 on unusable input or usage."
        ),
    )
    rec.add_argument("sources", nargs="+", metavar="SOURCE", help="a capture file or a directory")
    rec.add_argument("--trunks", metavar="FILE", help="TOML file: [trunks] name = [addresses]")
    rec.add_argument("--policy", metavar="FILE", help="compliance policy (TOML)")
    rec.add_argument("--cdr", metavar="FILE", help="CDR export to reconcile against")
    rec.add_argument("--json", metavar="OUT", help="also write the JSON document (docs/schema) to OUT")
    exp = sub.add_parser(
        "export",
        help="write the messages of sources as sipchain export records (NDJSON)",
        description=(
            "Read the sources and write every SIP message, time-ordered, as one NDJSON "
            "record: its exact bytes, time, hops, metadata and original provenance "
            "(docs/schema/export-record-1.json). Loading the file back gives the same messages."
        ),
    )
    exp.add_argument("sources", nargs="+", metavar="SOURCE", help="a capture, export or directory")
    exp.add_argument("-o", "--output", metavar="OUT", required=True, help="the NDJSON file to write")
    return parser


def _version() -> str:
    try:
        return metadata.version("sipchain")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


# --------------------------------------------------------------------------
# sipchain messages
# --------------------------------------------------------------------------


def _cmd_messages(paths: Sequence[str], *, out: TextIO, err: TextIO) -> int:
    from sipchain import parse_message
    from sipchain.errors import SipChainError

    try:
        files = expand_paths(paths)
        loaded = [(path, _read(path)) for path in files]
    except InputError as exc:
        print(f"{PROG}: {exc}", file=err)
        return EXIT_USAGE

    rows: list[tuple[str, ...]] = []
    for number, (path, data) in enumerate(loaded, start=1):
        try:
            message = parse_message(data)
        except SipChainError as exc:
            print(f"{PROG}: {path}: not a SIP message: {exc}", file=err)
            return EXIT_USAGE
        rows.append(message_row(number, path.name, message))
    out.write(format_table(MESSAGE_COLUMNS, rows))
    return EXIT_OK


def expand_paths(paths: Iterable[str]) -> list[Path]:
    """Turn command-line paths into the list of files to read, in order.

    A file stands for itself; a directory for its regular files sorted by name,
    without ``README*`` files, dotfiles and subdirectories. Raises
    :class:`InputError` for a path that does not exist or cannot be listed.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            try:
                entries = sorted(path.iterdir(), key=lambda p: p.name)
            except OSError as exc:
                raise InputError(raw, exc.strerror or str(exc)) from exc
            files.extend(p for p in entries if _is_message_file(p))
        elif path.exists():
            files.append(path)
        else:
            raise InputError(raw, "no such file or directory")
    return files


def _is_message_file(path: Path) -> bool:
    name = path.name
    return not name.startswith(".") and not name.upper().startswith("README") and path.is_file()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(str(path), exc.strerror or str(exc)) from exc


def message_row(number: int, name: str, message: SipMessage) -> tuple[str, ...]:
    """One table row for ``message``, in the order of :data:`MESSAGE_COLUMNS`."""
    if message.method is not None:
        kind = message.method
    else:
        kind = " ".join(str(part) for part in (message.status, message.reason) if part is not None)
    cseq = message.cseq
    return (
        str(number),
        name,
        _cell(kind),
        _cell(message.call_id),
        _cell(f"{cseq.number} {cseq.method}" if cseq is not None else None),
        _cell(message.from_tag),
        _cell(message.to_tag),
        _cell(message.branch),
        str(len(message.defects)),
    )


def _cell(value: str | None) -> str:
    """A printable cell: absent or empty values become ``-``, whitespace runs one space."""
    if not value:
        return MISSING
    text = " ".join(value.split())
    return text or MISSING


def format_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render a fixed-width text table: a title line, a rule, then one line per row.

    Columns are left-aligned and separated by :data:`COLUMN_GAP`; trailing spaces
    are stripped. The result ends with a newline.
    """
    widths = [len(title) for title in columns]
    for row in rows:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))

    def line(values: Sequence[str]) -> str:
        return COLUMN_GAP.join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    lines = [line(columns), line(["-" * w for w in widths])]
    lines.extend(line(row) for row in rows)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# sipchain reconstruct
# --------------------------------------------------------------------------


def _cmd_reconstruct(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    from sipchain import reconstruct
    from sipchain.errors import SipChainError

    try:
        result = reconstruct(args.sources, trunks=args.trunks, policy=args.policy, cdr=args.cdr)
    except SipChainError as exc:
        print(f"{PROG}: {exc}", file=err)
        return EXIT_USAGE
    out.write(format_reconstruction(result))
    if args.json:
        try:
            Path(args.json).write_text(result.to_json(), encoding="utf-8")
        except OSError as exc:
            print(f"{PROG}: cannot write {args.json!r}: {exc.strerror or exc}", file=err)
            return EXIT_USAGE
    errors = [f for f in result.findings if getattr(f, "severity", "") == "error"]
    return 1 if errors else EXIT_OK


def _ms(ns: int) -> str:
    return f"{ns / 1_000_000:.1f} ms"


def _clock(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]


def format_reconstruction(result: Reconstruction) -> str:
    """Each chain: its legs in order, its failovers, then a summary line."""
    lines: list[str] = []
    for chain in result.chains:
        status = f" {chain.final_status}" if chain.final_status is not None else ""
        lines.append(f"chain {chain.chain_id}: {chain.outcome}{status}, {len(chain.legs)} legs")
        rows = []
        for leg in chain.legs:
            frame = leg.invite.provenance.frame if leg.invite is not None and leg.invite.provenance else None
            rows.append(
                (
                    leg.role,
                    _cell(str(leg.attempt) if leg.attempt is not None else None),
                    _cell(leg.trunk),
                    _cell(leg.call_id),
                    _clock(leg.started_ns),
                    _cell(str(leg.final_status) if leg.final_status is not None else None),
                    leg.end,
                    _cell(str(frame) if frame is not None else "no INVITE"),
                    str(len(leg.messages)),
                )
            )
        table = format_table(
            ("role", "attempt", "trunk", "Call-ID", "INVITE at", "final", "end", "INVITE frame", "messages"), rows
        )
        lines += ["  " + line for line in table.rstrip("\n").split("\n")]
        for fo in chain.failovers:
            lines.append(
                f"  failover to attempt {fo.attempt}: {fo.cause} on {fo.original_trunk_id or '-'}, "
                f"next INVITE {_ms(fo.latency_ns)} later"
            )
        rules = sorted({link.rule for link in chain.links})
        if rules:
            lines.append(f"  linked by: {', '.join(rules)}")
        lines.append("")
    for finding in result.findings:
        lines.append(f"{finding.severity.upper()} {finding.rule} (chain {finding.chain_id}): {finding.message}")
    if result.findings:
        lines.append("")
    other = sum(len(o.messages) for o in result.other)
    lines.append(
        f"{len(result.chains)} chains, {sum(len(c.legs) for c in result.chains)} legs, "
        f"{sum(len(c.failovers) for c in result.chains)} failovers; {len(result.messages)} messages, "
        f"{other} outside calls, {len(result.unlinked)} unlinked; {len(result.findings)} findings"
    )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# sipchain export
# --------------------------------------------------------------------------


def _cmd_export(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    from sipchain import load
    from sipchain.errors import SipChainError
    from sipchain.sources._export import write_export

    try:
        trace = load(args.sources)
    except SipChainError as exc:
        print(f"{PROG}: {exc}", file=err)
        return EXIT_USAGE
    try:
        with Path(args.output).open("w", encoding="ascii", newline="\n") as f:
            n = write_export(trace.messages, f)
    except OSError as exc:
        print(f"{PROG}: cannot write {args.output!r}: {exc.strerror or exc}", file=err)
        return EXIT_USAGE
    out.write(f"{n} messages written to {args.output}\n")
    return EXIT_OK
