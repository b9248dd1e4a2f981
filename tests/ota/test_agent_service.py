"""The update agent as a real ``sdv ota agent`` process, driven with ``sdv ota push`` and the other commands."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from tests.waiting import DEADLINE_S, wait_until

from conftest import AgentProcess, BuildBundle, Ecu, run_cli
from sdv._proto.sdv.ota.v1 import ota_pb2, ota_pb2_grpc
from sdv.ota.bundle.store import read_bundle_header
from sdv.ota.client import OtaClient

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

StartAgent = Callable[..., AgentProcess]

RECONNECTS = int(DEADLINE_S / 0.2)
"""Reconnects of the push that rides out a killed agent, 0.2 s apart: the restarted agent has the whole deadline."""


def _status(target: str) -> dict[str, object]:
    result = run_cli("ota", "status", "--target", target, "--json")
    assert result.code == 0, result.err
    document: dict[str, object] = json.loads(result.out)
    return document


def test_push_activate_and_commit_over_grpc(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent, new_software: tuple[str, str]
) -> None:
    factory = ecu.software("A")
    ecu.write_config(transfer={"min_free_bytes": 0, "max_chunk_bytes": 4096})
    agent = start_agent(ecu.config)
    assert agent.target is not None
    pushed = run_cli(
        "ota", "push", build_bundle(), "--target", agent.target
    )  # 1 MiB chunks, capped by the agent
    assert pushed.code == 0, pushed.err
    assert "state:      ready" in pushed.out and "demo 1.5.0 (release counter 5)" in pushed.out
    assert ecu.software("B") == new_software and ecu.running() == factory
    activated = run_cli("ota", "activate", "--target", agent.target)
    assert activated.code == 0 and "state:      verifying" in activated.out, activated.err
    committed = run_cli("ota", "mark-good", "--target", agent.target, "--json")
    document = json.loads(committed.out)
    assert document["state"] == "activated" and document["installed"]["release_counter"] == 5
    assert document["active_slot"] == "B" and ecu.running() == new_software
    assert agent.stop() == 0  # SIGTERM: a clean stop
    logged = agent.log.read_text()  # without -v the agent says what it did, step by step
    for step in (
        "transferring",
        "transferred",
        "processing",
        "ready",
        "activating",
        "verifying",
        "activated",
    ):
        assert f"INFO sdv.ota.agent.base: update agent: {step}\n" in logged, logged
    rebooted = start_agent(ecu.config)
    assert rebooted.target is not None and _status(rebooted.target)["state"] == "activated"
    assert ecu.software("A") == factory


def test_a_second_push_is_refused_while_a_transfer_is_in_progress(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent
) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    bundle = build_bundle()
    first = bundle.read_bytes()
    sha = hashlib.sha256(first).hexdigest()
    with OtaClient(agent.target) as client:
        client.begin_transfer(len(first), sha, read_bundle_header(bundle).encode())
    second = run_cli("ota", "push", build_bundle(counter=6, output="second.sdvota"), "--target", agent.target)
    assert second.code == 1
    assert "refused: a transfer of bundle" in second.err and "cancel it first" in second.err
    status = _status(agent.target)
    assert status["state"] == "transferring" and status["transfer"]["bundle_sha256"] == sha  # type: ignore[index]


def test_a_second_upload_stream_is_refused_while_one_streams(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent
) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    bundle = build_bundle()
    data = bundle.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    release, first_acknowledged = threading.Event(), threading.Event()

    header = read_bundle_header(bundle).encode()

    def slow_chunks() -> Iterator[ota_pb2.UploadChunk]:
        yield ota_pb2.UploadChunk(
            bundle_sha256=sha, offset=len(header), data=data[len(header) : len(header) + 1000]
        )
        release.wait(30)

    with grpc.insecure_channel(agent.target) as channel:
        stub = ota_pb2_grpc.OtaStub(channel)
        stub.BeginTransfer(ota_pb2.BeginTransferRequest(size=len(data), bundle_sha256=sha, header=header))
        answers = stub.Upload(slow_chunks())

        def read() -> None:
            for _ in answers:
                first_acknowledged.set()

        reader = threading.Thread(target=read)
        reader.start()
        assert first_acknowledged.wait(30)
        second = run_cli("ota", "push", bundle, "--target", agent.target)
        release.set()
        reader.join(30)
    assert second.code == 1 and "another upload is streaming" in second.err
    resumed = run_cli("ota", "push", bundle, "--target", agent.target)  # once the first stream ended
    assert resumed.code == 0 and f"resuming the transfer at byte {len(header) + 1000}" in resumed.err, (
        resumed.err
    )


def test_a_stalled_upload_is_ended_and_the_next_push_resumes(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent
) -> None:
    ecu.write_config(transfer={"min_free_bytes": 0, "idle_timeout_s": 0.2})
    agent = start_agent(ecu.config)
    assert agent.target is not None
    bundle = build_bundle()
    data = bundle.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    never = threading.Event()
    header = read_bundle_header(bundle).encode()
    mark = len(header) + 2000

    def stalling_chunks() -> Iterator[ota_pb2.UploadChunk]:
        yield ota_pb2.UploadChunk(bundle_sha256=sha, offset=len(header), data=data[len(header) : mark])
        never.wait(30)  # a sender that stops sending but keeps the stream open

    with grpc.insecure_channel(agent.target) as channel:
        stub = ota_pb2_grpc.OtaStub(channel)
        stub.BeginTransfer(ota_pb2.BeginTransferRequest(size=len(data), bundle_sha256=sha, header=header))
        with pytest.raises(grpc.RpcError) as ended:
            for _ in stub.Upload(stalling_chunks()):
                pass
        never.set()
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"resumes at offset {len(header)}" in str(ended.value.details())  # fsync-ed up to there yet
    resumed = run_cli("ota", "push", bundle, "--target", agent.target)
    assert resumed.code == 0 and f"resuming the transfer at byte {mark}" in resumed.err, resumed.err


def test_a_refused_bundle_reports_why_and_leaves_no_trace(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent
) -> None:
    factory = ecu.software("A"), ecu.software("B")
    agent = start_agent(ecu.config)
    assert agent.target is not None
    pushed = run_cli("ota", "push", build_bundle(hardware_ids=("ecu-other",)), "--target", agent.target)
    assert pushed.code == 1 and "refused" in pushed.err and "this ECU is ecu-a" in pushed.err
    status = _status(agent.target)  # refused by its header: no transfer began, nothing was recorded
    assert status["state"] == "idle" and "failure" not in status
    assert "transfer" not in status and "bundle" not in status
    assert (ecu.software("A"), ecu.software("B")) == factory
    assert sorted(path.name for path in ecu.state_dir.iterdir()) == [
        "boot.app.json", "boot.json", "ecu-key.pem", "events.log", "lock", "state.json"
    ]  # fmt: skip


def test_no_space_and_wrong_state_are_refused_with_the_reason(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent
) -> None:
    ecu.write_config(transfer={"min_free_bytes": 2**62})
    agent = start_agent(ecu.config)
    assert agent.target is not None
    pushed = run_cli("ota", "push", build_bundle(), "--target", agent.target)
    assert pushed.code == 1 and "bytes free" in pushed.err and "are free" in pushed.err
    activated = run_cli("ota", "activate", "--target", agent.target)
    assert activated.code == 1 and "cannot activate in state idle" in activated.err
    assert _status(agent.target)["state"] == "idle"


def test_watch_status_streams_the_changes(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent
) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    with grpc.insecure_channel(agent.target) as channel:
        stream = ota_pb2_grpc.OtaStub(channel).WatchStatus(ota_pb2.WatchStatusRequest())
        assert next(stream).state == ota_pb2.STATE_IDLE
        assert (
            run_cli("ota", "push", build_bundle(), "--target", agent.target, "--chunk-size", "8192").code == 0
        )
        seen = []
        for status in stream:
            seen.append(status.state)
            if status.state == ota_pb2.STATE_READY:
                break
        stream.cancel()
    assert ota_pb2.STATE_TRANSFERRING in seen and seen[-1] == ota_pb2.STATE_READY


def test_the_agent_refuses_to_serve_unauthenticated_beyond_loopback(ecu: Ecu) -> None:
    result = run_cli("ota", "agent", "--config", ecu.config, "--address", "0.0.0.0", "--port", "0")
    assert (
        result.code == 2
        and "refusing to serve 0.0.0.0 without TLS" in result.err
        and "--insecure" in result.err
    )
    assert not ecu.state_dir.exists()  # refused before the agent touched anything


def test_an_unreachable_agent_has_an_exit_code_of_its_own() -> None:
    result = run_cli("ota", "status", "--target", "127.0.0.1:1")
    assert result.code == 3 and "cannot reach the update agent at 127.0.0.1:1" in result.err


def test_local_commands_work_on_the_state_directory(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent, new_software: tuple[str, str]
) -> None:
    installed = run_cli("ota", "install", build_bundle(), "--config", ecu.config)
    assert installed.code == 0 and "state:      ready" in installed.out, installed.err
    assert run_cli("ota", "activate", "--config", ecu.config).code == 0
    rolled = run_cli(
        "ota", "rollback", "--config", ecu.config, "--reason", "driver reported a fault", "--json"
    )
    document = json.loads(rolled.out)
    assert document["state"] == "rolled-back" and document["failure"] == "driver reported a fault"
    again = run_cli("ota", "install", build_bundle(output="again.sdvota"), "--config", ecu.config)
    assert again.code == 0
    for command in ("activate", "mark-good"):
        assert run_cli("ota", command, "--config", ecu.config).code == 0
    assert ecu.running() == new_software
    agent = start_agent(ecu.config)
    busy = run_cli("ota", "cancel", "--config", ecu.config)
    assert busy.code == 2 and "is in use by the update agent with pid" in busy.err
    assert "state:      activated" in run_cli("ota", "status", "--config", ecu.config).out
    assert agent.target is not None


def test_cancel_abandons_a_transfer(ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    pushed = run_cli("ota", "push", build_bundle(), "--target", agent.target, "--no-install")
    assert pushed.code == 0 and "state:      transferred" in pushed.out
    cancelled = run_cli("ota", "cancel", "--target", agent.target)
    assert cancelled.code == 0 and "state:      idle" in cancelled.out
    assert not (ecu.state_dir / "incoming.sdvota").exists()


@pytest.mark.slow
def test_push_rides_out_an_agent_killed_mid_transfer_and_resumes(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent, tmp_path: Path
) -> None:
    """``sdv ota push --retries``: the agent is SIGKILLed mid-upload and comes back on the same port; the push
    reconnects, continues at the agent's persisted offset and stages the bundle."""
    import os
    import socket
    import subprocess
    import sys

    from sdv.ota.agent.store import read_record

    (tmp_path / "big").mkdir()
    image = tmp_path / "big" / "rootfs.img"  # for the ECU's rootfs slot
    image.write_bytes(os.urandom(4 * 1024 * 1024))  # long enough at 4 KiB a chunk to be caught mid-way
    bundle = build_bundle(files=(image,))
    # an fsync per chunk, as a slow medium would: the push is still running when the plug is pulled
    ecu.write_config(transfer={"min_free_bytes": 0, "max_chunk_bytes": 4096, "sync_interval_bytes": 0})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = start_agent(ecu.config, extra=["--port", str(port)])
    assert first.target == f"127.0.0.1:{port}"
    push = subprocess.Popen(
        [sys.executable, "-m", "sdv.cli.main", "ota", "push", str(bundle), "--target", first.target,
         "--chunk-size", "4096", "--retries", str(RECONNECTS), "--retry-delay", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def cut_or_ended() -> (
        bool
    ):  # a part of the bundle is persisted (time to pull the plug), or the push ended
        transfer = read_record(ecu.state_dir).transfer
        return (transfer is not None and transfer.offset >= 256 * 1024) or push.poll() is not None

    wait_until(cut_or_ended, what="the agent to persist 256 KiB of the bundle")
    assert push.poll() is None, "the push ended before it could be cut"
    first.kill()
    killed_at = read_record(ecu.state_dir).transfer
    assert killed_at is not None and killed_at.offset < bundle.stat().st_size
    start_agent(ecu.config, extra=["--port", str(port)])
    out, err = push.communicate(timeout=120)
    assert push.returncode == 0, err
    assert "retrying in 0.2 s" in err
    resumed = [
        int(line.split("byte ")[1].split()[0]) for line in err.splitlines() if "resuming the transfer" in line
    ]
    assert resumed and resumed[0] >= killed_at.offset  # it continued, it did not start over
    assert "state:      ready" in out


def test_an_open_agent_warns_of_what_a_caller_may_do_with_updates(ecu: Ecu, start_agent: StartAgent) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    warning = agent.log.read_text()  # written before the agent printed its address
    assert "may connect, send, install, activate and roll back updates" in warning
    assert "signal" not in warning
