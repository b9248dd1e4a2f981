"""What a bundle asks of the vehicle it is installed on: preconditions on live signals, an energy budget, and the
notice shown to the user with whether consent is needed (UN R156 §7.2, GB 44496-2024 §7; see ``docs/ota.md``).

These are part of the signed manifest (the ``vehicle`` field of :class:`~sdv.ota.bundle.manifest.Manifest`), so
nobody on the way to the vehicle can weaken them; the ECU's agent configuration may add conditions of its own but
never remove one of these.

Invariants:

* every precondition parses in the condition language (:mod:`sdv.ota.bundle.conditions`) when the manifest is
  validated, so a signed bundle never carries a condition the agent cannot evaluate;
* a notice has at least one language, and each text is bounded in length;
* the energy budget's figures are positive and finite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sdv.config_files import parse_yaml, read_config_text
from sdv.errors import ConfigError, Problem
from sdv.located import node_lines, validation_problems
from sdv.ota.bundle.conditions import MAX_CONDITION_CHARS, Condition, parse_condition

__all__ = [
    "ConditionText",
    "EnergyBudget",
    "Notice",
    "NoticeText",
    "VehicleTerms",
    "load_vehicle_terms",
    "parse_conditions",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)
_TEXT_CHARS = 2000
_MAX_ITEMS = 32
_MAX_CONDITIONS = 64
_MAX_LANGUAGES = 16

ConditionText = Annotated[str, Field(min_length=1, max_length=MAX_CONDITION_CHARS)]
"""One precondition as written."""
_Text = Annotated[str, Field(min_length=1, max_length=_TEXT_CHARS)]
_Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]


class EnergyBudget(BaseModel):
    """The expected cost of an update, as the vehicle maker measured it.

    Attributes:
        duration_s: expected whole seconds of install, activation and a possible rollback together.
        energy_wh: whole Wh of electrical energy they need together.
    """

    model_config = _STRICT

    duration_s: int = Field(gt=0, le=7 * 24 * 3600)
    energy_wh: int = Field(gt=0, le=1_000_000)


class NoticeText(BaseModel):
    """The notice in one language: what UN R156 §7.2.1 asks a user be told before an update.

    Attributes:
        title: a short heading.
        purpose: why the update is made.
        changes: the changes to functions of the vehicle.
        duration: the expected time the update takes, in words.
        unavailable: functions not available while it runs.
        safety: instructions to keep the vehicle and its occupants safe meanwhile.
        after_success: what the user is told when the update succeeded.
        after_failure: what the user must do when it failed.
    """

    model_config = _STRICT

    title: _Text
    purpose: _Text
    changes: list[_Text] = Field(default_factory=list, max_length=_MAX_ITEMS)
    duration: _Text
    unavailable: list[_Text] = Field(default_factory=list, max_length=_MAX_ITEMS)
    safety: list[_Text] = Field(default_factory=list, max_length=_MAX_ITEMS)
    after_success: _Text | None = None
    after_failure: _Text | None = None


class Notice(BaseModel):
    """The user notice of a bundle.

    Attributes:
        consent_required: the driver must accept before the update is installed.
        texts: language tag (``en``, ``zh-CN``) → the notice in that language.
    """

    model_config = _STRICT

    consent_required: bool = True
    texts: dict[_Language, NoticeText] = Field(min_length=1, max_length=_MAX_LANGUAGES)


class VehicleTerms(BaseModel):
    """What the bundle asks of the vehicle.

    Attributes:
        preconditions: conditions that must hold before install and throughout activation.
        energy: the update's expected duration and energy.
        notice: what the user is told, and whether consent is needed.
    """

    model_config = _STRICT

    preconditions: list[ConditionText] = Field(default_factory=list, max_length=_MAX_CONDITIONS)
    energy: EnergyBudget | None = None
    notice: Notice | None = None

    @field_validator("preconditions")
    @classmethod
    def _parsed(cls, value: list[str]) -> list[str]:
        parse_conditions(value, "vehicle.preconditions")  # PreconditionSyntaxError is a ValueError
        return value


def parse_conditions(texts: list[str], source: str) -> list[Condition]:
    """Parse every condition of a list, each located by its index.

    Raises:
        PreconditionSyntaxError: one of them is not in the language.
    """
    return [parse_condition(text, f"{source}[{index}]") for index, text in enumerate(texts)]


def load_vehicle_terms(path: Path) -> VehicleTerms:
    """Read a bundle's vehicle terms from a YAML (or JSON) file, for ``sdv ota build --vehicle``.

    Raises:
        ConfigError: the file cannot be read or does not validate: every problem with the file, line, key path
            and what was expected.
    """
    file = str(path)
    data, node = parse_yaml(read_config_text(path), file)
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem(file, "(top level)", "expected a mapping with preconditions, energy, notice")]
        )
    try:
        return VehicleTerms.model_validate(data)
    except ValidationError as error:
        raise ConfigError(validation_problems(error, file, node_lines(node))) from None
