"""Reading one catalogue file into JSON values, bounded before any parsing work.

The checks run in the order of their cost: the file size (from ``stat``, then again on the bytes read, since a file
may grow in between), strict UTF-8 decoding, a linear scan of the bracket nesting, and only then the JSON parser.
Duplicate keys, which ``json`` silently collapses to the last one, are kept on the parsed object
(:class:`JsonObject`) so that the catalogue walker reports them at their JSON path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sdv.errors import CatalogueError, Problem

__all__ = ["CatalogueLimits", "JsonObject", "read_json"]


class CatalogueLimits(BaseModel):
    """Bounds on what a catalogue may contain, checked before the work they bound.

    The defaults are far above the COVESA releases (VSS 6.0: 326 kB, 1603 nodes, 9 levels, descriptions of at
    most 1.2 k characters, at most 32 allowed values) and low enough that a hostile file cannot make loading slow
    or large.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_file_bytes: int = Field(32 * 1024 * 1024, gt=0, description="size of one catalogue file")
    max_depth: int = Field(32, ge=1, description="levels of nodes below the top (Vehicle is level 1)")
    max_nodes: int = Field(200_000, ge=1, description="nodes of the whole catalogue, every file together")
    max_name_chars: int = Field(128, ge=1, description="length of one node name")
    max_string_chars: int = Field(65_536, ge=1, description="length of a description, comment or other text")
    max_allowed_values: int = Field(4096, ge=1, description="entries of an 'allowed' list or array default")
    max_problems: int = Field(100, ge=1, description="problems reported before loading stops")


class JsonObject(dict[str, Any]):
    """A parsed JSON object that remembers the keys it had more than once (JSON keeps only the last)."""

    duplicates: tuple[str, ...] = ()


def _object_from_pairs(pairs: list[tuple[str, Any]]) -> JsonObject:
    result = JsonObject()
    duplicates: list[str] = []
    for key, value in pairs:
        if key in result and key not in duplicates:
            duplicates.append(key)
        result[key] = value
    result.duplicates = tuple(duplicates)
    return result


# A JSON string (escapes included) or one bracket; brackets inside strings are skipped with their string.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
# Node n sits at JSON depth 2n (a node object inside its parent's ``children`` object); the values inside a
# node (lists, extended attributes such as dbc2vss mappings) add a few levels more.
_VALUE_LEVELS = 8


def _line_column(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _nesting_problem(text: str, file: str, limit: int, max_depth: int) -> Problem | None:
    depth = 0
    for match in _TOKEN.finditer(text):
        text_matched = match.group()
        if text_matched in ("{", "["):
            depth += 1
            if depth > limit:
                return Problem(
                    file,
                    _line_column(text, match.start()),
                    f"JSON nested more than {limit} levels deep; a catalogue of at most {max_depth} levels of "
                    "nodes is expected",
                )
        elif text_matched in ("}", "]"):
            depth -= 1
    return None


def read_json(path: Path, limits: CatalogueLimits) -> Any:
    """The JSON value of a catalogue file, within ``limits``.

    Raises:
        CatalogueError: the file cannot be read, is too large, is not UTF-8, is nested too deeply or is not JSON;
            the problem names the file and, where one applies, the line and column.
    """
    file = str(path)

    def refuse(location: str, message: str) -> CatalogueError:
        return CatalogueError([Problem(file, location, message)])

    too_large = f"larger than the limit of {limits.max_file_bytes} bytes (CatalogueLimits.max_file_bytes)"
    try:
        if path.stat().st_size > limits.max_file_bytes:
            raise refuse("file", too_large)
        with path.open("rb") as stream:
            data = stream.read(limits.max_file_bytes + 1)
    except OSError as error:
        raise refuse("file", f"cannot be read: {error.strerror or error}") from None
    if len(data) > limits.max_file_bytes:
        raise refuse("file", too_large)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start].decode("utf-8", errors="replace")
        raise refuse(
            _line_column(before, len(before)),
            f"not UTF-8: byte 0x{data[error.start]:02x} cannot start or continue a character; "
            "a catalogue is UTF-8 JSON",
        ) from None
    text = text.removeprefix("\ufeff")
    problem = _nesting_problem(text, file, 2 * limits.max_depth + _VALUE_LEVELS, limits.max_depth)
    if problem is not None:
        raise CatalogueError([problem])
    try:
        return json.loads(text, object_pairs_hook=_object_from_pairs)
    except json.JSONDecodeError as error:
        raise refuse(_line_column(text, error.pos), f"not valid JSON: {error.msg}") from None
    except (ValueError, RecursionError) as error:  # e.g. an integer of more digits than Python converts
        raise refuse("file", f"not valid JSON: {error}") from None
