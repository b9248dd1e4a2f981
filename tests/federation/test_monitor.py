"""``sdv monitor`` shows the other ECUs of a federated vehicle and their state, one row each.

ECU a and ECU c run in this process (:mod:`tests.federation.in_process`); ``sdv monitor --once`` runs as a real
process against ECU a's gRPC server, before and after c leaves.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console

from sdv.cli.monitor_view import render_monitor
from sdv.client import VehicleClient
from sdv.errors import AlreadyProvidedError
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.types.status import Status
from tests.federation.in_process import Pair, federated_pair, gone
from tests.serve_process import REPOSITORY
from tests.waiting import DEADLINE_S, wait_until_async

STATES = "Sdv.Federation.Ecu.States"


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    async with federated_pair(tmp_path) as joined:
        yield joined


async def monitor_once(target: str) -> list[str]:
    """The lines ``sdv monitor --once`` prints for ``target`` (the server runs on this loop)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sdv.cli.main", "monitor", "--once", "--server", target,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPOSITORY,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), DEADLINE_S)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode().splitlines()


def _row(lines: list[str], ecu: str) -> str:
    return next(line for line in lines if line.startswith(f"ECU {ecu} (federation): "))


async def test_monitor_shows_a_remote_ecu_up_and_then_gone(pair: Pair) -> None:
    lines = await monitor_once(pair.target)
    assert _row(lines, "c").startswith("ECU c (federation): UP for ")
    assert _row(lines, "c").endswith("; 2 signals mirrored")
    assert not any("Sdv.Federation" in line for line in lines)  # rows, not entries of the signal table

    await pair.c.stop()
    await wait_until_async(gone(pair.a, "c"), what="ECU a noticing that ECU c left")
    row = _row(await monitor_once(pair.target), "c")
    assert row.startswith("ECU c (federation): GONE for ") and row.endswith(
        "; 2 signals mirrored, not available"
    )


async def test_the_status_signals_are_served_and_no_provider_may_publish_them(pair: Pair) -> None:
    async with VehicleClient(pair.target) as client:
        values = await client.get(["Sdv.Federation.Ecu.Names", STATES, "Sdv.Federation.Ecu.Signals"])
        assert [values[path].value for path in values] == [("c",), ("UP",), (2,)]
        with pytest.raises(AlreadyProvidedError):
            await client.publish(STATES, ["GONE"])


def _screen(values: dict[str, object]) -> list[str]:
    metas, datapoints = [], {}
    for index, (name, value) in enumerate(values.items(), start=1):
        path = f"Sdv.Federation.Ecu.{name}"
        datatype = {"Names": "string[]", "States": "string[]", "Signals": "uint32[]", "Since": "double[]"}[
            name
        ]
        metas.append(SignalMetadata(id=index, path=path, kind="sensor", datatype=datatype))
        datapoints[path] = Datapoint(value, 99.0, Status.VALID)  # type: ignore[arg-type]
    console = Console(width=160, record=True)
    console.print(render_monitor("title", metas, datapoints, now=100.0))
    return console.export_text().splitlines()


def test_the_screen_has_one_row_per_remote_ecu_in_its_state() -> None:
    lines = _screen(
        {
            "Names": ("b", "c"),
            "States": ("JOINING", "UP"),
            "Signals": (0, 1),
            "Since": (99.5, 40.0),
        }
    )
    assert "ECU b (federation): JOINING for 0.50 s; 0 signals mirrored" in lines
    assert "ECU c (federation): UP for 1 min; 1 signal mirrored" in lines


def test_the_screen_says_when_no_remote_ecu_was_seen_and_nothing_for_a_server_without_federation() -> None:
    assert "federation: no other ECU seen yet" in _screen(
        {"Names": (), "States": (), "Signals": (), "Since": ()}
    )
    assert not any("federation" in line for line in _screen({}))
