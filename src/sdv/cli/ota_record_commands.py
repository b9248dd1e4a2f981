"""The update agent's records: ``sdv ota report`` (signed ECU version reports) and ``sdv ota log`` (event log).

* ``report --agent HOST:PORT [--nonce N] [-o FILE] [--ecu-key PUB]``: the OTA server asks a running agent for its
  signed report (a fresh nonce unless given) and writes it, checking it on the spot with ``--ecu-key``;
* ``report verify FILE --ecu-key PUB --nonce N [--expect-counter C]``: the server checks a report;
* ``report nonce``: a fresh nonce; ``report key --config FILE [-o PUB]``: the agent's public key, for the
  server to trust (the key is created if the agent never started);
* ``log verify (--state-dir DIR | --config FILE)``: check the event log's chain; ``log show``: print its entries.

Exit codes: 0 on success; 1 when a report is refused or the event log's chain is broken (the first bad entry on
stderr); 2 for every other error (unreadable files, an agent that cannot be reached, no event log).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from sdv.cli.ota_refusals import EXIT_REFUSED, agent_client, counter_argument, refusing
from sdv.cli.security_options import add_connection_arguments
from sdv.errors import OtaError
from sdv.ota.agent.config import load_agent_config
from sdv.ota.agent.event_log import BundleSummary, EventEntry, EventKind
from sdv.ota.agent.event_store import check_state_directory, read_log
from sdv.ota.agent.records import ecu_key_path, load_or_create_ecu_key
from sdv.ota.agent.report import EcuReport, new_nonce, parse_signed_report, verify_report
from sdv.ota.agent.store import has_record, read_record
from sdv.ota.bundle.canonical import canonical_bytes, format_time
from sdv.ota.bundle.config import DEFAULT_LIMITS
from sdv.ota.bundle.store import load_public_key, read_limited, write_atomically
from sdv.ota.errors import EventLogError

__all__ = ["register"]


def _bundle_text(bundle: BundleSummary | None) -> str:
    if bundle is None:
        return "factory software"
    return f"{bundle.name} {bundle.version} (release counter {bundle.release_counter})"


# -- reports -------------------------------------------------------------------------------------------------------


def _print_report(report: EcuReport) -> None:
    print(
        f"ok: ECU {report.ecu_id} ({report.hardware_id}) runs {_bundle_text(report.installed)} "
        f"as of {format_time(report.time)}"
    )
    print(
        f"  state: {report.state}, active slot {report.active_slot}, trust root version {report.trust_root_version}"
    )
    for group in report.groups:
        bad = f", bad {' '.join(group.bad_slots)}" if group.bad_slots else ""
        floor = f", floor {group.counter_floor}" if group.counter_floor else ""
        print(
            f"  group {group.name}: active {group.active_slot}{bad}, {_bundle_text(group.installed)}, "
            f"counter {group.release_counter}{floor}"
        )
    for component in report.components:
        print(
            f"  {component.group}/{component.name}: sha256 {component.sha256}, "
            f"release counter {component.release_counter}"
        )
    result = report.last_result
    if result is not None:
        reason = f": {result.reason}" if result.reason else ""
        print(
            f"  last result: {result.outcome} {_bundle_text(result.bundle)}{reason} ({format_time(result.time)})"
        )
    if report.log_head is not None:
        print(f"  event log head: entry {report.log_head.seq}, hash {report.log_head.hash}")


def _report_fetch(args: argparse.Namespace) -> int:
    if not args.target:
        print("sdv ota report: give --agent HOST:PORT, or one of nonce, verify, key", file=sys.stderr)
        return 2
    nonce = args.nonce or new_nonce()
    with agent_client(args) as client:
        signed = client.report(nonce)
    document = canonical_bytes(signed)
    if args.ecu_key is not None:
        report = verify_report(signed, load_public_key(args.ecu_key), nonce=nonce, source=args.target)
        _print_report(report)
    if args.output is None:
        sys.stdout.write(document.decode("ascii") + "\n")
    else:
        write_atomically(args.output, document)
        print(f"report of ECU {signed.signed.ecu_id} for nonce {nonce} written to {args.output}")
    return 0


def _report_nonce(args: argparse.Namespace) -> int:
    print(new_nonce())
    return 0


def _report_verify(args: argparse.Namespace) -> int:
    data = read_limited(args.report, DEFAULT_LIMITS.max_report_bytes, "report")
    signed = parse_signed_report(data, str(args.report))
    report = verify_report(
        signed,
        load_public_key(args.ecu_key),
        nonce=args.nonce,
        source=str(args.report),
        expected_counter=args.expect_counter,
    )
    _print_report(report)
    return 0


def _report_key(args: argparse.Namespace) -> int:
    config = load_agent_config(args.config)
    key, created = load_or_create_ecu_key(ecu_key_path(config))
    public = key.public_key
    if args.output is None:
        sys.stdout.write(public.to_pem().decode("ascii"))
    else:
        write_atomically(args.output, public.to_pem())
        print(f"{public.type.value} key {public.keyid} written to {args.output}")
    if created:
        print(f"created the ECU key {public.keyid} in {ecu_key_path(config)}", file=sys.stderr)
    return 0


# -- the event log -------------------------------------------------------------------------------------------------


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        path: Path = args.state_dir
        return path
    return load_agent_config(args.config).state_dir


def _log_verify(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    try:
        found = check_state_directory(state_dir)
    except EventLogError as error:
        print(f"sdv ota log verify: bad entry: {error}", file=sys.stderr)
        return EXIT_REFUSED
    if found.head is None:
        print(f"ok: the event log in {state_dir} holds no entry")
        return 0
    first = found.entries[0].seq
    start = "from entry 0" if found.anchored else f"from entry {first} (older entries were rotated away)"
    print(f"ok: {len(found.entries)} entries {start} to {found.head.seq}, head {found.head.hash}")
    if found.torn:
        print(
            f"note: a torn last entry of {found.torn} bytes is ignored: power was lost while it was written, "
            "so it was never acknowledged (the agent drops it at its next start)"
        )
    if has_record(state_dir):
        state = read_record(state_dir).state
        last = found.entries[-1].state
        if last is state:
            print(f"the last entry agrees with state.json: {state}")
        else:
            print(
                f"note: the last entry records state {last}, state.json holds {state}: power was lost between "
                "the entry and the state change; the agent records its state at its next start"
            )
    return 0


def _entry_text(entry: EventEntry) -> str:
    parts = {
        EventKind.START: f"started in {entry.state}",
        EventKind.STATE: f"{entry.previous} -> {entry.state}",
        EventKind.REFUSED: f"refused to {entry.action} in {entry.state}",
        EventKind.TRUST: f"trust root version {entry.data.get('from_version')} -> {entry.data.get('to_version')}",
        EventKind.KEY: f"created the ECU key {entry.data.get('keyid')}",
        EventKind.CHECKPOINT: f"checkpoint in {entry.state}",
        EventKind.PRECONDITIONS: (
            f"vehicle check for {entry.data.get('step')}: {'met' if entry.data.get('met') else 'NOT met'}"
            f" ({entry.data.get('signals') or 'no signals read'})"
        ),
        EventKind.NOTICE: f"notice {entry.data.get('notice')} {entry.action}",
        EventKind.CONSENT: f"consent to notice {entry.data.get('notice')}: {entry.action or 'no answer'}",
        EventKind.SOFTWARE: f"software identification {entry.data.get('rxswin')} ({entry.data.get('version')})",
    }
    text = f"#{entry.seq} {format_time(entry.time)} {entry.event.value:<10} {parts[entry.event]}"
    if entry.outcome is not None:
        text += f" [{entry.outcome}]"
    if entry.bundle is not None:
        text += f"; {_bundle_text(entry.bundle)}"
    if entry.reason:
        text += f"; {entry.reason}"
    return text


def _log_show(args: argparse.Namespace) -> int:
    files = read_log(_state_dir(args))
    if not files:
        raise OtaError(f"{_state_dir(args)}: no event log")
    lines: list[str] = []
    for name, data in files:
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line:
                continue
            try:
                entry = EventEntry.model_validate_json(line)
            except ValidationError:
                lines.append(f"{name} line {number}: not a readable entry (sdv ota log verify tells more)")
                continue
            lines.append(line.decode("ascii") if args.json else _entry_text(entry))
    for text in lines[-args.last :] if args.last else lines:
        print(text)
    return 0


# -- parsers -------------------------------------------------------------------------------------------------------


def _add_report_parsers(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = group.add_parser(
        "report",
        help="signed ECU version reports: fetch one from an agent (--agent), verify, nonce, key",
    )
    report.add_argument(
        "--agent", "--target", dest="target", metavar="HOST[:PORT]", help="the ECU's update agent"
    )
    report.add_argument("--nonce", help="the nonce to send (default: a fresh one)")
    report.add_argument("--ecu-key", type=Path, help="check the report with the ECU's public key right away")
    report.add_argument("-o", "--output", type=Path, help="report file to write (default: standard output)")
    add_connection_arguments(report)
    report.set_defaults(handler=refusing("report", _report_fetch))
    commands = report.add_subparsers(dest="report_command", metavar="REPORT_COMMAND")

    nonce = commands.add_parser("nonce", help="server side: print a fresh nonce for a report request")
    nonce.set_defaults(handler=_report_nonce)

    check = commands.add_parser("verify", help="server side: check an ECU's report")
    check.add_argument("report", type=Path)
    check.add_argument("--ecu-key", type=Path, required=True, help="the ECU's public key")
    check.add_argument("--nonce", required=True, help="the nonce the server sent")
    check.add_argument(
        "--expect-counter", type=counter_argument, help="release counter the installed bundle should have"
    )
    check.set_defaults(handler=refusing("report verify", _report_verify))

    key = commands.add_parser("key", help="ECU side: the agent's public report key, for the server to trust")
    key.add_argument("--config", type=Path, required=True, help="the agent configuration")
    key.add_argument("-o", "--output", type=Path, help="public key file to write (default: standard output)")
    key.set_defaults(handler=_report_key)


def _add_log_parsers(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    log = group.add_parser("log", help="the update agent's hash-chained event log")
    commands = log.add_subparsers(dest="log_command", metavar="LOG_COMMAND", required=True)
    for name, help_text, handler in (
        ("verify", "check the chain; print the first bad entry", _log_verify),
        ("show", "print the entries", _log_show),
    ):
        parser = commands.add_parser(name, help=help_text)
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--state-dir", type=Path, help="the agent's state directory")
        where.add_argument("--config", type=Path, help="the agent configuration (its state directory)")
        if name == "show":
            parser.add_argument("--json", action="store_true", help="print the entries as they are stored")
            parser.add_argument("--last", type=int, default=0, metavar="N", help="only the last N entries")
        parser.set_defaults(handler=handler)


def register(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` and ``log`` to the ``sdv ota`` group."""
    _add_report_parsers(group)
    _add_log_parsers(group)
