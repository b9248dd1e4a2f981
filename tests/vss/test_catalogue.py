"""The VSS catalogue loader: the real COVESA releases, overlays, and one row per kind of malformed input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdv.errors import CatalogueError, SdvError
from sdv.vss import VSS_DATATYPES, CatalogueLimits, VssNode, load_catalogue, split_datatype
from tests.vss_files import RELEASES, vss_release

# Nodes and leaves of each release, counted from the files themselves.
COUNTS = {"4.0": (1197, 910), "5.1": (1669, 1321), "6.0": (1603, 1263)}


def raw_nodes(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, node in tree.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path, node
        yield from raw_nodes(node.get("children", {}), path)


@pytest.mark.parametrize("version", RELEASES)
def test_real_release_loads_with_every_field(version: str) -> None:
    file = vss_release(version)
    catalogue = load_catalogue([file])
    raw = dict(raw_nodes(json.loads(file.read_text(encoding="utf-8"))))
    assert (len(catalogue), sum(1 for _ in catalogue.leaves())) == COUNTS[version]
    assert list(catalogue.nodes) == list(raw)
    for path, node in catalogue.nodes.items():
        source = raw[path]
        assert node.kind == source["type"]
        assert node.datatype == source.get("datatype")
        assert node.unit == source.get("unit")
        assert (node.min, node.max) == (source.get("min"), source.get("max"))
        allowed = source.get("allowed")
        assert node.allowed == (tuple(allowed) if allowed is not None else None)
        default = source.get("default")
        assert node.default == (tuple(default) if isinstance(default, list) else default)
        assert node.description == source["description"]
        assert (node.comment, node.deprecation, node.uuid) == (
            source.get("comment"),
            source.get("deprecation"),
            source.get("uuid"),
        )
        assert node.source == str(file)
    for leaf in catalogue.leaves():
        assert leaf.kind in ("sensor", "actuator", "attribute")
        assert leaf.datatype in VSS_DATATYPES
        assert leaf.element_datatype == split_datatype(leaf.datatype)[0]


def test_lookups_and_arrays() -> None:
    catalogue = load_catalogue([vss_release("4.0")])
    speed = catalogue.get("Vehicle.Speed")
    assert speed is not None
    assert (speed.kind, speed.datatype, speed.unit, speed.is_array) == ("sensor", "float", "km/h", False)
    seats = catalogue.get("Vehicle.Cabin.SeatPosCount")
    assert seats is not None
    assert (seats.is_array, seats.element_datatype, seats.default) == (True, "uint8", (2, 3))
    branch = catalogue.get("Vehicle.Cabin")
    assert branch is not None
    assert (branch.kind, branch.datatype, branch.element_datatype, branch.is_leaf) == (
        "branch",
        None,
        None,
        False,
    )
    assert catalogue.get("Vehicle.Nothing") is None
    assert "Vehicle.Speed" in catalogue


def write(tmp_path: Path, name: str, content: str | bytes | object) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return path


def leaf(**fields: object) -> dict[str, object]:
    return {"type": "sensor", "datatype": "float", "description": "a test signal", **fields}


def tree(**children: object) -> dict[str, object]:
    return {"Vehicle": {"type": "branch", "description": "root", "children": children}}


def door(**fields: object) -> dict[str, object]:
    return tree(Cabin={"type": "branch", "description": "cabin", "children": {"Door": fields}})


def assert_refused(paths: list[Path], place: str, fragment: str) -> None:
    """Loading ``paths`` fails with a problem that starts with ``place`` (file: location) and says ``fragment``."""
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(paths)
    assert isinstance(caught.value, SdvError | ValueError)
    texts = [str(problem) for problem in caught.value.problems]
    assert any(text.startswith(place) and fragment in text for text in texts), texts


DEEP = "".join('{"N": {"type": "branch", "description": "", "children": ' for _ in range(40))

MALFORMED: list[tuple[str, str | bytes | object, str, str]] = [
    # (defect, file content, location, message fragment)
    (
        "wrong type value",
        door(**leaf(type="sensr")),
        "Vehicle.children.Cabin.children.Door",
        "'type' must be one of branch, sensor, actuator, attribute, got 'sensr'",
    ),
    ("type missing", tree(Speed={"datatype": "float"}), "Vehicle.children.Speed", "'type' is missing"),
    (
        "unknown datatype",
        tree(Speed=leaf(datatype="float64")),
        "Vehicle.children.Speed",
        "'datatype' must be one of boolean, int8",
    ),
    (
        "struct datatype",
        tree(Position=leaf(datatype="Types.Position")),
        "Vehicle.children.Position",
        "struct datatypes are not supported",
    ),
    ("struct node", tree(Types={"type": "struct"}), "Vehicle.children.Types", "struct type definitions"),
    ("datatype missing", tree(Speed={"type": "sensor"}), "Vehicle.children.Speed", "'datatype' is missing"),
    ("min above max", tree(Speed=leaf(min=10, max=5)), "Vehicle.children.Speed", "'min' 10 is above 'max' 5"),
    (
        "min not a number",
        tree(Speed=leaf(min="0")),
        "Vehicle.children.Speed",
        "'min' must be a finite number",
    ),
    (
        "min not finite",
        '{"Vehicle": {"type": "sensor", "datatype": "float", "min": NaN}}',
        "Vehicle",
        "finite",
    ),
    (
        "integer range outside the datatype",
        tree(Gear=leaf(datatype="uint8", max=300)),
        "Vehicle.children.Gear",
        "'max' 300 is not a uint8 value",
    ),
    (
        "range on a string",
        tree(Name=leaf(datatype="string", min=0)),
        "Vehicle.children.Name",
        "'min' applies only to numeric datatypes",
    ),
    (
        "allowed not a list",
        tree(Mode=leaf(datatype="string", allowed="ON")),
        "Vehicle.children.Mode",
        "'allowed' must be a list of values, got 'ON'",
    ),
    (
        "allowed value of another datatype",
        tree(Mode=leaf(datatype="uint8", allowed=[1, "two"])),
        "Vehicle.children.Mode",
        "'allowed' value 'two' is not a uint8 value",
    ),
    (
        "default not allowed",
        tree(Mode=leaf(datatype="string", allowed=["A", "B"], default="C")),
        "Vehicle.children.Mode",
        "'default' 'C' is not one of the allowed values",
    ),
    (
        "scalar default of an array",
        tree(Seats=leaf(datatype="uint8[]", default=2)),
        "Vehicle.children.Seats",
        "'default' must be a list for uint8[]",
    ),
    (
        "default outside the range",
        tree(Level=leaf(datatype="uint8", min=0, max=10, default=11)),
        "Vehicle.children.Level",
        "'default' 11 is outside [0, 10]",
    ),
    (
        "unit not a string",
        tree(Speed=leaf(unit=3)),
        "Vehicle.children.Speed",
        "'unit' must be a string, got 3",
    ),
    (
        "children not an object",
        tree(Cabin={"type": "branch", "children": ["Door"]}),
        "Vehicle.children.Cabin",
        "'children' must be an object of nodes by name, got a list",
    ),
    (
        "node not an object",
        tree(Speed="fast"),
        "Vehicle.children.Speed",
        "expected a node (an object with 'type'), got 'fast'",
    ),
    (
        "leaf with children",
        tree(Speed=leaf(children={"X": leaf()})),
        "Vehicle.children.Speed",
        "a sensor cannot have 'children'",
    ),
    (
        "branch with a datatype",
        tree(Cabin={"type": "branch", "datatype": "float"}),
        "Vehicle.children.Cabin",
        "a branch takes no 'datatype'",
    ),
    (
        "bad node name",
        tree(**{"Door-1": leaf()}),
        "Vehicle.children.Door-1",
        "letters, digits or underscores",
    ),
    (
        "duplicate node",
        '{"Vehicle": {"type": "branch", "children": {"Speed": {"type": "sensor", "datatype": "float"}, '
        '"Speed": {"type": "sensor", "datatype": "float"}}}}',
        "Vehicle.children",
        "node 'Speed' is given twice",
    ),
    (
        "duplicate key",
        '{"Vehicle": {"type": "branch", "type": "sensor"}}',
        "Vehicle",
        "key 'type' is given twice",
    ),
    ("depth bomb", DEEP + "{}" + "}}" * 40, "line 1, column", "JSON nested more than 72 levels deep"),
    ("list bomb", "[" * 100_000 + "]" * 100_000, "line 1, column 73", "JSON nested more than 72 levels deep"),
    ("top level not an object", "[1, 2]", "(top level)", "expected an object of nodes"),
    ("invalid JSON", '{\n  "Vehicle": {"type": "branch",}\n}', "line 2, column 32", "not valid JSON"),
    (
        "non-UTF-8",
        b'{"Vehicle": {"type": "branch",\n "description": "caf\xe9"}}',
        "line 2, column 21",
        "not UTF-8",
    ),
    (
        "huge integer",
        '{"Vehicle": {"type": "sensor", "datatype": "uint64", "max": ' + "9" * 5000 + "}}",
        "file",
        "not valid JSON",
    ),
]


@pytest.mark.parametrize(
    ("defect", "content", "location", "fragment"), MALFORMED, ids=[row[0] for row in MALFORMED]
)
def test_malformed_input_is_refused_with_file_and_place(
    tmp_path: Path, defect: str, content: object, location: str, fragment: str
) -> None:
    path = write(tmp_path, "bad.json", content)
    assert_refused([path], f"{path}: {location}", fragment)


def test_limits_bound_size_nodes_depth_and_strings(tmp_path: Path) -> None:
    release = vss_release("4.0")
    cases = [
        (CatalogueLimits(max_file_bytes=100_000), "larger than the limit of 100000 bytes"),
        (CatalogueLimits(max_nodes=500), "more than 500 nodes"),
        (CatalogueLimits(max_depth=5), "deeper than 5 levels"),
        (CatalogueLimits(max_string_chars=100), "'description' is longer than 100 characters"),
        (CatalogueLimits(max_allowed_values=4), "'allowed' has more than 4 values"),
    ]
    for limits, fragment in cases:
        with pytest.raises(CatalogueError) as caught:
            load_catalogue([release], limits=limits)
        assert fragment in str(caught.value), (limits, str(caught.value)[:500])
    many_problems = tree(**{f"S{index}": leaf(type="sensr") for index in range(500)})
    with pytest.raises(CatalogueError) as caught:
        load_catalogue([write(tmp_path, "many.json", many_problems)])
    assert len(caught.value.problems) == CatalogueLimits().max_problems


def test_missing_file_and_no_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot be read"):
        load_catalogue([tmp_path / "absent.json"])
    with pytest.raises(CatalogueError, match="no catalogue file given"):
        load_catalogue([])


def test_overlay_adds_and_changes_nodes(tmp_path: Path) -> None:
    base = vss_release("4.0")
    overlay = write(
        tmp_path,
        "overlay.json",
        {
            "Vehicle": {
                "children": {
                    "Speed": {"max": 250, "comment": "limited"},
                    "Sdv": {
                        "type": "branch",
                        "description": "the project's own signals",
                        "children": {
                            "Mode": leaf(datatype="string", allowed=["ECO", "SPORT"], default="ECO")
                        },
                    },
                    "Cabin": {"children": {"DoorCount": {"default": 2}}},
                }
            }
        },
    )
    catalogue = load_catalogue([base, overlay])
    speed = catalogue.get("Vehicle.Speed")
    assert speed is not None
    assert (speed.kind, speed.datatype, speed.unit, speed.max, speed.comment) == (
        "sensor",
        "float",
        "km/h",
        250,
        "limited",
    )
    assert speed.source == f"{base} + {overlay}"
    doors = catalogue.get("Vehicle.Cabin.DoorCount")
    assert doors is not None and doors.default == 2
    mode = catalogue.get("Vehicle.Sdv.Mode")
    assert mode == VssNode(
        path="Vehicle.Sdv.Mode",
        kind="sensor",
        datatype="string",
        allowed=("ECO", "SPORT"),
        default="ECO",
        description="a test signal",
        source=str(overlay),
    )
    paths = list(catalogue.nodes)
    assert len(catalogue) == COUNTS["4.0"][0] + 2
    # New nodes follow their new parent, which comes after the existing children of Vehicle.
    assert paths.index("Vehicle.Sdv") + 1 == paths.index("Vehicle.Sdv.Mode")
    assert paths.index("Vehicle.Speed") < paths.index("Vehicle.Sdv")


OVERLAY_DEFECTS: list[tuple[str, object, str, str]] = [
    (
        "new node without type",
        {"Vehicle": {"children": {"Sdv": {"children": {"Mode": leaf()}}}}},
        "Vehicle.children.Sdv",
        "'type' is missing; expected one of branch, sensor, actuator, attribute (an overlay may omit it only",
    ),
    (
        "change makes min above max",
        {"Vehicle": {"children": {"Speed": {"min": 500, "max": 100}}}},
        "Vehicle.children.Speed",
        "'min' 500 is above 'max' 100",
    ),
    (
        "wrong type of a changed field",
        {"Vehicle": {"children": {"Speed": {"unit": ["km/h"]}}}},
        "Vehicle.children.Speed",
        "'unit' must be a string, got a list",
    ),
    (
        "change of datatype that the range no longer fits",
        {
            "Vehicle": {
                "children": {
                    "Body": {
                        "children": {
                            "Mirrors": {
                                "children": {"DriverSide": {"children": {"Pan": {"datatype": "uint8"}}}}
                            }
                        }
                    }
                }
            }
        },
        "Vehicle.children.Body.children.Mirrors.children.DriverSide.children.Pan",
        "'min' -100 is not a uint8 value",
    ),
]


@pytest.mark.parametrize(
    ("defect", "content", "location", "fragment"), OVERLAY_DEFECTS, ids=[row[0] for row in OVERLAY_DEFECTS]
)
def test_overlay_defects_name_the_overlay(
    tmp_path: Path, defect: str, content: object, location: str, fragment: str
) -> None:
    overlay = write(tmp_path, "overlay.json", content)
    assert_refused([vss_release("4.0"), overlay], f"{overlay}: {location}", fragment)


def test_unknown_keys_of_vss_tools_are_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "extended.json",
        tree(
            Speed=leaf(**{"$file_name$": "spec/Vehicle.vspec", "fka": ["Vehicle.OldSpeed"], "arraysize": 2}),
            Vin=leaf(datatype="string", pattern="^[A-Z]+$", dbc2vss={"signal": "VIN", "interval_ms": 100}),
        ),
    )
    catalogue = load_catalogue([path])
    assert [node.path for node in catalogue.leaves()] == ["Vehicle.Speed", "Vehicle.Vin"]
