"""The update agent behind the project's token scheme: every RPC needs a valid token with the ``ota`` scope."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import AgentProcess, BuildBundle, Ecu, run_cli
from sdv.api.tokens import TokenKeyType, create_token, generate_key, private_key_pem, public_key_pem

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

StartAgent = Callable[..., AgentProcess]


@pytest.fixture
def guarded_agent(ecu: Ecu, start_agent: StartAgent, tmp_path: Path) -> tuple[str, Callable[[str], Path]]:
    """An agent that checks tokens; returns its target and a maker of token files for a scope."""
    key = generate_key(TokenKeyType.ECDSA_P256)
    public = tmp_path / "tokens.pub"
    public.write_bytes(public_key_pem(key))
    (tmp_path / "tokens.pem").write_bytes(private_key_pem(key))
    ecu.write_config(transfer={"min_free_bytes": 0})
    agent = start_agent(ecu.config, extra=["--jwt-public-key", str(public)])
    assert agent.target is not None

    def token_file(scope: str) -> Path:
        path = tmp_path / f"{scope.replace(':', '_').replace(' ', '+')}.token"
        path.write_text(create_token(key, scope, subject="ota-server"))
        return path

    return agent.target, token_file


def test_status_needs_a_token(guarded_agent: tuple[str, Callable[[str], Path]]) -> None:
    target, _ = guarded_agent
    result = run_cli("ota", "status", "--target", target)
    assert result.code == 1 and "requires a bearer token" in result.err


def test_signal_rights_do_not_grant_updates(guarded_agent: tuple[str, Callable[[str], Path]]) -> None:
    target, token_file = guarded_agent
    result = run_cli("ota", "status", "--target", target, "--token-file", token_file("read actuate provide"))
    assert result.code == 1 and "ota-server is not allowed to ota" in result.err


def test_a_push_with_the_ota_scope_stages_the_bundle(
    guarded_agent: tuple[str, Callable[[str], Path]], build_bundle: BuildBundle
) -> None:
    target, token_file = guarded_agent
    token = token_file("ota")
    pushed = run_cli("ota", "push", build_bundle(), "--target", target, "--token-file", token)
    assert pushed.code == 0, pushed.err
    assert "state:      ready" in pushed.out
    refused = run_cli("ota", "activate", "--target", target, "--token-file", token_file("read"))
    assert refused.code == 1 and "not allowed to ota" in refused.err
    status = run_cli("ota", "status", "--target", target, "--token-file", token)
    assert status.code == 0 and "state:      ready" in status.out
