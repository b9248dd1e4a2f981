"""Who may do what: the one access object every request of every service is checked against.

A caller's rights come from the ``scope`` claim of its token (KUKSA's scheme): a space-separated list of
``ACTION`` or ``ACTION:PATH`` entries, with the actions ``read``, ``actuate``, ``provide`` and ``ota``.

* ``read`` alone grants reading every signal; ``read:Vehicle.Cabin`` grants ``Vehicle.Cabin`` and every signal
  below it (a path matches itself and its descendants, as in KUKSA).
* ``actuate`` and ``provide`` imply ``read`` for the same paths.
* ``*`` in a path matches exactly one path segment: ``actuate:Vehicle.Cabin.Seat.*.Position`` matches
  ``Vehicle.Cabin.Seat.Row2.Position``. Segments are letters, digits and ``_`` in any order (``Row2``, ``2ndRow``).
* ``ota`` (no path) grants the OTA service's update RPCs.

Invariants:

* Scopes are parsed and compiled once, into an immutable :class:`Access`; a malformed scope is refused as a whole
  (:class:`ScopeError`), never partly applied.
* :meth:`Access.check` is the only decision point. The broker calls it on every read, subscription, actuation and
  publication made on behalf of a caller (:func:`current_access`); the gRPC edge sets the caller for the duration
  of each call (:func:`act_for`). Code outside a call (the HAL's threads, tests) acts as :data:`UNRESTRICTED`.
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from sdv.errors import AccessDenied, SdvError

__all__ = [
    "UNRESTRICTED",
    "Access",
    "Action",
    "ScopeError",
    "act_for",
    "current_access",
    "parse_scope",
]


class ScopeError(SdvError, ValueError):
    """A ``scope`` claim that does not follow the grammar; names the offending entry."""


class Action(StrEnum):
    """What a scope entry grants."""

    READ = "read"
    ACTUATE = "actuate"
    PROVIDE = "provide"
    OTA = "ota"


_PATH_ACTIONS = (Action.READ, Action.ACTUATE, Action.PROVIDE)
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

    def check(self, action: Action, path: str = "") -> None:
        """Refuse unless :meth:`allows`.

        Raises:
            AccessDenied: naming the action, the path and the caller.
        """
        if not self.allows(action, path):
            what = f"{action.value} {path}" if path else action.value
            raise AccessDenied(f"{self.subject} is not allowed to {what} (scope: {self.scope or 'empty'})")


UNRESTRICTED = Access("unrestricted", "read actuate provide ota", frozenset(Action))
"""The rights of code that acts for no caller: the HAL, a server without authorization, tests."""


@lru_cache(maxsize=256)  # tokens of the same app repeat the same scope
def parse_scope(scope: str, subject: str = "caller") -> Access:
    """Compile a ``scope`` claim into an :class:`Access`.

    Raises:
        ScopeError: an unknown action, a malformed path, or a path given to ``ota``.
    """
    everything: set[Action] = set()
    patterns: list[tuple[Action, re.Pattern[str]]] = []
    for entry in scope.split():
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


_CURRENT: contextvars.ContextVar[Access] = contextvars.ContextVar("sdv_access", default=UNRESTRICTED)


def current_access() -> Access:
    """The rights of the caller whose request is being served (:data:`UNRESTRICTED` outside a call)."""
    return _CURRENT.get()


def act_for(access: Access) -> None:
    """Serve the rest of the current asyncio task on behalf of ``access``.

    The gRPC edge calls it first in every call: gRPC runs each call in a task of its own, whose context dies with
    it, so nothing needs resetting (and a stream's generator may be finalised outside the task's context).
    """
    _CURRENT.set(access)
