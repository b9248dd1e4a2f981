"""The signal broker: current values, metadata, subscriptions and actuation routing. Imports nothing from grpc.

Threading: the HAL publishes from its reader threads, subscribers consume on an asyncio event loop. One lock
guards the value store and every subscription's pending batch; a publishing thread never waits for a subscriber.

Invariants:

* A subscription holds at most one pending datapoint per subscribed signal: a slow subscriber receives the latest
  value of each signal, older ones are dropped and counted (:attr:`Subscription.dropped`). Memory per subscriber
  is bounded by the number of signals it subscribed to, whatever the update rate.
* Publishing only notifies subscribers when a signal's value or status changed (on-change filter); a
  subscription's ``min_interval_ms`` spaces its batches (minimum-sample-interval filter).
* A subscription with ``targets=True`` delivers actuator target values instead: first the current targets, then
  every target an actuation records, with the same latest-per-signal bounds.
* A signal has at most one owner and an actuator at most one provider (:mod:`sdv.broker.ownership`: the HAL
  for what it decodes and encodes, an outside provider for what its stream claimed); :meth:`Broker.publish_value`
  refuses a value for a signal someone else owns, and accepts one for an unclaimed signal from any caller allowed
  to provide it. :meth:`Broker.publish`, the HAL's own path, is not checked.
* An actuation request is validated completely (paths, kinds, types, ranges, allowed values, providers) before
  any provider is called, and returns once the provider accepted it, or fails after
  ``Limits.actuation_timeout_s``.
* Every request is checked against the rights passed with it (``access=``, a
  :class:`~sdv.broker.access.Access`; there is no default), before the path is even looked up, so a caller learns nothing of signals it may not read:
  metadata, values, targets and subscriptions need ``read``; actuations ``actuate``; publications, signal claims
  and actuator providers ``provide``. :meth:`list_metadata` lists only what the caller may read.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sdv.broker.access import Access, Action
from sdv.broker.config import Limits
from sdv.broker.directory import SignalDirectory
from sdv.broker.model import metadata_from_catalogue, metadata_from_vehicle
from sdv.broker.ownership import Owner, Ownership
from sdv.broker.providers import ActuationProvider
from sdv.broker.subscription import Subscription, wake
from sdv.broker.tick import TickGovernor
from sdv.errors import (
    LimitExceededError,
    NoProviderError,
    ProviderTimeoutError,
    ReadOnlyError,
    ValueOutOfRangeError,
    name_some,
)
from sdv.hal.processor import SignalUpdate, Status
from sdv.hal.vehicle import VehicleDefinition
from sdv.types.datatypes import Value, check_request
from sdv.types.signals import NO_VALUE, Datapoint, SignalMetadata
from sdv.vss import Catalogue

__all__ = ["Broker"]


class Broker:
    """The signals of one vehicle, shared between the HAL, external providers and apps.

    Args:
        metadata: every signal the broker serves.
        limits: the limits on paths and subscriptions (the gRPC edge reads the rest of them from here too).
    """

    def __init__(self, metadata: Sequence[SignalMetadata], limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._directory = SignalDirectory(metadata, self.limits.max_path_length)
        self._values: dict[str, Datapoint] = dict.fromkeys(self._directory.paths, NO_VALUE)
        started = time.time()
        for meta in metadata:
            if (
                meta.default is not None
            ):  # as the KUKSA databroker: a catalogue default is the value from the start
                self._values[meta.path] = Datapoint(meta.default, started, Status.VALID)
        self._targets: dict[str, Datapoint] = {}
        self._subscribers: dict[str, list[Subscription]] = {}
        self._target_subscribers: dict[str, list[Subscription]] = {}
        self._subscriptions: set[Subscription] = set()
        self._per_client: dict[str, int] = {}
        self._ownership = Ownership()
        self._lock = threading.Lock()
        self.ticks = TickGovernor(self.limits)
        """The subscription tick, adapted to the process's load."""
        self._statistics_source: Callable[[], dict[str, Any]] | None = None
        self.updates_published = 0

    @classmethod
    def from_vehicle(cls, vehicle: VehicleDefinition, limits: Limits | None = None) -> Broker:
        """A broker for every signal of a vehicle profile."""
        return cls(metadata_from_vehicle(vehicle), limits)

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue, limits: Limits | None = None) -> Broker:
        """A broker without HAL for every leaf of a VSS catalogue, each open to outside providers."""
        return cls(metadata_from_catalogue(catalogue), limits)

    # --- metadata ------------------------------------------------------------------------------------------
    def metadata(self, path: str, action: Action = Action.READ, *, access: Access) -> SignalMetadata:
        """The metadata of the signal at ``path``, for a caller with ``access`` allowed to do ``action`` on it
        (:meth:`SignalDirectory.metadata`)."""
        return self._directory.metadata(path, action, access=access)

    def metadata_by_id(self, signal_id: int, *, access: Access) -> SignalMetadata:
        """The metadata of the signal with id ``signal_id`` (:meth:`SignalDirectory.metadata_by_id`)."""
        return self._directory.metadata_by_id(signal_id, access=access)

    def list_metadata(self, root: str = "", *, access: Access) -> list[SignalMetadata]:
        """Metadata of the signals under ``root`` the caller may read (:meth:`SignalDirectory.list_metadata`)."""
        return self._directory.list_metadata(root, access=access)

    def check_request_size(self, count: int, what: str = "paths") -> None:
        """Refuse a request naming more signals than ``max_paths_per_request``.

        Raises:
            ValueOutOfRangeError: naming the count and the limit.
        """
        if count > self.limits.max_paths_per_request:
            raise ValueOutOfRangeError(
                f"{count} {what} in one request; at most {self.limits.max_paths_per_request}"
            )

    # --- values --------------------------------------------------------------------------------------------
    def get(self, path: str, *, access: Access) -> Datapoint:
        """The latest datapoint of a signal (``value`` None if none was received).

        Raises:
            UnknownSignalError: unknown path.
            AccessDenied: ``access`` may not read it.
        """
        self.metadata(path, access=access)
        return self._values[path]

    def target(self, path: str, *, access: Access) -> Datapoint:
        """The last target value requested for an actuator."""
        self.metadata(path, access=access)
        return self._targets.get(path, NO_VALUE)

    def publish(self, updates: Sequence[SignalUpdate]) -> None:
        """Take a batch of updates (the HAL's consumer); thread-safe, never waits for subscribers."""
        with self._lock:
            self._publish_locked(updates)

    def _publish_locked(self, updates: Sequence[SignalUpdate]) -> None:
        """Store the updates and offer the changes to subscribers (the caller holds the lock)."""
        values = self._values
        subscribers = self._subscribers
        woken: list[Subscription] = []
        new = tuple.__new__  # a named tuple without its keyword-handling constructor: the hot path
        for update in updates:
            path = update[0]
            datapoint = new(Datapoint, (update[1], update[2], update[3]))
            previous = values.get(path)
            if previous is None:
                continue  # not a signal of this broker
            values[path] = datapoint
            if previous[0] == datapoint[0] and previous[2] is datapoint[2] and previous[1] is not None:
                continue  # on-change filter: same value, same status
            interested = subscribers.get(path)
            if interested:
                for subscription in interested:
                    if subscription._queue(path, datapoint):
                        woken.append(subscription)
        self.updates_published += len(updates)
        if woken:
            wake(woken)  # one call into each subscriber's event loop for the whole batch

    def publish_value(
        self,
        path: str,
        value: object,
        timestamp: float | None = None,
        *,
        owner: Owner | None = None,
        access: Access,
    ) -> None:
        """Publish one value from an external provider, validated against the signal's metadata.

        Args:
            owner: who publishes (the owner :meth:`claim_signals` recorded); None for a publisher that claimed
                nothing, which may publish only signals nobody claimed.

        Raises:
            UnknownSignalError: unknown path.
            ValueOutOfRangeError: wrong type, outside min/max or not an allowed value.
            AlreadyProvidedError: another owner provides the signal.
        """
        meta = self.metadata(path, Action.PROVIDE, access=access)
        checked = check_request(
            path, meta.datatype, value, minimum=meta.min, maximum=meta.max, allowed=meta.allowed
        )
        update = SignalUpdate(path, checked, time.time() if timestamp is None else timestamp, Status.VALID)
        with self._lock:
            self._ownership.check_publisher(path, owner)
            self._publish_locked([update])

    def publish_not_available(
        self, path: str, timestamp: float | None = None, *, owner: Owner | None = None, access: Access
    ) -> None:
        """Mark a signal "not available" for an external provider (a datapoint without value).

        Raises:
            UnknownSignalError: unknown path.
            AlreadyProvidedError: another owner provides the signal.
        """
        self.metadata(path, Action.PROVIDE, access=access)
        update = SignalUpdate(
            path, None, time.time() if timestamp is None else timestamp, Status.NOT_AVAILABLE
        )
        with self._lock:
            self._ownership.check_publisher(path, owner)
            self._publish_locked([update])

    # --- ownership -----------------------------------------------------------------------------------------
    def check_publisher(self, path: str, owner: Owner | None = None, *, access: Access) -> None:
        """Whether ``owner`` may publish ``path`` now (a check before a batch of publications).

        Raises:
            UnknownSignalError: unknown path.
            AccessDenied: the caller may not provide ``path``.
            AlreadyProvidedError: another owner provides the signal.
        """
        self.metadata(path, Action.PROVIDE, access=access)
        with self._lock:
            self._ownership.check_publisher(path, owner)

    def claim_signals(self, paths: Sequence[str], owner: Owner, *, access: Access) -> Owner:
        """Make ``owner`` the one publisher of the signals at ``paths`` (all or none).

        Returns:
            ``owner``, for :meth:`release`.

        Raises:
            UnknownSignalError: unknown path.
            AccessDenied: the caller may not provide a path.
            AlreadyProvidedError: another owner provides one of the signals (the message names its kind).
        """
        for path in paths:
            self.metadata(path, Action.PROVIDE, access=access)
        with self._lock:
            self._ownership.claim_signals(paths, owner)
        return owner

    def claim_actuators(
        self, paths: Sequence[str], owner: Owner, provider: ActuationProvider | None, *, access: Access
    ) -> Owner:
        """Make ``owner`` the one provider of the actuators at ``paths``; ``provider`` carries out requests.

        With ``provider`` None the owner holds them read-only (the HAL's actuators without a request message):
        nobody else can provide them, and :meth:`actuate` refuses requests for them with ``ReadOnlyError``.

        Returns:
            ``owner``, for :meth:`release`.

        Raises:
            UnknownSignalError: unknown path.
            AccessDenied: the caller may not provide a path.
            ReadOnlyError: a path is not an actuator.
            AlreadyProvidedError: another owner provides one of the actuators (the message names its kind).
        """
        for path in paths:
            meta = self.metadata(path, Action.PROVIDE, access=access)
            if meta.kind != "actuator":
                raise ReadOnlyError(f"{path} is a {meta.kind}; only actuators can be provided")
        with self._lock:
            self._ownership.claim_actuators(paths, owner, provider)
        return owner

    def actuation_provider(self, path: str) -> ActuationProvider | None:
        """Who carries out actuations of ``path`` now (None: no provider is connected)."""
        with self._lock:
            claim = self._ownership.actuation_provider(path)
        return None if claim is None else claim[1]

    def owner_of(self, path: str) -> Owner | None:
        """Who provides the signal or actuator at ``path`` (None: nobody claimed it)."""
        with self._lock:
            actuation = self._ownership.actuation_provider(path)
            return actuation[0] if actuation is not None else self._ownership.signal_owner(path)

    def release(self, owner: Owner) -> None:
        """End every claim of ``owner`` (its stream closed, the HAL stopped).

        Its signals keep their last values, as the KUKSA databroker keeps them, unless ``Limits.released_values``
        is ``not_available``: then each becomes a datapoint without value.
        """
        with self._lock:
            released = self._ownership.release(owner)
            if released and self.limits.released_values == "not_available":
                now = time.time()
                self._publish_locked(
                    [SignalUpdate(path, None, now, Status.NOT_AVAILABLE) for path in released]
                )

    # --- subscriptions -------------------------------------------------------------------------------------
    def subscribe(
        self,
        paths: Sequence[str],
        *,
        access: Access,
        min_interval_ms: float = 0,
        targets: bool = False,
        counted: bool = True,
    ) -> Subscription:
        """Subscribe to signals; call from the event loop that will iterate the subscription.

        With ``targets`` the subscription delivers the actuators' target values (see :class:`Subscription`).

        Raises:
            UnknownSignalError: a path names no signal.
            ReadOnlyError: ``targets`` and a path is not an actuator.
            ValueOutOfRangeError: no paths, too many, or an over-long path.
            LimitExceededError: too many subscriptions are open.
        """
        if not paths:
            raise ValueOutOfRangeError("subscribe needs at least one signal path")
        self.check_request_size(len(paths))
        if min_interval_ms < 0:
            raise ValueOutOfRangeError("min_interval_ms must not be negative")
        for path in paths:
            meta = self.metadata(path, access=access)
            if targets and meta.kind != "actuator":
                raise ReadOnlyError(f"{path} is a {meta.kind}; only actuators have a target value")
        subscription = Subscription(
            self,
            paths,
            min_interval_ms,
            asyncio.get_running_loop(),
            client=access.subject,
            targets=targets,
            ticks=self.ticks,
        )
        registry = self._target_subscribers if targets else self._subscribers
        current = self._targets if targets else self._values
        with self._lock:
            if counted:  # the server's own subscriptions (health reporting) use no client's budget
                self._count_subscription(subscription)
            for path in subscription.paths:
                registry.setdefault(path, []).append(subscription)
                subscription._offer(path, current.get(path, NO_VALUE))
        return subscription

    def _count_subscription(self, subscription: Subscription) -> None:
        """Count a new subscription against the limits (the caller holds the lock)."""
        if len(self._subscriptions) >= self.limits.max_subscriptions:
            raise LimitExceededError(
                f"{len(self._subscriptions)} subscriptions are open; the limit is {self.limits.max_subscriptions}"
            )
        client = subscription.client
        open_for_client = self._per_client.get(client, 0)
        if open_for_client >= self.limits.max_subscriptions_per_client:
            raise LimitExceededError(
                f"{client} has {open_for_client} subscriptions open; the limit per client is "
                f"{self.limits.max_subscriptions_per_client}"
            )
        self._per_client[client] = open_for_client + 1
        self._subscriptions.add(subscription)

    def _unsubscribe(self, subscription: Subscription) -> None:
        registry = self._target_subscribers if subscription.targets else self._subscribers
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.discard(subscription)
                remaining = self._per_client[subscription.client] - 1
                if remaining:
                    self._per_client[subscription.client] = remaining
                else:
                    del self._per_client[subscription.client]
            for path in subscription.paths:
                interested = registry.get(path)
                if interested and subscription in interested:
                    interested.remove(subscription)

    @property
    def subscription_count(self) -> int:
        """Open subscriptions."""
        return len(self._subscriptions)

    # --- actuation -----------------------------------------------------------------------------------------
    def validate_actuation(self, path: str, value: object, *, access: Access) -> Value:
        """The request's value as the actuator's datatype, checked against its metadata.

        Raises:
            UnknownSignalError, ReadOnlyError, ValueOutOfRangeError: as their names say.
        """
        meta = self.metadata(path, Action.ACTUATE, access=access)
        if meta.kind != "actuator":
            raise ReadOnlyError(f"{path} is a {meta.kind}; only actuators accept requests")
        return check_request(
            path, meta.datatype, value, minimum=meta.min, maximum=meta.max, allowed=meta.allowed
        )

    async def actuate(self, requests: Sequence[tuple[str, object]], *, access: Access) -> None:
        """Validate every request, then hand them to the owning providers; returns once all accepted.

        Each provider gets ``Limits.actuation_timeout_s`` to accept its requests.

        Raises:
            UnknownSignalError, ReadOnlyError, ValueOutOfRangeError: a request is invalid, or an actuator is held
                read-only (nothing is sent).
            NoProviderError: an actuator has no provider (nothing is sent).
            ProviderTimeoutError: a provider did not accept its requests in time.
            ActuationError: a provider failed to carry out its requests.
        """
        if not requests:
            raise ValueOutOfRangeError("actuate needs at least one request")
        self.check_request_size(len(requests), "actuation requests")
        checked = [(path, self.validate_actuation(path, value, access=access)) for path, value in requests]
        by_owner: dict[int, tuple[Owner, ActuationProvider, list[tuple[str, Value]]]] = {}
        with self._lock:
            for path, value in checked:
                claim = self._ownership.actuation_provider(path)
                if claim is None:
                    raise NoProviderError(f"{path}: no provider is connected for this actuator")
                owner, provider = claim
                if provider is None:
                    raise ReadOnlyError(
                        f"{path} is provided read-only by {owner.describe()}: it takes no requests for this "
                        "actuator"
                    )
                by_owner.setdefault(id(owner), (owner, provider, []))[2].append((path, value))
        timeout = self.limits.actuation_timeout_s
        for owner, provider, batch in by_owner.values():
            try:
                async with asyncio.timeout(timeout):
                    await provider.actuate(batch)
            except TimeoutError:
                raise ProviderTimeoutError(
                    f"{name_some([path for path, _ in batch])}: {owner.describe()} did not accept the request "
                    f"within {timeout:g} s (Limits.actuation_timeout_s)"
                ) from None
            now = time.time()
            woken = []
            with self._lock:
                for path, value in batch:
                    datapoint = Datapoint(value, now, Status.VALID)
                    self._targets[path] = datapoint
                    for subscription in self._target_subscribers.get(path, ()):
                        if subscription._queue(path, datapoint):
                            woken.append(subscription)
            wake(woken)

    # --- statistics ----------------------------------------------------------------------------------------
    def attach_statistics(self, source: Callable[[], dict[str, Any]]) -> None:
        """Add a source of further statistics (the HAL's frame counters)."""
        self._statistics_source = source

    def statistics(self) -> dict[str, Any]:
        """Broker counters, plus those of the attached source."""
        result: dict[str, Any] = {
            "updates_published": self.updates_published,
            "subscriptions": self.subscription_count,
            "dropped": sum(subscription.dropped for subscription in list(self._subscriptions)),
        }
        if self._statistics_source is not None:
            result.update(self._statistics_source())
        return result
