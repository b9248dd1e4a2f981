"""The agent's vehicle gate on a real broker in the same process: preconditions, energy, the integrator's own
conditions, the re-check on trial, consent on a notice board, and what the event log keeps of each."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest
from tests.waiting import wait_until

from conftest import Ecu, ok
from sdv.broker import Broker
from sdv.broker.access import UNRESTRICTED
from sdv.hal.processor import SignalUpdate
from sdv.ota.agent.config import load_agent_config
from sdv.ota.agent.consent import Decision, NoticeBoard
from sdv.ota.agent.core import UpdateAgent
from sdv.ota.agent.state import AgentState
from sdv.ota.errors import (
    ConsentError,
    InsufficientEnergyError,
    PreconditionsUnmetError,
    PreconditionSyntaxError,
)
from sdv.ota.signals import BrokerSignals
from sdv.types.signals import Datapoint
from sdv.types.status import Status
from vehicle.conftest import CAPACITY, CHARGING, SOC, SPEED, TERMS, BuildVehicleBundle, publish

_S = AgentState
_NO_CONSENT = {key: value for key, value in TERMS.items() if key != "notice"}


def _agent(ecu: Ecu, broker: Broker, board: NoticeBoard | None = None, **vehicle: object) -> UpdateAgent:
    ecu.write_config(vehicle=vehicle) if vehicle else ecu.write_config()
    source = BrokerSignals(broker)  # the in-process broker: signals in, software identification out
    return UpdateAgent(load_agent_config(ecu.config), signals=source, consent=board, publisher=source)


def _events(ecu: Ecu, kind: str) -> list[dict[str, object]]:
    lines = (ecu.state_dir / "events.log").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["event"] == kind]


def test_a_parked_vehicle_installs_activates_and_commits(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    with _agent(ecu, broker) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        agent.process()
        agent.activate()
        agent.mark_good()
        assert agent.record.state is _S.ACTIVATED
    checks = _events(ecu, "preconditions")
    assert [entry["data"]["step"] for entry in checks] == ["install", "activate", "activation", "activation"]  # type: ignore[index]
    assert all(entry["data"]["met"] == 1 for entry in checks)  # type: ignore[index]
    assert f"{SPEED}=0.0 valid at " in checks[0]["data"]["signals"]  # type: ignore[index]
    assert checks[0]["data"]["energy_needed_wh"] == 2000  # type: ignore[index]
    assert checks[0]["data"]["energy_available_wh"] == 42000  # type: ignore[index]  # (80 - 10) % of 60 kWh


def test_a_moving_vehicle_refuses_the_install_and_keeps_the_bundle(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    publish(broker, {SPEED: 42.0})
    with _agent(ecu, broker) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        with pytest.raises(
            PreconditionsUnmetError, match=r"Vehicle.Speed == 0: false for Vehicle.Speed = 42.0"
        ):
            agent.process()
        assert agent.record.state is _S.TRANSFERRED
        assert agent.last_check is not None and not agent.last_check.met
        publish(broker, {SPEED: 0.0})
        agent.process()
        assert agent.record.state is _S.READY


def test_the_agent_waits_for_the_vehicle_to_stop(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    publish(broker, {SPEED: 42.0})
    with _agent(ecu, broker, wait_s=120, recheck_interval_s=0.05) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        worker = threading.Thread(target=agent.process)
        worker.start()
        wait_until(
            lambda: agent.last_check is not None and not agent.last_check.met, what="a first unmet check"
        )
        assert agent.record.state is _S.TRANSFERRED  # waiting, nothing staged yet
        publish(broker, {SPEED: 0.0})
        worker.join(timeout=60)
        assert agent.record.state is _S.READY
    steps = [(entry["data"]["step"], entry["data"]["met"]) for entry in _events(ecu, "preconditions")]  # type: ignore[index]
    assert steps == [("install", 0), ("install", 1)]  # a change is recorded, not every re-check


@pytest.mark.parametrize("status", [Status.STALE, Status.E2E_FAILED, Status.NOT_AVAILABLE])
def test_an_untrusted_battery_signal_blocks_the_update(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle, status: Status
) -> None:
    broker.publish([SignalUpdate(SOC, 80.0, 1.0, status)])
    with _agent(ecu, broker) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        with pytest.raises(InsufficientEnergyError, match=rf"{SOC} is {status.value.replace('_', ' ')}"):
            agent.process()
        assert agent.record.state is _S.TRANSFERRED


def test_too_little_charge_for_the_budget_is_refused(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    publish(broker, {SOC: 12.0})  # (12 - 10) % of 60 kWh = 1200 Wh < 2000 Wh
    with _agent(ecu, broker) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        with pytest.raises(
            InsufficientEnergyError, match="needs 2000 Wh; the battery has 1200 Wh above the 10 % reserve"
        ):
            agent.process()
    publish(broker, {SOC: 50.0})
    fixed = _agent(ecu, broker, energy={"capacity_wh": 5000, "reserve_percent": 20})
    with fixed as agent, pytest.raises(InsufficientEnergyError, match="has 1500 Wh above the 20 % reserve"):
        agent.process()
    publish(broker, {CAPACITY: 100.0})
    with _agent(ecu, broker) as agent:
        agent.process()  # the capacity signal: 40 % of 100 kWh
        assert agent.record.state is _S.READY


def test_the_integrators_conditions_hold_for_a_bundle_without_any(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    publish(broker, {CHARGING: True})
    with _agent(ecu, broker, preconditions=[f"not {CHARGING}"]) as agent:
        agent.receive_file(build_vehicle_bundle({"preconditions": []}))
        with pytest.raises(PreconditionsUnmetError, match=f"not {CHARGING}: false"):
            agent.process()


def test_a_bad_integrator_condition_is_a_located_config_error(ecu: Ecu) -> None:
    ecu.write_config(vehicle={"preconditions": ["Vehicle.Speed =< 3"]})
    with pytest.raises(Exception) as caught:
        load_agent_config(ecu.config)
    assert "vehicle.preconditions" in str(caught.value) and "at character 15" in str(caught.value)
    assert isinstance(caught.value.__cause__, PreconditionSyntaxError) or "line" in str(caught.value)


def test_without_a_signal_source_every_condition_is_unmet(
    ecu: Ecu, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    with UpdateAgent(load_agent_config(ecu.config)) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        with pytest.raises(PreconditionsUnmetError, match="no signal source is configured"):
            agent.process()


def test_moving_off_during_the_trial_rolls_back(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    factory = ecu.running()
    with _agent(ecu, broker) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        agent.process()
        agent.activate()
        assert agent.record.state is _S.VERIFYING
        publish(broker, {SPEED: 8.0})  # nobody calls the agent: its watch sees the vehicle move
        wait_until(lambda: agent.record.state is _S.ROLLED_BACK, what="the trial watch to roll back")
        assert "the vehicle left the update's preconditions" in (agent.record.failure or "")
        assert f"{SPEED} = 8.0" in (agent.record.failure or "")
        assert agent.record.installed is None
    assert ecu.running() == factory
    watched = _events(ecu, "preconditions")[-1]
    assert watched["data"]["step"] == "activation" and watched["data"]["met"] == 0  # type: ignore[index]
    assert f"{SPEED}=8.0 valid" in watched["data"]["signals"]  # type: ignore[index]
    assert [entry["state"] for entry in _events(ecu, "state")][-2:] == ["rolling-back", "rolled-back"]
    assert not any(thread.name == "ota-trial-watch" for thread in threading.enumerate())


def test_an_agent_restarted_on_trial_watches_the_vehicle_again(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    factory = ecu.running()
    with _agent(ecu, broker, recheck_interval_s=0.05) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        agent.process()
        agent.activate()
    publish(broker, {SPEED: 12.0})  # driven off while the agent was down
    with _agent(ecu, broker, recheck_interval_s=0.05) as agent:
        assert agent.record.state in (_S.VERIFYING, _S.ROLLING_BACK, _S.ROLLED_BACK)
        wait_until(
            lambda: agent.record.state is _S.ROLLED_BACK, what="the restarted agent's watch to roll back"
        )
        assert f"{SPEED} = 12.0" in (agent.record.failure or "")
    assert ecu.running() == factory


def test_a_commit_checks_the_vehicle_itself_between_two_rounds_of_the_watch(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    factory = ecu.running()
    with _agent(ecu, broker, recheck_interval_s=60) as agent:  # the watch's first round is a minute away
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        agent.process()
        agent.activate()
        publish(broker, {SPEED: 8.0})
        agent.mark_good()
        assert agent.record.state is _S.ROLLED_BACK
        assert "the vehicle left the update's preconditions" in (agent.record.failure or "")
    assert ecu.running() == factory


class _CountedSignals(BrokerSignals):
    """The broker's signals, with an event set at each read after :meth:`arm`."""

    def __init__(self, broker: Broker) -> None:
        super().__init__(broker)
        self.read_again = threading.Event()
        self._armed = False

    def arm(self) -> None:
        self._armed = True

    def read(self, paths: Sequence[str]) -> Mapping[str, Datapoint]:
        if self._armed:
            self.read_again.set()
        return super().read(paths)


def test_a_steady_parked_vehicle_is_recorded_once_on_trial(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    ecu.write_config(vehicle={"recheck_interval_s": 0.05})
    source = _CountedSignals(broker)
    with UpdateAgent(load_agent_config(ecu.config), signals=source, publisher=source) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        agent.process()
        agent.activate()
        source.arm()
        assert source.read_again.wait(30), "the watch never read the signals"
        agent.mark_good()
        assert agent.record.state is _S.ACTIVATED
    steps = [entry["data"]["step"] for entry in _events(ecu, "preconditions")]  # type: ignore[index]
    assert steps == ["install", "activate", "activation", "activation"]


def test_an_activation_refused_while_moving_stays_ready(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    with _agent(ecu, broker) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        agent.process()
        publish(broker, {SPEED: 3.0})
        with pytest.raises(PreconditionsUnmetError, match="cannot activate"):
            agent.activate()
        assert agent.record.state is _S.READY


def _answer(board: NoticeBoard, decision: Decision) -> threading.Thread:
    def run() -> None:
        wait_until(lambda: board.notices()[1], what="a notice on the board")
        board.decide(board.notices()[1][0].id, decision, "driver on the head unit")

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_accepted_consent_is_recorded_and_the_result_told(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    board = NoticeBoard()
    with _agent(ecu, broker, board) as agent:
        agent.receive_file(build_vehicle_bundle())
        answering = _answer(board, Decision.ACCEPT)
        agent.process()
        answering.join()
        agent.activate()
        agent.mark_good()
    notice = board.notices()[1][0]
    assert set(notice.notice.texts) == {"en", "zh-CN"}
    assert notice.answer is not None and notice.answer.by == "driver on the head unit"
    assert notice.result is not None and notice.result.success
    assert notice.result.message == "The update is installed."
    consent = _events(ecu, "consent")
    assert consent[0]["action"] == "accept" and "driver on the head unit at " in str(consent[0]["reason"])
    assert [entry["action"] for entry in _events(ecu, "notice")] == ["posted", "result"]
    shown = ok("ota", "log", "show", "--config", ecu.config)
    assert "consent to notice nav-2.5.0-1: accept; driver on the head unit at " in shown
    assert "vehicle check for install: met (Vehicle.Speed=0.0 valid at " in shown
    assert "software identification ecu-a-SW-" in shown
    ok("ota", "log", "verify", "--config", ecu.config)  # the new entries keep the chain intact


def test_declined_consent_leaves_nothing_installed(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    board = NoticeBoard()
    with _agent(ecu, broker, board) as agent:
        agent.receive_file(build_vehicle_bundle())
        answering = _answer(board, Decision.DECLINE)
        with pytest.raises(ConsentError, match="declined"):
            agent.process()
        answering.join()
        assert agent.record.state is _S.IDLE
        assert agent.record.bundle is None and agent.record.installed is None
    assert not (ecu.state_dir / "incoming.sdvota").exists()
    assert not ecu.image("B").exists() or ecu.image("B").stat().st_size == 0


def test_no_answer_before_the_deadline_is_no_consent(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    board = NoticeBoard()
    with _agent(ecu, broker, board, consent={"timeout_s": 0.2}) as agent:
        agent.receive_file(build_vehicle_bundle())
        with pytest.raises(ConsentError, match="gave no answer in time"):
            agent.process()
        assert agent.record.state is _S.TRANSFERRED


def test_consent_required_without_a_cockpit_is_refused(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    with _agent(ecu, broker) as agent:
        agent.receive_file(build_vehicle_bundle())
        with pytest.raises(ConsentError, match="no cockpit is configured"):
            agent.process()


def test_outside_the_maintenance_windows_nothing_starts(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    hour = datetime.now(UTC).hour
    window = {"start": f"{(hour + 2) % 24:02d}:00", "end": f"{(hour + 3) % 24:02d}:00"}
    with _agent(ecu, broker, consent={"windows": [window]}) as agent:
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        with pytest.raises(PreconditionsUnmetError, match="outside the maintenance windows"):
            agent.process()


def test_the_broker_source_reads_with_the_rights_it_is_given(broker: Broker) -> None:
    assert BrokerSignals(broker).read([SPEED, "Vehicle.Unknown.Signal"]) == {
        SPEED: broker.get(SPEED, access=UNRESTRICTED)
    }


def test_the_signed_report_carries_the_software_identification(
    ecu: Ecu, broker: Broker, build_vehicle_bundle: BuildVehicleBundle
) -> None:
    from sdv.ota.agent.report import canonical_bytes, new_nonce, parse_signed_report, verify_report

    with _agent(ecu, broker, software={"rxswin": "R156-ECU-A-2026.1"}) as agent:
        assert broker.get("Vehicle.Software.Rxswin", access=UNRESTRICTED).value == "R156-ECU-A-2026.1"
        agent.receive_file(build_vehicle_bundle(_NO_CONSENT))
        agent.process()
        agent.activate()
        agent.mark_good()
        nonce = new_nonce()
        signed = agent.records.report(agent.status(), nonce)
        key = agent.records.key.public_key
    parsed = parse_signed_report(canonical_bytes(signed), "report")
    assert verify_report(parsed, key, nonce=nonce, source="report").software_id == "R156-ECU-A-2026.1"
    assert broker.get("Vehicle.Software.Version", access=UNRESTRICTED).value == "nav 2.5.0"
