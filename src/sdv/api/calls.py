"""On whose behalf a gRPC call runs: the caller's rights for the duration of the call.

The call guard (:mod:`sdv.api.guard`) sets them first in every call; the servicers read them with :func:`caller`
and pass them to every broker operation they make (``access=caller()``). Outside a guarded call there are none.
"""

from __future__ import annotations

import contextvars

from sdv.broker.access import NO_RIGHTS, Access

__all__ = ["caller", "serve_for"]

_CALLER: contextvars.ContextVar[Access] = contextvars.ContextVar("sdv_caller", default=NO_RIGHTS)


def caller() -> Access:
    """The rights of the caller whose gRPC call is being served, for the broker operations made on its behalf.

    The guard sets them first in every call: gRPC runs each call in a task of its own, whose context dies with
    it, so nothing needs resetting (and a stream's generator may be finalised outside the task's context).
    Outside a guarded call there are none (:data:`~sdv.broker.access.NO_RIGHTS`): code that forgot to say on
    whose behalf it acts is refused, never given every right.
    """
    return _CALLER.get()


def serve_for(access: Access) -> None:
    """Serve the rest of the current asyncio task (one gRPC call) on behalf of ``access``."""
    _CALLER.set(access)
