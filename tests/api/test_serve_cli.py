"""``sdv serve`` as a real process: starts, serves, stops on SIGTERM; refuses a port in use, a bad profile and an
unknown interface; serves on while a bus is down."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sdv._proto.kuksa.val.v2 import val_pb2
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.resources import demo_overlay, demo_profile

# The command group is wired into `sdv` by the entry point; this runs it the same way through its register().
_RUN = """
import argparse, logging, sys
from sdv.cli import serve_commands
from sdv.errors import SdvError
parser = argparse.ArgumentParser(prog="sdv")
serve_commands.register(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
logging.basicConfig(level=logging.INFO)
try:
    sys.exit(args.handler(args))
except SdvError as error:
    print(f"sdv {args.command}: {error}", file=sys.stderr)
    sys.exit(2)
"""
_LISTENING = re.compile(r"^sdv serve: listening on 127\.0\.0\.1:(\d+)$")


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _RUN, "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def serving() -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = start("--port", "0")
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    match = _LISTENING.match(line)
    assert match, f"unexpected first line {line!r}; stderr: {process.stderr.read() if process.stderr else ''}"
    yield process, int(match[1])
    if process.poll() is None:
        process.kill()
        process.wait()


def test_serve_answers_and_exits_0_on_sigterm(serving: tuple[subprocess.Popen[str], int]) -> None:
    process, port = serving
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        info = VALStub(channel).GetServerInfo(val_pb2.GetServerInfoRequest(), timeout=5)
    assert info.name == "sdv"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert "41 signals" in stderr
    assert f"with the VSS catalogue {demo_overlay()}" in stderr  # the demo's Vehicle.SDV overlay, by default


def test_a_second_server_on_the_same_port_fails_clearly(serving: tuple[subprocess.Popen[str], int]) -> None:
    _, port = serving
    second = start("--port", str(port))
    _, stderr = second.communicate(timeout=30)
    assert second.returncode == 2
    assert f"sdv serve: cannot listen on 127.0.0.1:{port}: the port is in use" in stderr


def test_a_bad_profile_fails_clearly(tmp_path: Path) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text("buses: []\n")
    process = start("--profile", str(profile), "--port", "0")
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stderr.strip().splitlines()[0].startswith("sdv serve: ")
    assert "bad.yaml" in stderr and "listening" not in stdout


def _profile_on(tmp_path: Path, interface: str, channel: str) -> Path:
    data = yaml.safe_load(demo_profile().read_text())
    bus = data["buses"][0]
    bus.pop("recording")
    bus.update(interface=interface, channel=channel, dbc=[str(demo_profile().parent / bus["dbc"][0])])
    profile = tmp_path / f"{interface}.yaml"
    profile.write_text(yaml.safe_dump(data))
    return profile


def test_a_bus_down_at_boot_is_served_as_not_serving(tmp_path: Path) -> None:
    # This machine has no SocketCAN (and a machine that has it has no can9): the interface is down at boot.
    process = start("--profile", str(_profile_on(tmp_path, "socketcan", "can9")), "--port", "0")
    try:
        assert process.stdout is not None
        match = _LISTENING.match(process.stdout.readline().strip())
        assert match, process.stderr.read() if process.stderr else ""
        with grpc.insecure_channel(f"127.0.0.1:{match[1]}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service, status in (("", "SERVING"), ("sdv.hal.bus.vehicle", "NOT_SERVING")):
                response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert health_pb2.HealthCheckResponse.ServingStatus.Name(response.status) == status
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if line.startswith("WARNING:sdv.hal")]
    assert len(warnings) == 1 and "bus vehicle is DOWN: bus vehicle: cannot open" in warnings[0], stderr


def test_an_unknown_interface_fails_clearly(tmp_path: Path) -> None:
    process = start("--profile", str(_profile_on(tmp_path, "no_such_adapter", "x")), "--port", "0")
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith("sdv serve: bus vehicle: cannot open python-can interface 'no_such_adapter'")
    ), stderr
    assert "listening" not in stdout
