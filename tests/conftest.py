"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest

from sdv.hal.vehicle import VehicleModel, load_vehicle
from sdv.resources import demo_profile


@pytest.fixture(scope="session")
def demo_vehicle() -> VehicleModel:
    return load_vehicle(demo_profile())
