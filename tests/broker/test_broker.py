"""The broker core: values, metadata, subscriptions (slow and vanishing subscribers), filters, actuation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from sdv.broker import Broker, HalProvider, Limits, Owner, OwnerKind
from sdv.broker.access import UNRESTRICTED
from sdv.errors import (
    ActuationError,
    AlreadyProvidedError,
    LimitExceededError,
    NoProviderError,
    ProviderTimeoutError,
    ReadOnlyError,
    UnknownSignalError,
    ValueOutOfRangeError,
)
from sdv.hal.processor import SignalUpdate, Status
from sdv.hal.vehicle import VehicleDefinition
from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint, SignalMetadata

from ..waiting import DEADLINE_S

SPEED = "Vehicle.Speed"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
TEMPERATURE = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"  # a VSS actuator the demo HAL only reads


@pytest.fixture
def broker(demo_vehicle: VehicleDefinition) -> Broker:
    return Broker.from_vehicle(demo_vehicle)


def speed(value: float, timestamp: float = 1.0, status: Status = Status.VALID) -> SignalUpdate:
    return SignalUpdate(SPEED, value, timestamp, status)


class RecordingProvider:
    def __init__(self, fail: bool = False) -> None:
        self.requests: list[tuple[str, Value]] = []
        self.fail = fail

    async def actuate(self, requests: Sequence[tuple[str, Value]]) -> None:
        if self.fail:
            raise ActuationError("bus down")
        self.requests.extend(requests)


def test_metadata_from_the_profile(broker: Broker) -> None:
    meta = broker.metadata(SPEED, access=UNRESTRICTED)
    assert (meta.datatype, meta.unit, meta.kind) == ("float", "km/h", "sensor")
    assert broker.metadata_by_id(meta.id, access=UNRESTRICTED) is meta
    assert broker.metadata(TEMPERATURE, access=UNRESTRICTED).min == 16


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("Vehicle.Cabin.Door", 4),
        ("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", 1),
        ("Vehicle.Cabin.Door.*.*.IsOpen", 4),
        ("Vehicle.**.IsOpen", 5),
        ("", 41),
    ],
)
def test_list_metadata_by_branch_signal_and_wildcard(broker: Broker, root: str, expected: int) -> None:
    assert len(broker.list_metadata(root, access=UNRESTRICTED)) == expected


def test_unknown_paths_name_close_matches(broker: Broker) -> None:
    with pytest.raises(UnknownSignalError, match=r"did you mean Vehicle\.Speed"):
        broker.get("Vehicle.Sped", access=UNRESTRICTED)
    with pytest.raises(UnknownSignalError):
        broker.list_metadata("Vehicle.Nothing", access=UNRESTRICTED)
    with pytest.raises(ValueOutOfRangeError, match="1 to 1000 characters"):
        broker.get("V" * 1001, access=UNRESTRICTED)


def test_values_and_status_from_the_hal(broker: Broker) -> None:
    assert broker.get(SPEED, access=UNRESTRICTED) == Datapoint(None, None, Status.NOT_AVAILABLE)
    broker.publish([speed(42.0, 5.0)])
    assert broker.get(SPEED, access=UNRESTRICTED) == Datapoint(42.0, 5.0, Status.VALID)
    broker.publish([speed(42.0, 6.0, Status.STALE)])
    assert broker.get(SPEED, access=UNRESTRICTED).status is Status.STALE


async def test_subscription_starts_with_current_values_then_delivers_changes(broker: Broker) -> None:
    broker.publish([speed(10.0)])
    subscription = broker.subscribe([SPEED, LOW_BEAM], access=UNRESTRICTED)
    iterator = aiter(subscription)
    first = await asyncio.wait_for(anext(iterator), DEADLINE_S)
    assert first == {
        SPEED: Datapoint(10.0, 1.0, Status.VALID),
        LOW_BEAM: Datapoint(None, None, Status.NOT_AVAILABLE),
    }
    broker.publish([speed(11.0, 2.0)])
    assert await asyncio.wait_for(anext(iterator), DEADLINE_S) == {SPEED: Datapoint(11.0, 2.0, Status.VALID)}
    subscription.close()


async def test_on_change_filter_skips_repeated_values(broker: Broker) -> None:
    subscription = broker.subscribe([SPEED], access=UNRESTRICTED)
    iterator = aiter(subscription)
    await anext(iterator)
    broker.publish_value(SPEED, 50.0, 1.0, access=UNRESTRICTED)
    broker.publish_value(SPEED, 50.0, 2.0, access=UNRESTRICTED)  # same value: not a change
    assert await asyncio.wait_for(anext(iterator), DEADLINE_S) == {SPEED: Datapoint(50.0, 1.0, Status.VALID)}
    broker.publish_value(SPEED, 51.0, 3.0, access=UNRESTRICTED)
    assert (await asyncio.wait_for(anext(iterator), DEADLINE_S))[SPEED].value == 51.0
    subscription.close()


async def test_min_interval_spaces_batches_and_keeps_the_latest(broker: Broker) -> None:
    subscription = broker.subscribe([SPEED], min_interval_ms=200, access=UNRESTRICTED)
    iterator = aiter(subscription)
    await anext(iterator)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for value in range(1, 20):
        broker.publish([speed(float(value), float(value))])
    batch = await asyncio.wait_for(anext(iterator), DEADLINE_S)
    assert loop.time() - start >= 0.15
    assert batch == {SPEED: Datapoint(19.0, 19.0, Status.VALID)}
    subscription.close()


async def test_slow_subscriber_gets_latest_values_and_others_keep_up(broker: Broker) -> None:
    slow = broker.subscribe([SPEED], access=UNRESTRICTED)
    fast = broker.subscribe([SPEED], access=UNRESTRICTED)
    fast_iterator, slow_iterator = aiter(fast), aiter(slow)
    await anext(fast_iterator)
    received = []
    for value in range(100):
        broker.publish([speed(float(value), float(value))])
        received.append((await asyncio.wait_for(anext(fast_iterator), DEADLINE_S))[SPEED].value)
    assert received == [float(v) for v in range(100)]
    # The slow subscriber never read: one pending datapoint, the newest; the rest were dropped and counted.
    batch = await asyncio.wait_for(anext(slow_iterator), DEADLINE_S)
    assert batch == {SPEED: Datapoint(99.0, 99.0, Status.VALID)}
    assert slow.dropped == 100  # the initial value and 99 superseded updates
    assert len(slow._pending) == 0
    slow.close()
    fast.close()


async def test_memory_of_a_subscriber_that_never_reads_stays_bounded(broker: Broker) -> None:
    paths = [meta.path for meta in broker.list_metadata(access=UNRESTRICTED) if meta.kind != "attribute"]
    subscription = broker.subscribe(paths, access=UNRESTRICTED)
    for step in range(2000):
        broker.publish(
            [
                SignalUpdate(path, float(step), float(step), Status.VALID)
                for path in (SPEED, "Vehicle.Acceleration.Lateral")
            ]
        )
    assert len(subscription._pending) == len(paths)
    assert subscription.dropped >= 2 * 1999
    subscription.close()


async def test_closed_and_vanished_subscribers_stop_receiving(broker: Broker) -> None:
    subscription = broker.subscribe([SPEED], access=UNRESTRICTED)
    assert broker.subscription_count == 1
    done = asyncio.create_task(anext(aiter(subscription)))
    await asyncio.sleep(0)
    subscription.close()
    await asyncio.wait_for(done, DEADLINE_S)  # initial batch was pending: returned, then the stream ends
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(aiter(subscription)), DEADLINE_S)
    broker.publish([speed(1.0)])
    assert broker.subscription_count == 0


async def test_publishing_from_another_thread_wakes_the_subscriber(broker: Broker) -> None:
    subscription = broker.subscribe([SPEED], access=UNRESTRICTED)
    iterator = aiter(subscription)
    await anext(iterator)
    thread = threading.Thread(target=broker.publish, args=([speed(77.0)],))
    thread.start()
    thread.join()
    assert (await asyncio.wait_for(anext(iterator), DEADLINE_S))[SPEED].value == 77.0
    subscription.close()


async def test_subscription_limits(demo_vehicle: VehicleDefinition) -> None:
    broker = Broker.from_vehicle(demo_vehicle, Limits(max_subscriptions=2, max_paths_per_request=3))
    first = broker.subscribe([SPEED], access=UNRESTRICTED)
    second = broker.subscribe([SPEED], access=UNRESTRICTED)
    with pytest.raises(LimitExceededError, match="limit is 2"):
        broker.subscribe([SPEED], access=UNRESTRICTED)
    first.close()
    broker.subscribe([SPEED], access=UNRESTRICTED).close()
    with pytest.raises(ValueOutOfRangeError, match="at most 3"):
        broker.subscribe([SPEED] * 4, access=UNRESTRICTED)
    with pytest.raises(ValueOutOfRangeError):
        broker.subscribe([], access=UNRESTRICTED)
    second.close()


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        ("Vehicle.Nope", True, UnknownSignalError),
        (SPEED, 10.0, ReadOnlyError),
        (LOW_BEAM, 1.5, ValueOutOfRangeError),
        (TEMPERATURE, 31.0, ValueOutOfRangeError),
        (GEAR, 126, ReadOnlyError),
        (GEAR, 5, ValueOutOfRangeError),
    ],
)
async def test_invalid_actuation_is_refused_before_any_provider_is_called(
    broker: Broker, path: str, value: object, error: type[Exception]
) -> None:
    provider = RecordingProvider()
    broker.claim_actuators([LOW_BEAM, TEMPERATURE], Owner(OwnerKind.CLIENT), provider, access=UNRESTRICTED)
    broker.claim_actuators(
        [GEAR], Owner(OwnerKind.HAL, "HAL"), None, access=UNRESTRICTED
    )  # held read-only, as the HAL holds it
    with pytest.raises(error):
        await broker.actuate([(LOW_BEAM, True), (path, value)], access=UNRESTRICTED)
    assert provider.requests == []


async def test_actuation_goes_to_the_owning_provider_and_records_the_target(broker: Broker) -> None:
    lights, climate = RecordingProvider(), RecordingProvider()
    broker.claim_actuators([LOW_BEAM], Owner(OwnerKind.CLIENT), lights, access=UNRESTRICTED)
    broker.claim_actuators([TEMPERATURE], Owner(OwnerKind.CLIENT), climate, access=UNRESTRICTED)
    await broker.actuate([(LOW_BEAM, True), (TEMPERATURE, 21)], access=UNRESTRICTED)
    assert lights.requests == [(LOW_BEAM, True)]
    assert climate.requests == [(TEMPERATURE, 21.0)]
    assert broker.target(TEMPERATURE, access=UNRESTRICTED).value == 21.0


async def test_one_provider_per_actuator_and_none_means_unavailable(broker: Broker) -> None:
    first = RecordingProvider()
    handle = broker.claim_actuators([LOW_BEAM], Owner(OwnerKind.CLIENT), first, access=UNRESTRICTED)
    with pytest.raises(AlreadyProvidedError):
        broker.claim_actuators([LOW_BEAM], Owner(OwnerKind.CLIENT), RecordingProvider(), access=UNRESTRICTED)
    with pytest.raises(ReadOnlyError):
        broker.claim_actuators([SPEED], Owner(OwnerKind.CLIENT), RecordingProvider(), access=UNRESTRICTED)
    broker.release(handle)
    with pytest.raises(NoProviderError, match="no provider"):
        await broker.actuate([(LOW_BEAM, True)], access=UNRESTRICTED)
    broker.claim_actuators([LOW_BEAM], Owner(OwnerKind.CLIENT), RecordingProvider(), access=UNRESTRICTED)


async def test_provider_failure_is_reported_and_no_target_recorded(broker: Broker) -> None:
    broker.claim_actuators(
        [LOW_BEAM], Owner(OwnerKind.CLIENT), RecordingProvider(fail=True), access=UNRESTRICTED
    )
    with pytest.raises(ActuationError, match="bus down"):
        await broker.actuate([(LOW_BEAM, True)], access=UNRESTRICTED)
    assert broker.target(LOW_BEAM, access=UNRESTRICTED).value is None


async def test_target_subscription_starts_with_current_targets_then_delivers_new_ones(broker: Broker) -> None:
    broker.claim_actuators(
        [LOW_BEAM, TEMPERATURE], Owner(OwnerKind.CLIENT), RecordingProvider(), access=UNRESTRICTED
    )
    await broker.actuate([(TEMPERATURE, 20)], access=UNRESTRICTED)
    subscription = broker.subscribe([LOW_BEAM, TEMPERATURE], targets=True, access=UNRESTRICTED)
    values = broker.subscribe([LOW_BEAM], access=UNRESTRICTED)
    async with asyncio.timeout(2):
        first = await anext(aiter(subscription))
        assert first[LOW_BEAM] == Datapoint(None, None, Status.NOT_AVAILABLE)
        assert first[TEMPERATURE].value == 20.0 and first[TEMPERATURE].status is Status.VALID
        await anext(aiter(values))
        await broker.actuate([(LOW_BEAM, True)], access=UNRESTRICTED)
        second = await anext(aiter(subscription))
    assert list(second) == [LOW_BEAM] and second[LOW_BEAM].value is True
    assert not values._pending  # a target is not a current value
    broker.publish([SignalUpdate(LOW_BEAM, False, 2.0, Status.VALID)])
    assert not subscription._pending  # and a current value is not a target
    subscription.close()
    values.close()
    assert broker.subscription_count == 0
    await broker.actuate(
        [(LOW_BEAM, False)], access=UNRESTRICTED
    )  # a closed target subscription is no longer offered anything
    assert not subscription._pending


async def test_target_subscription_needs_actuators(broker: Broker) -> None:
    with pytest.raises(ReadOnlyError, match="only actuators"):
        broker.subscribe([LOW_BEAM, SPEED], targets=True, access=UNRESTRICTED)
    assert broker.subscription_count == 0


def test_an_owned_signal_is_published_by_its_owner_only_until_released(broker: Broker) -> None:
    hal, other = Owner(OwnerKind.HAL), Owner(OwnerKind.CLIENT, "other")
    handle = broker.claim_signals([SPEED, LOW_BEAM], hal, access=UNRESTRICTED)
    with pytest.raises(AlreadyProvidedError, match=SPEED):
        broker.publish_value(SPEED, 10.0, access=UNRESTRICTED)
    with pytest.raises(AlreadyProvidedError):
        broker.publish_value(SPEED, 10.0, owner=other, access=UNRESTRICTED)
    with pytest.raises(AlreadyProvidedError):
        broker.publish_not_available(SPEED, access=UNRESTRICTED)
    with pytest.raises(AlreadyProvidedError):  # all or nothing
        broker.claim_signals([TEMPERATURE, SPEED], other, access=UNRESTRICTED)
    broker.publish_value(TEMPERATURE, 21.0, owner=other, access=UNRESTRICTED)  # TEMPERATURE stayed unowned
    broker.publish_value(SPEED, 10.0, owner=hal, access=UNRESTRICTED)
    broker.publish([speed(11.0)])  # the HAL's own path is not checked
    assert broker.get(SPEED, access=UNRESTRICTED).value == 11.0
    broker.release(handle)
    broker.publish_value(SPEED, 12.0, access=UNRESTRICTED)
    broker.publish_not_available(SPEED, 3.0, access=UNRESTRICTED)
    assert broker.get(SPEED, access=UNRESTRICTED) == Datapoint(None, 3.0, Status.NOT_AVAILABLE)
    broker.claim_signals([SPEED], other, access=UNRESTRICTED)


def test_external_publish_is_validated(broker: Broker) -> None:
    with pytest.raises(ValueOutOfRangeError, match="expected a number"):
        broker.publish_value(SPEED, "fast", access=UNRESTRICTED)
    with pytest.raises(ValueOutOfRangeError, match="above the maximum 300"):
        broker.publish_value(SPEED, 301.0, access=UNRESTRICTED)
    broker.publish_value(SPEED, 12.5, access=UNRESTRICTED)
    assert broker.get(SPEED, access=UNRESTRICTED).value == 12.5


async def test_hal_provider_sends_the_frame(demo_vehicle: VehicleDefinition, tmp_path: object) -> None:
    import can
    import yaml

    from sdv.hal.runtime import Hal
    from sdv.hal.vehicle import vehicle_from_text
    from sdv.resources import demo_profile

    data = yaml.safe_load(demo_profile().read_text())
    bus = data["buses"][0]
    bus.pop("recording")
    bus.update(interface="virtual", channel="broker-hal-provider")
    vehicle = vehicle_from_text(yaml.safe_dump(data), str(demo_profile()))
    hal = Hal(vehicle)
    hal.open()
    observer = can.Bus(interface="virtual", channel="broker-hal-provider")
    try:
        broker = Broker.from_vehicle(vehicle)
        broker.claim_actuators([LOW_BEAM], Owner(OwnerKind.CLIENT), HalProvider(hal), access=UNRESTRICTED)
        await broker.actuate([(LOW_BEAM, True)], access=UNRESTRICTED)
        frame = observer.recv(1.0)
        assert frame is not None and frame.arbitration_id == 0x300
        assert vehicle.codec("vehicle", "LightingRequest").decode(frame.data)["LowBeamRequest"] == 1
    finally:
        observer.shutdown()
        hal.stop()


def test_metadata_ids_are_stable_in_profile_order(demo_vehicle: VehicleDefinition) -> None:
    broker = Broker.from_vehicle(demo_vehicle)
    ids = [meta.id for meta in broker.list_metadata(access=UNRESTRICTED)]
    assert ids == list(range(1, len(ids) + 1))
    assert isinstance(broker.list_metadata(access=UNRESTRICTED)[0], SignalMetadata)


async def test_hal_bridge_serves_signals_actuators_and_counters(tmp_path: object) -> None:
    import can
    import yaml

    from sdv.broker import HalBridge
    from sdv.hal.runtime import Hal
    from sdv.hal.vehicle import vehicle_from_text
    from sdv.resources import demo_profile

    from ..hal.conftest import build_frame

    data = yaml.safe_load(demo_profile().read_text())
    bus = data["buses"][0]
    bus.pop("recording")
    bus.update(interface="virtual", channel="broker-bridge")
    vehicle = vehicle_from_text(yaml.safe_dump(data), str(demo_profile()))
    bridge = HalBridge(Hal(vehicle), statistics_period=0.0)
    sender = can.Bus(interface="virtual", channel="broker-bridge")
    broker = bridge.broker
    subscription = broker.subscribe(
        [SPEED, "Sdv.Hal.Bus.vehicle.Frames", "Sdv.Hal.Bus.vehicle.Errors.UnknownId"], access=UNRESTRICTED
    )
    bridge.start()
    try:
        await anext(aiter(subscription))
        sender.send(build_frame(vehicle, "VehicleDynamics", {"VehicleSpeed": 88.0}))
        sender.send(can.Message(arbitration_id=0x7FF, is_extended_id=False, data=bytes(8)))
        seen: dict[str, object] = {}
        async with asyncio.timeout(3):
            async for batch in subscription:
                seen.update({path: datapoint.value for path, datapoint in batch.items()})
                if seen.get(SPEED) == 88.0 and seen.get("Sdv.Hal.Bus.vehicle.Errors.UnknownId") == 1:
                    break
        assert seen["Sdv.Hal.Bus.vehicle.Frames"] == 2
        assert broker.metadata("Sdv.Hal.Bus.vehicle.BadFrames", access=UNRESTRICTED).datatype == "uint64"
        assert broker.statistics()["hal"]["vehicle"]["frames"] == 2
        await broker.actuate([(LOW_BEAM, True)], access=UNRESTRICTED)  # the HAL is the provider
        assert broker.target(LOW_BEAM, access=UNRESTRICTED).value is True
        # VSS makes the selected gear an actuator; the demo HAL decodes it and has no request message for it
        with pytest.raises(ReadOnlyError, match=r"SelectedGear is provided read-only by the HAL"):
            await broker.actuate([(GEAR, 127)], access=UNRESTRICTED)
        with pytest.raises(AlreadyProvidedError, match=r"SelectedGear is already provided by the HAL"):
            broker.claim_actuators([GEAR], Owner(OwnerKind.CLIENT), RecordingProvider(), access=UNRESTRICTED)
        assert broker.target(GEAR, access=UNRESTRICTED).value is None
        with pytest.raises(AlreadyProvidedError):  # the HAL owns the signals it decodes and its counters
            broker.publish_value(SPEED, 10.0, access=UNRESTRICTED)
        with pytest.raises(AlreadyProvidedError):
            broker.publish_value("Sdv.Hal.Bus.vehicle.Frames", 0, access=UNRESTRICTED)
    finally:
        subscription.close()
        sender.shutdown()
        bridge.stop()
    broker.publish_value(SPEED, 10.0, access=UNRESTRICTED)  # stopped: released


@pytest.mark.parametrize(("released", "expected"), [("keep", 12.0), ("not_available", None)])
def test_a_released_signal_keeps_its_value_or_becomes_not_available_as_configured(
    released: str, expected: float | None
) -> None:
    meta = SignalMetadata(id=1, path=SPEED, kind="sensor", datatype="float")
    broker = Broker([meta], Limits.model_validate({"released_values": released}))
    provider = Owner(OwnerKind.CLIENT, "feeder")
    broker.claim_signals([SPEED], provider, access=UNRESTRICTED)
    broker.publish_value(SPEED, 12.0, owner=provider, access=UNRESTRICTED)
    with pytest.raises(AlreadyProvidedError, match=r"already provided by a client \(feeder\)"):
        broker.publish_value(SPEED, 13.0, access=UNRESTRICTED)
    broker.release(provider)
    assert broker.get(SPEED, access=UNRESTRICTED).value == expected
    broker.publish_value(
        SPEED, 14.0, access=UNRESTRICTED
    )  # unclaimed now: anyone allowed to provide it may publish
    assert broker.owner_of(SPEED) is None


async def test_a_provider_that_does_not_accept_in_time_fails_the_actuation_with_a_timeout() -> None:
    meta = SignalMetadata(id=1, path=LOW_BEAM, kind="actuator", datatype="boolean")
    broker = Broker([meta], Limits(actuation_timeout_s=0.05))

    class Silent:
        async def actuate(self, requests: Sequence[tuple[str, Value]]) -> None:
            await asyncio.Event().wait()  # never answers

    broker.claim_actuators([LOW_BEAM], Owner(OwnerKind.CLIENT, "silent"), Silent(), access=UNRESTRICTED)
    with pytest.raises(ProviderTimeoutError, match=r"a client \(silent\) did not accept the request within"):
        await broker.actuate([(LOW_BEAM, True)], access=UNRESTRICTED)
    assert broker.target(LOW_BEAM, access=UNRESTRICTED).value is None
