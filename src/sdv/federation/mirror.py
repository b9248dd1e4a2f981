"""The other ECUs' signals and actuators in this ECU's broker.

Each remote ECU is one :class:`~sdv.broker.ownership.Owner` of the broker (a client named ``ECU <name> over the
federation``): when its liveliness token appears, the mirror reads its announcement (``meta/<ecu>``), claims
the announced paths this profile declares ``provided_by: external`` (and ``federation.import`` takes), and reads
their current values with one wildcard get. From then on each sample its ECU puts is published here, status
and all; its actuators are provided by :class:`RemoteActuator`, which sends each request to the owner.

Failure contract: when the token goes (the session closed, the peer was killed, or the lease expired in a
partition), every signal of that ECU becomes ``NOT_AVAILABLE`` at once and requests for its actuators fail at
once with :class:`~sdv.errors.OwnerUnreachableError`; a request whose reply never comes fails after
``federation.actuation_timeout_s`` with :class:`~sdv.errors.OutcomeUnknownError`. When the token comes back the
ECU is synchronised again as on first sight.

The mirror's view of the other ECUs — each one's name, state (``JOINING``, ``UP``, ``GONE``), signals mirrored
and since when — is published on every change as the status signals under ``Sdv.Federation.Ecu``
(:data:`~sdv.federation_config.STATUS_SIGNALS`, which ``sdv monitor`` shows one row per ECU), when the broker
serves them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import zenoh

from sdv.api.calls import caller_token
from sdv.broker import Broker, Owner, OwnerKind
from sdv.broker.access import UNRESTRICTED, Action
from sdv.errors import OutcomeUnknownError, OwnerUnreachableError, SdvError
from sdv.federation.codec import (
    Announcement,
    FederationProtocolError,
    decode_announcement,
    decode_datapoint,
    decode_reply,
    encode_request,
)
from sdv.federation.context import FederationContext
from sdv.federation.inbox import Inbox
from sdv.federation_config import STATUS_ROOT, STATUS_SIGNALS
from sdv.hal.processor import SignalUpdate
from sdv.types.datatypes import Value, check_request
from sdv.types.status import Status

__all__ = ["Mirror", "RemoteActuator", "RemoteEcu"]

_LOG = logging.getLogger(__name__)


@dataclass(eq=False)
class RemoteEcu:
    """What this ECU knows of another one."""

    name: str
    owner: Owner
    alive: bool = False
    state: str = "JOINING"
    """JOINING (its token seen, being synchronised), UP (alive) or GONE."""
    generation: int = 0
    signals: set[str] = field(default_factory=set)
    actuators: set[str] = field(default_factory=set)
    since: float = 0.0
    waiting: set[asyncio.Future[SdvError | None]] = field(default_factory=set)
    """Actuation requests sent to it and not answered yet: failed at once when it goes."""


class RemoteActuator:
    """Carries out requests for the actuators of one remote ECU by querying its ``act`` keys."""

    def __init__(self, mirror: Mirror, ecu: RemoteEcu) -> None:
        self._mirror = mirror
        self._ecu = ecu

    async def actuate(self, requests: Sequence[tuple[str, Value]]) -> None:
        """Send each request to the owner and wait for its answer.

        Raises:
            OwnerUnreachableError: the owner ECU is not reachable (nothing was sent).
            OutcomeUnknownError: no answer within ``federation.actuation_timeout_s``.
            SdvError: the owner's refusal or failure, as the project's error.
        """
        for path, value in requests:
            await self._mirror.request(self._ecu, path, value)


class Mirror:
    """Remote ECUs, their signals and actuators, kept in ``broker`` (see the module docstring).

    Args:
        context: this ECU's federation (what it owns and may mirror).
    """

    def __init__(self, context: FederationContext) -> None:
        self._context = context
        self._ecus: dict[str, RemoteEcu] = {}
        self._by_path: dict[str, RemoteEcu] = {}
        self._inbox = Inbox(context.loop, self._publish)
        self._tasks: set[asyncio.Task[None]] = set()
        self._declared: list[object] = []
        self._status = [
            f"{STATUS_ROOT}.{name}"
            for name in STATUS_SIGNALS
            if _served(context.broker, f"{STATUS_ROOT}.{name}")
        ]
        self.rejected = 0
        """Samples dropped: undecodable, too large, invalid for the signal, or from an ECU not known alive."""

    @property
    def ecus(self) -> dict[str, RemoteEcu]:
        """The remote ECUs seen so far, by name."""
        return dict(self._ecus)

    @property
    def status_paths(self) -> list[str]:
        """The status signals this mirror publishes (none when the broker does not serve them)."""
        return self._status

    def start(self) -> None:
        """Declare the subscribers (samples and liveliness) and publish the status; call on the loop."""
        self._status_changed()
        self._declared.append(
            self._context.session.declare_subscriber(
                self._context.layout.every_signal, self._on_sample, allowed_origin=zenoh.Locality.REMOTE
            )
        )
        self._declared.append(
            self._context.session.liveliness().declare_subscriber(
                self._context.layout.every_ecu, self._on_liveliness, history=True
            )
        )

    async def stop(self) -> None:
        """Cancel the synchronisations in flight."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- zenoh callback threads: hand off only ---------------------------------------------------------------
    def _on_sample(self, sample: zenoh.Sample) -> None:
        payload = sample.payload.to_bytes()
        if len(payload) > self._context.config.max_payload_bytes:
            self.rejected += 1
            return
        self._inbox.offer(str(sample.key_expr), payload)

    def _on_liveliness(self, sample: zenoh.Sample) -> None:
        name = self._context.layout.ecu_of(str(sample.key_expr))
        if name is None or name == self._context.config.ecu or self._context.loop.is_closed():
            return
        alive = sample.kind == zenoh.SampleKind.PUT
        self._context.loop.call_soon_threadsafe(self._joined if alive else self._left, name)

    # --- on the loop -----------------------------------------------------------------------------------------
    def _remote(self, name: str) -> RemoteEcu:
        ecu = self._ecus.get(name)
        if ecu is None:
            ecu = self._ecus[name] = RemoteEcu(
                name, Owner(OwnerKind.CLIENT, f"ECU {name} over the federation")
            )
        return ecu

    def _joined(self, name: str) -> None:
        ecu = self._remote(name)
        ecu.generation += 1
        if not ecu.alive:
            self._enter(ecu, "JOINING")
        _LOG.info("ECU %s joined; synchronising its signals", name)
        task = self._context.loop.create_task(self._synchronise(ecu, ecu.generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _left(self, name: str) -> None:
        ecu = self._remote(name)
        ecu.generation += 1
        was_alive, ecu.alive = ecu.alive, False
        self._enter(ecu, "GONE")
        if not was_alive:
            return
        _LOG.warning("ECU %s is gone: its %d signals are not available", name, len(ecu.signals))
        now = time.time()
        self._context.broker.publish(
            [SignalUpdate(path, None, now, Status.NOT_AVAILABLE) for path in ecu.signals]
        )
        for waiting in list(ecu.waiting):
            if not waiting.done():
                waiting.set_result(OwnerUnreachableError(f"its owner, ECU {name}, became unreachable"))

    async def _synchronise(self, ecu: RemoteEcu, generation: int) -> None:
        try:
            replies = await self._get(self._context.layout.meta(ecu.name))
            announcement = next(
                (decode_announcement(payload) for _, payload in replies), Announcement(ecu.name, ())
            )
            self._claim(ecu, announcement)
            values = await self._get(self._context.layout.every_signal)
        except (FederationProtocolError, SdvError) as error:
            _LOG.warning("ECU %s could not be synchronised: %s", ecu.name, error)
            return
        if ecu.generation != generation:
            return  # it left (and maybe came back) meanwhile: the newer event decides
        ecu.alive = True
        self._publish({key: payload for key, payload in values})
        self._enter(ecu, "UP")
        _LOG.info("ECU %s: %d signals, %d actuators mirrored", ecu.name, len(ecu.signals), len(ecu.actuators))

    def _enter(self, ecu: RemoteEcu, state: str) -> None:
        ecu.state, ecu.since = state, time.time()
        self._status_changed()

    def _status_changed(self) -> None:
        if not self._status:
            return
        ecus = sorted(self._ecus.values(), key=lambda ecu: ecu.name)
        columns: dict[str, Value] = {
            "Names": tuple(ecu.name for ecu in ecus),
            "States": tuple(ecu.state for ecu in ecus),
            "Signals": tuple(len(ecu.signals) for ecu in ecus),
            "Since": tuple(ecu.since for ecu in ecus),
        }
        now = time.time()
        updates = [
            SignalUpdate(f"{STATUS_ROOT}.{name}", value, now, Status.VALID) for name, value in columns.items()
        ]
        self._context.broker.publish([update for update in updates if update.path in self._status])

    async def _get(self, selector: str) -> list[tuple[str, bytes]]:
        """The ``(key, payload)`` of every good reply to a get on ``selector``, within ``query_timeout_s``."""
        done: asyncio.Future[None] = self._context.loop.create_future()
        replies: list[tuple[str, bytes]] = []
        limit = self._context.config.max_payload_bytes

        def on_reply(reply: zenoh.Reply) -> None:
            sample = reply.ok
            if sample is not None and len(payload := sample.payload.to_bytes()) <= limit:
                replies.append((str(sample.key_expr), payload))

        def complete() -> None:
            if not done.done():
                done.set_result(None)

        def finished() -> None:
            if not self._context.loop.is_closed():
                self._context.loop.call_soon_threadsafe(complete)

        self._context.session.get(
            selector,
            zenoh.handlers.Callback(on_reply, finished),
            timeout=self._context.config.query_timeout_s,
        )
        await done
        return replies

    def _claim(self, ecu: RemoteEcu, announcement: Announcement) -> None:
        signals, actuators = [], []
        for owned in announcement.signals:
            path = owned.path
            if path not in self._context.ownership.mirrorable or path in ecu.signals:
                continue
            try:
                meta = self._context.broker.metadata(path, Action.PROVIDE, access=UNRESTRICTED)
            except SdvError:
                continue
            if meta.kind != owned.kind or meta.datatype != owned.datatype:
                _LOG.warning(
                    "ECU %s announces %s as %s %s; this profile has %s %s: not mirrored",
                    ecu.name, path, owned.kind, owned.datatype, meta.kind, meta.datatype,
                )  # fmt: skip
                continue
            signals.append(path)
            if owned.actuatable:
                actuators.append(path)
        try:
            self._context.broker.claim_signals(signals, ecu.owner, access=UNRESTRICTED)
            if actuators:
                self._context.broker.claim_actuators(
                    actuators, ecu.owner, RemoteActuator(self, ecu), access=UNRESTRICTED
                )
        except SdvError as error:  # a local provider holds one: the profile and the ownership map disagree
            _LOG.error("ECU %s's signals cannot be mirrored: %s", ecu.name, error)
            return
        ecu.signals.update(signals)
        ecu.actuators.update(actuators)
        for path in signals:
            self._by_path[path] = ecu

    def _publish(self, pending: dict[str, bytes]) -> None:
        updates = []
        for key, payload in pending.items():
            path = self._context.layout.path_of(key)
            ecu = self._by_path.get(path) if path is not None else None
            if path is None or ecu is None or not ecu.alive:
                self.rejected += 1
                continue
            try:
                value, timestamp, status = decode_datapoint(payload)
                if value is not None:
                    meta = self._context.broker.metadata(path, access=UNRESTRICTED)
                    value = check_request(
                        path, meta.datatype, value, minimum=meta.min, maximum=meta.max, allowed=meta.allowed
                    )
            except (FederationProtocolError, SdvError) as error:
                self.rejected += 1
                _LOG.debug("dropped a sample of %s: %s", key, error)
                continue
            updates.append(SignalUpdate(path, value, timestamp or time.time(), status))
        if updates:
            self._context.broker.publish(updates)

    async def request(self, ecu: RemoteEcu, path: str, value: Value) -> None:
        """Send one actuation request to ``ecu`` and wait for its answer (see :class:`RemoteActuator`)."""
        if not ecu.alive:
            raise OwnerUnreachableError(f"{path}: its owner, ECU {ecu.name}, is unreachable")
        timeout = self._context.config.actuation_timeout_s
        answer: asyncio.Future[SdvError | None] = self._context.loop.create_future()

        def settle(result: SdvError | None) -> None:
            if not answer.done():
                answer.set_result(result)

        def on_reply(reply: zenoh.Reply) -> None:
            ok, error = reply.ok, reply.err
            result = (
                None if ok is not None else decode_reply(error.payload.to_bytes() if error else b"", ecu.name)
            )
            if not self._context.loop.is_closed():
                self._context.loop.call_soon_threadsafe(settle, result)

        def finished() -> None:
            if not self._context.loop.is_closed():
                self._context.loop.call_soon_threadsafe(settle, _no_answer(ecu, path, timeout))

        self._context.session.get(
            self._context.layout.actuator(path),
            zenoh.handlers.Callback(on_reply, finished),
            payload=encode_request(value, caller_token()),
            timeout=timeout,
        )
        ecu.waiting.add(answer)
        try:
            result = await answer
        finally:
            ecu.waiting.discard(answer)
        if result is not None:
            raise result


def _no_answer(ecu: RemoteEcu, path: str, timeout: float) -> SdvError:
    if not ecu.alive:
        return OwnerUnreachableError(f"{path}: its owner, ECU {ecu.name}, became unreachable")
    return OutcomeUnknownError(
        f"{path}: ECU {ecu.name} did not answer within {timeout:g} s (federation.actuation_timeout_s); the "
        "actuation may or may not have been carried out"
    )


def _served(broker: Broker, path: str) -> bool:
    try:
        broker.metadata(path, access=UNRESTRICTED)
    except SdvError:
        return False
    return True
