"""Fixtures of the vehicle-aware update tests: a broker with the signals the preconditions read, and signed
bundles that carry vehicle terms."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Keys, ok
from sdv.broker import Broker
from sdv.broker.access import UNRESTRICTED
from sdv.types.signals import SignalMetadata

SPEED = "Vehicle.Speed"
GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
CAPACITY = "Vehicle.Powertrain.TractionBattery.NetCapacity"
CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
BRAKE = "Vehicle.Chassis.ParkingBrake.IsEngaged"

PARKED = {SPEED: 0.0, GEAR: 126, SOC: 80.0, CAPACITY: 60.0, CHARGING: False, BRAKE: True}
"""A parked vehicle with a well charged 60 kWh battery."""

SIGNALS = (
    SignalMetadata(1, SPEED, "sensor", "float", "km/h"),
    SignalMetadata(2, GEAR, "sensor", "int8"),
    SignalMetadata(3, SOC, "sensor", "float", "percent"),
    SignalMetadata(4, CAPACITY, "attribute", "uint16", "kWh"),
    SignalMetadata(5, CHARGING, "sensor", "boolean"),
    SignalMetadata(6, BRAKE, "sensor", "boolean"),
    SignalMetadata(7, "Vehicle.Software.Rxswin", "attribute", "string"),
    SignalMetadata(8, "Vehicle.Software.Components", "attribute", "string[]"),
    SignalMetadata(9, "Vehicle.Software.Version", "attribute", "string"),
)
"""The signals the tests' preconditions read, and the software identification branch."""

TERMS: dict[str, Any] = {
    "preconditions": [f"{SPEED} == 0", f"{GEAR} == PARK", f"not {CHARGING}", BRAKE],
    "energy": {"duration_s": 900, "energy_wh": 2000},
    "notice": {
        "consent_required": True,
        "texts": {
            "en": {
                "title": "Navigation update",
                "purpose": "Fixes route guidance",
                "changes": ["new maps"],
                "duration": "about 15 minutes",
                "unavailable": ["navigation", "driving"],
                "safety": ["park the vehicle and leave it parked"],
                "after_success": "The update is installed.",
                "after_failure": "The update failed; the previous software runs. Visit a workshop if this repeats.",
            },
            "zh-CN": {
                "title": "导航更新",
                "purpose": "修复路线引导",
                "duration": "约15分钟",
                "safety": ["请驻车并保持驻车"],
            },
        },
    },
}
"""Vehicle terms of a typical bundle: parked, not charging, 2 kWh, consent required."""


def publish(broker: Broker, values: dict[str, object]) -> None:
    """Publish values as a provider would (now)."""
    for path, value in values.items():
        broker.publish_value(path, value, time.time(), access=UNRESTRICTED)


@pytest.fixture
def broker() -> Broker:
    """A broker of :data:`SIGNALS` with the vehicle parked."""
    result = Broker(list(SIGNALS))
    publish(result, PARKED)
    return result


BuildVehicleBundle = Callable[..., Path]


@pytest.fixture
def build_vehicle_bundle(tmp_path: Path, keys: Keys, payloads: dict[str, Path]) -> BuildVehicleBundle:
    """Build and sign a bundle with vehicle terms (default :data:`TERMS`), counter 5, for ecu-a."""

    def build(terms: dict[str, Any] | None = None, *, counter: int = 5, name: str = "bundle.sdvota") -> Path:
        bundle = tmp_path / name
        terms_file = tmp_path / f"{name}.vehicle.yaml"
        terms_file.write_text(yaml.safe_dump(TERMS if terms is None else terms, allow_unicode=True))
        arguments: list[str | os.PathLike[str]] = [
            "ota", "build", "--name", "nav", "--version", f"2.{counter}.0", "--release-counter", str(counter),
            "--hardware-id", "ecu-a", "--payload", payloads["image"], "--payload", payloads["tree"],
            "--vehicle", terms_file, "-o", bundle,
        ]  # fmt: skip
        ok(*arguments)
        for signer in ("a", "e"):
            ok("ota", "sign", bundle, "--key", keys.private(signer))
        return bundle

    return build
