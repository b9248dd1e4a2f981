"""Fault injection: the agent process is SIGKILLed at every state transition and at random byte offsets of the
transfer and of staging, then restarted (a restart stands for a reboot). The ECU must always run exactly the old
or exactly the new software, the active slot is never written, a transfer resumes where it stopped, and the event
log's chain holds with its last entry naming the persisted state.

Kills at transitions come from the agent itself, started through ``crash_launcher.py`` (``after:STATE``: SIGKILL
right after ``STATE`` was persisted, or ``staged:N``: after N payload bytes were written to a slot); kills during
a transfer come from outside, from the pushing client, once the agent acknowledged a randomly chosen offset.
"""

from __future__ import annotations

import contextlib
import random
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import AgentProcess, BuildBundle, Ecu, run_cli
from sdv.client.errors import ServerUnreachableError
from sdv.errors import VerificationError
from sdv.ota.agent.core import read_record
from sdv.ota.agent.event_store import check_state_directory
from sdv.ota.agent.state import AgentState
from sdv.ota.bundle.store import read_bundle_header
from sdv.ota.client import OtaClient, state_name

pytestmark = [pytest.mark.usefixtures("no_leaked_threads"), pytest.mark.slow]

StartAgent = Callable[..., AgentProcess]
_CHUNK = 1024
_SEED = 20261201


def _step(client: OtaClient, bundle: Path, plan: str, seen: set[str]) -> bool:
    """One step of the update ``plan``; True once the plan reached its end."""
    state = state_name(client.status().state)
    seen.add(state)
    if state in ("idle", "transferring") and not (plan == "cancel" and "ready" in seen):
        client.push(bundle, chunk_bytes=_CHUNK)
    elif state == "transferred":
        with contextlib.suppress(VerificationError):  # the refused plan: the agent records the reason
            client.install()
    elif state == "ready":
        client.cancel() if plan == "cancel" else client.activate()
    elif state == "verifying":
        client.mark_good() if plan == "commit" else client.rollback("the test rolls back")
    else:
        return True
    return False


def _drive(agent: AgentProcess, bundle: Path, plan: str) -> str:
    """Run the plan until its end or until the agent dies; returns the last state seen."""
    assert agent.target is not None
    seen: set[str] = set()
    with OtaClient(agent.target, timeout_s=10) as client:
        try:
            for _ in range(12):
                if _step(client, bundle, plan, seen):
                    break
            return state_name(client.status().state)
        except ServerUnreachableError:
            return "killed"


def _assert_consistent(ecu: Ecu, factory: tuple[str, str], new: tuple[str, str]) -> None:
    """After a boot: slot A untouched; the ECU runs the old or the new software, and the one its state says."""
    assert ecu.software("A") == factory
    running = ecu.running()
    assert running in (factory, new), "the ECU runs neither the old nor the new software"
    record = read_record(ecu.state_dir)
    expected = new if record.state in (AgentState.VERIFYING, AgentState.ACTIVATED) else factory
    assert running == expected, f"in state {record.state} the ECU runs the other software"
    assert not list(ecu.tree_root.glob(".*")), "staging leftovers in the tree slot group"


def _assert_log_agrees(ecu: Ecu) -> None:
    """The event log survived: ``sdv ota log verify`` passes and its last entry is the persisted state."""
    verified = run_cli("ota", "log", "verify", "--state-dir", ecu.state_dir)
    assert verified.code == 0, verified.err
    state = read_record(ecu.state_dir).state
    assert f"the last entry agrees with state.json: {state}" in verified.out, verified.out
    assert check_state_directory(ecu.state_dir).entries[-1].state is state


_CASES = [
    *[("commit", state, "activated") for state in ("transferring", "transferred", "processing", "ready")],
    ("commit", "activating", "rolled-back"),  # the trial slot never booted: the bootloader kept the old slot
    ("commit", "verifying", "activated"),
    ("commit", "activated", "activated"),
    ("rollback", "rolling-back", "rolled-back"),
    ("rollback", "rolled-back", "rolled-back"),
    ("refused", "failed", "failed"),
    ("cancel", "idle", "idle"),
]


@pytest.mark.parametrize(("plan", "crash_state", "end"), _CASES, ids=[case[1] for case in _CASES])
def test_sigkill_at_every_transition_leaves_the_old_or_the_new_software(
    ecu: Ecu,
    build_bundle: BuildBundle,
    start_agent: StartAgent,
    new_software: tuple[str, str],
    plan: str,
    crash_state: str,
    end: str,
) -> None:
    factory = ecu.software("A")
    bundle = build_bundle()
    if plan == "refused":  # a payload altered after signing: the header verifies, staging refuses it
        data = bytearray(bundle.read_bytes())
        data[-1] ^= 0xFF
        bundle.write_bytes(bytes(data))
    doomed = start_agent(ecu.config, crash=f"after:{crash_state}")
    assert _drive(doomed, bundle, plan) == "killed"
    assert doomed.process.wait(10) == -signal.SIGKILL
    assert read_record(ecu.state_dir).state.value == crash_state  # it died right after persisting the state
    _assert_log_agrees(ecu)
    rebooted = start_agent(ecu.config)
    _assert_consistent(ecu, factory, new_software)
    _assert_log_agrees(ecu)
    assert _drive(rebooted, bundle, plan) == end
    _assert_consistent(ecu, factory, new_software)
    _assert_log_agrees(ecu)
    if end == "failed":
        assert sorted(path.name for path in ecu.state_dir.iterdir()) == [
            "boot.app.json", "boot.json", "ecu-key.pem", "events.log", "lock", "state.json"
        ]  # fmt: skip


def test_a_transfer_killed_at_random_offsets_resumes_without_starting_over(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent, new_software: tuple[str, str]
) -> None:
    factory = ecu.software("A")
    # fsync and persist every 2 KiB (two chunks): acknowledged offsets advance in batches during the upload
    ecu.write_config(transfer={"min_free_bytes": 0, "max_chunk_bytes": 65536, "sync_interval_bytes": 2048})
    bundle = build_bundle()
    size = bundle.stat().st_size
    offsets = sorted(random.Random(_SEED).sample(range(size // 10, size * 9 // 10), 3))
    resumed_at: list[int] = []
    for kill_at in offsets:
        agent = start_agent(ecu.config)
        assert agent.target is not None

        def on_progress(offset: int, agent: AgentProcess = agent, kill_at: int = kill_at) -> None:
            if offset >= kill_at:
                agent.kill()  # SIGKILL while the upload streams

        with OtaClient(agent.target) as client, pytest.raises(ServerUnreachableError):
            client.push(bundle, chunk_bytes=_CHUNK, on_start=lambda offset, _: resumed_at.append(offset),
                        on_progress=on_progress)  # fmt: skip
        record = read_record(ecu.state_dir)
        assert record.transfer is not None and kill_at <= record.transfer.offset < size
        assert (ecu.state_dir / "incoming.sdvota").stat().st_size >= record.transfer.offset
        _assert_consistent(ecu, factory, new_software)
    agent = start_agent(ecu.config)
    assert agent.target is not None
    with OtaClient(agent.target) as client:
        final = client.push(bundle, chunk_bytes=_CHUNK, on_start=lambda offset, _: resumed_at.append(offset))
        assert state_name(final.state) == "transferred"
        assert state_name(client.install().state) == "ready"
    assert (
        resumed_at[0] == read_bundle_header(bundle).encoded_length
    )  # a new transfer continues after the header
    assert all(earlier <= later for earlier, later in zip(offsets, resumed_at[1:], strict=True))
    assert resumed_at[-1] >= offsets[-1] > 0  # the last push sent only what was missing
    assert ecu.software("B") == new_software


def test_staging_killed_at_random_offsets_restarts_staging_and_never_touches_the_active_slot(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent, new_software: tuple[str, str]
) -> None:
    factory = ecu.software("A")
    bundle = build_bundle()
    payload_bytes = read_bundle_header(bundle).parse_manifest(str(bundle)).total_size
    for staged in sorted(random.Random(_SEED + 1).sample(range(1, payload_bytes), 3)):
        agent = start_agent(ecu.config, crash=f"staged:{staged}")
        assert agent.target is not None
        with OtaClient(agent.target) as client, pytest.raises(ServerUnreachableError):
            client.push(bundle, chunk_bytes=8192)  # resumes as a no-op once transferred
            client.install()
        assert agent.process.wait(10) == -signal.SIGKILL
        assert read_record(ecu.state_dir).state is AgentState.PROCESSING
        start_agent(ecu.config).stop()  # a reboot: staging is abandoned, the bundle kept
        assert read_record(ecu.state_dir).state is AgentState.TRANSFERRED
        _assert_consistent(ecu, factory, new_software)
    agent = start_agent(ecu.config)
    assert agent.target is not None
    with OtaClient(agent.target) as client:
        assert state_name(client.install().state) == "ready"
    assert ecu.software("B") == new_software and ecu.software("A") == factory
