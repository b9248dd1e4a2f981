"""Settings files for the commands: a pydantic model read from YAML or TOML, every problem located."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sdv.config_files import parse_toml, parse_yaml, read_config_text
from sdv.errors import ConfigError, Problem

__all__ = ["load_settings"]

_Model = TypeVar("_Model", bound=BaseModel)
_MAX_BYTES = 1024 * 1024


def load_settings(path: Path, model: type[_Model]) -> _Model:
    """Read ``model`` from ``path`` (TOML for ``*.toml``, YAML otherwise).

    Raises:
        ConfigError: the file cannot be read or parsed, or fields are unknown, missing or out of range; each
            problem names the file and the key path.
    """
    file = str(path)
    text = read_config_text(path, max_bytes=_MAX_BYTES)
    data: Any = parse_toml(text, file) if path.suffix == ".toml" else parse_yaml(text, file)[0]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, "(top level)", "expected a mapping of settings")])
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [
            Problem(
                file,
                ".".join(str(part) for part in item["loc"]) or "(top level)",
                "unknown field (check the spelling)" if item["type"] == "extra_forbidden" else item["msg"],
            )
            for item in error.errors()
        ]
        raise ConfigError(problems) from None
