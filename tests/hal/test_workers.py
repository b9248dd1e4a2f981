"""Decode worker processes (``sdv serve --decode-workers``): real serve processes, real workers, real kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
import yaml

from sdv._proto.kuksa.val.v2 import types_pb2 as t
from sdv._proto.kuksa.val.v2 import val_pb2 as v
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.errors import HalError, ReadOnlyError, ValueOutOfRangeError
from sdv.hal.config import HalConfig, decode_worker_count
from sdv.hal.runtime import Hal
from sdv.hal.workers import PooledHal
from sdv.resources import demo_profile

from ..kuksa_values import read_with_kuksa_client
from ..serve_process import SERVE, serving, start_serve
from ..waiting import wait_until

STATE = "Sdv.Hal.Bus.vehicle.State"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"


def played_once(tmp_path: Path, *, realtime: bool = False) -> Path:
    """The demo vehicle, its drive played once (as fast as possible unless ``realtime``)."""
    demo = demo_profile()
    text = demo.read_text()
    text = text.replace("file: recordings/", f"file: {demo.parent}/recordings/")
    text = text.replace("dbc: [../dbc/", f"dbc: [{demo.parent.parent}/dbc/")
    text = text.replace("loop: true", "loop: false").replace(
        "realtime: true", f"realtime: {str(realtime).lower()}"
    )
    profile = tmp_path / "played_once.yaml"
    profile.write_text(text)
    return profile


def two_buses_played_once(tmp_path: Path) -> Path:
    """The demo bus twice (``vehicle`` and ``second``, its signals under ``Vehicle.Second``), played once."""
    profile = yaml.safe_load(played_once(tmp_path).read_text())
    (bus,) = profile["buses"]
    profile["buses"].append({**bus, "name": "second"})
    profile["messages"] += [{**message, "bus": "second"} for message in profile["messages"]]
    for entry in list(profile["signals"]):
        if entry.get("source") is not None:
            copy = {**entry, "path": entry["path"].replace("Vehicle.", "Vehicle.Second.", 1)}
            copy["source"] = {**entry["source"], "bus": "second"}
            copy.pop("actuator", None)
            profile["signals"].append(copy)
    path = tmp_path / "two_buses.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


def state(port: int, bus: str = "vehicle") -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        path = f"Sdv.Hal.Bus.{bus}.State"
        response = VALStub(channel).GetValue(v.GetValueRequest(signal_id=t.SignalID(path=path)))
    return str(response.data_point.value.string)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (zombies left out: they are gone but for their exit status)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def workers_of(pid: int) -> list[int]:
    """The decode workers among the children of ``pid`` (multiprocessing also starts its resource tracker)."""
    return [child for child in children(pid) if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def final_values(port: int, paths: list[str], buses: tuple[str, ...] = ("vehicle",)) -> dict[str, object]:
    for bus in buses:
        wait_until(lambda bus=bus: state(port, bus) == "ENDED", what=f"the drive played to its end on {bus}")
    return {path: entry["value"] for path, entry in read_with_kuksa_client(port, paths).items()}


def test_auto_keeps_a_core_for_publishing_and_small_profiles_in_one_process() -> None:
    assert decode_worker_count("auto", buses=8, cores=2) == 1
    assert decode_worker_count("auto", buses=8, cores=4) == 3
    assert decode_worker_count("auto", buses=2, cores=8) == 2
    assert decode_worker_count("auto", buses=1, cores=8) == 0
    assert decode_worker_count("auto", buses=8, cores=1) == 0
    assert decode_worker_count(4, buses=2) == 2
    assert decode_worker_count(0, buses=8) == 0


def decoded_paths(profile: Path) -> list[str]:
    """The profile's signals that are decoded from frames."""
    return [path for path, config in Hal(profile).vehicle.signals.items() if config.source is not None]


def test_values_decoded_in_a_worker_equal_those_decoded_in_process(tmp_path: Path) -> None:
    profile = played_once(tmp_path)
    paths = decoded_paths(profile)
    with serving("--profile", str(profile)) as (port, _):
        alone = final_values(port, paths)
    with serving("--profile", str(profile), "--decode-workers", "1") as (port, process):
        assert len(workers_of(process.pid)) == 1
        pooled = final_values(port, paths)
    assert any(value is not None for value in alone.values())
    assert pooled == alone


def test_two_buses_in_two_workers_equal_one_process(tmp_path: Path) -> None:
    profile = two_buses_played_once(tmp_path)
    paths = decoded_paths(profile)
    buses = ("vehicle", "second")
    with serving("--profile", str(profile)) as (port, _):
        alone = final_values(port, paths, buses)
    with serving("--profile", str(profile), "--decode-workers", "2") as (port, process):
        assert len(workers_of(process.pid)) == 2
        pooled = final_values(port, paths, buses)
    assert alone["Vehicle.Second.Speed"] == alone["Vehicle.Speed"] is not None
    assert pooled == alone


def test_a_request_is_encoded_and_sent_by_the_worker_as_in_process(tmp_path: Path) -> None:
    profile = played_once(tmp_path)
    alone = Hal(profile)
    pooled = PooledHal(profile, config=HalConfig(decode_workers=1))
    ended: dict[str, threading.Event] = {"alone": threading.Event(), "pooled": threading.Event()}
    for name, hal in (("alone", alone), ("pooled", pooled)):
        done = ended[name]
        hal.start(
            lambda _updates: None, lambda _bus, status, done=done: status.state.name == "ENDED" and done.set()
        )
    try:
        for done in ended.values():
            assert done.wait(60), "the drive played to its end"
        # Both saw the whole drive: the request is encoded on the same last payload, with the same counter.
        frame, expected = pooled.write(LOW_BEAM, True), alone.write(LOW_BEAM, True)
        assert (frame.arbitration_id, bytes(frame.data)) == (expected.arbitration_id, bytes(expected.data))
        with pytest.raises(ValueOutOfRangeError):
            pooled.write("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", 1000)
        with pytest.raises(ReadOnlyError):
            pooled.write("Vehicle.Speed", 3)
    finally:
        pooled.stop()
        alone.stop()


def watch_states(port: int, seen: list[str]) -> grpc.Channel:
    """Collect every value of the bus's state signal into ``seen`` (until the channel is closed)."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stream = VALStub(channel).Subscribe(v.SubscribeRequest(signal_paths=[STATE]))

    def collect() -> None:
        try:
            for response in stream:
                seen.append(response.entries[STATE].value.string)
        except grpc.RpcError:
            return  # the channel closed

    threading.Thread(target=collect, daemon=True).start()
    return channel


def test_a_killed_worker_takes_its_bus_down_and_is_restarted() -> None:
    states: list[str] = []
    with serving("--decode-workers", "1") as (port, process):
        channel = watch_states(port, states)
        try:
            wait_until(lambda: "UP" in states, what="the bus up")
            (worker,) = workers_of(process.pid)
            os.kill(worker, signal.SIGKILL)
            wait_until(lambda: "DOWN" in states, what="the bus down after its worker was killed")
            wait_until(lambda: states[-1] == "UP", what="the bus up again")
            (restarted,) = wait_until(lambda: workers_of(process.pid) or None, what="a new worker")
            assert restarted != worker
            values = read_with_kuksa_client(
                port, ["Sdv.Hal.Bus.vehicle.Reconnects", "Sdv.Hal.Bus.vehicle.LastError", "Vehicle.Speed"]
            )
            assert values["Sdv.Hal.Bus.vehicle.Reconnects"]["value"] == 1
            assert (
                f"decode worker 0 (pid {worker}) exited with code -9"
                in values["Sdv.Hal.Bus.vehicle.LastError"]["value"]
            )
            assert values["Vehicle.Speed"]["value"] is not None
        finally:
            channel.close()


def test_sigterm_of_serve_ends_its_workers() -> None:
    port, process = start_serve("--decode-workers", "1")
    try:
        (worker,) = workers_of(process.pid)
        spawned = children(process.pid)  # and multiprocessing's resource tracker
        assert state(port) in {"UP", "ENDED"}
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
        assert process.returncode == 0, errors
        assert not alive(worker)  # serve waited for it
        # The resource tracker ends once it reads the end of its pipe from the exited serve.
        wait_until(lambda: not [pid for pid in spawned if alive(pid)], what="no process of serve left")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_worker_whose_serve_was_killed_ends_on_its_own() -> None:
    _, process = start_serve("--decode-workers", "1")
    try:
        (worker,) = workers_of(process.pid)
        spawned = children(process.pid)
    finally:
        process.kill()
        process.wait()
    assert worker in spawned
    wait_until(lambda: not [pid for pid in spawned if alive(pid)], what="the orphaned worker ended")


def test_a_bad_worker_count_is_one_line() -> None:
    done = subprocess.run(
        [sys.executable, *SERVE, "--decode-workers", "many"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--decode-workers: 'many' is neither a number of processes (0 or more) nor auto" in done.stderr
    assert "Traceback" not in done.stderr


def test_actuation_through_serve_with_a_worker() -> None:
    with serving("--decode-workers", "1") as (port, _), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = VALStub(channel)
        wait_until(lambda: state(port) == "UP", what="the bus up")
        stub.Actuate(v.ActuateRequest(signal_id=t.SignalID(path=LOW_BEAM), value=t.Value(bool=True)))
        with pytest.raises(grpc.RpcError) as refused:
            stub.Actuate(
                v.ActuateRequest(
                    signal_id=t.SignalID(path="Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"),
                    value=t.Value(int32=1000),
                )
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_bus_failing_in_its_worker_is_down_here_and_a_bad_interface_fails_the_start(tmp_path: Path) -> None:
    profile = played_once(tmp_path)
    corrupt = tmp_path / "corrupt.log"
    corrupt.write_text("not a candump line\n")
    broken = tmp_path / "broken.yaml"
    demo = demo_profile().parent / "recordings/demo_drive.log.gz"
    broken.write_text(profile.read_text().replace(str(demo), str(corrupt)))
    down = threading.Event()
    hal = PooledHal(broken, config=HalConfig(decode_workers=1))
    hal.start(lambda _updates: None, lambda _bus, status: status.state.name == "DOWN" and down.set())
    try:
        assert down.wait(60), "the bus down"
        status = hal.bus_states()["vehicle"]
        assert status.state.name == "DOWN"
        assert status.error is not None and "corrupt.log" in status.error
    finally:
        hal.stop()
    unknown = tmp_path / "unknown.yaml"
    text = profile.read_text()
    start = text.index("    recording:")
    end = text.index("    fd: true")
    unknown.write_text(text[:start] + "    interface: no_such_interface\n    channel: can0\n" + text[end:])
    bad = PooledHal(unknown, config=HalConfig(decode_workers=1))
    with pytest.raises(HalError, match="no_such_interface"):
        bad.start(lambda _updates: None)
    assert bad.worker_pids[0] is not None and not alive(bad.worker_pids[0])
