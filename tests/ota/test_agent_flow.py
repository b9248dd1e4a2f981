"""The update agent in-process, on real files: install, activate, commit, roll back, refuse."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from conftest import BuildBundle, Ecu, fake_fw_tools
from sdv.ota.agent.config import load_agent_config
from sdv.ota.agent.core import UpdateAgent, read_record
from sdv.ota.agent.state import AgentState
from sdv.ota.bundle.store import read_bundle_header
from sdv.ota.errors import (
    AgentStateError,
    HardwareIdMismatchError,
    InsufficientSpaceError,
    OperationCancelledError,
    OtaError,
    RollbackError,
    StateDirectoryBusyError,
    ThresholdNotMetError,
    TransferInProgressError,
    TransferOffsetError,
    UnknownSlotError,
)

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

_S = AgentState


def _agent(ecu: Ecu, *, boot: bool = False) -> UpdateAgent:
    return UpdateAgent(load_agent_config(ecu.config), boot=boot)


def _header(bundle: Path) -> bytes:
    return read_bundle_header(bundle).encode()


def _install(agent: UpdateAgent, bundle: Path) -> None:
    agent.receive_file(bundle, chunk_bytes=8192)
    agent.process()


def _leftovers(ecu: Ecu) -> list[str]:
    """Files of the ECU besides the factory software, the configuration and the agent's own records."""
    expected = {"agent.yaml", "rootfs.a.img", "state/state.json", "state/lock", "state/boot.json"}
    expected |= {"state/boot.app.json"}  # the tree group's own boot selection
    expected |= {"state/events.log", "state/ecu-key.pem"}
    factory = {"apps", "apps/current", "apps/A", "apps/A/bin", "apps/A/bin/app", "state"}
    found = []
    for path in ecu.root.rglob("*"):
        relative = path.relative_to(ecu.root).as_posix()
        if relative not in expected | factory:
            found.append(relative)
    return sorted(found)


def test_install_activate_and_commit(
    ecu: Ecu, build_bundle: BuildBundle, new_software: tuple[str, str]
) -> None:
    factory = ecu.software("A")
    bundle = build_bundle()
    with _agent(ecu) as agent:
        _install(agent, bundle)
        assert agent.record.state is _S.READY and agent.record.trial_slot == "B"
        assert ecu.software("B") == new_software and ecu.running() == factory  # staged, not running
        assert not agent.incoming.exists()
        agent.activate()
        assert agent.record.state is _S.VERIFYING and agent.status().booted_slot == "B"
        assert ecu.running() == new_software
        assert agent.record.installed is None  # not committed yet
        agent.mark_good()
        assert agent.record.state is _S.ACTIVATED and agent.record.active_slot == "B"
        assert agent.record.installed is not None and agent.record.installed_counter == 5
    assert ecu.software("A") == factory  # the active slot was never written
    with _agent(ecu, boot=True) as agent:  # a reboot keeps the committed slot
        assert agent.record.state is _S.ACTIVATED and ecu.running() == new_software
        assert agent.status().attempts_left == 3


def test_a_failing_health_check_rolls_back(ecu: Ecu, build_bundle: BuildBundle) -> None:
    ecu.write_config(
        health_check={"command": [sys.executable, "-c", "import sys; sys.exit('no CAN traffic')"]}
    )
    factory = ecu.software("A")
    with _agent(ecu) as agent:
        _install(agent, build_bundle())
        agent.activate()
        record = agent.record
    assert record.state is _S.ROLLED_BACK and record.installed is None
    assert record.failure is not None and "exited with 1: no CAN traffic" in record.failure
    assert ecu.running() == factory


def test_a_health_check_sees_the_trial_slot(ecu: Ecu, build_bundle: BuildBundle, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    code = f"import os, pathlib; pathlib.Path({str(seen)!r}).write_text(os.environ['SDV_OTA_SLOT'])"
    ecu.write_config(health_check={"command": [sys.executable, "-c", code]})
    with _agent(ecu) as agent:
        _install(agent, build_bundle())
        agent.activate()
        assert agent.record.state is _S.VERIFYING
    assert seen.read_text() == "B"


def test_exhausted_boot_attempts_roll_back(
    ecu: Ecu, build_bundle: BuildBundle, new_software: tuple[str, str]
) -> None:
    ecu.write_config(boot={"max_attempts": 2})
    factory = ecu.software("A")
    with _agent(ecu) as agent:
        _install(agent, build_bundle())
        agent.activate()  # boot 1 of 2 on trial
    with _agent(ecu, boot=True) as agent:  # boot 2 of 2, never marked good
        assert agent.record.state is _S.VERIFYING and ecu.running() == new_software
    with _agent(ecu, boot=True) as agent:  # the bootloader falls back on its own
        assert agent.record.state is _S.ROLLED_BACK
        assert agent.record.failure is not None and "attempts ran out" in agent.record.failure
        assert agent.record.active_slot == "A" and agent.record.installed is None
    assert ecu.running() == factory


def test_explicit_rollback_and_then_a_new_install(ecu: Ecu, build_bundle: BuildBundle) -> None:
    factory = ecu.software("A")
    with _agent(ecu) as agent:
        _install(agent, build_bundle())
        agent.activate()
        agent.rollback()
        assert agent.record.state is _S.ROLLED_BACK and ecu.running() == factory
        _install(agent, build_bundle(counter=6, output="b6.sdvota"))
        assert agent.record.state is _S.READY


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"hardware_ids": ("ecu-other",)}, HardwareIdMismatchError),
        ({"signers": ("a", "x")}, ThresholdNotMetError),  # x's signature is ignored: it never counts
    ],
)
def test_a_refused_bundle_leaves_no_trace(
    ecu: Ecu, build_bundle: BuildBundle, options: dict[str, object], error: type[Exception]
) -> None:
    factory = ecu.software("A")
    with _agent(ecu) as agent:
        with pytest.raises(error):  # refused by its header, before a payload byte is received
            agent.receive_file(build_bundle(**options))
        record = agent.record
    assert record.state is _S.IDLE and record.transfer is None and record.bundle is None
    assert _leftovers(ecu) == []
    assert ecu.software("A") == factory and ecu.running() == factory


def test_a_bundle_for_a_slot_the_ecu_lacks_is_refused(
    ecu: Ecu, build_bundle: BuildBundle, tmp_path: Path
) -> None:
    firmware = tmp_path / "modem.bin"
    firmware.write_bytes(b"modem firmware")
    with _agent(ecu) as agent, pytest.raises(UnknownSlotError, match=r"payload modem\.bin targets"):
        agent.receive_file(build_bundle(files=[firmware]))
    assert _leftovers(ecu) == []


def test_the_release_counter_only_rises_at_commit(ecu: Ecu, build_bundle: BuildBundle) -> None:
    with _agent(ecu) as agent:
        _install(agent, build_bundle(counter=5))
        agent.activate()
        agent.rollback()  # not committed: counter 5 may be installed again
        _install(agent, build_bundle(counter=5, output="again.sdvota"))
        agent.activate()
        agent.mark_good()
        with pytest.raises(RollbackError, match=r"equal to the installed one of slot group (app|rootfs)"):
            agent.receive_file(build_bundle(counter=5, output="replay.sdvota"))


def test_a_second_transfer_is_refused_while_one_is_in_progress(ecu: Ecu, build_bundle: BuildBundle) -> None:
    first, second = build_bundle(), build_bundle(counter=6, output="second.sdvota")
    with _agent(ecu) as agent:
        data = first.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        start = agent.begin_transfer(len(data), sha, _header(first)).offset
        agent.write_chunk(sha, start, data[start : start + 1000])
        mark = start + 1000
        other = second.read_bytes()
        with pytest.raises(TransferInProgressError, match=f"in progress \\({start} of"):
            agent.begin_transfer(len(other), hashlib.sha256(other).hexdigest(), _header(second))
        assert agent.begin_transfer(len(data), sha, _header(first)).offset == mark  # the same bundle resumes
        with agent.upload(), pytest.raises(TransferInProgressError, match="another upload"), agent.upload():
            pass
        with pytest.raises(TransferOffsetError, match=f"continues at {mark}"):
            agent.write_chunk(sha, start, data[start:mark])
        with pytest.raises(TransferOffsetError, match="past the bundle's"):
            agent.write_chunk(sha, mark, data[mark:] + b"extra")
        with pytest.raises(TransferOffsetError, match="for bundle 0000"):
            agent.write_chunk("0" * 64, mark, data[mark : mark + 1000])
    with pytest.raises(StateDirectoryBusyError), _agent(ecu), _agent(ecu):
        pass


def test_a_transfer_resumes_after_the_agent_restarts(ecu: Ecu, build_bundle: BuildBundle) -> None:
    bundle = build_bundle()
    data = bundle.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    header = _header(bundle)
    with _agent(ecu) as agent:
        start = agent.begin_transfer(len(data), sha, header).offset
        agent.write_chunk(sha, start, data[start:5000])
    with (ecu.state_dir / "incoming.sdvota").open("ab") as partial:
        partial.write(b"bytes written but never persisted")  # as a power loss before the offset was saved
    with _agent(ecu) as agent:
        assert agent.begin_transfer(len(data), sha, header).offset == 5000
        assert agent.incoming.stat().st_size == 5000
        agent.write_chunk(sha, 5000, data[5000:])
        assert agent.record.state is _S.TRANSFERRED


@pytest.mark.parametrize(("size", "sha"), [(0, "a" * 64), (10, "A" * 64), (10, "abc")])
def test_a_transfer_needs_a_size_and_a_sha256(
    ecu: Ecu, size: int, sha: str, build_bundle: BuildBundle
) -> None:
    header = _header(build_bundle())
    with _agent(ecu) as agent, pytest.raises(TransferOffsetError, match="lowercase hex SHA-256"):
        agent.begin_transfer(size, sha, header)


def test_a_corrupted_transfer_fails_with_the_reason(ecu: Ecu, build_bundle: BuildBundle) -> None:
    bundle = build_bundle()
    data = bundle.read_bytes()
    with _agent(ecu) as agent:
        start = agent.begin_transfer(len(data), "0" * 64, _header(bundle)).offset
        agent.write_chunk("0" * 64, start, data[start:])
        assert agent.record.state is _S.FAILED and "SHA-256" in (agent.record.failure or "")
        assert not agent.incoming.exists()


def test_no_transfer_without_free_space(ecu: Ecu, build_bundle: BuildBundle) -> None:
    ecu.write_config(transfer={"min_free_bytes": 2**62})
    with _agent(ecu) as agent, pytest.raises(InsufficientSpaceError, match="free"):
        agent.receive_file(build_bundle())
    assert read_record(ecu.state_dir).state is _S.IDLE


def test_cancel_where_safe_and_refuse_out_of_order_steps(ecu: Ecu, build_bundle: BuildBundle) -> None:
    with _agent(ecu) as agent:
        with pytest.raises(AgentStateError, match="cannot activate in state idle"):
            agent.activate()
        assert agent.mark_good().state is _S.IDLE  # nothing on trial: the running slot stays committed
        _install(agent, build_bundle())
        with pytest.raises(AgentStateError, match="cannot mark good in state ready"):
            agent.mark_good()
        agent.cancel()
        assert agent.record.state is _S.IDLE
        _install(agent, build_bundle(output="again.sdvota"))
        agent.activate()
        with pytest.raises(AgentStateError, match="cannot cancel in state verifying"):
            agent.cancel()
    assert os.readlink(ecu.tree_root / "current") == "B"


def test_the_agent_drives_u_boot_through_fw_tools(
    ecu: Ecu, build_bundle: BuildBundle, tmp_path: Path
) -> None:
    printenv, setenv, store = fake_fw_tools(tmp_path)
    ecu.write_config(
        boot={"selector": "uboot", "fw_printenv": printenv, "fw_setenv": setenv, "max_attempts": 1}
    )
    with _agent(ecu) as agent:
        _install(agent, build_bundle())
        agent.activate()  # the one trial boot
        assert agent.record.state is _S.VERIFYING
        assert "BOOT_ORDER=B A" in store.read_text() and os.readlink(ecu.tree_root / "current") == "B"
    with _agent(ecu, boot=True) as agent:  # never marked good: U-Boot's counter for B is spent
        assert agent.record.state is _S.ROLLED_BACK
    variables = store.read_text()
    assert "BOOT_ORDER=A B" in variables and "BOOT_B_LEFT=0" in variables and "SDV_BOOTED=A" in variables
    assert os.readlink(ecu.tree_root / "current") == "A"


def test_with_a_reboot_command_the_reboot_finishes_activation_and_rollback(
    ecu: Ecu, build_bundle: BuildBundle, tmp_path: Path, new_software: tuple[str, str]
) -> None:
    reboots = tmp_path / "reboots"
    ecu.write_config(reboot_command=[sys.executable, "-c", f"open({str(reboots)!r}, 'a').write('reboot\\n')"])
    factory = ecu.software("A")
    with _agent(ecu) as agent:
        _install(agent, build_bundle())
        agent.activate()
        assert agent.record.state is _S.ACTIVATING and ecu.running() == factory  # waits for the reboot
    with _agent(ecu, boot=True) as agent:  # the reboot starts the trial slot, its tree goes live with it
        assert agent.record.state is _S.VERIFYING and ecu.running() == new_software
        agent.rollback()
        assert agent.record.state is _S.ROLLING_BACK
    with _agent(ecu, boot=True) as agent:
        assert agent.record.state is _S.ROLLED_BACK and ecu.running() == factory
    assert reboots.read_text().count("reboot") == 2


def test_cancel_while_staging_stops_at_the_next_chunk(ecu: Ecu, build_bundle: BuildBundle) -> None:
    ecu.write_config(limits={"chunk_bytes": 4096})
    with _agent(ecu) as agent:
        agent.receive_file(build_bundle())

        def cancel_once_staging(status: object) -> None:
            if agent.record.state is _S.PROCESSING and agent.status().staged_bytes > 0:
                agent.cancel()

        agent.subscribe(cancel_once_staging)
        with pytest.raises(OperationCancelledError, match="cancelled"):
            agent.process()
        assert agent.record.state is _S.IDLE and agent.record.trial_slot is None
        assert not agent.incoming.exists()
    assert not list(ecu.tree_root.glob(".*")) and not (ecu.tree_root / "B").exists()


def test_an_unreadable_trust_file_keeps_the_received_bundle(
    ecu: Ecu, build_bundle: BuildBundle, tmp_path: Path
) -> None:
    with _agent(ecu) as agent:
        agent.receive_file(build_bundle())
    ecu.write_config(trust=str(tmp_path / "missing-trust.json"))  # lost after the transfer
    with _agent(ecu) as agent:
        with pytest.raises(OtaError, match="cannot read trust root"):
            agent.process()
        assert agent.record.state is _S.TRANSFERRED and agent.incoming.exists()
