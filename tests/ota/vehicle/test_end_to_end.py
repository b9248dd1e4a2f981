"""Vehicle-aware updates end to end, every part a real process: ``sdv serve`` (a VSS catalogue open to providers,
tokens checked), the update agent (``sdv ota agent``, reading the signals with its own token and posting its
notice to the cockpit of ``sdv serve``), a provider driving the vehicle's values, the head unit answering through
the client library or raw gRPC, and ``kuksa-client`` reading the software identification."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from tests.serve_process import serving
from tests.waiting import wait_until

from conftest import Ecu, run_cli
from sdv._proto.sdv.cockpit.v1 import notices_pb2, notices_pb2_grpc
from sdv._proto.sdv.ota.v1 import ota_pb2
from sdv.api.tokens import create_token, generate_key, public_key_pem
from sdv.client import ChannelSecurity
from sdv.client.notices import UpdateNoticesClient
from sdv.errors import AccessDenied, SdvError
from sdv.ota.client import OtaClient
from sdv.resources import software_overlay
from sdv.sdk import SyncVehicle
from vehicle.background import Background, events, install_waiting, kuksa_software, state_reached, told_result
from vehicle.conftest import BRAKE, CAPACITY, CHARGING, GEAR, SOC, SPEED, TERMS, BuildVehicleBundle

pytestmark = pytest.mark.slow

DRIVING = {SPEED: 48.0, GEAR: 127, SOC: 80.0, CAPACITY: 60, CHARGING: False, BRAKE: False}
PARKED = {SPEED: 0.0, GEAR: 126, BRAKE: True}
_LEAF = {
    SPEED: {"type": "sensor", "datatype": "float", "unit": "km/h"},
    GEAR: {"type": "sensor", "datatype": "int8"},
    SOC: {"type": "sensor", "datatype": "float", "unit": "percent"},
    CAPACITY: {"type": "attribute", "datatype": "uint16", "unit": "kWh"},
    CHARGING: {"type": "sensor", "datatype": "boolean"},
    BRAKE: {"type": "sensor", "datatype": "boolean"},
}
AGENT_SCOPE = "read:Vehicle.Speed read:Vehicle.Powertrain read:Vehicle.Chassis provide:Vehicle.Software ota"
HEAD_UNIT_SCOPE = "read:Vehicle.Software actuate:Vehicle.Software.Notices"


def _catalogue(path: Path) -> Path:
    """A vss-tools JSON catalogue of the signals the preconditions read."""
    root: dict[str, Any] = {"type": "branch", "description": "Vehicle.", "children": {}}
    for leaf, node in _LEAF.items():
        branch = root
        for segment in leaf.split(".")[1:-1]:
            branch = branch["children"].setdefault(
                segment, {"type": "branch", "description": segment, "children": {}}
            )
        branch["children"][leaf.rsplit(".", 1)[1]] = {**node, "description": leaf}
    path.write_text(json.dumps({"Vehicle": root}))
    return path


@dataclass
class Vehicle:
    """``sdv serve`` with its tokens, and a provider driving the signals."""

    port: int
    key: Any
    driver: SyncVehicle

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def token(self, scope: str, subject: str) -> str:
        return create_token(self.key, scope, subject=subject)

    def drive(self, values: dict[str, object], *, age_s: float = 0.0) -> None:
        for path, value in values.items():
            self.driver.publish(path, value, time.time() - age_s)  # type: ignore[arg-type]


@pytest.fixture
def vehicle(tmp_path: Path) -> Iterator[Vehicle]:
    key = generate_key()
    public = tmp_path / "jwt.pub.pem"
    public.write_bytes(public_key_pem(key))
    catalogue = _catalogue(tmp_path / "vehicle.json")
    with serving(
        "--vss", str(catalogue), "--vss", str(software_overlay()), "--jwt-public-key", str(public)
    ) as (
        port,
        _,
    ):
        token = create_token(key, "provide read", subject="vehicle-bus")
        with SyncVehicle(f"127.0.0.1:{port}", token=token) as driver:
            result = Vehicle(port, key, driver)
            result.drive(DRIVING)
            yield result


def _agent_config(ecu: Ecu, vehicle: Vehicle, tmp_path: Path, **extra: object) -> Path:
    token = tmp_path / "agent.jwt"
    token.write_text(vehicle.token(AGENT_SCOPE, "ota-agent"))
    signals = {"server": vehicle.target, "token_file": str(token), "max_age_s": 30}
    return ecu.write_config(vehicle={"signals": signals, "wait_s": 300, "recheck_interval_s": 0.1, **extra})


def _status(client: OtaClient) -> ota_pb2.Status:
    return client.status()


def _events(ecu: Ecu, kind: str) -> list[dict[str, Any]]:
    return events(ecu.state_dir, kind)


def _head_unit_answers(
    vehicle: Vehicle, decision: notices_pb2.Decision.ValueType
) -> notices_pb2.UpdateNotice:
    """Raw gRPC: wait on the notice stream for an unanswered notice and answer it as driver Alice."""
    metadata = (("authorization", f"Bearer {vehicle.token(HEAD_UNIT_SCOPE, 'head-unit')}"),)
    with grpc.insecure_channel(vehicle.target) as channel:
        stub = notices_pb2_grpc.UpdateNoticesStub(channel)
        stream = stub.StreamNotices(
            notices_pb2.StreamNoticesRequest(language="zh-CN"), metadata=metadata, timeout=60
        )
        for board in stream:
            pending = [notice for notice in board.notices if not notice.HasField("answer")]
            if pending:
                stream.cancel()
                notice = pending[0]
                assert list(notice.texts) == ["zh-CN"] and notice.texts["zh-CN"].title == "导航更新"
                request = notices_pb2.DecideRequest(id=notice.id, decision=decision, driver="Alice")
                return stub.Decide(request, metadata=metadata, timeout=10)
    raise AssertionError("the notice stream ended without a notice")


def _kuksa_software(vehicle: Vehicle) -> dict[str, Any]:
    return kuksa_software(vehicle.port, vehicle.token("read:Vehicle.Software", "dashboard"))


def test_waits_while_driving_starts_when_parked_and_aborts_when_moving_off(
    ecu: Ecu, vehicle: Vehicle, build_vehicle_bundle: BuildVehicleBundle, start_agent: Any, tmp_path: Path
) -> None:
    factory = ecu.running()
    agent = start_agent(_agent_config(ecu, vehicle, tmp_path))
    with OtaClient(agent.target) as client:
        install, waiting = install_waiting(client, build_vehicle_bundle())
        assert waiting.state == ota_pb2.STATE_TRANSFERRED
        assert any(
            line.startswith(f"{SPEED} == 0: false for {SPEED} = 48.0") for line in waiting.vehicle.unmet
        )
        shown = run_cli("ota", "status", "--target", agent.target)
        assert (
            "preconditions for install NOT met" in shown.out
            and f"signal:   {SPEED} = 48.0 (valid)" in shown.out
        )

        vehicle.drive(PARKED)
        wait_until(
            lambda: _status(client).vehicle.consent == "waiting for the driver",
            what="the notice to be posted",
        )
        answered = _head_unit_answers(vehicle, notices_pb2.DECISION_ACCEPT)
        assert answered.answer.by == "Alice (head-unit)"
        assert install.join().state == ota_pb2.STATE_READY

        assert client.activate().state == ota_pb2.STATE_VERIFYING
        vehicle.drive({SPEED: 6.5, GEAR: 127})
        final = state_reached(client, ota_pb2.STATE_ROLLED_BACK, "the agent's trial watch to roll back")
    assert final.state == ota_pb2.STATE_ROLLED_BACK
    assert (
        "the vehicle left the update's preconditions" in final.failure and f"{SPEED} = 6.5" in final.failure
    )
    assert ecu.running() == factory

    consent = _events(ecu, "consent")
    assert consent[0]["action"] == "accept" and consent[0]["reason"].startswith("Alice (head-unit) at ")
    checks = _events(ecu, "preconditions")
    assert checks[0]["data"]["met"] == 0 and f"{SPEED}=48.0 valid" in checks[0]["data"]["signals"]
    assert any(
        entry["data"]["met"] == 1 and f"{SPEED}=0.0 valid" in entry["data"]["signals"] for entry in checks
    )
    assert checks[-1]["data"]["step"] == "activation" and checks[-1]["data"]["met"] == 0

    result = told_result(vehicle.target, vehicle.token(HEAD_UNIT_SCOPE, "head-unit"))
    assert not result.result.success and "Visit a workshop" in result.result.message


def test_a_stale_battery_signal_blocks_the_update(
    ecu: Ecu, vehicle: Vehicle, build_vehicle_bundle: BuildVehicleBundle, start_agent: Any, tmp_path: Path
) -> None:
    vehicle.drive(PARKED)
    vehicle.drive({SOC: 80.0}, age_s=3600)  # measured an hour ago: older than max_age_s
    agent = start_agent(_agent_config(ecu, vehicle, tmp_path, wait_s=0))
    with OtaClient(agent.target) as client:
        client.push(build_vehicle_bundle({**TERMS, "notice": None}))
        with pytest.raises(SdvError, match=f"energy: {SOC} is too old"):
            client.install()
        assert _status(client).state == ota_pb2.STATE_TRANSFERRED


def test_declined_consent_leaves_nothing_installed(
    ecu: Ecu, vehicle: Vehicle, build_vehicle_bundle: BuildVehicleBundle, start_agent: Any, tmp_path: Path
) -> None:
    vehicle.drive(PARKED)
    agent = start_agent(_agent_config(ecu, vehicle, tmp_path))
    with OtaClient(agent.target) as client:
        client.push(build_vehicle_bundle())
        install = Background(client.install)

        async def decline() -> notices_pb2.UpdateNotice:  # through the client library this time
            security = ChannelSecurity(token=vehicle.token(HEAD_UNIT_SCOPE, "head-unit"))
            async with UpdateNoticesClient(vehicle.target, security=security) as notices:
                async for board in notices.stream():
                    if board:
                        assert set(board[0].texts) == {"en", "zh-CN"}
                        return await notices.decide(board[0].id, "decline", driver="Bob")
            raise AssertionError("no notice")

        import asyncio

        assert asyncio.run(decline()).answer.decision == notices_pb2.DECISION_DECLINE
        with pytest.raises(SdvError, match="the driver declined the update"):
            install.join()
        status = _status(client)
    assert status.state == ota_pb2.STATE_IDLE and not status.HasField("installed")
    assert not (ecu.state_dir / "incoming.sdvota").exists()
    assert _events(ecu, "consent")[0]["action"] == "decline"


def test_software_identification_is_readable_after_a_commit_and_unchanged_after_a_rollback(
    ecu: Ecu, vehicle: Vehicle, build_vehicle_bundle: BuildVehicleBundle, start_agent: Any, tmp_path: Path
) -> None:
    vehicle.drive(PARKED)
    terms = {**TERMS, "notice": None}
    agent = start_agent(_agent_config(ecu, vehicle, tmp_path, software={"rxswin": None}))
    factory = wait_until(lambda: _kuksa_software(vehicle).get("Vehicle.Software.Version"), what="published")
    assert factory == "factory software"
    with OtaClient(agent.target) as client:
        client.push(build_vehicle_bundle(terms))
        client.install()
        client.activate()
        committed = client.mark_good()
        assert committed.state == ota_pb2.STATE_ACTIVATED
        first = _kuksa_software(vehicle)
        assert first["Vehicle.Software.Version"] == "nav 2.5.0"
        assert first["Vehicle.Software.Rxswin"] == committed.vehicle.software_id
        assert first["Vehicle.Software.Rxswin"].startswith("ecu-a-SW-")
        assert any(
            item.startswith("rootfs/rootfs.img nav 2.5.0 (counter 5")
            for item in first["Vehicle.Software.Components"]
        )

        client.push(build_vehicle_bundle(terms, counter=6, name="second.sdvota"))
        client.install()
        client.activate()
        assert client.rollback("test").state == ota_pb2.STATE_ROLLED_BACK
        assert _kuksa_software(vehicle) == first
    software = _events(ecu, "software")
    assert [entry["data"]["rxswin"] for entry in software] == [first["Vehicle.Software.Rxswin"]]


def test_the_notice_board_refuses_callers_without_the_scope(vehicle: Vehicle) -> None:
    async def refused() -> None:
        security = ChannelSecurity(token=vehicle.token("read:Vehicle.Speed", "app"))
        async with UpdateNoticesClient(vehicle.target, security=security) as notices:
            with pytest.raises(AccessDenied):
                await notices.decide("nav-1", "accept")
            with pytest.raises(AccessDenied):
                async for _ in notices.stream():
                    pass

    import asyncio

    asyncio.run(refused())
    metadata = (("authorization", f"Bearer {vehicle.token(HEAD_UNIT_SCOPE, 'head-unit')}"),)
    with grpc.insecure_channel(vehicle.target) as channel:  # a head unit may not post notices (ota scope)
        stub = notices_pb2_grpc.UpdateNoticesStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.PostNotice(notices_pb2.PostNoticeRequest(timeout_s=10), metadata=metadata, timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]


def test_push_shows_what_the_install_waits_for(
    ecu: Ecu, vehicle: Vehicle, build_vehicle_bundle: BuildVehicleBundle, start_agent: Any, tmp_path: Path
) -> None:
    agent = start_agent(_agent_config(ecu, vehicle, tmp_path))
    bundle = build_vehicle_bundle()
    push = subprocess.Popen(
        [sys.executable, "-m", "sdv.cli.main", "ota", "push", str(bundle), "--target", agent.target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert push.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(push.stderr))  # type: ignore[arg-type]
    reader.start()
    try:
        wait_until(
            lambda: any("waiting for the vehicle" in line for line in lines), what="push to show the wait"
        )
        vehicle.drive(PARKED)
        wait_until(lambda: any("consent" in line for line in lines), what="push to show the wait for consent")
        _head_unit_answers(vehicle, notices_pb2.DECISION_ACCEPT)
        out = push.stdout.read() if push.stdout is not None else ""
        push.wait(timeout=120)
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
        reader.join(timeout=30)
    err = "".join(lines)
    assert push.returncode == 0, err
    assert f"waiting for the vehicle: {SPEED} == 0: false for {SPEED} = 48.0" in err
    assert "waiting for the driver's consent on the cockpit (notice nav-2.5.0-1)" in err
    assert "state:      ready" in out
