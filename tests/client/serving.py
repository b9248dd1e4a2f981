"""A real ``sdv`` server in a thread of the test process: the demo vehicle, its HAL replaying the demo drive.

The server runs on its own event loop so that code under test can run its own (``asyncio.run`` in a CLI
handler, a subprocess client). Frames the HAL sends for actuators go to the python-can virtual channel
:data:`ACTUATION_CHANNEL` of this process, where a test can observe them.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from sdv.api.server import SdvServer
from sdv.broker import Broker, HalBridge
from sdv.broker.access import UNRESTRICTED
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import VehicleDefinition

from ..waiting import DEADLINE_S, wait_until

__all__ = ["ACTUATION_CHANNEL", "ServerThread"]

ACTUATION_CHANNEL = "sdv.vehicle"


class ServerThread:
    """``with ServerThread(vehicle) as server:`` serves on 127.0.0.1 (ephemeral port) until the block ends.

    Args:
        vehicle: the vehicle model (its profile's recording replays in real time, looping).
        hal: run the HAL into the broker, providing every actuator (a given one, or one of ``vehicle``); without
            it the broker holds no values and no actuator has a provider.
        statistics_period: seconds between publications of the HAL counters.
        ready_when: a signal whose first value tells that the HAL is running (entering waits for it).
    """

    def __init__(
        self,
        vehicle: VehicleDefinition,
        *,
        hal: bool | Hal = True,
        statistics_period: float = 0.1,
        ready_when: str = "Vehicle.Speed",
    ) -> None:
        self.ready_when = ready_when
        runtime = hal if isinstance(hal, Hal) else Hal(vehicle) if hal else None
        self.bridge = HalBridge(runtime, statistics_period=statistics_period) if runtime is not None else None
        self.broker = self.bridge.broker if self.bridge is not None else Broker.from_vehicle(vehicle)
        self.port = 0
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="test-sdv-server", daemon=True)

    @property
    def target(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to the test thread
            self._failure = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self.bridge is not None:
            self.bridge.start()
        try:
            async with SdvServer(self.broker, port=0) as server:
                self.port = server.port or 0
                self._ready.set()
                await self._stop.wait()
                await server.stop(grace=0)
        finally:
            if self.bridge is not None:
                self.bridge.stop()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(timeout=DEADLINE_S)
        if self._failure is not None:
            raise RuntimeError("the test server did not start") from self._failure
        if not self.port:
            raise RuntimeError(f"the test server did not start within {DEADLINE_S:g} s")
        if self.bridge is not None:
            wait_until(
                lambda: self.broker.get(self.ready_when, access=UNRESTRICTED).value is not None,
                what=f"the HAL to publish {self.ready_when}",
            )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=DEADLINE_S)
        if self._thread.is_alive():
            raise RuntimeError(f"the test server did not stop within {DEADLINE_S:g} s")
