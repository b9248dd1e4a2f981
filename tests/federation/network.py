"""Where the test vehicle's ECUs run: on loopback, or each in a network namespace of its own.

:class:`Loopback` runs every ECU on 127.0.0.1 with ports of its own; a partition is simulated by stopping the
partitioned process (SIGSTOP: its connections stay open and fall silent, so only the lease can tell).
:class:`Namespaces` creates one namespace per ECU and one holding a bridge, joined by veth pairs, with one more
veth pair to the test's own namespace; a partition takes the ECU's link down. Names are unique per test (pytest-xdist
runs tests in parallel) and everything is deleted in teardown, also after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
from collections.abc import Iterator, Sequence

import zenoh

__all__ = ["Loopback", "Namespaces", "cloud_node", "free_port", "namespaces_unavailable"]

ECUS = ("a", "b", "c")


def _run(*arguments: str) -> None:
    subprocess.run(arguments, check=True, capture_output=True, text=True, timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def cloud_node(host: str, port: int) -> Iterator[zenoh.Session]:
    """The cloud: a zenoh node listening where the gateway connects to."""
    settings = {
        "mode": "peer",
        "listen": {"endpoints": [f"tcp/{host}:{port}"]},
        "scouting": {"multicast": {"enabled": False}},
    }
    session = zenoh.open(zenoh.Config.from_json5(json.dumps(settings)))
    try:
        yield session
    finally:
        session.close()


class Loopback:
    """Every ECU on 127.0.0.1."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.addresses = dict.fromkeys(ECUS, "127.0.0.1")
        self.zenoh_ports = {ecu: free_port() for ecu in ECUS}

    def endpoint(self, ecu: str) -> str:
        return f"tcp/{self.addresses[ecu]}:{self.zenoh_ports[ecu]}"

    def prefix(self, ecu: str) -> Sequence[str]:
        return ()

    def partition(self, ecu: str, process: subprocess.Popen[str]) -> None:
        process.send_signal(signal.SIGSTOP)

    def heal(self, ecu: str, process: subprocess.Popen[str]) -> None:
        process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        pass


def namespaces_unavailable() -> str | None:
    """Why network namespaces cannot be created here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"sdvprobe{os.getpid()}"
    try:
        _run("ip", "netns", "add", name)
    except (OSError, subprocess.SubprocessError) as error:
        return f"ip netns add failed: {error}"
    _run("ip", "netns", "del", name)
    return None


class Namespaces:
    """Three ECU namespaces and a bridge namespace on one subnet; the test's namespace joins it at .254."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 10000}{random.randrange(100):02d}"
        self.subnet = f"10.{random.randrange(100, 250)}.{random.randrange(1, 250)}"
        self.bridge_ns = f"sdvbr{tag}"
        self.namespaces = {ecu: f"sdv{ecu}{tag}" for ecu in ECUS}
        self.addresses = {ecu: f"{self.subnet}.{index}" for index, ecu in enumerate(ECUS, start=1)}
        self.host = f"{self.subnet}.254"
        self.zenoh_ports = dict.fromkeys(ECUS, 7447)
        self._bridge_ends = {ecu: f"b{ecu}{tag}" for ecu in ECUS}
        self._host_end = f"sdvh{tag}"
        self._created: list[str] = []
        try:
            self._create(tag)
        except BaseException:
            self.close()
            raise

    def _create(self, tag: str) -> None:
        bridge = self.bridge_ns
        _run("ip", "netns", "add", bridge)
        self._created.append(bridge)
        _run("ip", "-n", bridge, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", bridge, "link", "set", "br0", "up")
        for ecu, namespace in self.namespaces.items():
            _run("ip", "netns", "add", namespace)
            self._created.append(namespace)
            end = self._bridge_ends[ecu]
            _run(
                "ip",
                "-n",
                namespace,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                end,
                "netns",
                bridge,
            )
            _run("ip", "-n", namespace, "addr", "add", f"{self.addresses[ecu]}/24", "dev", "eth0")
            _run("ip", "-n", namespace, "link", "set", "eth0", "up")
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
            _run("ip", "-n", bridge, "link", "set", end, "master", "br0", "up")
        _run("ip", "link", "add", self._host_end, "type", "veth", "peer", "name", f"bh{tag}", "netns", bridge)
        _run("ip", "-n", bridge, "link", "set", f"bh{tag}", "master", "br0", "up")
        _run("ip", "addr", "add", f"{self.host}/24", "dev", self._host_end)
        _run("ip", "link", "set", self._host_end, "up")

    def endpoint(self, ecu: str) -> str:
        return f"tcp/{self.addresses[ecu]}:{self.zenoh_ports[ecu]}"

    def prefix(self, ecu: str) -> Sequence[str]:
        return ("ip", "netns", "exec", self.namespaces[ecu])

    def partition(self, ecu: str, process: subprocess.Popen[str]) -> None:
        _run("ip", "-n", self.bridge_ns, "link", "set", self._bridge_ends[ecu], "down")

    def heal(self, ecu: str, process: subprocess.Popen[str]) -> None:
        _run("ip", "-n", self.bridge_ns, "link", "set", self._bridge_ends[ecu], "up")

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self._host_end], capture_output=True, timeout=30, check=False)
        for namespace in reversed(self._created):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30, check=False)
        self._created.clear()
