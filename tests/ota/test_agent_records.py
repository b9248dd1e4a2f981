"""The records the agent signs itself, over a real ``sdv ota agent`` process: the ECU version report it answers
with ``GetReport``, trust roots it accepts with ``UpdateTrust``, and what both leave in its event log."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from conftest import AgentProcess, BuildBundle, Ecu, Keys, ok, run_cli
from sdv._proto.sdv.ota.v1 import ota_pb2, ota_pb2_grpc
from sdv.errors import VerificationError
from sdv.ota.agent.core import read_record
from sdv.ota.agent.event_store import check_state_directory
from sdv.ota.agent.report import new_nonce, parse_signed_report
from sdv.ota.bundle.store import load_trust, read_bundle_header
from sdv.ota.client import OtaClient

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

StartAgent = Callable[..., AgentProcess]


def _commit(target: str, bundle: Path) -> None:
    assert run_cli("ota", "push", bundle, "--target", target, "--activate").code == 0
    assert run_cli("ota", "mark-good", "--target", target).code == 0


def _ecu_public_key(ecu: Ecu, directory: Path) -> Path:
    public = directory / "ecu.pub"
    out = ok("ota", "report", "key", "--config", ecu.config, "-o", public)
    assert "ed25519 key" in out
    return public


def _fetch(target: str, directory: Path, nonce: str, name: str = "report.json") -> Path:
    path = directory / name
    out = ok("ota", "report", "--agent", target, "--nonce", nonce, "-o", path)
    assert f"for nonce {nonce} written to" in out
    return path


def test_the_report_is_signed_by_the_agent_and_says_what_it_committed(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    bundle = build_bundle()
    _commit(agent.target, bundle)
    nonce = new_nonce()
    report_file = _fetch(agent.target, tmp_path, nonce)
    public = _ecu_public_key(ecu, tmp_path)
    verified = run_cli(
        "ota", "report", "verify", report_file, "--ecu-key", public, "--nonce", nonce, "--expect-counter", "5"
    )
    assert verified.code == 0, verified.err
    assert "ok: ECU ecu-a (ecu-a) runs demo 1.5.0 (release counter 5)" in verified.out
    report = parse_signed_report(report_file.read_bytes(), "report").signed
    record = read_record(ecu.state_dir)
    assert record.installed is not None and report.installed is not None
    assert report.installed.model_dump() == {
        "name": "demo",
        "version": "1.5.0",
        "release_counter": 5,
        "bundle_sha256": record.installed.bundle_sha256,
    }
    manifest = read_bundle_header(bundle).parse_manifest(str(bundle))
    assert {(c.name, c.sha256, c.release_counter) for c in report.components} == {
        (payload.name, payload.sha256, 5) for payload in manifest.payloads
    }
    assert report.state == "activated" and report.active_slot == "B" == record.active_slot
    assert report.last_result is not None and report.last_result.outcome == "committed"
    assert report.trust_root_version == 1
    head = check_state_directory(ecu.state_dir).head
    assert report.log_head is not None and head is not None
    assert (report.log_head.seq, report.log_head.hash) == (head.seq, head.hash)


def _flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


def test_a_forged_report_fails_verification(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent, tmp_path: Path, keys: Keys
) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    _commit(agent.target, build_bundle())
    nonce = new_nonce()
    genuine = _fetch(agent.target, tmp_path, nonce).read_bytes()
    public = _ecu_public_key(ecu, tmp_path)
    counter = genuine.index(b'"release_counter":5')
    forgeries = {
        "first byte": _flip(genuine, 0),
        "release counter": genuine[:counter] + b'"release_counter":9' + genuine[counter + 19 :],
        "a byte of the nonce": _flip(genuine, genuine.index(nonce.encode()) + 3),
        "a byte of the signature": _flip(genuine, genuine.index(b'"sig":"') + 10),
        "last byte": _flip(genuine, len(genuine) - 1),
    }
    for what, forged in forgeries.items():
        path = tmp_path / "forged.json"
        path.write_bytes(forged)
        result = run_cli("ota", "report", "verify", path, "--ecu-key", public, "--nonce", nonce)
        assert result.code == 1, f"{what}: {result.err}"
        assert result.err.startswith("sdv ota report verify: refused: "), what
    path = tmp_path / "genuine.json"
    path.write_bytes(genuine)
    wrong_key = run_cli("ota", "report", "verify", path, "--ecu-key", keys.public("x"), "--nonce", nonce)
    assert wrong_key.code == 1 and "does not list" in wrong_key.err
    replay = run_cli("ota", "report", "verify", path, "--ecu-key", public, "--nonce", new_nonce())
    assert replay.code == 1 and f"answers nonce {nonce}" in replay.err
    assert run_cli("ota", "report", "verify", path, "--ecu-key", public, "--nonce", nonce).code == 0


def test_the_report_after_a_rollback_names_the_reason_and_the_old_software(
    ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    assert run_cli("ota", "push", build_bundle(), "--target", agent.target, "--activate").code == 0
    assert run_cli("ota", "rollback", "--target", agent.target, "--reason", "dashboard froze").code == 0
    nonce = new_nonce()
    with OtaClient(agent.target) as client:
        signed = client.report(nonce)
    report = signed.signed
    assert report.installed is None and report.components == []  # the factory software
    assert report.state == "rolled-back" and report.last_result is not None
    assert report.last_result.outcome == "rolled-back" and report.last_result.reason == "dashboard froze"
    assert report.last_result.bundle is not None and report.last_result.bundle.release_counter == 5
    checked = run_cli(
        "ota", "report", "--agent", agent.target, "--ecu-key", _ecu_public_key(ecu, tmp_path)
    )  # a fresh nonce, checked on the spot
    assert checked.code == 0 and "last result: rolled-back demo 1.5.0" in checked.out, checked.err


@pytest.mark.parametrize(
    ("nonce", "reason"),
    [("", "carries no nonce"), ("ab" * 65, "130 characters"), ("Z" * 32, "lowercase hex")],
    ids=["missing", "too long", "not hex"],
)
def test_a_bad_nonce_is_refused_and_logged(
    ecu: Ecu, start_agent: StartAgent, nonce: str, reason: str
) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    with grpc.insecure_channel(agent.target) as channel, pytest.raises(grpc.RpcError) as refused:
        ota_pb2_grpc.OtaStub(channel).GetReport(ota_pb2.GetReportRequest(nonce=nonce))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and reason in str(refused.value.details())
    with OtaClient(agent.target) as client, pytest.raises(VerificationError):
        client.report(nonce)
    last = check_state_directory(ecu.state_dir).entries[-1]
    assert last.event == "refused" and last.action == "report" and last.reason and reason in last.reason


def _next_root(keys: Keys, directory: Path, *signers: str) -> Path:
    root = directory / f"root-v2-{'-'.join(signers)}.json"
    options: list[str | Path] = ["--threshold", "1"]
    for signer in signers:
        options += ["--sign-key", keys.private(signer)]
    ok("ota", "trust", "rotate", keys.trust, *options, "-o", root)
    return root


def test_a_trust_root_arrives_over_grpc_only_when_the_current_threshold_signed_it(
    ecu: Ecu, keys: Keys, start_agent: StartAgent, tmp_path: Path
) -> None:
    trust = tmp_path / "ecu-trust.json"
    trust.write_bytes(keys.trust.read_bytes())
    ecu.write_config(trust=str(trust))
    agent = start_agent(ecu.config)
    assert agent.target is not None
    state_before = read_record(ecu.state_dir)
    one_signer = run_cli("ota", "trust", "update", _next_root(keys, tmp_path, "a"), "--target", agent.target)
    assert one_signer.code == 1 and "signatures of the trusted version 1" in one_signer.err
    outsider = run_cli(
        "ota", "trust", "update", _next_root(keys, tmp_path, "a", "x"), "--target", agent.target
    )
    assert outsider.code == 1, outsider.err
    assert trust.read_bytes() == keys.trust.read_bytes(), "a refused root leaves the trust file untouched"
    assert read_record(ecu.state_dir).state is state_before.state
    refusals = [entry for entry in check_state_directory(ecu.state_dir).entries if entry.event == "refused"]
    assert [entry.action for entry in refusals] == ["update trust", "update trust"]
    accepted = run_cli(
        "ota", "trust", "update", _next_root(keys, tmp_path, "a", "b"), "--target", agent.target
    )
    assert accepted.code == 0 and "from version 1 to 2" in accepted.out, accepted.err
    assert load_trust(trust).signed.version == 2
    last = check_state_directory(ecu.state_dir).entries[-1]
    assert last.event == "trust" and last.data == {"from_version": 1, "to_version": 2}
    replayed = run_cli(
        "ota", "trust", "update", _next_root(keys, tmp_path, "a", "b"), "--target", agent.target
    )
    assert replayed.code == 1 and "not newer than the trusted version 2" in replayed.err
    with OtaClient(agent.target) as client:
        assert client.report(new_nonce()).signed.trust_root_version == 2


def test_log_show_prints_the_history(ecu: Ecu, build_bundle: BuildBundle, start_agent: StartAgent) -> None:
    agent = start_agent(ecu.config)
    assert agent.target is not None
    _commit(agent.target, build_bundle())
    assert run_cli("ota", "activate", "--target", agent.target).code == 1  # refused: nothing staged
    shown = ok("ota", "log", "show", "--config", ecu.config)
    assert "created the ECU key" in shown and "started in idle" in shown
    assert "verifying -> activated [committed]; demo 1.5.0 (release counter 5)" in shown
    assert "refused to activate in activated; cannot activate in state activated" in shown
    last = json.loads(ok("ota", "log", "show", "--state-dir", ecu.state_dir, "--json", "--last", "1"))
    assert last["event"] == "refused" and last["action"] == "activate"
