"""Who may do what: the one access object every request of every service is checked against.

A caller's rights come from the ``scope`` claim of its token (KUKSA's scheme): a list of ``ACTION`` or
``ACTION:PATH`` entries separated by ASCII spaces, with the actions ``read``, ``actuate``, ``provide`` and ``ota``.
The grammar (docs/security.md, "Scope grammar") admits only the characters ``A-Z a-z 0-9 _ . : *`` and the
space (U+0020), and at most :data:`MAX_SCOPE_LENGTH` characters: a scope is read one way only, by whoever issues
it and by whoever checks it (splitting on "any whitespace" would turn ``read:Vehicle.Cabin<no-break space>read``
into a grant of everything for one reader and a narrow grant for the other).

* ``read`` alone grants reading every signal; ``read:Vehicle.Cabin`` grants ``Vehicle.Cabin`` and every signal
  below it (a path matches itself and its descendants, as in KUKSA).
* ``actuate`` and ``provide`` imply ``read`` for the same paths.
* ``*`` in a path matches exactly one path segment: ``actuate:Vehicle.Cabin.Seat.*.Position`` matches
  ``Vehicle.Cabin.Seat.Row2.Position``. Segments are letters, digits and ``_`` in any order (``Row2``, ``2ndRow``).
* ``ota`` (no path) grants the OTA service's update RPCs.

Invariants:

* Scopes are parsed and compiled once, into an immutable :class:`Access`; a malformed scope is refused as a whole
  (:class:`ScopeError`), never partly applied.
* :meth:`Access.check` is the only decision point. Every broker operation made on behalf of someone takes that
  someone's :class:`Access` as an argument (``access=``) and checks it on every read, subscription, actuation and
  publication; nothing is implied. The gRPC edge passes each caller's rights (``sdv.api.guard.caller``: no rights
  outside a guarded call, :data:`NO_RIGHTS`); the server's own parts (the HAL bridge, bus health) pass
  :data:`UNRESTRICTED` by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from sdv.errors import AccessDenied, ScopeError

__all__ = [
    "MAX_SCOPE_LENGTH",
    "NO_RIGHTS",
    "UNRESTRICTED",
    "Access",
    "Action",
    "ScopeError",
    "parse_scope",
]


class Action(StrEnum):
    """What a scope entry grants."""

    READ = "read"
    ACTUATE = "actuate"
    PROVIDE = "provide"
    OTA = "ota"


MAX_SCOPE_LENGTH = 4096
"""The longest scope accepted, in characters (a token travels in call metadata, which gRPC bounds at 8 KiB)."""

_PATH_ACTIONS = (Action.READ, Action.ACTUATE, Action.PROVIDE)
_SEPARATOR = " "  # U+0020 only; see the module docstring
# Caught before the entries are split, so that no other separator can ever split them; the printable ASCII
# characters outside the grammar ('-', '/') are refused afterwards, with the entry and segment they are in.
_OUTSIDE_GRAMMAR = re.compile(r"[^\x21-\x7e ]")
_SEGMENT = re.compile(r"[A-Za-z0-9_]+|\*")
_IMPLIES: dict[Action, tuple[Action, ...]] = {
    Action.READ: (Action.READ, Action.ACTUATE, Action.PROVIDE),  # who may actuate or provide may read
    Action.ACTUATE: (Action.ACTUATE,),
    Action.PROVIDE: (Action.PROVIDE,),
    Action.OTA: (Action.OTA,),
}


def _compile_path(entry: str, path: str) -> re.Pattern[str]:
    segments = path.split(".")
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise ScopeError(
                f"scope entry {entry!r}: path segment {segment!r} is not letters, digits and '_', or '*'"
            )
    body = r"\.".join("[^.]+" if segment == "*" else re.escape(segment) for segment in segments)
    return re.compile(rf"{body}(?:\..+)?")  # the path itself or anything below it


@dataclass(frozen=True)
class Access:
    """The rights of one caller, compiled from its scope.

    Attributes:
        subject: who the caller is (the token's ``sub``), for messages and logs.
        scope: the scope text the rights were compiled from.
    """

    subject: str
    scope: str
    _everything: frozenset[Action] = field(default=frozenset(), repr=False)
    _patterns: tuple[tuple[Action, re.Pattern[str]], ...] = field(default=(), repr=False)

    def allows(self, action: Action, path: str = "") -> bool:
        """Whether the caller may do ``action`` on the signal at ``path`` (``path`` unused for ``ota``)."""
        granting = _IMPLIES[action]
        if any(granted in self._everything for granted in granting):
            return True
        return any(granted in granting and pattern.fullmatch(path) for granted, pattern in self._patterns)

    def allows_every(self, action: Action) -> bool:
        """Whether the caller may do ``action`` on every signal, known or not (a scope entry without path)."""
        return any(granted in self._everything for granted in _IMPLIES[action])

    def check(self, action: Action, path: str = "") -> None:
        """Refuse unless :meth:`allows`.

        Raises:
            AccessDenied: naming the action, the path and the caller.
        """
        if not self.allows(action, path):
            raise self.denied(f"{action.value} {path}" if path else action.value)

    def denied(self, what: str) -> AccessDenied:
        """The refusal of ``what`` (``"read Vehicle.Cabin"``, ``"read signal id 7"``) for this caller.

        Its text depends only on what the caller asked and on its own scope, never on whether the signal exists,
        so that refusals cannot be used to list the catalogue.
        """
        return AccessDenied(f"{self.subject} is not allowed to {what} (scope: {self.scope or 'empty'})")


UNRESTRICTED = Access("unrestricted", "read actuate provide ota", frozenset(Action))
"""Every right: the server's own parts (the HAL bridge, bus health) and a server without authorization, by name."""

NO_RIGHTS = Access("nobody", "", frozenset())
"""No right at all: what a request gets when nobody said on whose behalf it runs."""


@lru_cache(maxsize=256)  # tokens of the same app repeat the same scope
def parse_scope(scope: str, subject: str = "caller") -> Access:
    """Compile a ``scope`` claim into an :class:`Access`.

    Raises:
        ScopeError: a scope longer than :data:`MAX_SCOPE_LENGTH`, a character outside the grammar (named by
            code point and position), an unknown action, a malformed path, or a path given to ``ota``.
    """
    if len(scope) > MAX_SCOPE_LENGTH:
        raise ScopeError(f"the scope has {len(scope)} characters; at most {MAX_SCOPE_LENGTH} characters")
    outside = _OUTSIDE_GRAMMAR.search(scope)
    if outside is not None:
        raise ScopeError(
            f"the scope has the character U+{ord(outside.group()):04X} at position {outside.start()}; scope "
            "entries are separated by ASCII spaces and use only letters A-Z a-z, digits, '_', '.', ':' and '*'"
        )
    everything: set[Action] = set()
    patterns: list[tuple[Action, re.Pattern[str]]] = []
    for entry in filter(None, scope.split(_SEPARATOR)):
        name, _, path = entry.partition(":")
        try:
            action = Action(name)
        except ValueError:
            known = ", ".join(action.value for action in Action)
            raise ScopeError(
                f"scope entry {entry!r}: unknown action {name!r}; expected one of {known}"
            ) from None
        if not path:
            if ":" in entry:
                raise ScopeError(f"scope entry {entry!r}: an empty path after ':'")
            everything.add(action)
        elif action not in _PATH_ACTIONS:
            raise ScopeError(f"scope entry {entry!r}: {action.value} takes no path")
        else:
            patterns.append((action, _compile_path(entry, path)))
    return Access(subject, scope, frozenset(everything), tuple(patterns))
