"""A client command pointed at the other service of the project says which service answers (exit code 3)."""

from __future__ import annotations

from collections.abc import Callable

from tests.ota.conftest import AgentProcess, Ecu, run_cli
from tests.serve_process import serving

from sdv.cli.exit_codes import EXIT_UNREACHABLE


def test_signal_commands_pointed_at_an_update_agent_name_it(
    ecu: Ecu, start_agent: Callable[..., AgentProcess]
) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    for argv in (["get", "Vehicle.Speed"], ["list"], ["set", "Vehicle.Speed", "1"]):
        result = run_cli(*argv, "--server", agent.target)
        assert result.code == EXIT_UNREACHABLE, result.err
        assert result.err.strip() == f"sdv {argv[0]}: {agent.target} is an sdv OTA agent, not a signal server"


def test_ota_commands_pointed_at_a_signal_server_name_it() -> None:
    with serving() as (port, _process):
        target = f"127.0.0.1:{port}"
        for argv in (["ota", "status", "--target", target], ["ota", "report", "--agent", target]):
            result = run_cli(*argv)
            assert result.code == EXIT_UNREACHABLE, result.err
            assert (
                result.err.strip()
                == f"sdv ota: {target} is a signal server (kuksa.val.v2), not an sdv OTA agent"
            )
