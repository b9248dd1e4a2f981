"""``sdv codegen``: a typed Python vehicle model from a vehicle profile, in the spirit of Velocitas' generator.

The generator is pure: :func:`generate_model` takes signal descriptions and returns the module's source text;
:func:`write_model` loads nothing and writes the package atomically. The generated module has one class per VSS
branch (named after its path: ``Vehicle.Body.Lights`` is ``BodyLights``, the root ``Vehicle`` is
``VehicleModel``) whose attributes are child branches and :class:`~sdv.sdk.model.Signal` /
:class:`~sdv.sdk.model.Actuator` leaves typed by datatype, so that mypy checks app code against the vehicle.

Invariants:

* The output depends only on the signals and the source name: generating twice gives the same bytes.
* The output passes ``ruff check``, ``ruff format --check`` and ``mypy --strict``.
* A profile whose paths cannot become Python names (a part that is not an identifier, a signal that is also a
  branch, two branches with the same class name) is refused with a :class:`~sdv.errors.ProfileError` naming the
  path; a part that is a Python keyword (``None``, ``True``) gets a trailing underscore.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sdv.errors import Problem, ProfileError
from sdv.files import write_atomically
from sdv.sdk.values import PYTHON_TYPES

if TYPE_CHECKING:
    from sdv.hal.vehicle import VehicleDefinition

__all__ = ["LeafSpec", "generate_model", "leaves_of", "write_model"]

_RESERVED = frozenset({"Actuator", "Branch", "Signal", "Vehicle", "annotations"})
_BRANCH_ATTRIBUTES = frozenset({"vehicle", "path"})


@dataclass(frozen=True)
class LeafSpec:
    """What the generator needs of one signal (a profile signal or broker metadata have these fields).

    ``read_only`` marks an actuator that takes no requests (one the HAL only reads): it is generated as a
    ``Signal``, without ``set``, so that mypy refuses a request the server would refuse.
    """

    path: str
    kind: str
    datatype: str
    unit: str | None = None
    description: str = ""
    read_only: bool = False


def leaves_of(vehicle: VehicleDefinition) -> list[LeafSpec]:
    """The leaves of a vehicle profile's signals, in profile order."""
    return [
        LeafSpec(
            signal.path,
            signal.kind,
            signal.datatype,
            signal.unit,
            signal.description,
            read_only=signal.read_only_actuator,
        )
        for signal in vehicle.signals.values()
    ]


@dataclass
class _Node:
    path: str
    children: dict[str, _Node | LeafSpec] = field(default_factory=dict)


def _literal(text: str | None) -> str:
    # A double-quoted Python string (JSON's escapes are Python's), as ruff format writes it.
    return "None" if text is None else json.dumps(text, ensure_ascii=False)


def _member(part: str) -> str:
    return f"{part}_" if keyword.iskeyword(part) else part


def _class_name(path: str) -> str:
    root, *rest = path.split(".")
    if not rest:
        return f"{root}Model"
    return _member(("" if root == "Vehicle" else root) + "".join(rest))


def _tree(leaves: Iterable[LeafSpec], source: str) -> dict[str, _Node]:
    roots: dict[str, _Node] = {}
    problems: list[Problem] = []
    for leaf in leaves:
        parts = leaf.path.split(".")
        if len(parts) < 2 or not all(part.isidentifier() for part in parts):
            problems.append(Problem(source, leaf.path, "every part of the path must be a Python identifier"))
            continue
        if leaf.datatype not in PYTHON_TYPES:
            problems.append(Problem(source, leaf.path, f"datatype {leaf.datatype!r} has no Python type"))
            continue
        node = roots.setdefault(parts[0], _Node(parts[0]))
        for depth, part in enumerate(parts[1:-1], start=2):
            child = node.children.setdefault(part, _Node(".".join(parts[:depth])))
            if isinstance(child, LeafSpec):
                problems.append(Problem(source, leaf.path, f"{child.path} is a signal, not a branch"))
                break
            node = child
        else:
            if parts[-1] in node.children:
                problems.append(Problem(source, leaf.path, "is both a branch and a signal, or listed twice"))
            elif parts[-1] in _BRANCH_ATTRIBUTES:
                problems.append(Problem(source, leaf.path, f"{parts[-1]!r} is reserved in generated models"))
            else:
                node.children[parts[-1]] = leaf
    if problems:
        raise ProfileError(problems)
    return roots


def _branches(node: _Node) -> list[_Node]:
    """Every branch under ``node``, children before parents (each class is defined before it is used)."""
    found: list[_Node] = []
    for child in node.children.values():
        if isinstance(child, _Node):
            found.extend(_branches(child))
    found.append(node)
    return found


def _leaf_lines(name: str, leaf: LeafSpec) -> list[str]:
    python_type = PYTHON_TYPES[leaf.datatype].__name__
    factory = "Actuator" if leaf.kind == "actuator" and not leaf.read_only else "Signal"
    lines = [
        f"        self.{_member(name)}: {factory}[{python_type}] = {factory}(",
        "            vehicle,",
        f"            {_literal(leaf.path)},",
        f"            datatype={_literal(leaf.datatype)},",
        f"            unit={_literal(leaf.unit)},",
        f"            kind={_literal(leaf.kind)},",
    ]
    if leaf.description:
        lines.append(f"            description={_literal(leaf.description)},")
    lines.append("        )")
    return lines


def _class_lines(node: _Node) -> list[str]:
    lines = [
        f"class {_class_name(node.path)}(Branch):",
        f'    """``{node.path}``."""',
        "",
        "    def __init__(self, vehicle: Vehicle) -> None:",
        f"        super().__init__(vehicle, {_literal(node.path)})",
    ]
    for name, child in node.children.items():
        if isinstance(child, _Node):
            lines.append(f"        self.{_member(name)} = {_class_name(child.path)}(vehicle)")
        else:
            lines.extend(_leaf_lines(name, child))
    return lines


def generate_model(leaves: Iterable[LeafSpec], *, source: str) -> str:
    """The source text of a vehicle model module.

    Args:
        leaves: the signals, in the order their attributes should appear.
        source: the profile's name, quoted in the module docstring and in errors.

    Raises:
        ProfileError: paths that cannot become Python names (every problem at once).
    """
    roots = _tree(leaves, source)
    branches = [branch for root in roots.values() for branch in _branches(root)]
    names = [_class_name(branch.path) for branch in branches]
    clashes = sorted({name for name in names if names.count(name) > 1 or name in _RESERVED})
    if clashes:
        raise ProfileError(
            [
                Problem(
                    source, branch.path, f"class name {_class_name(branch.path)} is used twice or reserved"
                )
                for branch in branches
                if _class_name(branch.path) in clashes
            ]
        )
    exported = sorted(_class_name(root.path) for root in roots.values())
    example = "VehicleModel" if "Vehicle" in roots else exported[0] if exported else "VehicleModel"
    lines = [
        f'"""Vehicle model of {source}, generated by ``sdv codegen``: do not edit, generate again.',
        "",
        "Usage::",
        "",
        '    async with sdv.connect("127.0.0.1:55555") as vehicle:',
        f"        model = {example}(vehicle)",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from sdv.sdk.model import Actuator, Branch, Signal",
        "from sdv.sdk.vehicle import Vehicle",
        "",
        f"__all__ = [{', '.join(_literal(name) for name in exported)}]",
    ]
    for branch in branches:
        lines.extend(["", "", *_class_lines(branch)])
    return "\n".join(lines) + "\n"


def write_model(
    leaves: Iterable[LeafSpec], directory: Path, *, source: str, package: str = "vehicle_model"
) -> Path:
    """Write the model as the package ``directory/package`` (``__init__.py`` and ``py.typed``).

    Args:
        leaves: the signals.
        directory: where the package directory goes (created if missing).
        source: the profile's name, quoted in the module docstring.
        package: the package name, a Python identifier.

    Returns:
        The package directory.

    Raises:
        ProfileError: paths that cannot become Python names.
        ValueError: ``package`` is not a Python identifier.
    """
    if not package.isidentifier() or keyword.iskeyword(package):
        raise ValueError(f"package name {package!r} is not a Python identifier")
    text = generate_model(leaves, source=source)
    target = directory / package
    target.mkdir(parents=True, exist_ok=True)
    write_atomically(target / "__init__.py", text.encode())
    write_atomically(target / "py.typed", b"")
    return target
