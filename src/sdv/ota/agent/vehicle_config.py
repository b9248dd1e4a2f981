"""The ``vehicle:`` section of the agent configuration: where live signals come from, the ECU integrator's own
preconditions, the battery for the energy budget, consent policy and maintenance windows, software identification.

Example::

    vehicle:
      signals:
        server: 127.0.0.1:55555            # sdv serve's KUKSA API; absent: in-process, or no signals at all
        token_file: /etc/sdv/ota-agent.jwt  # read scope on the paths the conditions name
        max_age_s: 5                       # a valid value older than this counts as stale
      preconditions:                       # added to every bundle's; a bundle cannot remove them
        - Vehicle.Speed == 0
      wait_s: 600                          # install/activate wait this long for the conditions to hold
      recheck_interval_s: 0.5
      energy: {capacity_wh: 60000, reserve_percent: 15}
      consent: {required: true, timeout_s: 900, windows: [{start: "01:00", end: "05:00"}]}
      software: {rxswin: "R156-VIN123-2026.1"}
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sdv.ota.bundle.conditions import NamedValues
from sdv.ota.bundle.vehicle_terms import ConditionText, parse_conditions
from sdv.types.datatypes import Value

__all__ = [
    "DEFAULT_NAMED_VALUES",
    "ConsentConfig",
    "EnergyConfig",
    "MaintenanceWindow",
    "SignalsConfig",
    "SoftwareIdConfig",
    "VehicleConfig",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)
_Path = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$", max_length=512)]

DEFAULT_NAMED_VALUES: dict[str, dict[str, Value]] = {
    # VSS 4.0: SelectedGear is an int8, 0 neutral, -1 reverse, 126 park, 127 drive.
    "Vehicle.Powertrain.Transmission.SelectedGear": {"PARK": 126, "DRIVE": 127, "NEUTRAL": 0, "REVERSE": -1},
    "Vehicle.Powertrain.Transmission.CurrentGear": {"PARK": 126, "DRIVE": 127, "NEUTRAL": 0, "REVERSE": -1},
}
"""Named values the conditions understand on signals that carry numbers."""


class SignalsConfig(BaseModel):
    """Where the agent reads live signals.

    Attributes:
        server: ``sdv serve``'s KUKSA API (``HOST[:PORT]``, ``grpcs://`` for TLS); none: the signals of the
            broker the agent runs with in one process, or none at all (then every condition is unmet).
        token_file: the agent's bearer token (read scope on the paths it needs).
        ca: the server's CA certificate for ``grpcs://``.
        timeout_s: one read may take this long; a failed read counts every condition as unmet.
        max_age_s: a valid value measured longer ago than this counts as stale (none: the server's freshness
            monitoring alone decides).
    """

    model_config = _STRICT

    server: str | None = Field(default=None, max_length=512)
    token_file: Path | None = None
    ca: Path | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=600)
    max_age_s: float | None = Field(default=None, gt=0)


class EnergyConfig(BaseModel):
    """The battery the energy budget is checked against.

    Attributes:
        state_of_charge: the signal of the state of charge, in percent.
        capacity_wh: the usable capacity in Wh; none: read from ``capacity_signal``.
        capacity_signal: the signal of the usable capacity, in kWh (VSS ``NetCapacity``).
        reserve_percent: state of charge kept back for driving away after the update.
    """

    model_config = _STRICT

    state_of_charge: _Path = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
    capacity_wh: float | None = Field(default=None, gt=0)
    capacity_signal: _Path = "Vehicle.Powertrain.TractionBattery.NetCapacity"
    reserve_percent: float = Field(default=10.0, ge=0, lt=100)


class MaintenanceWindow(BaseModel):
    """A daily time span (UTC) in which updates may be installed and activated; it may wrap past midnight.

    Attributes:
        start: from this time of day.
        end: until this time of day.
    """

    model_config = _STRICT

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        """Whether ``moment`` lies in the window."""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class ConsentConfig(BaseModel):
    """The ECU's consent policy.

    Attributes:
        required: consent is asked for every bundle, also one whose notice does not require it (a bundle
            without a notice is then refused).
        timeout_s: how long the agent waits for the driver's answer before giving up (the notice is withdrawn).
        windows: the maintenance windows; none: at any time.
    """

    model_config = _STRICT

    required: bool = False
    timeout_s: float = Field(default=900.0, gt=0, le=7 * 24 * 3600)
    windows: list[MaintenanceWindow] = Field(default_factory=list, max_length=32)


class SoftwareIdConfig(BaseModel):
    """Software identification published as read-only VSS attributes.

    Attributes:
        rxswin: the vehicle's software identification number (RXSWIN under UN R156; the software identification
            code of GB 44496); none: derived from the committed bundles.
        branch: the VSS branch the attributes are published under.
    """

    model_config = _STRICT

    rxswin: str | None = Field(default=None, min_length=1, max_length=128)
    branch: _Path = "Vehicle.Software"


class VehicleConfig(BaseModel):
    """How the agent takes the vehicle's state into account.

    Attributes:
        signals: where live signals come from.
        preconditions: the ECU integrator's conditions, checked in addition to every bundle's.
        named_values: signal path → named value → number (adds to :data:`DEFAULT_NAMED_VALUES`).
        wait_s: install and activate wait this long for unmet conditions to hold (0: refuse at once).
        recheck_interval_s: how often conditions are evaluated again while waiting and during activation.
        energy: the battery for the energy budget.
        consent: consent policy and maintenance windows.
        software: software identification.
    """

    model_config = _STRICT

    signals: SignalsConfig = SignalsConfig()
    preconditions: list[ConditionText] = Field(default_factory=list, max_length=64)
    named_values: dict[_Path, dict[str, int | float | str | bool]] = Field(
        default_factory=dict, max_length=256
    )
    wait_s: float = Field(default=0.0, ge=0, le=7 * 24 * 3600)
    recheck_interval_s: float = Field(default=0.5, gt=0, le=60)
    energy: EnergyConfig = EnergyConfig()
    consent: ConsentConfig = ConsentConfig()
    software: SoftwareIdConfig = SoftwareIdConfig()

    @field_validator("preconditions")
    @classmethod
    def _parsed(cls, value: list[str]) -> list[str]:
        parse_conditions(value, "vehicle.preconditions")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> VehicleConfig:
        if self.signals.token_file is not None and self.signals.server is None:
            raise ValueError("signals.token_file needs signals.server")
        return self

    @property
    def names(self) -> NamedValues:
        """Every named value, the defaults and the configured ones."""
        return {**DEFAULT_NAMED_VALUES, **self.named_values}
