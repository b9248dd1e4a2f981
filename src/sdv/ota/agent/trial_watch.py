"""The watch of the vehicle's state while an update is on trial: between activation and commit, nothing else
looks at the vehicle, and a driver may drive off at any time. The watch re-checks the preconditions every
``vehicle.recheck_interval_s`` and rolls the trial back as soon as they break (UN R156 §7.2.2.2: the vehicle
stays in a safe state while the update runs).

Invariants:

* the watch runs in one thread of its own, only while the agent is ``Verifying`` with a bundle whose gate has
  something to check; it ends by itself when the agent leaves that state;
* it never waits for a step under way: when another step holds the agent (a commit, a health check), it skips that
  round, and that step checks the vehicle itself;
* it stops and is joined when the agent closes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["TrialWatch"]

_logger = logging.getLogger(__name__)


class TrialWatch:
    """Calls ``round`` every ``interval_s`` on a thread until it returns False or :meth:`stop` is called.

    Args:
        round_: one round of the watch; returns whether to go on.
        interval_s: the time between rounds.
        name: the thread's name.
    """

    def __init__(self, round_: Callable[[], bool], interval_s: float, name: str = "ota-trial-watch") -> None:
        self._round = round_
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> TrialWatch:
        """Start watching."""
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Whether the watch still runs."""
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                if not self._round():
                    return
            except Exception:  # a failed round must not end the watch silently: logged, and the next one runs
                _logger.exception("the trial watch failed a round")

    def stop(self) -> None:
        """Stop and wait for the thread (from any thread but the watch's own)."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
