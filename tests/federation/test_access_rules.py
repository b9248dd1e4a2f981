"""The generated zenoh access rules, enforced by real zenoh sessions over mutual TLS: an ECU may put only the
signals it owns and answer only for its own actuators; the others' forgeries are dropped on arrival."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zenoh

from sdv.federation.acl import access_rules
from sdv.federation.keys import KeyLayout
from sdv.federation.ownership_map import EcuOwnership
from sdv.federation.session import open_session, zenoh_settings
from sdv.federation_config import FederationConfig
from sdv.hal.vehicle import load_vehicle
from tests.federation.certificates import write_ecu_certificates
from tests.federation.network import free_port
from tests.federation.vehicle import LOW_BEAM, TRUNK, VEHICLE, write_vehicle
from tests.serve_process import REPOSITORY

LAYOUT = KeyLayout(VEHICLE)
DEADLINE_S = 60


@pytest.fixture
def vehicle_files(tmp_path: Path) -> dict[str, Path]:
    files = write_vehicle(tmp_path, dict.fromkeys("abc", "tcp/127.0.0.1:1"), frame_port=1)
    return {name: ecu.profile for name, ecu in files.items()}


def ownership(profiles: dict[str, Path]) -> dict[str, EcuOwnership]:
    result = {}
    for name, profile in profiles.items():
        vehicle = load_vehicle(profile)
        assert vehicle.config.federation is not None
        result[name] = EcuOwnership.of(vehicle, vehicle.config.federation)
    return result


@pytest.fixture
def sessions(tmp_path: Path, vehicle_files: dict[str, Path]) -> Iterator[dict[str, zenoh.Session]]:
    """ECU a listening with the access rules; b and c connecting to it, each with its own certificate."""
    tls = write_ecu_certificates(tmp_path, ["a", "b", "c"])
    rules = access_rules(VEHICLE, ownership(vehicle_files))
    port = free_port()
    opened: dict[str, zenoh.Session] = {}
    try:
        for ecu in ("a", "b", "c"):
            config = FederationConfig(
                vehicle=VEHICLE,
                ecu=ecu,
                listen=[f"tls/127.0.0.1:{port}"] if ecu == "a" else [],
                peers=[] if ecu == "a" else [f"tls/127.0.0.1:{port}"],
                tls=tls[ecu],
            )
            opened[ecu] = open_session(zenoh_settings(config, access_control=rules), ecu)
        yield opened
    finally:
        for session in opened.values():
            session.close()


def test_an_ecu_puts_its_own_signals_and_its_forgeries_of_others_are_dropped(
    sessions: dict[str, zenoh.Session],
) -> None:
    received: queue.Queue[str] = queue.Queue()
    subscriber = sessions["a"].declare_subscriber(
        LAYOUT.every_signal, lambda s: received.put(str(s.key_expr))
    )
    own, forged = LAYOUT.signal(TRUNK), LAYOUT.signal(LOW_BEAM)  # b owns the trunk, c the low beam
    keys: list[str] = []
    while own not in keys:  # until a's subscription reached b; each round sends the forgery first
        sessions["b"].put(forged, b"forged")
        sessions["b"].put(own, b"own")
        try:
            keys.append(received.get(timeout=0.2))
        except queue.Empty:
            continue
    while not received.empty():
        keys.append(received.get())
    assert forged not in keys
    subscriber.undeclare()


def test_only_the_owner_answers_for_an_actuator(sessions: dict[str, zenoh.Session]) -> None:
    key = LAYOUT.actuator(LOW_BEAM)
    impostor = sessions["b"].declare_queryable(key, lambda query: query.reply(key, b"from b"))
    owner = sessions["c"].declare_queryable(key, lambda query: query.reply(key, b"from c"))
    answers: list[bytes] = []
    deadline = time.monotonic() + 60  # a loaded machine may take long to propagate c's queryable to a
    while not answers and time.monotonic() < deadline:
        answers = [reply.ok.payload.to_bytes() for reply in sessions["a"].get(key, timeout=1.0) if reply.ok]
    assert answers == [b"from c"]
    impostor.undeclare()
    owner.undeclare()


def test_sdv_federation_acl_writes_the_rules_of_the_vehicle(
    tmp_path: Path, vehicle_files: dict[str, Path]
) -> None:
    output = tmp_path / "acl.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdv.cli.main",
            "federation",
            "acl",
            *map(str, vehicle_files.values()),
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        timeout=DEADLINE_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    section = json.loads(output.read_text())["access_control"]
    assert section == access_rules(VEHICLE, ownership(vehicle_files))
    owns = {rule["id"]: rule["key_exprs"] for rule in section["rules"]}
    assert LAYOUT.actuator(LOW_BEAM) in owns["c-owns"] and LAYOUT.signal(LOW_BEAM) not in owns["b-owns"]


def test_sdv_federation_acl_refuses_two_owners_of_one_signal(
    tmp_path: Path, vehicle_files: dict[str, Path]
) -> None:
    twin = tmp_path / "twin.yaml"
    twin.write_text(vehicle_files["b"].read_text().replace("ecu: b", "ecu: d"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdv.cli.main",
            "federation",
            "acl",
            str(vehicle_files["b"]),
            str(twin),
            "-o",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        timeout=DEADLINE_S,
        check=False,
    )
    assert done.returncode == 1
    assert f"{TRUNK} is owned by ECU b and ECU d" in done.stderr
    assert not (tmp_path / "x.json").exists()
