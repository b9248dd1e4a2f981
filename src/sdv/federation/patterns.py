"""Signal path patterns of the ``federation:`` section, compiled once (pure).

A pattern is a VSS path whose segments may be ``*`` (exactly one segment); it matches the path itself and every
path below it, as scope entries do (:mod:`sdv.broker.access`). ``**`` alone matches every path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["PathPatterns"]


@dataclass(frozen=True)
class PathPatterns:
    """A set of patterns; :meth:`matches` is true when one of them matches."""

    patterns: tuple[str, ...]
    _compiled: re.Pattern[str] | None

    @classmethod
    def compile(cls, patterns: Sequence[str]) -> PathPatterns:
        """Compile validated patterns (``sdv.federation_config.PATH_PATTERN``) into one expression."""
        if "**" in patterns:
            return cls(tuple(patterns), re.compile(r".+"))
        bodies = [
            r"\.".join("[^.]+" if segment == "*" else re.escape(segment) for segment in pattern.split("."))
            for pattern in patterns
        ]
        compiled = re.compile(rf"(?:{'|'.join(bodies)})(?:\..+)?") if bodies else None
        return cls(tuple(patterns), compiled)

    def matches(self, path: str) -> bool:
        """Whether a pattern matches ``path`` or one of its ancestors."""
        return self._compiled is not None and self._compiled.fullmatch(path) is not None

    def select(self, paths: Iterable[str]) -> list[str]:
        """The paths that match, in their order."""
        return [path for path in paths if self.matches(path)]
