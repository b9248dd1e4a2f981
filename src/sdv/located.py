"""Configuration problems located in their file: the line of each YAML key path, and pydantic's validation errors
as :class:`~sdv.errors.Problem` lines in the one style every configuration error uses.

The style (the profile checker's): ``FILE: line N: key.path[2].field: what is wrong and what was expected``, with
no pydantic type codes, documentation links or echoed input values; a pattern a field must match is named in
words (``a semantic version such as 1.4.0``), never as a regular expression.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from sdv.errors import Problem

__all__ = ["KeyPath", "format_key_path", "node_lines", "validation_problems", "yaml_lines"]

KeyPath = tuple[int | str, ...]
"""A key path into a document: mapping keys and sequence indices."""


def yaml_lines(text: str) -> dict[KeyPath, int]:
    """The 1-based line of every key path of a YAML document (empty for text that does not compose)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    return node_lines(node)


def node_lines(node: yaml.Node | None) -> dict[KeyPath, int]:
    """The 1-based line of every key path of a composed YAML document (see :func:`sdv.config_files.parse_yaml`)."""
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return lines


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def format_key_path(path: KeyPath) -> str:
    """``("slots", 0, "a")`` as ``slots[0].a``; the empty path as ``(top level)``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _where(path: KeyPath, lines: Mapping[KeyPath, int]) -> str:
    probe = path
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe)
    return f"line {line}: {format_key_path(path)}" if line else format_key_path(path)


def _message(item: Any, patterns: Mapping[str, str]) -> str:
    kind = item["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling)"
    if kind == "string_pattern_mismatch":
        pattern = (item.get("ctx") or {}).get("pattern", "")
        expected = patterns.get(pattern)
        return f"{expected} expected" if expected else "not in the expected form"
    message: str = item["msg"]
    return message.removeprefix("Value error, ")


def validation_problems(
    error: ValidationError,
    file: str,
    lines: Mapping[KeyPath, int] | None = None,
    *,
    patterns: Mapping[str, str] | None = None,
    tags: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Every error of a failed validation as a located problem.

    Args:
        error: what pydantic raised.
        file: the file the document came from (or a label such as ``--version``).
        lines: the line of each key path (:func:`yaml_lines`), where the document was YAML.
        patterns: regular expression -> what it means in words, for fields constrained by a pattern.
        tags: the tags of discriminated unions, which pydantic inserts into locations (``slots.0.image.a``) and
            a reader of the file does not see.
    """
    found = []
    for item in error.errors():
        path = tuple(
            part
            for part in item["loc"]
            if not (isinstance(part, str) and (part.startswith("function-") or part in tags))
        )
        found.append(Problem(file, _where(path, lines or {}), _message(item, patterns or {})))
    return found
