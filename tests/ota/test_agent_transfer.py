"""Header-first transfer and batched durability, through a real ``Ota`` gRPC server on 127.0.0.1 and the client."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest

from conftest import AgentProcess, BuildBundle, Ecu
from sdv._proto.sdv.ota.v1 import ota_pb2, ota_pb2_grpc
from sdv.api.ota import OtaServer
from sdv.errors import VerificationError
from sdv.ota.agent.config import load_agent_config
from sdv.ota.agent.core import UpdateAgent, read_record
from sdv.ota.agent.state import AgentState
from sdv.ota.bundle.store import read_bundle_header
from sdv.ota.client import OtaClient
from sdv.ota.errors import (
    BundleFormatError,
    HardwareIdMismatchError,
    LengthMismatchError,
    ThresholdNotMetError,
)

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

StartAgent = Callable[..., AgentProcess]
_MIB = 1024 * 1024


@pytest.fixture
def big_payload(tmp_path: Path) -> Path:
    """A 2 MiB image: a full upload of it would be plain to see in the received byte count."""
    image = tmp_path / "rootfs.img"
    image.write_bytes(os.urandom(2 * _MIB))
    return image


@pytest.fixture
async def served(ecu: Ecu) -> AsyncIterator[tuple[UpdateAgent, str]]:
    agent = UpdateAgent(load_agent_config(ecu.config))
    server = OtaServer(agent, address="127.0.0.1", port=0)
    await server.start()
    try:
        yield agent, server.target
    finally:
        await server.stop(0)
        agent.close()


def _header(bundle: Path) -> bytes:
    return read_bundle_header(bundle).encode()


@pytest.mark.parametrize(
    ("options", "error", "reason"),
    [
        ({"hardware_ids": ("ecu-other",)}, HardwareIdMismatchError, "this ECU is ecu-a"),
        ({"signers": ("a",)}, ThresholdNotMetError, "threshold"),
    ],
    ids=["hardware id", "signatures"],
)
async def test_a_refused_header_costs_no_payload_transfer(
    served: tuple[UpdateAgent, str],
    ecu: Ecu,
    build_bundle: BuildBundle,
    big_payload: Path,
    options: dict[str, object],
    error: type[Exception],
    reason: str,
) -> None:
    agent, target = served
    bundle = build_bundle(files=[big_payload], **options)
    with OtaClient(target) as client, pytest.raises(VerificationError, match=reason) as refused:
        await asyncio.to_thread(client.push, bundle, chunk_bytes=16 * 1024)
    assert refused.type is VerificationError  # the INVALID_ARGUMENT status, as the client maps it
    assert agent.transfers.appended_bytes == 0
    assert agent.record.state is AgentState.IDLE and agent.record.transfer is None
    assert not agent.incoming.exists()
    with pytest.raises(error):  # the same refusal in-process names its class
        agent.begin_transfer(bundle.stat().st_size, "0" * 64, _header(bundle))


async def test_a_bundle_for_a_slot_the_ecu_lacks_is_refused_before_its_payload(
    served: tuple[UpdateAgent, str], build_bundle: BuildBundle, tmp_path: Path
) -> None:
    agent, target = served
    modem = tmp_path / "modem.bin"
    modem.write_bytes(os.urandom(_MIB))
    with OtaClient(target) as client, pytest.raises(VerificationError, match="which no slot of this ECU"):
        await asyncio.to_thread(client.push, build_bundle(files=[modem]))
    assert agent.transfers.appended_bytes == 0 and agent.record.state is AgentState.IDLE


async def test_an_accepted_header_is_the_file_start_and_only_payload_bytes_follow(
    served: tuple[UpdateAgent, str], build_bundle: BuildBundle
) -> None:
    agent, target = served
    bundle = build_bundle()
    header = _header(bundle)
    with OtaClient(target) as client:
        last = await asyncio.to_thread(client.push, bundle, chunk_bytes=16 * 1024)
    assert last.state == ota_pb2.STATE_TRANSFERRED and last.offset == bundle.stat().st_size
    assert agent.transfers.appended_bytes == bundle.stat().st_size - len(header)
    with agent.transfers.reader() as received:  # the slot image went straight into the inactive slot
        assert received.read() == bundle.read_bytes()


async def test_begin_transfer_without_a_header_is_refused(
    served: tuple[UpdateAgent, str], build_bundle: BuildBundle
) -> None:
    agent, target = served
    data = build_bundle().read_bytes()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = ota_pb2_grpc.OtaStub(channel)
        request = ota_pb2.BeginTransferRequest(size=len(data), bundle_sha256=hashlib.sha256(data).hexdigest())
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.BeginTransfer(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "carries no bundle header" in str(refused.value.details())
    assert agent.record.state is AgentState.IDLE


def test_a_size_or_header_other_than_the_bundle_is_refused(ecu: Ecu, build_bundle: BuildBundle) -> None:
    bundle = build_bundle(signers=("a", "b"))  # Ed25519 signatures: both headers have the same length
    data, header = bundle.read_bytes(), _header(bundle)
    sha = hashlib.sha256(data).hexdigest()
    other = _header(build_bundle(counter=6, signers=("a", "b"), output="other.sdvota"))
    assert len(other) == len(header) and other != header
    with UpdateAgent(load_agent_config(ecu.config)) as agent:
        with pytest.raises(LengthMismatchError, match="announced with"):
            agent.begin_transfer(len(data) + 1, sha, header)
        with pytest.raises(BundleFormatError, match="follow the header"):
            agent.begin_transfer(len(data), sha, data[: len(header) + 10])
        assert agent.record.state is AgentState.IDLE
        assert agent.begin_transfer(len(data), sha, header).offset == len(header)
        assert agent.incoming.read_bytes() == header
        with pytest.raises(BundleFormatError, match="differs from the one its transfer began with"):
            agent.begin_transfer(len(data), sha, other)


def test_offsets_are_persisted_only_up_to_what_was_fsynced(ecu: Ecu, build_bundle: BuildBundle) -> None:
    ecu.write_config(
        transfer={"min_free_bytes": 0, "sync_interval_bytes": 16 * 1024, "sync_interval_s": 3600}
    )
    bundle = build_bundle()
    data, header = bundle.read_bytes(), _header(bundle)
    sha = hashlib.sha256(data).hexdigest()
    with UpdateAgent(load_agent_config(ecu.config)) as agent:
        start = agent.begin_transfer(len(data), sha, header).offset
        with agent.upload():
            for index in range(3):  # 12 KiB written: below the interval, nothing durable yet
                offset = start + index * 4096
                assert agent.write_chunk(sha, offset, data[offset : offset + 4096]).offset == start
            assert read_record(ecu.state_dir).transfer.offset == start  # type: ignore[union-attr]
            offset = start + 3 * 4096
            durable = agent.write_chunk(sha, offset, data[offset : offset + 4096]).offset
            assert durable == start + 16 * 1024 == read_record(ecu.state_dir).transfer.offset  # type: ignore[union-attr]
            offset = durable
            agent.write_chunk(sha, offset, data[offset : offset + 100])
        # the end of the upload stream is durable
        assert read_record(ecu.state_dir).transfer.offset == durable + 100  # type: ignore[union-attr]


def test_a_killed_agent_resumes_from_the_last_fsynced_offset(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent, new_software: tuple[str, str]
) -> None:
    ecu.write_config(
        transfer={
            "min_free_bytes": 0,
            "sync_interval_bytes": 8192,
            "sync_interval_s": 3600,
            "max_chunk_bytes": 4096,
        }
    )
    bundle = build_bundle()
    data, header = bundle.read_bytes(), _header(bundle)
    sha = hashlib.sha256(data).hexdigest()
    doomed = start_agent(ecu.config)
    assert doomed.target is not None
    sent, hold = threading.Event(), threading.Event()
    chunks = 5

    def slow_chunks(start: int) -> Iterator[ota_pb2.UploadChunk]:
        for index in range(chunks):
            offset = start + index * 3000
            yield ota_pb2.UploadChunk(bundle_sha256=sha, offset=offset, data=data[offset : offset + 3000])
        sent.set()
        hold.wait(30)

    answers: list[int] = []
    with grpc.insecure_channel(doomed.target) as channel:
        stub = ota_pb2_grpc.OtaStub(channel)
        start = stub.BeginTransfer(
            ota_pb2.BeginTransferRequest(size=len(data), bundle_sha256=sha, header=header)
        ).offset
        stream = stub.Upload(slow_chunks(start))
        for answer in stream:
            answers.append(answer.offset)
            if len(answers) == chunks:
                break
        doomed.kill()  # power loss while the stream is open: only fsync-ed bytes count
        hold.set()
        stream.cancel()
    written = start + chunks * 3000
    assert start < answers[-1] < written  # some bytes were durable, the last ones not yet
    rebooted = start_agent(ecu.config)
    assert rebooted.target is not None
    with OtaClient(rebooted.target) as client:
        resumed = client.begin_transfer(len(data), sha, header).offset
        assert resumed == answers[-1]
        assert (ecu.state_dir / "incoming.sdvota").stat().st_size == resumed
        final = client.push(bundle, chunk_bytes=4096)
    assert final.state == ota_pb2.STATE_TRANSFERRED
