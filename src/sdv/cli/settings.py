"""Settings files for the commands: a pydantic model read from YAML or TOML, every problem located."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

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
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_BYTES + 1)
    except OSError as error:
        raise ConfigError([Problem(file, "(file)", error.strerror or str(error))]) from error
    if len(raw) > _MAX_BYTES:
        raise ConfigError([Problem(file, "(file)", f"larger than {_MAX_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(
            [Problem(file, "syntax", f"not valid {path.suffix.lstrip('.') or 'YAML'}: {error}")]
        ) from None
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
