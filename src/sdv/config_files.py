"""Bounded reading of configuration files: vehicle profiles, limits and settings, the update agent's configuration.

Every reader of a YAML or TOML file goes through :func:`read_config_text` and :func:`parse_yaml` /
:func:`parse_toml`, which check the bounds below before the parser does the work, and turn every failure of the
parser into a :class:`~sdv.errors.ConfigError` whose one problem names the file, the line (or byte offset) and
what was expected. Callers re-raise it as their own error type (``ProfileError``, ``OtaError``...).

Bounds:

* size: at most ``max_bytes`` (:data:`MAX_CONFIG_BYTES` unless the caller says less), checked on the bytes read,
  before any decoding or parsing;
* encoding: UTF-8; the first other byte is named by its offset and line;
* nesting: at most :data:`MAX_NESTING` levels of mappings and sequences (PyYAML composes recursively; checked
  on the event stream, which is not recursive);
* integers: at most :data:`MAX_INTEGER_DIGITS` digits (Python refuses to read more than 4,300).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Final

import yaml

from sdv.errors import ConfigError, Problem

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_INTEGER_DIGITS",
    "MAX_NESTING",
    "parse_toml",
    "parse_yaml",
    "read_config_text",
]

MAX_CONFIG_BYTES: Final = 8 * 1024 * 1024
MAX_NESTING: Final = 64
MAX_INTEGER_DIGITS: Final = 100
_INT_TAG: Final = "tag:yaml.org,2002:int"
_RESOLVER: Final = yaml.resolver.Resolver()


def _refuse(file: str, where: str, message: str) -> ConfigError:
    return ConfigError([Problem(file, where, message)])


def read_config_text(path: Path, *, max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """Read a configuration file as UTF-8 text, refusing it past ``max_bytes`` before decoding anything.

    Raises:
        ConfigError: the file cannot be read, is larger than ``max_bytes``, or is not UTF-8.
    """
    file = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise _refuse(file, "file", f"cannot be read: {error.strerror or error}") from error
    if len(data) > max_bytes:
        raise _refuse(file, "file", f"larger than {max_bytes} bytes; expected at most {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise _refuse(
            file,
            f"line {line}",
            f"byte 0x{data[error.start]:02X} at byte offset {error.start}; UTF-8 expected",
        ) from None


def _line(event: yaml.Event) -> str:
    mark = event.start_mark
    return f"line {mark.line + 1}" if mark is not None else "syntax"


def _check_events(text: str, file: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise _refuse(
                    file,
                    _line(event),
                    f"nested {depth} levels deep; expected at most {MAX_NESTING} levels of mappings and lists",
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif (
            isinstance(event, yaml.ScalarEvent)
            and event.implicit[0]
            and len(event.value) > MAX_INTEGER_DIGITS
            and _RESOLVER.resolve(yaml.ScalarNode, event.value, (True, False)) == _INT_TAG  # type: ignore[no-untyped-call]
        ):
            raise _refuse(
                file,
                _line(event),
                f"an integer of {len(event.value)} characters; expected at most {MAX_INTEGER_DIGITS} digits",
            )


def _check_unique_keys(node: yaml.Node, file: str) -> None:
    """Refuse a mapping that names a key twice (PyYAML would keep the last silently: ``max: 300`` then ``max: 30``)."""
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[object, int] = {}
            for key, value in current.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                line = key.start_mark.line + 1
                if name is not None and name in seen:
                    raise _refuse(
                        file,
                        f"line {line}",
                        f"key {name!r} is given twice (first on line {seen[name]}); expected once",
                    )
                if name is not None:
                    seen[name] = line
                pending.append(value)
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(current.value)


def parse_yaml(text: str, file: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text within the bounds; return the data and the composed node tree (for line numbers).

    Raises:
        ConfigError: a syntax error (with line and column), a bound exceeded or a key given twice in one
            mapping (with line).
    """
    try:
        _check_events(text, file)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None, None
        _check_unique_keys(node, file)
        loader = yaml.SafeLoader("")
        try:
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except ConfigError:
        raise  # a bound, already located (ConfigError is a ValueError too)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "syntax"
        raise _refuse(file, where, f"not valid YAML: {error.problem}") from None
    except (yaml.YAMLError, ValueError) as error:
        # ValueError: a value the constructor cannot build (a timestamp such as 2024-13-45).
        raise _refuse(file, "syntax", f"not valid YAML: {error}") from None
    return data, node


def parse_toml(text: str, file: str) -> Any:
    """Parse TOML text; a value Python cannot read or nesting too deep is a syntax problem.

    Raises:
        ConfigError: the text is not TOML the bounds allow.
    """
    try:
        return tomllib.loads(text)
    except (ValueError, RecursionError) as error:
        # TOMLDecodeError is a ValueError; so is an integer of more than 4,300 digits. tomllib nests recursively.
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise _refuse(file, "syntax", f"not valid TOML: {reason}") from None
