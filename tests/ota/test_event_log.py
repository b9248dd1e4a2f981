"""The agent's event log on real files: every changed byte is found, a torn last entry is dropped, the chain carries
over rotation, and ``sdv ota log verify`` says which entry is bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import BuildBundle, Ecu, run_cli
from sdv.ota.agent.config import load_agent_config
from sdv.ota.agent.core import UpdateAgent
from sdv.ota.agent.event_log import GENESIS, check_log
from sdv.ota.agent.event_store import LOG_FILE, ROTATED_FILE, check_state_directory
from sdv.ota.agent.report import new_nonce
from sdv.ota.agent.state import AgentState
from sdv.ota.errors import AgentStateError, EventLogError


def _committed_log(ecu: Ecu, bundle: Path) -> bytes:
    """Install, activate, commit, then one refused request: a log of about ten entries of every kind."""
    with UpdateAgent(load_agent_config(ecu.config)) as agent:
        agent.receive_file(bundle, chunk_bytes=8192)
        agent.process()
        agent.activate()
        agent.mark_good()
        with pytest.raises(AgentStateError):
            agent.activate()
    return (ecu.state_dir / LOG_FILE).read_bytes()


def _verify(ecu: Ecu) -> tuple[int, str, str]:
    result = run_cli("ota", "log", "verify", "--state-dir", ecu.state_dir)
    return result.code, result.out, result.err


def test_an_untouched_log_verifies_and_agrees_with_the_state(ecu: Ecu, build_bundle: BuildBundle) -> None:
    data = _committed_log(ecu, build_bundle())
    code, out, err = _verify(ecu)
    assert code == 0, err
    lines = data.splitlines()
    assert f"ok: {len(lines)} entries from entry 0 to {len(lines) - 1}" in out
    assert "the last entry agrees with state.json: activated" in out
    events = [entry.event.value for entry in check_state_directory(ecu.state_dir).entries]
    assert events[:2] == ["key", "start"] and events[-1] == "refused" and events.count("state") == 7


def _positions(data: bytes) -> dict[str, int]:
    first_end = data.index(b"\n")
    last_start = data.rindex(b"\n", 0, len(data) - 1) + 1
    middle = data.index(b"\n", len(data) // 2) + 1
    return {
        "first byte": 0,
        "hash of entry 0": data.index(b'"hash":"') + 12,
        "newline after entry 0": first_end,
        "prev of the middle entry": data.index(b'"prev":"', middle) + 20,
        "seq of the middle entry": data.index(b'"seq":', middle) + 6,
        "time of the middle entry": data.index(b'"time":"', middle) + 20,
        "state of the last entry": data.index(b'"state":"', last_start) + 10,
        "reason of the last entry": data.index(b'"reason":"', last_start) + 15,
        "closing brace of the last entry": len(data) - 2,
        "final newline": len(data) - 1,
    }


@pytest.mark.parametrize("delta", [0x01, 0x20, 0x80])
def test_a_changed_byte_anywhere_is_detected(ecu: Ecu, build_bundle: BuildBundle, delta: int) -> None:
    data = _committed_log(ecu, build_bundle())
    path = ecu.state_dir / LOG_FILE
    for where, position in _positions(data).items():
        changed = bytearray(data)
        changed[position] = (changed[position] + delta) % 256
        path.write_bytes(bytes(changed))
        code, out, err = _verify(ecu)
        assert code == 1, f"{where} changed by {delta:#x} was not detected: {out}"
        line = data[:position].count(b"\n") + 1
        assert err.startswith("sdv ota log verify: bad entry: events.log line "), err
        named = int(err.split("line ")[1].split(":")[0])
        assert named in (line, line + 1), (
            f"{where}: the error names line {named}, the change is on line {line}"
        )
    path.write_bytes(data)
    assert _verify(ecu)[0] == 0


def test_removed_and_reordered_entries_break_the_chain(ecu: Ecu, build_bundle: BuildBundle) -> None:
    data = _committed_log(ecu, build_bundle())
    lines = data.splitlines(keepends=True)
    path = ecu.state_dir / LOG_FILE
    for what, changed, expected in (
        ("entry 3 removed", lines[:3] + lines[4:], "line 4: entry number 4, expected 3"),
        ("entries 3 and 4 swapped", [*lines[:3], lines[4], lines[3], *lines[5:]], "line 4: entry number 4"),
        ("first entry removed", lines[1:], None),
    ):
        path.write_bytes(b"".join(changed))
        code, out, err = _verify(ecu)
        if expected is None:  # an older head cut off looks like rotation: reported as not anchored at entry 0
            assert code == 0 and "from entry 1 (older entries were rotated away)" in out, what
        else:
            assert code == 1 and expected in err, f"{what}: {err}"


def test_a_torn_last_entry_is_ignored_then_dropped_at_the_next_start(
    ecu: Ecu, build_bundle: BuildBundle
) -> None:
    data = _committed_log(ecu, build_bundle())
    last = data.splitlines(keepends=True)[-1]
    path = ecu.state_dir / LOG_FILE
    for cut in (1, len(last) // 2, len(last) - 1):  # power lost after `cut` bytes of the last write
        path.write_bytes(data[: len(data) - len(last) + cut])
        code, out, err = _verify(ecu)
        assert code == 0, err
        assert f"a torn last entry of {cut} bytes is ignored" in out
    path.write_bytes(data + b"\x00" * 512)  # a file system may leave zeros after the cut
    assert "torn last entry of 512 bytes" in _verify(ecu)[1]
    with UpdateAgent(load_agent_config(ecu.config)):
        pass
    found = check_state_directory(ecu.state_dir)
    assert found.torn == 0 and found.entries[-1].event == "start"
    assert "dropped a torn last entry of 512 bytes" in (found.entries[-1].reason or "")
    assert path.read_bytes().startswith(data)


def test_the_chain_carries_over_rotation_and_the_log_stays_bounded(
    ecu: Ecu, build_bundle: BuildBundle
) -> None:
    ecu.write_config(event_log={"max_bytes": 4096})
    _committed_log(ecu, build_bundle())
    with UpdateAgent(load_agent_config(ecu.config)) as agent:
        for _ in range(60):  # refusals are logged too: enough to rotate several times
            with pytest.raises(AgentStateError):
                agent.rollback()
        report = agent.records.report(agent.status(), new_nonce()).signed
    assert (ecu.state_dir / ROTATED_FILE).exists()
    for name in (LOG_FILE, ROTATED_FILE):
        assert (ecu.state_dir / name).stat().st_size <= 4096
    found = check_state_directory(ecu.state_dir)
    assert not found.anchored and found.entries[0].seq > 0
    checkpoints = [entry for entry in found.entries if entry.event == "checkpoint"]
    assert checkpoints and all(entry.outcome == "committed" for entry in checkpoints)
    assert report.last_result is not None and report.last_result.outcome == "committed"
    assert report.last_result.bundle is not None and report.last_result.bundle.name == "demo"
    code, out, _ = _verify(ecu)
    assert code == 0 and "older entries were rotated away" in out
    rotated = (ecu.state_dir / ROTATED_FILE).read_bytes()
    with pytest.raises(EventLogError, match=r"events\.1\.log line 1"):
        check_log([(ROTATED_FILE, b"x" + rotated[1:]), (LOG_FILE, (ecu.state_dir / LOG_FILE).read_bytes())])


def test_entry_zero_must_start_the_chain() -> None:
    from datetime import UTC, datetime

    from sdv.ota.agent.event_log import EventKind, make_entry

    entry = make_entry(
        seq=0, prev="1" * 64, time=datetime.now(UTC), event=EventKind.START, state=AgentState.IDLE
    )
    with pytest.raises(EventLogError, match=f"expected {GENESIS}"):
        check_log([(LOG_FILE, entry.line())])


def test_log_verify_without_a_log_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("ota", "log", "verify", "--state-dir", tmp_path)
    assert result.code == 2 and "no event log" in result.err
