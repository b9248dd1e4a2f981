"""A full fleet run: the DDI server offers a deployment, the agent process downloads it from nginx, installs,
activates, commits, and reports each step, the final ``closed/success`` and the new version in configData."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.ota.conftest import AgentProcess, BuildBundle, Ecu
from tests.ota.fleet.ddi_server import Action, DdiServer
from tests.ota.fleet.servers import Nginx
from tests.waiting import wait_until

from sdv.ota.agent.core import read_record
from sdv.ota.agent.state import AgentState
from sdv.ota.bundle.store import hash_file

TOKEN = "t0k3n-of-the-ecu"


@pytest.fixture
def ddi() -> Iterator[DdiServer]:
    server = DdiServer("DEFAULT", "VIN123-IHU", TOKEN)
    yield server
    server.close()


def _agent(ecu: Ecu, ddi: DdiServer, start_agent: Callable[..., AgentProcess]) -> AgentProcess:
    token = ecu.root / "hawkbit.token"
    token.write_text(TOKEN + "\n")
    return start_agent(
        ecu.config,
        extra=[
            "--hawkbit",
            ddi.url,
            "--tenant",
            ddi.tenant,
            "--controller-id",
            ddi.controller_id,
            "--token-file",
            str(token),
        ],
    )


def _offer(ddi: DdiServer, nginx: Nginx, bundle: Path, action_id: str) -> Action:
    shutil.copy(bundle, nginx.root / bundle.name)
    size, digest = hash_file(bundle)
    return ddi.offer(Action(action_id, nginx.url(bundle.name), size, digest, filename=bundle.name))


@pytest.mark.slow
def test_a_deployment_is_downloaded_installed_committed_and_reported(
    ecu: Ecu,
    build_bundle: BuildBundle,
    ddi: DdiServer,
    nginx: Nginx,
    start_agent: Callable[..., AgentProcess],
    new_software: tuple[str, str],
) -> None:
    action = _offer(ddi, nginx, build_bundle(output="ihu-1.5.0.sdvota"), "8")
    agent = _agent(ecu, ddi, start_agent)
    closed = wait_until(lambda: action.closed, what="the closed feedback")
    assert closed["status"]["result"]["finished"] == "success", closed
    assert agent.stop() == 0
    executions = [item["status"]["execution"] for item in action.feedback]
    assert executions[0] == "proceeding" and "downloaded" in executions and executions[-1] == "closed"
    steps = [item["status"]["result"].get("progress", {}).get("cnt") for item in action.feedback]
    assert [step for step in dict.fromkeys(steps) if step is not None] == [1, 2, 3, 4, 5]
    assert all(item["status"]["result"].get("progress", {}).get("of", 5) == 5 for item in action.feedback)
    assert "1.5.0" in closed["status"]["details"][0]
    record = read_record(ecu.state_dir)
    assert record.state is AgentState.ACTIVATED and record.installed is not None
    assert record.installed.version == "1.5.0"
    assert ecu.running() == new_software
    last = ddi.config_data[-1]
    assert last["mode"] == "merge"
    assert last["data"]["sdv.version"] == "1.5.0" and last["data"]["sdv.hardware_id"] == "ecu-a"
    assert ddi.unauthorized == 0
    ranges = [header for _, header, _ in nginx.requests("ihu-1.5.0.sdvota")]
    assert ranges[0].startswith("bytes=0-") and all(header.startswith("bytes=") for header in ranges)


@pytest.mark.slow
def test_a_bundle_failing_its_signature_is_reported_and_nothing_is_installed(
    ecu: Ecu,
    build_bundle: BuildBundle,
    ddi: DdiServer,
    nginx: Nginx,
    start_agent: Callable[..., AgentProcess],
) -> None:
    factory = ecu.software("B")
    bundle = build_bundle(output="forged.sdvota", signers=("a", "x"))  # x is no release key: 1 of 2
    action = _offer(ddi, nginx, bundle, "9")
    agent = _agent(ecu, ddi, start_agent)
    closed = wait_until(lambda: action.closed, what="the closed feedback")
    assert agent.stop() == 0
    assert closed["status"]["result"]["finished"] == "failure"
    assert "threshold" in closed["status"]["details"][0], closed
    record = read_record(ecu.state_dir)
    assert record.installed is None and record.transfer is None
    assert not (ecu.state_dir / "incoming.sdvota").exists()
    assert ecu.software("B") == factory
    # only the header was fetched: the payload of a refused bundle is never downloaded
    assert sum(sent for _, _, sent in nginx.requests("forged.sdvota")) < 64 * 1024
    assert ddi.config_data[-1]["data"]["sdv.version"] == "factory"


@pytest.mark.slow
def test_a_cancelled_action_is_cancelled_and_confirmation_is_given(
    ecu: Ecu,
    build_bundle: BuildBundle,
    ddi: DdiServer,
    nginx: Nginx,
    start_agent: Callable[..., AgentProcess],
    new_software: tuple[str, str],
) -> None:
    cancelled = _offer(ddi, nginx, build_bundle(output="old.sdvota", counter=4), "10")
    cancelled.cancel_requested = True
    agent = _agent(ecu, ddi, start_agent)
    wait_until(lambda: cancelled.cancel_feedback, what="the cancel feedback")
    assert cancelled.cancel_feedback[0]["status"]["result"]["finished"] == "success"
    action = _offer(ddi, nginx, build_bundle(output="ihu-1.5.0.sdvota"), "11")
    action.needs_confirmation = True
    closed = wait_until(lambda: action.closed, what="the closed feedback after the confirmation")
    assert agent.stop() == 0
    assert action.confirmed is True
    assert closed["status"]["result"]["finished"] == "success"
    assert ecu.running() == new_software
