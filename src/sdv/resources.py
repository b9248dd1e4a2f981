"""Locating the data the project ships: the demo vehicle's DBC, its profile, its VSS overlay and the demo drive.

In a wheel the data lives in ``sdv/_data``; in a source checkout (editable install) it lives at the repository
root, in ``dbc/``, ``hal/`` and ``ota/``. Both layouts resolve to the same names.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_dir", "demo_dbc", "demo_overlay", "demo_profile", "demo_recording", "software_overlay"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    """The directory holding one kind of shipped data (``dbc``, ``hal`` or ``ota``)."""
    installed = _PACKAGE_DIR / "_data" / kind
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent.parent / kind


def demo_dbc() -> Path:
    """The example vehicle's DBC file."""
    return data_dir("dbc") / "sdv_demo.dbc"


def demo_profile() -> Path:
    """The example vehicle's profile."""
    return data_dir("hal") / "demo_vehicle.yaml"


def demo_overlay() -> Path:
    """The VSS overlay (vss-tools JSON) of the example vehicle's signals that VSS 4.0 does not define, under the
    project's branch ``Vehicle.SDV``; the VSS catalogue itself is not shipped."""
    return data_dir("hal") / "vss_sdv_overlay.json"


def demo_recording() -> Path:
    """The demo drive, a gzip-compressed candump log of the example vehicle's buses."""
    return data_dir("hal") / "recordings" / "demo_drive.log.gz"


def software_overlay() -> Path:
    """The VSS overlay (vss-tools JSON) of the software identification branch ``Vehicle.Software`` the update
    agent publishes."""
    return data_dir("ota") / "vss_software_overlay.json"
