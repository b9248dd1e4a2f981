"""``sdv profile init``: a starting vehicle profile from one or several DBC files.

Invariants:

* every signal of every DBC file given is in the profile, or the command fails: nothing is dropped silently;
* several files go on one bus (``--bus NAME`` once, or not at all) or on one bus each (``--bus NAME`` once per
  ``--dbc``, in order); files on one bus must not share a frame id or a message name, as the profile check
  requires, and are refused naming both files otherwise;
* a signal path two buses would both produce (``<Message>.<Signal>``) takes the bus name in front for the later
  one (``<bus>.<Message>.<Signal>``), so every path names one source;
* with ``--vss`` the profile and its overlay are written only once the written profile checks clean.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sdv.errors import CatalogueError, ProfileError, SdvError
from sdv.hal.codec import MessageCodec
from sdv.hal.codec_cantools import codec_from_cantools
from sdv.hal.dbc import load_dbc
from sdv.hal.profile import VSS_PATH
from sdv.hal.vehicle import vehicle_from_text
from sdv.hal.vss_match import OverlayLeaf, VssIndex, dbc_datatype, overlay_document, vss_unit
from sdv.vss import load_catalogue

__all__ = ["InitBus", "register", "starting_profile"]

_INIT_HEADER = (
    "# Starting profile written by `sdv profile init`: rename paths to VSS, set kinds, units and ranges.\n"
)
_VSS_HEADER = (
    "# Starting profile written by `sdv profile init --vss`: signals whose names match one VSS leaf take its path,\n"
    "# kind and datatype; the others live under {branch}, described by the overlay {overlay}.\n"
    "# Check it with: sdv profile check {vss} --vss {overlay} {output}\n"
)
_DEFAULT_BUS = "can0"


@dataclass(frozen=True)
class InitBus:
    """One bus of the profile to write.

    Attributes:
        name: the bus name.
        interface: the python-can interface.
        channel: the python-can channel.
        dbcs: each DBC file as read and as the profile names it (relative to the profile where it can be).
    """

    name: str
    interface: str
    channel: str
    dbcs: tuple[tuple[Path, str], ...]


def register(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    vss_option: Callable[[argparse.ArgumentParser, str], None],
) -> None:
    """Add ``profile init`` to the ``sdv profile`` parser."""
    init = actions.add_parser("init", help="write a starting profile from DBC files")
    init.add_argument(
        "--dbc",
        required=True,
        action="append",
        type=Path,
        metavar="FILE",
        help="DBC file; repeat for several (one bus for all, or one --bus per file)",
    )
    init.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here instead of standard output"
    )
    init.add_argument(
        "--bus",
        action="append",
        metavar="NAME",
        help=f"bus name (default {_DEFAULT_BUS}); once per --dbc, in order, for a bus per file",
    )
    init.add_argument("--interface", default="socketcan", help="python-can interface (default socketcan)")
    init.add_argument(
        "--channel",
        action="append",
        metavar="CHANNEL",
        help="python-can channel (default: the bus name); once per --bus",
    )
    vss_option(
        init,
        "map DBC signals onto this VSS catalogue's leaves by name (repeat for overlays); needs -o: the others go "
        "under --branch in an overlay file",
    )
    init.add_argument(
        "--branch",
        default="Vehicle.SDV",
        help="with --vss: the overlay branch of the signals VSS does not have (default Vehicle.SDV)",
    )
    init.add_argument(
        "--overlay",
        type=Path,
        metavar="FILE",
        help="with --vss: where the overlay goes (default: OUTPUT_overlay.json next to the output)",
    )
    init.set_defaults(handler=_profile_init)


def _init_buses(args: argparse.Namespace) -> list[InitBus]:
    """The buses the flags ask for.

    Raises:
        SdvError: the numbers of ``--bus``, ``--channel`` and ``--dbc`` do not fit, or a bus name repeats.
    """
    dbcs: list[Path] = args.dbc
    names: list[str] = args.bus or [_DEFAULT_BUS]
    channels: list[str] = args.channel or []
    if len(names) not in (1, len(dbcs)):
        raise SdvError(
            f"{len(dbcs)} --dbc files and {len(names)} --bus names: give one --bus for all files, or one per file"
        )
    if len(set(names)) != len(names):
        raise SdvError(f"--bus names repeat ({', '.join(names)}): each file's bus needs its own name")
    if channels and len(channels) != len(names):
        raise SdvError(f"{len(names)} buses and {len(channels)} --channel values: give one per bus, or none")
    written = [(dbc, _written_path(dbc, args.output)) for dbc in dbcs]
    groups = [written] if len(names) == 1 else [[item] for item in written]
    return [
        InitBus(name, args.interface, channels[index] if channels else name, tuple(groups[index]))
        for index, name in enumerate(names)
    ]


def _written_path(dbc: Path, output: Path | None) -> str:
    """The DBC file as the profile names it: relative to the profile's folder where that finds it."""
    if output is None:
        return str(dbc)
    folder = output.resolve().parent
    relative = _relative(dbc.resolve(), folder)
    return relative if (folder / relative).is_file() else str(dbc.resolve())


def starting_profile(
    buses: Sequence[InitBus],
    *,
    index: VssIndex | None = None,
    branch: str = "",
    refused: frozenset[tuple[str, str, str]] = frozenset(),
) -> tuple[dict[str, Any], list[OverlayLeaf]]:
    """A profile of every signal of the buses' DBC files, and the overlay leaves of those not in a VSS catalogue.

    Without ``index`` every signal becomes the sensor ``<Message>.<Signal>``. With it, a signal whose name matches
    one leaf (:mod:`sdv.hal.vss_match`) takes that leaf's path, kind and datatype, unless its (bus, message,
    signal) is in ``refused``; every other signal becomes the sensor ``<branch>.<Message>.<Signal>`` of the
    overlay. A path an earlier bus already produced takes the bus name after the branch.

    Raises:
        DbcError: a file does not load.
        SdvError: two files on one bus share a frame id or a message name.
    """
    signals: list[dict[str, Any]] = []
    overlay: list[OverlayLeaf] = []
    taken: set[str] = set()
    entries: list[dict[str, Any]] = []
    for bus in buses:
        codecs, fd = _bus_codecs(bus)
        entries.append(
            {"name": bus.name, "interface": bus.interface, "channel": bus.channel, "fd": fd}
            | {"dbc": [written for _, written in bus.dbcs]}
        )
        for codec in codecs:
            for layout in codec.signals:
                found = index.match(codec.name, layout) if index is not None else None
                source = (bus.name, codec.name, layout.name)
                if found is not None and (found.node.path in taken or source in refused):
                    found = None  # a leaf has one source; the first signal in message order keeps it
                entry: dict[str, Any]
                if found is not None and found.node.datatype is not None:
                    node = found.node
                    taken.add(node.path)
                    entry = {"path": node.path, "kind": node.kind, "datatype": node.datatype}
                    if node.unit:
                        entry["unit"] = node.unit
                    if found.rounding:
                        entry["rounding"] = "round"
                else:
                    # Without a branch the message name leads the path, and a VSS path starts with a letter
                    # or "_": a name such as 2017_5 leads as _2017_5 (its source keeps the written name).
                    prefix = f"{branch}." if index is not None else "_" if codec.name[0].isdigit() else ""
                    path = f"{prefix}{codec.name}.{layout.name}"
                    if path in taken:
                        path = f"{prefix}{bus.name}.{codec.name}.{layout.name}"
                    taken.add(path)
                    entry = {"path": path, "kind": "sensor", "datatype": dbc_datatype(layout)}
                    unit = vss_unit(layout.unit) if index is not None else layout.unit
                    if unit:
                        entry["unit"] = unit
                    if index is not None:
                        allowed = tuple(dict.fromkeys(layout.choices.values())) if layout.choices else None
                        overlay.append(
                            OverlayLeaf(path, entry["datatype"], unit, layout.comment or "", allowed)
                        )
                if layout.comment:
                    entry["description"] = layout.comment
                entry["source"] = {"bus": bus.name, "message": codec.name, "signal": layout.name}
                signals.append(entry)
    profile = {"name": buses[0].dbcs[0][0].stem, "buses": entries, "signals": signals}
    return profile, overlay


def _bus_codecs(bus: InitBus) -> tuple[list[MessageCodec], bool]:
    """The messages of a bus's DBC files in name order, and whether the bus needs CAN FD."""
    by_id: dict[tuple[int, bool], Path] = {}
    by_name: dict[str, Path] = {}
    codecs: list[MessageCodec] = []
    fd = False
    for dbc, _ in bus.dbcs:
        loaded = load_dbc(dbc)
        fd = fd or any(message.is_fd or message.length > 8 for message in loaded.database.messages)
        for message in loaded.database.messages:
            codec = codec_from_cantools(message)
            key = (codec.frame_id, codec.is_extended)
            clash = by_id.get(key) or by_name.get(codec.name)
            if clash is not None:
                raise SdvError(
                    f"{dbc}: message {codec.name} (frame id 0x{codec.frame_id:X}) clashes with {clash} on bus "
                    f"{bus.name}: give each file its own bus (--bus NAME once per --dbc)"
                )
            by_id[key] = by_name[codec.name] = dbc
            codecs.append(codec)
    return sorted(codecs, key=lambda codec: codec.name), fd


def _summary(profile: dict[str, Any]) -> str:
    counts = {bus["name"]: 0 for bus in profile["buses"]}
    for signal in profile["signals"]:
        counts[signal["source"]["bus"]] += 1
    per_bus = ", ".join(
        f"{counts[bus['name']]} on bus {bus['name']} from {' + '.join(Path(dbc).name for dbc in bus['dbc'])}"
        for bus in profile["buses"]
    )
    return f"{len(profile['signals'])} signals ({per_bus})"


def _profile_init(args: argparse.Namespace) -> int:
    buses = _init_buses(args)
    if args.output is not None and not args.output.resolve().parent.is_dir():
        print(f"sdv profile init: {args.output.parent} is not a directory", file=sys.stderr)
        return 2
    if args.vss:
        return _profile_init_vss(args, buses)
    profile, _ = starting_profile(buses)
    text = _INIT_HEADER + yaml.safe_dump(profile, sort_keys=False, allow_unicode=True, width=120)
    if args.output is None:
        sys.stdout.write(text)
        print(f"sdv profile init: {_summary(profile)}", file=sys.stderr)
    else:
        _write_atomically(args.output, text)
        print(f"wrote {args.output}: {_summary(profile)}", file=sys.stderr)
    return 0


def _profile_init_vss(args: argparse.Namespace, buses: Sequence[InitBus]) -> int:
    """``profile init --vss``: the profile and its overlay, written only once the profile checks clean."""
    if args.output is None:
        print("sdv profile init: --vss needs -o FILE (the overlay is written next to it)", file=sys.stderr)
        return 2
    if not VSS_PATH.match(args.branch):
        print(
            f"sdv profile init: --branch {args.branch!r} is not a dotted VSS path such as Vehicle.Own",
            file=sys.stderr,
        )
        return 2
    output: Path = args.output
    overlay_file: Path = args.overlay or output.with_name(f"{output.stem}_overlay.json")
    for written in (output, overlay_file):
        if not written.resolve().parent.is_dir():
            print(f"sdv profile init: {written.parent} is not a directory", file=sys.stderr)
            return 2
    try:
        catalogue = load_catalogue(args.vss)
    except CatalogueError as error:
        print(f"sdv profile init: the VSS catalogue does not load: {error}", file=sys.stderr)
        return 1
    if args.branch in catalogue or any(path.startswith(args.branch + ".") for path in catalogue.nodes):
        print(
            f"sdv profile init: --branch {args.branch} is in the VSS catalogue; choose a branch of your own",
            file=sys.stderr,
        )
        return 2
    index = VssIndex(catalogue)
    refused: frozenset[tuple[str, str, str]] = frozenset()
    names = " and ".join(dbc.name for dbc in args.dbc)
    while True:  # each round takes at least one match back, so this ends
        profile, leaves = starting_profile(buses, index=index, branch=args.branch, refused=refused)
        document = overlay_document(
            leaves, {args.branch: f"Signals of {names} that the VSS catalogue does not define."}
        )
        header = _VSS_HEADER.format(
            branch=args.branch,
            overlay=overlay_file.name,
            vss=" ".join(f"--vss {path}" for path in args.vss),
            output=output.name,
        )
        text = header + yaml.safe_dump(profile, sort_keys=False, allow_unicode=True, width=120)
        problems = _init_problems(text, output, document, overlay_file, args.vss)
        if not problems:
            break
        back = {source for problem in problems if (source := _matched_source(profile, problem, args.branch))}
        if not back:
            shown = problems[0] if isinstance(problems[0], str) else f"signals[{problems[0]}]"
            print(f"sdv profile init: the written profile would not check: {shown}", file=sys.stderr)
            return 1
        refused |= back
    _write_atomically(overlay_file, json.dumps(document, indent=2) + "\n")
    _write_atomically(output, text)
    matched = len(profile["signals"]) - len(leaves)
    print(
        f"wrote {output}: {_summary(profile)}, {matched} on VSS paths, {len(leaves)} under "
        f"{args.branch} in {overlay_file}",
        file=sys.stderr,
    )
    return 0


def _init_problems(
    text: str, output: Path, document: dict[str, Any], overlay_file: Path, vss: Sequence[Path]
) -> list[int | str]:
    """The signal indices of the problems of the written profile (a string for a problem of no signal)."""
    with tempfile.TemporaryDirectory() as scratch:
        overlay = Path(scratch) / overlay_file.name
        overlay.write_text(json.dumps(document), encoding="utf-8")
        try:
            vehicle_from_text(text, str(output), catalogue=load_catalogue([*vss, overlay]))
        except (ProfileError, CatalogueError) as error:
            found: list[int | str] = []
            for problem in error.problems:
                signal = _SIGNAL_INDEX.search(problem.location)
                found.append(int(signal[1]) if signal else str(problem))
            return found
    return []


_SIGNAL_INDEX = re.compile(r"\bsignals\[(\d+)\]")


def _matched_source(profile: dict[str, Any], problem: int | str, branch: str) -> tuple[str, str, str] | None:
    """The (bus, message, signal) of a signal matched onto VSS that has a problem; None for an overlay signal or
    a problem of no signal."""
    if isinstance(problem, str):
        return None
    entry = profile["signals"][problem]
    if entry["path"].startswith(branch + "."):
        return None
    source = entry["source"]
    return source["bus"], source["message"], source["signal"]


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, fsync, then replace ``path`` with it."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.resolve().parent, delete=False, prefix=f".{path.name}."
    ) as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def _relative(path: Path, start: Path) -> str:
    try:
        return str(path.relative_to(start))
    except ValueError:
        return os.path.relpath(path, start)
