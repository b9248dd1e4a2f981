"""On whose behalf a gRPC call runs: the caller's rights for the duration of the call.

The call guard (:mod:`sdv.api.guard`) sets them first in every call; the servicers read them with :func:`caller`
and pass them to every broker operation they make (``access=caller()``). Outside a guarded call there are none.
"""

from __future__ import annotations

import contextvars

from sdv.broker.access import NO_RIGHTS, Access

__all__ = ["caller", "caller_token", "serve_for"]

_CALLER: contextvars.ContextVar[Access] = contextvars.ContextVar("sdv_caller", default=NO_RIGHTS)
_TOKEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("sdv_caller_token", default=None)


def caller() -> Access:
    """The rights of the caller whose gRPC call is being served, for the broker operations made on its behalf.

    The guard sets them first in every call: gRPC runs each call in a task of its own, whose context dies with
    it, so nothing needs resetting (and a stream's generator may be finalised outside the task's context).
    Outside a guarded call there are none (:data:`~sdv.broker.access.NO_RIGHTS`): code that forgot to say on
    whose behalf it acts is refused, never given every right.
    """
    return _CALLER.get()


def caller_token() -> str | None:
    """The bearer token the caller authenticated with (None without token checks or outside a call).

    The federation forwards it with an actuation, so that the ECU owning the actuator checks the caller's
    rights itself (docs/federation.md).
    """
    return _TOKEN.get()


def serve_for(access: Access, token: str | None = None) -> None:
    """Serve the rest of the current asyncio task (one gRPC call) on behalf of ``access`` (from ``token``)."""
    _CALLER.set(access)
    _TOKEN.set(token)
