"""Cancelling an install that waits for the vehicle or for the driver's consent: the wait ends at once, the agent is
idle again with nothing installed and no bundle kept, the cockpit is told, and the event log keeps it. In process
(a broker and a notice board) and end to end (``sdv ota agent`` waiting on the cockpit of ``sdv serve``)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from tests.waiting import wait_until

from conftest import Ecu, run_cli
from sdv._proto.sdv.ota.v1 import ota_pb2
from sdv.broker import Broker
from sdv.errors import SdvError
from sdv.ota.agent.config import load_agent_config
from sdv.ota.agent.consent import Decision, NoticeBoard
from sdv.ota.agent.core import UpdateAgent
from sdv.ota.agent.state import AgentState
from sdv.ota.client import OtaClient
from sdv.ota.errors import OperationCancelledError
from sdv.ota.signals import BrokerSignals
from vehicle.background import Background, events, told_result
from vehicle.conftest import SPEED, TERMS, BuildVehicleBundle, publish
from vehicle.drive_recording import Phase, replaying

_S = AgentState
_NO_CONSENT = {key: value for key, value in TERMS.items() if key != "notice"}


def _agent(ecu: Ecu, broker: Broker, board: NoticeBoard | None) -> UpdateAgent:
    ecu.write_config(vehicle={"wait_s": 300, "recheck_interval_s": 0.05})
    source = BrokerSignals(broker)
    return UpdateAgent(load_agent_config(ecu.config), signals=source, consent=board, publisher=source)


def _cancel_when(agent: UpdateAgent, waiting: str) -> threading.Thread:
    """Cancel once the agent's status shows it ``waiting`` (for the driver, or for the vehicle)."""

    def run() -> None:
        def waits() -> bool:
            view = agent.status().vehicle
            if view is None:
                return False
            if waiting == "driver":
                return view.consent == "waiting for the driver"
            return view.check is not None and not view.check.met

        wait_until(waits, what=f"the install to wait for the {waiting}")
        agent.cancel()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_cancel_while_waiting_for_the_vehicle_ends_the_wait(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    publish(broker, {SPEED: 30.0})
    with _agent(ecu, broker, None) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        cancelling = _cancel_when(agent, "vehicle")
        with pytest.raises(
            OperationCancelledError, match=r"cancelled while waiting to install: Vehicle\.Speed"
        ):
            agent.process()  # would wait 300 s for the vehicle to stop
        cancelling.join()
        assert agent.record.state is _S.IDLE and agent.record.transfer is None
    assert not agent.incoming.exists()
    assert [entry["state"] for entry in events(ecu.state_dir, "state")][-1] == "idle"


def test_cancel_while_waiting_for_consent_withdraws_the_notice_and_keeps_nothing(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    board = NoticeBoard()
    with _agent(ecu, broker, board) as agent:
        agent.receive_file(build_vehicle_bundle())
        cancelling = _cancel_when(agent, "driver")
        with pytest.raises(OperationCancelledError, match="waiting for the driver's consent"):
            agent.process()
        cancelling.join()
        assert agent.record.state is _S.IDLE and agent.record.installed is None
        assert agent.status().vehicle.consent == "cancelled"  # type: ignore[union-attr]
        notice = board.notices()[1][0]
        assert notice.answer is None and notice.result is not None and not notice.result.success
        assert "cancelled before the driver answered" in notice.result.message

        agent.receive_file(build_vehicle_bundle(name="again.sdvota"))  # the next install is not cancelled
        answering = threading.Thread(target=lambda: _accept_second(board))
        answering.start()
        agent.process()
        answering.join()
        assert agent.record.state is _S.READY
    consent = events(ecu.state_dir, "consent")
    assert [entry["action"] for entry in consent] == ["cancelled", "accept"]
    assert consent[0]["data"]["notice"] == notice.id


def _accept_second(board: NoticeBoard) -> None:
    wait_until(lambda: len(board.notices()[1]) == 2, what="the second notice")
    board.decide(board.notices()[1][1].id, Decision.ACCEPT, "driver")


HEAD_UNIT_SCOPE = "read:Vehicle.Software actuate:Vehicle.Software.Notices"
AGENT_SCOPE = "read:Vehicle.Speed read:Vehicle.Powertrain read:Vehicle.Chassis provide:Vehicle.Software ota"


@pytest.mark.slow
def test_cancel_during_the_remote_consent_wait_ends_cleanly(
    ecu: Ecu, build_vehicle_bundle: BuildVehicleBundle, start_agent: Any, tmp_path: Path
) -> None:
    parked = [Phase(600, speed=0.0, gear="P", parking_brake=True, state_of_charge=80.0)]
    with replaying(tmp_path, parked) as replay:
        token = tmp_path / "agent.jwt"
        token.write_text(replay.token(AGENT_SCOPE, "ota-agent"))
        signals = {"server": replay.target, "token_file": str(token)}
        energy = {"capacity_wh": 60000}
        config = ecu.write_config(vehicle={"signals": signals, "wait_s": 60, "energy": energy})
        agent = start_agent(config)
        with OtaClient(agent.target) as client:
            client.push(build_vehicle_bundle())
            install = Background(client.install)
            wait_until(
                lambda: client.status().vehicle.consent == "waiting for the driver",
                what="the agent to wait for the driver's consent",
            )
            shown = run_cli("ota", "status", "--target", agent.target).out.splitlines()
            assert "notice:     nav-2.5.0-1 (pending on the cockpit)" in shown
            assert "consent:    waiting for the driver" in shown
            assert any(line.startswith("vehicle:    preconditions for install met at ") for line in shown)
            assert "  signal:   Vehicle.Speed = 0.0 (valid)" in shown  # the live value the check saw
            assert client.cancel().state == ota_pb2.STATE_IDLE
            with pytest.raises(SdvError, match="waiting for the driver's consent"):
                install.join()
            status = client.status()
        assert status.state == ota_pb2.STATE_IDLE and not status.HasField("installed")
        assert status.vehicle.consent == "cancelled"
        after = run_cli("ota", "status", "--target", agent.target, "--json").out
        assert json.loads(after)["vehicle"]["consent"] == "cancelled"

        withdrawn = told_result(replay.target, replay.token(HEAD_UNIT_SCOPE, "head-unit"))
    assert not withdrawn.HasField("answer") and not withdrawn.result.success
    assert "cancelled before the driver answered" in withdrawn.result.message
    assert not (ecu.state_dir / "incoming.sdvota").exists()
    assert events(ecu.state_dir, "consent")[-1]["action"] == "cancelled"
