"""Run ``sdv ARGS`` with an update agent that cuts its own power (SIGKILL) at one exact step.

    python crash_launcher.py after:STATE ota agent --config FILE ...   # right after STATE was persisted
    python crash_launcher.py staged:N ota agent --config FILE ...      # once N payload bytes were staged

The fault-injection tests start the agent this way; the project itself has no switch for it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from sdv.cli import ota_agent_commands
from sdv.cli.main import main
from sdv.ota.agent.core import UpdateAgent
from sdv.ota.agent.state import AgentState
from sdv.ota.agent.store import AgentObserver


class CutPower(AgentObserver):
    """SIGKILL right after a state was persisted, or once a number of payload bytes were staged."""

    def __init__(self, spec: str) -> None:
        kind, _, value = spec.partition(":")
        if kind not in ("after", "staged") or not value:
            raise SystemExit(f"crash_launcher: expected after:STATE or staged:N, got {spec!r}")
        self.spec = spec
        self.after_state = value if kind == "after" else None
        self.staged_bytes = int(value) if kind == "staged" else None

    def _die(self, why: str) -> None:
        logging.getLogger(__name__).warning("cutting the power at %s (%s)", self.spec, why)
        os.kill(os.getpid(), signal.SIGKILL)

    def persisted(self, state: AgentState) -> None:
        if self.after_state == state.value:
            self._die(f"persisted {state}")

    def staged(self, count: int) -> None:
        if self.staged_bytes is not None and count >= self.staged_bytes:
            self._die(f"{count} bytes staged")


def run(spec: str, arguments: list[str]) -> int:
    observer = CutPower(spec)

    class CrashingAgent(UpdateAgent):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, observer=observer, **kwargs)

    ota_agent_commands.UpdateAgent = CrashingAgent  # type: ignore[misc]
    return main(arguments)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2:]))
