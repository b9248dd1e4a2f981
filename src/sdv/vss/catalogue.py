"""The COVESA VSS catalogue: the signal tree as vss-tools exports it to JSON, overlays applied.

The input is the form the KUKSA databroker reads with ``--vss``: nested objects ``{"Vehicle": {"type": "branch",
"children": {...}}}`` whose nodes carry ``type``, ``datatype``, ``unit``, ``min``, ``max``, ``allowed``,
``default``, ``description``, ``comment``, ``deprecation`` and ``uuid``. Keys vss-tools adds for its own purposes
(``$file_name$``, ``fka``, ``arraysize``, ``pattern``, extended attributes) are accepted and ignored; a known key
with a value of the wrong type is refused.

Invariants of a loaded :class:`Catalogue`: every node has a kind; every leaf (sensor, actuator, attribute) has a
VSS datatype and no children; branches have no datatype, unit, range, allowed values or default; ``min <= max``;
integer ranges are integers that fit the datatype; allowed values and defaults are values of the datatype (each
element, for arrays), defaults lie within the range and the allowed values. Struct datatypes (VSS 4+ ``struct``
and ``property`` nodes, datatypes naming a struct) are refused with a message saying so: the broker has no struct
values.

Later files overlay earlier ones, as VSS overlays do: a node that exists already takes the fields the overlay
gives (it may omit ``type``), a node that does not exist is added and needs ``type``. The combined tree is
checked once every file is read, so an overlay may fix what it changes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

from sdv.errors import CatalogueError, Problem
from sdv.types.datatypes import DATATYPES, INTEGER_RANGES, Datatype, coerce
from sdv.vss.reader import CatalogueLimits, JsonObject, read_json

__all__ = [
    "KINDS",
    "VSS_DATATYPES",
    "Catalogue",
    "CatalogueLimits",
    "Kind",
    "VssNode",
    "load_catalogue",
    "split_datatype",
]

Kind = Literal["branch", "sensor", "actuator", "attribute"]
KINDS: tuple[str, ...] = get_args(Kind)
VSS_DATATYPES: tuple[str, ...] = (*DATATYPES, *(f"{name}[]" for name in DATATYPES))
Scalar = bool | int | float | str

_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_TEXT_FIELDS = ("unit", "description", "comment", "deprecation", "uuid")
_LEAF_ONLY = ("datatype", "unit", "min", "max", "allowed", "default")
_DATATYPE_TEXT = ", ".join(DATATYPES) + " (each also as an array, with [])"


@dataclass(frozen=True)
class VssNode:
    """One node of the catalogue, branches included.

    Attributes:
        path: the dotted path, ``Vehicle.Cabin.Door.Row1.DriverSide.IsOpen``.
        kind: ``branch``, ``sensor``, ``actuator`` or ``attribute``.
        datatype: the VSS datatype name as VSS spells it (``uint8``, ``float``, ``string[]``); None for branches.
        unit: the VSS unit (``km/h``), if any.
        min: the smallest allowed value, if any.
        max: the largest allowed value, if any.
        allowed: the allowed values, if restricted.
        default: the default value (a tuple for arrays), if any.
        description: the VSS description.
        comment: the VSS comment, if any.
        deprecation: the deprecation note, if any.
        uuid: the node's uuid, when the export has one (VSS 4.0 does, later exports not by default).
        source: the file the node comes from, ``a.json + overlay.json`` when an overlay changed it.
    """

    path: str
    kind: Kind
    datatype: str | None
    unit: str | None = None
    min: int | float | None = None
    max: int | float | None = None
    allowed: tuple[Scalar, ...] | None = None
    default: Scalar | tuple[Scalar, ...] | None = None
    description: str = ""
    comment: str | None = None
    deprecation: str | None = None
    uuid: str | None = None
    source: str = ""

    @property
    def is_leaf(self) -> bool:
        """Whether the node is a sensor, actuator or attribute."""
        return self.kind != "branch"

    @property
    def is_array(self) -> bool:
        """Whether the node's datatype is an array (``uint8[]``)."""
        return self.datatype is not None and self.datatype.endswith("[]")

    @property
    def element_datatype(self) -> Datatype | None:
        """The node's datatype as one of :data:`sdv.types.datatypes.DATATYPES` (the elements' for an array)."""
        return None if self.datatype is None else split_datatype(self.datatype)[0]


@dataclass(frozen=True, eq=False)
class Catalogue:
    """A loaded catalogue: every node by path, parents before their children, in file order."""

    nodes: Mapping[str, VssNode]
    files: tuple[str, ...] = field(default=())

    def leaves(self) -> Iterator[VssNode]:
        """The sensors, actuators and attributes, in file order."""
        return (node for node in self.nodes.values() if node.kind != "branch")

    def get(self, path: str) -> VssNode | None:
        """The node at ``path``, or None."""
        return self.nodes.get(path)

    def __contains__(self, path: object) -> bool:
        return path in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)


def split_datatype(datatype: str) -> tuple[Datatype, bool]:
    """``"uint8[]"`` → ``("uint8", True)``: the element datatype and whether it is an array.

    Raises:
        ValueError: when ``datatype`` is not one of :data:`VSS_DATATYPES`.
    """
    if datatype not in VSS_DATATYPES:
        raise ValueError(f"unknown VSS datatype {datatype!r}; expected one of {_DATATYPE_TEXT}")
    element = datatype.removesuffix("[]")
    return cast(Datatype, element), element != datatype


def load_catalogue(paths: Sequence[Path], *, limits: CatalogueLimits | None = None) -> Catalogue:
    """Load a catalogue from vss-tools JSON files, each later file an overlay of the earlier ones.

    Args:
        paths: the base catalogue, then the overlays, in order.
        limits: bounds on file size, depth, node count and string lengths (default :class:`CatalogueLimits`).

    Returns:
        The combined catalogue.

    Raises:
        CatalogueError: with every problem found (up to ``limits.max_problems``), each naming the file, the
            JSON path or line and column, and what was expected.
    """
    if not paths:
        raise CatalogueError([Problem("<catalogue>", "files", "no catalogue file given")])
    loader = _Loader(limits or CatalogueLimits())
    try:
        for path in paths:
            loader.add_file(Path(path))
        nodes = loader.finish()
    except _Stop:
        pass
    if loader.problems:
        raise CatalogueError(loader.problems)
    return Catalogue(MappingProxyType(nodes), tuple(str(path) for path in paths))


class _Stop(Exception):
    """Loading cannot go on (a limit was reached); the problems say why."""


@dataclass
class _Draft:
    """A node while files are read: its fields so far and where it was last given."""

    path: str
    fields: dict[str, Any]
    file: str
    json_path: str
    sources: list[str]
    children: dict[str, _Draft] = field(default_factory=dict)


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int | float):
        return repr(value)
    return "an object" if isinstance(value, dict) else "a list"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _Loader:
    """Reads files into a tree of drafts, then checks the combined tree into nodes."""

    def __init__(self, limits: CatalogueLimits) -> None:
        self.limits = limits
        self.problems: list[Problem] = []
        self.roots: dict[str, _Draft] = {}
        self.count = 0
        self.files_read = 0

    def report(self, file: str, location: str, message: str) -> None:
        self.problems.append(Problem(file, location, message))
        if len(self.problems) >= self.limits.max_problems:
            raise _Stop

    def add_file(self, path: Path) -> None:
        file = str(path)
        data = read_json(path, self.limits)
        if not isinstance(data, dict):
            self.report(
                file,
                "(top level)",
                f'expected an object of nodes such as {{"Vehicle": ...}}, got {_shown(data)}',
            )
            return
        self.walk(file, data, "", "", 1, self.roots)
        self.files_read += 1

    def walk(
        self,
        file: str,
        nodes: dict[str, Any],
        parent: str,
        json_prefix: str,
        depth: int,
        siblings: dict[str, _Draft],
    ) -> None:
        where = json_prefix or "(top level)"
        for key in nodes.duplicates if isinstance(nodes, JsonObject) else ():
            self.report(file, where, f"node {key!r} is given twice; JSON keeps only the last, remove one")
        for name, value in nodes.items():
            json_path = f"{json_prefix}.{name}" if json_prefix else name
            path = f"{parent}.{name}" if parent else name
            if not _NAME.match(name) or len(name) > self.limits.max_name_chars:
                self.report(
                    file,
                    json_path,
                    f"node name {_shown(name)} must be 1 to {self.limits.max_name_chars} letters, digits or "
                    "underscores",
                )
            elif depth > self.limits.max_depth:
                self.report(
                    file, json_path, f"deeper than {self.limits.max_depth} levels (CatalogueLimits.max_depth)"
                )
            elif not isinstance(value, dict):
                self.report(file, json_path, f"expected a node (an object with 'type'), got {_shown(value)}")
            else:
                self.node(file, value, path, json_path, depth, siblings, name)

    def node(
        self,
        file: str,
        value: dict[str, Any],
        path: str,
        json_path: str,
        depth: int,
        siblings: dict[str, _Draft],
        name: str,
    ) -> None:
        for key in value.duplicates if isinstance(value, JsonObject) else ():
            self.report(file, json_path, f"key {key!r} is given twice; JSON keeps only the last, remove one")
        fields = self.fields(file, json_path, value)
        draft = siblings.get(name)
        if draft is None:
            if "type" not in value:
                hint = (
                    " (an overlay may omit it only for a node an earlier file has)" if self.files_read else ""
                )
                self.report(file, json_path, f"'type' is missing; expected one of {', '.join(KINDS)}{hint}")
            if "type" not in fields:
                return
            self.count += 1
            if self.count > self.limits.max_nodes:
                self.report(
                    file, json_path, f"more than {self.limits.max_nodes} nodes (CatalogueLimits.max_nodes)"
                )
                raise _Stop
            draft = siblings[name] = _Draft(path, fields, file, json_path, [file])
        else:
            draft.fields.update(fields)
            draft.file, draft.json_path = file, json_path
            if file not in draft.sources:
                draft.sources.append(file)
        children = value.get("children")
        if children is None:
            return
        if not isinstance(children, dict):
            self.report(
                file, json_path, f"'children' must be an object of nodes by name, got {_shown(children)}"
            )
            return
        self.walk(file, children, path, f"{json_path}.children", depth + 1, draft.children)

    def fields(self, file: str, json_path: str, node: Mapping[str, Any]) -> dict[str, Any]:
        """The known fields of ``node`` whose values have the right JSON type; the others are reported."""
        accepted: dict[str, Any] = {}
        for key, value in node.items():
            problem = self.field_problem(key, value)
            if problem:
                self.report(file, json_path, problem)
            elif key in ("type", "datatype", "min", "max", *_TEXT_FIELDS):
                accepted[key] = value
            elif key in ("allowed", "default"):
                accepted[key] = tuple(value) if isinstance(value, list) else value
        return accepted

    def field_problem(self, key: str, value: object) -> str | None:
        limits = self.limits
        if key == "type":
            if value in KINDS:
                return None
            hint = " (struct type definitions are not supported)" if value in ("struct", "property") else ""
            return f"'type' must be one of {', '.join(KINDS)}, got {_shown(value)}{hint}"
        if key == "datatype":
            if value in VSS_DATATYPES:
                return None
            hint = ""
            if isinstance(value, str) and ("." in value or value[:1].isupper()):
                hint = "; struct datatypes are not supported"
            return f"'datatype' must be one of {_DATATYPE_TEXT}, got {_shown(value)}{hint}"
        if key in _TEXT_FIELDS:
            if not isinstance(value, str):
                return f"{key!r} must be a string, got {_shown(value)}"
            if len(value) > limits.max_string_chars:
                return f"{key!r} is longer than {limits.max_string_chars} characters (CatalogueLimits.max_string_chars)"
            return None
        if key in ("min", "max"):
            return None if _is_number(value) else f"{key!r} must be a finite number, got {_shown(value)}"
        if key in ("allowed", "default"):
            if key == "allowed" and not isinstance(value, list):
                return f"'allowed' must be a list of values, got {_shown(value)}"
            items = value if isinstance(value, list) else [value]
            if len(items) > limits.max_allowed_values:
                return f"{key!r} has more than {limits.max_allowed_values} values (CatalogueLimits.max_allowed_values)"
            for item in items:
                if not isinstance(item, bool | int | float | str) or (
                    isinstance(item, float) and not math.isfinite(item)
                ):
                    return f"{key!r} values must be booleans, numbers or strings, got {_shown(item)}"
                if isinstance(item, str) and len(item) > limits.max_string_chars:
                    return f"{key!r} has a string longer than {limits.max_string_chars} characters"
        return None

    def finish(self) -> dict[str, VssNode]:
        """Check the combined tree and return its nodes, parents first, in file order."""
        nodes: dict[str, VssNode] = {}
        pending = list(reversed(self.roots.values()))
        while pending:
            draft = pending.pop()
            node = self.build(draft)
            if node is not None:
                nodes[node.path] = node
            pending.extend(reversed(draft.children.values()))
        return nodes

    def build(self, draft: _Draft) -> VssNode | None:
        fields = draft.fields
        kind = fields["type"]
        before = len(self.problems)

        def report(message: str) -> None:
            self.report(draft.file, draft.json_path, message)

        datatype: str | None = fields.get("datatype")
        if kind == "branch":
            for key in _LEAF_ONLY:
                if key in fields:
                    report(f"a branch takes no {key!r}; only sensors, actuators and attributes do")
        elif draft.children:
            report(f"a {kind} cannot have 'children'; only branches do")
        elif datatype is None:
            report(f"'datatype' is missing; a {kind} needs one of {_DATATYPE_TEXT}")
        else:
            for message in _value_problems(datatype, fields):
                report(message)
        if len(self.problems) > before:
            return None
        default = fields.get("default")
        return VssNode(
            path=draft.path,
            kind=kind,
            datatype=datatype,
            unit=fields.get("unit"),
            min=fields.get("min"),
            max=fields.get("max"),
            allowed=fields.get("allowed"),
            default=default,
            description=fields.get("description", ""),
            comment=fields.get("comment"),
            deprecation=fields.get("deprecation"),
            uuid=fields.get("uuid"),
            source=" + ".join(draft.sources),
        )


def _value_problems(datatype: str, fields: Mapping[str, Any]) -> Iterator[str]:
    """What is wrong with a leaf's range, allowed values and default for its datatype."""
    element, is_array = split_datatype(datatype)
    numeric = element in INTEGER_RANGES or element in ("float", "double")
    for key in ("min", "max"):
        bound = fields.get(key)
        if bound is None:
            continue
        if not numeric:
            yield f"{key!r} applies only to numeric datatypes, not {datatype}"
        elif element in INTEGER_RANGES:
            low, high = INTEGER_RANGES[element]
            if not float(bound).is_integer() or not low <= bound <= high:
                yield f"{key!r} {bound!r} is not a {element} value (an integer in [{low}, {high}])"
    low_bound, high_bound = fields.get("min"), fields.get("max")
    if numeric and low_bound is not None and high_bound is not None and low_bound > high_bound:
        yield f"'min' {low_bound!r} is above 'max' {high_bound!r}"
    allowed = fields.get("allowed")
    for item in allowed or ():
        problem = _element_problem(element, item)
        if problem:
            yield f"'allowed' value {item!r} is not a {element} value: {problem}"
    if "default" not in fields:
        return
    default = fields["default"]
    if is_array != isinstance(default, tuple):
        yield f"'default' must be {'a list' if is_array else 'a single value'} for {datatype}, got {_shown(default)}"
        return
    for item in default if isinstance(default, tuple) else (default,):
        problem = _element_problem(element, item)
        if problem:
            yield f"'default' {item!r} is not a {element} value: {problem}"
        elif allowed is not None and item not in allowed:
            yield f"'default' {item!r} is not one of the allowed values {list(allowed)}"
        elif numeric and (
            (low_bound is not None and item < low_bound) or (high_bound is not None and item > high_bound)
        ):
            yield f"'default' {item!r} is outside [{low_bound}, {high_bound}]"


def _element_problem(element: Datatype, value: object) -> str | None:
    try:
        coerce(element, value)
    except ValueError as error:
        return str(error)
    if element == "boolean" and not isinstance(value, bool):
        return f"expected true or false, got {value!r}"
    return None
