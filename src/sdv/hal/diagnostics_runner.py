"""Reading the ECUs of a :class:`~sdv.hal.diagnostics.DiagnosticPlan` over the vehicle's buses.

One thread per bus with ECUs: when started and every ``poll_interval_s`` after, it opens a python-can connection
of its own to the bus (on SocketCAN a socket whose kernel receive filters pass only the ECUs' response ids;
elsewhere it sees every frame and each ISO-TP stack keeps its own ECU's), reads each ECU's DIDs one after the
other with udsoncan's ReadDataByIdentifier on a can-isotp stack, hands the values to the consumer as attribute
updates, and closes the connection. The HAL's reader of the same bus is left alone: its kernel filters pass
only the DBC's ids, so on SocketCAN the diagnostic traffic never reaches it, and it never hands frames to
anyone (on other interfaces it counts the diagnostic frames as ``unknown_id``, as any tester's).

Failures never stop the runner: an ECU that does not answer is asked again after the ``retry`` backoff, up to
``attempts`` times per poll; after that it counts as silent until the next poll (one warning when it falls
silent, one info when it answers again; its attributes stay not available, or keep the values it gave before:
an identification does not change because its ECU stopped answering). A negative response or a value that does
not decode makes that attribute not available, logged once per ECU, DID and reason. A bus that cannot be opened
is logged once per outage and tried again at the next poll.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import can
import isotp
from udsoncan import DidCodec
from udsoncan.client import Client
from udsoncan.configs import default_client_config
from udsoncan.connections import PythonIsoTpConnection
from udsoncan.exceptions import (
    InvalidResponseException,
    NegativeResponseException,
    TimeoutException,
    UnexpectedResponseException,
)
from udsoncan.typing import ClientConfig

from sdv.errors import BusError, HalError
from sdv.hal.diagnostics import DiagnosticPlan, DidRead, EcuPlan, decode_did
from sdv.hal.processor import SignalUpdate
from sdv.hal.profile import BusConfig
from sdv.hal.sources import BusSource
from sdv.types.status import Status

__all__ = ["BusOpener", "DiagnosticsRunner", "open_diagnostic_bus"]

_LOG = logging.getLogger(__name__)
Consumer = Callable[[list[SignalUpdate]], None]
BusOpener = Callable[[BusConfig, list[tuple[int, bool]]], can.BusABC]
"""Opens a python-can connection to a profile bus receiving only the given (CAN id, extended) pairs."""
_UDS_LOGGER = "sdv"
"""udsoncan names its loggers ``UdsClient[sdv]`` and ``Connection[sdv]`` after this."""
_JOIN_SECONDS = 10.0


def open_diagnostic_bus(config: BusConfig, receive: list[tuple[int, bool]]) -> can.BusABC:
    """A python-can connection of its own to a profile bus; on SocketCAN it receives only ``receive``.

    Opened as the HAL opens its buses (:meth:`~sdv.hal.sources.BusSource.open`: an interface that is down is
    refused); elsewhere it receives every frame, and each ISO-TP stack keeps those of its ECU.

    Raises:
        HalError: the interface cannot be opened (:class:`~sdv.errors.BusError` when that may pass).
    """
    return BusSource.open(config, receive).bus


class _GuardedStack(isotp.CanStack):
    """A can-isotp stack on a bus that may fail: a failure ends the stack's traffic instead of its threads.

    can-isotp calls receive and send from its own threads, where a python-can error would end them with a
    traceback; here it is kept in :attr:`failure` and the poll ends with it.
    """

    def __init__(self, bus: can.BusABC, **options: Any) -> None:
        super().__init__(bus, **options)
        self.failure: BaseException | None = None
        self._failed = threading.Event()
        send = self.txfn

        def guarded_send(message: isotp.CanMessage) -> None:
            if self.failure is None:
                try:
                    send(message)
                except (can.CanError, OSError) as error:
                    self._fail(error)

        self.txfn = guarded_send

    def _fail(self, error: BaseException) -> None:
        self.failure = error
        self._failed.set()

    def _rx_canbus(self, timeout: float) -> isotp.CanMessage | None:
        if self.failure is None:
            try:
                return super()._rx_canbus(timeout)
            except (can.CanError, OSError) as error:
                self._fail(error)
        self._failed.wait(timeout)  # already set: the reader thread only waits for its stop
        return None


class _RawRecord(DidCodec):
    """The data record as received: :func:`~sdv.hal.diagnostics.decode_did` makes the value."""

    def decode(self, did_payload: bytes) -> bytes:
        return bytes(did_payload)

    def __len__(self) -> int:
        raise DidCodec.ReadAllRemainingData  # one DID per request: the record is the rest of the response


class DiagnosticsRunner:
    """Reads the plan's ECUs on their buses and hands their attribute values to ``consumer``.

    Args:
        plan: what to read.
        buses: the profile's buses by name.
        consumer: receives the updates of each ECU read, from the runner's threads (one at a time).
        open_bus: opens a bus connection for a poll (:func:`open_diagnostic_bus`; tests pass their own).
        rng: the source of the retry backoff's jitter.
    """

    def __init__(
        self,
        plan: DiagnosticPlan,
        buses: Mapping[str, BusConfig],
        consumer: Consumer,
        *,
        open_bus: BusOpener = open_diagnostic_bus,
        rng: random.Random | None = None,
    ) -> None:
        self.plan = plan
        self._buses = dict(buses)
        self._consumer = consumer
        self._open_bus = open_bus
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._publish_lock = threading.Lock()
        self._silent: set[str] = set()  # ECUs whose silence was logged
        self._logged: set[tuple[str, int, str]] = set()  # (ECU, DID, reason) refusals logged
        self._bus_down: set[str] = set()
        self.polls: dict[str, int] = dict.fromkeys(plan.ecus, 0)
        """Completed polls per bus."""
        # udsoncan logs every request at INFO, every timeout at ERROR and every negative response at WARNING, on
        # loggers named after ours: the runner says once what matters (an ECU falls silent, a DID is refused).
        for name in (f"UdsClient[{_UDS_LOGGER}]", f"Connection[{_UDS_LOGGER}]"):
            logging.getLogger(name).setLevel(logging.CRITICAL)

    def start(self) -> None:
        """Start one thread per bus with ECUs; each polls at once, then every ``poll_interval_s``."""
        self._stop.clear()
        for bus in self.plan.ecus:
            thread = threading.Thread(
                target=self._run, args=(bus,), name=f"sdv-diagnostics-{bus}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop the threads (a request under way ends at its timeout)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=_JOIN_SECONDS)
        self._threads.clear()

    def __enter__(self) -> DiagnosticsRunner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self, bus: str) -> None:
        while not self._stop.is_set():
            self.poll(bus)
            self._stop.wait(self.plan.config.poll_interval_s)

    def poll(self, bus: str) -> None:
        """Read every ECU of ``bus`` once, handing each ECU's updates to the consumer."""
        ecus = self.plan.ecus.get(bus, ())
        try:
            connection = self._open_bus(self._buses[bus], [ecu.receive_key for ecu in ecus])
        except HalError as error:
            level = logging.DEBUG if bus in self._bus_down else logging.WARNING
            self._bus_down.add(bus)
            _LOG.log(
                level,
                "diagnostics: %s; its ECUs are read again in %g s",
                error,
                self.plan.config.poll_interval_s,
            )
            return
        self._bus_down.discard(bus)
        try:
            for ecu in ecus:
                if self._stop.is_set():
                    return
                updates = self._read_ecu(connection, ecu)
                if updates:
                    with self._publish_lock:
                        self._consumer(updates)
        except BusError as error:
            self._bus_down.add(bus)
            _LOG.warning(
                "diagnostics: %s; its ECUs are read again in %g s", error, self.plan.config.poll_interval_s
            )
            return
        finally:
            connection.shutdown()
        self.polls[bus] += 1

    def _read_ecu(self, connection: can.BusABC, ecu: EcuPlan) -> list[SignalUpdate]:
        stack = _GuardedStack(connection, address=ecu.isotp_address(), params=self._isotp_params(ecu))
        client = Client(PythonIsoTpConnection(stack, name=_UDS_LOGGER), config=self._client_config(ecu))
        updates: list[SignalUpdate] = []
        with client:
            for read in ecu.reads:
                update = self._read_did(client, ecu, read, stack)
                if update is None:  # silent: the next DIDs would only wait as long
                    break
                updates.append(update)
        if updates and ecu.name in self._silent:
            self._silent.discard(ecu.name)
            _LOG.info("ECU %s on bus %s answers again", ecu.name, ecu.bus)
        return updates

    def _read_did(
        self, client: Client, ecu: EcuPlan, read: DidRead, stack: _GuardedStack
    ) -> SignalUpdate | None:
        """One DID's update, or None when the ECU answered none of the attempts.

        Raises:
            BusError: the bus failed under the request (the poll ends; the next one tries again).
        """
        config = self.plan.config
        for attempt in range(config.attempts):
            if attempt and self._stop.wait(config.retry.delay(attempt - 1, self._rng)):
                return None
            try:
                response = client.read_data_by_identifier(read.did)
            except TimeoutException:
                if stack.failure is not None:
                    raise BusError(
                        f"bus {ecu.bus}: failed while reading ECU {ecu.name}: {stack.failure}"
                    ) from None
                continue
            except NegativeResponseException as error:
                code = error.response.code_name if error.response is not None else "negative response"
                return self._refused(ecu, read, f"negative response: {code}")
            except (InvalidResponseException, UnexpectedResponseException) as error:
                return self._refused(ecu, read, f"invalid response: {error}")
            try:
                value = decode_did(read, response.service_data.values[read.did])
            except ValueError as error:
                return self._refused(ecu, read, str(error))
            return SignalUpdate(read.path, value, time.time(), Status.VALID)
        if ecu.name not in self._silent:
            self._silent.add(ecu.name)
            _LOG.warning(
                "ECU %s on bus %s does not answer (DID 0x%04X, %d attempts of %g s); its attributes stay not "
                "available until it does, asked again in %g s",
                ecu.name,
                ecu.bus,
                read.did,
                config.attempts,
                config.response_timeout_s,
                config.poll_interval_s,
            )
        return None

    def _refused(self, ecu: EcuPlan, read: DidRead, reason: str) -> SignalUpdate:
        key = (ecu.name, read.did, reason)
        if key not in self._logged:
            self._logged.add(key)
            _LOG.warning(
                "ECU %s on bus %s: DID 0x%04X %s; %s is not available",
                ecu.name,
                ecu.bus,
                read.did,
                reason,
                read.path,
            )
        return SignalUpdate(read.path, None, time.time(), Status.NOT_AVAILABLE)

    def _isotp_params(self, ecu: EcuPlan) -> dict[str, Any]:
        return {
            "tx_padding": ecu.padding,
            "max_frame_size": ecu.max_message_bytes,  # a longer first frame is refused before reassembly
            "logger_name": f"{__name__}.isotp",
        }

    def _client_config(self, ecu: EcuPlan) -> ClientConfig:
        config = self.plan.config
        settings: dict[str, Any] = {
            **default_client_config,
            "data_identifiers": {read.did: _RawRecord() for read in ecu.reads},
            "p2_timeout": config.response_timeout_s,
            "p2_star_timeout": config.pending_timeout_s,
            "request_timeout": config.response_timeout_s + config.pending_timeout_s,
            "use_server_timing": False,  # the configured waits hold whatever a session response said
            "logger_name": _UDS_LOGGER,
        }
        return cast(ClientConfig, settings)
