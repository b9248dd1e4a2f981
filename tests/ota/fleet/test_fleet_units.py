"""The pulling parts one at a time, against real servers where they talk to one: DDI documents and links, bounded
JSON, servers that ignore Range, the signed index's refusals, backoff, the bandwidth limit, the agent's flags."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.ota.conftest import BuildBundle, Ecu, Keys, run_cli
from tests.ota.fleet.servers import Nginx

from sdv.errors import SecurityConfigError
from sdv.ota.bundle.canonical import canonical_bytes
from sdv.ota.bundle.config import DEFAULT_LIMITS
from sdv.ota.bundle.store import load_private_key, load_trust
from sdv.ota.errors import (
    ExpiredError,
    FleetServerError,
    IndexFormatError,
    RollbackError,
    SizeLimitError,
    ThresholdNotMetError,
)
from sdv.ota.fleet.config import BackoffConfig, DownloadConfig, HawkbitConfig, TlsConfig
from sdv.ota.fleet.ddi import ActionDocument, CancelDocument, ControllerBase, DdiClient, Feedback, parse_sleep
from sdv.ota.fleet.http import Backoff, FleetHttp
from sdv.ota.fleet.index import BundleIndex, IndexEntry, SignedIndex, parse_index, sign_index, verify_index

# The DDI API's documented shapes (controller base, deployment, cancel), as a server sends them.
CONTROLLER_BASE = {
    "config": {"polling": {"sleep": "12:00:00"}},
    "_links": {
        "deploymentBase": {
            "href": "https://hawkbit.example/DEFAULT/controller/v1/ecu/deploymentBase/5?c=-2122565939"
        },
        "configData": {"href": "https://hawkbit.example/DEFAULT/controller/v1/ecu/configData"},
    },
}
DEPLOYMENT = {
    "id": "8",
    "deployment": {
        "download": "forced",
        "update": "attempt",
        "maintenanceWindow": "unavailable",
        "chunks": [
            {
                "part": "jvm",
                "version": "1.0.75",
                "name": "oneapplication",
                "artifacts": [
                    {
                        "filename": "binary.sdvota",
                        "hashes": {"sha1": "e4b", "md5": "b98", "sha256": "AB" * 32},
                        "size": 11,
                        "_links": {
                            "download": {"href": "https://cdn.example/binary.sdvota"},
                            "download-http": {"href": "http://cdn.example/binary.sdvota"},
                        },
                    }
                ],
                "metadata": [
                    {"key": "aMetadataKey", "value": "Metadata value as defined in software module"}
                ],
            }
        ],
    },
    "actionHistory": {"status": "SCHEDULED", "messages": ["Reboot", "Write firmware"]},
}
CANCEL = {"id": "11", "cancelAction": {"stopId": "11"}}


def _ddi(url: str = "https://hawkbit.example") -> DdiClient:
    config = HawkbitConfig(url=url, tenant="DEFAULT", controller_id="ecu")
    return DdiClient(config, FleetHttp(TlsConfig(), DownloadConfig()))


def test_ddi_documents_are_read_as_published() -> None:
    base = ControllerBase.model_validate(CONTROLLER_BASE)
    assert parse_sleep(base.config.polling.sleep if base.config else "") == 12 * 3600
    ddi = _ddi()
    assert ddi.link(
        base,
        "deploymentBase",
    ).endswith("deploymentBase/5?c=-2122565939")  # type: ignore[union-attr]
    action = ActionDocument.model_validate(DEPLOYMENT)
    offer = action.offer
    assert (offer.download, offer.update, offer.maintenance_window) == ("forced", "attempt", "unavailable")
    artifact = offer.chunks[0].artifacts[0]
    assert ddi.download_url(artifact) == "https://cdn.example/binary.sdvota"
    assert _ddi("http://hawkbit.example").download_url(artifact) == "http://cdn.example/binary.sdvota"
    assert CancelDocument.model_validate(CANCEL).cancel_action.stop_id == "11"
    body = Feedback(execution="proceeding", details=("downloading",), progress=(1, 5)).document()
    assert body == {
        "status": {
            "execution": "proceeding",
            "result": {"finished": "none", "progress": {"cnt": 1, "of": 5}},
            "details": ["downloading"],
        }
    }


def test_ddi_links_that_leave_the_controller_and_odd_sleeps_are_refused() -> None:
    forged = ControllerBase.model_validate(
        {
            "_links": {
                "deploymentBase": {
                    "href": "https://hawkbit.example.evil/DEFAULT/controller/v1/ecu/deploymentBase/5"
                }
            }
        }
    )
    with pytest.raises(FleetServerError, match="leaves the server"):
        _ddi().link(forged, "deploymentBase")
    for text in ("1:00", "00:61:00", "-1:00:00", "00:00:00.5"):
        with pytest.raises(FleetServerError, match="HH:MM:SS"):
            parse_sleep(text)


def test_json_documents_are_bounded_and_duplicate_keys_refused(nginx: Nginx) -> None:
    (nginx.root / "large.json").write_text('{"a": "' + "x" * 5000 + '"}')
    (nginx.root / "twice.json").write_text('{"a": 1, "a": 2}')
    (nginx.root / "fine.json").write_text('{"a": [1, 2]}')
    http = FleetHttp(TlsConfig(), DownloadConfig(max_json_bytes=4096))
    try:
        with pytest.raises(FleetServerError, match="exceeds the limit of 4096"):
            http.get_json(nginx.url("large.json"))
        with pytest.raises(FleetServerError, match="duplicate key 'a'"):
            http.get_json(nginx.url("twice.json"))
        with pytest.raises(FleetServerError, match="HTTP 404"):
            http.get_json(nginx.url("missing.json"))
        assert http.get_json(nginx.url("fine.json")) == {"a": [1, 2]}
        assert http.read_range(nginx.url("fine.json"), 2, 3) == b'a":'
    finally:
        http.close()


def test_a_server_ignoring_range_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bundle.sdvota").write_bytes(b"SDVOTA\x00\x01" + bytes(100))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    http = FleetHttp(TlsConfig(), DownloadConfig())
    try:
        with pytest.raises(FleetServerError, match="expected 206"):
            http.read_range(f"http://127.0.0.1:{server.server_address[1]}/bundle.sdvota", 10, 20)
    finally:
        http.close()
        server.shutdown()
        server.server_close()


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    backoff = Backoff(BackoffConfig(initial_s=1, factor=2, max_s=10, jitter=0.2), random.Random(3))
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, base in zip(delays, (1, 2, 4, 8, 10, 10), strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    backoff.reset()
    assert backoff.next_delay() <= 1.2


class _Waits(FleetHttp):
    """Advances its own clock by the bandwidth limit's waits instead of waiting them."""

    now: float = 100.0
    waited: float = 0.0

    def wait(self, seconds: float) -> None:
        self.waited += max(seconds, 0.0)
        self.now += max(seconds, 0.0)


def test_the_bandwidth_limit_spaces_the_chunks(nginx: Nginx, ecu: Ecu, build_bundle: BuildBundle) -> None:
    from sdv.cli.ota_fleet_options import identity_of
    from sdv.ota.agent.config import load_agent_config
    from sdv.ota.agent.core import UpdateAgent
    from sdv.ota.bundle.store import hash_file
    from sdv.ota.fleet.download import Artifact, Downloader

    bundle = build_bundle(output="b.sdvota")
    (nginx.root / "b.sdvota").write_bytes(bundle.read_bytes())
    size, digest = hash_file(bundle)
    rate = 16 * 1024
    http = _Waits(TlsConfig(), DownloadConfig(chunk_bytes=4096, max_rate_bytes_s=rate))
    with UpdateAgent(load_agent_config(ecu.config)) as agent:
        downloader = Downloader(http, agent, identity_of(agent.config), clock=lambda: http.now)
        downloader.fetch(Artifact(nginx.url("b.sdvota"), size, digest, "b"), lambda held, total: None)
        held = agent.status().record.transfer
        assert held is not None and held.offset == size
    http.close()
    # the payload's bytes came at the limit (the header is fetched before the limit applies)
    assert http.waited == pytest.approx((size - _header_length(bundle)) / rate, rel=0.01)


def _header_length(bundle: Path) -> int:
    from sdv.ota.bundle.store import read_bundle_header

    return read_bundle_header(bundle).encoded_length


def _index(version: int = 3, expires: timedelta = timedelta(days=1)) -> SignedIndex:
    entry = IndexEntry(
        hardware_id="ecu-a",
        name="demo",
        version="1.5.0",
        release_counter=5,
        url="b.sdvota",
        size=10,
        sha256="a" * 64,
    )
    when = datetime.now(UTC).replace(microsecond=0) + expires
    return SignedIndex(signed=BundleIndex(version=version, expires=when, bundles=[entry]))


def _signed(keys: Keys, index: SignedIndex, *signers: str) -> SignedIndex:
    for signer in signers:
        index = sign_index(index, load_private_key(keys.private(signer)))
    return index


def test_the_index_is_checked_like_a_bundle(keys: Keys) -> None:
    trust = load_trust(keys.trust).signed
    now = datetime.now(UTC)
    check = partial(verify_index, trust=trust, source="index.json", trusted_now=now, limits=DEFAULT_LIMITS)
    good = _signed(keys, _index(), "a", "e")
    assert check(parse_index(canonical_bytes(good), "index.json", 65536), floor=3).version == 3
    with pytest.raises(RollbackError, match="older than version 4"):
        check(good, floor=4)
    with pytest.raises(ThresholdNotMetError):
        check(_signed(keys, _index(), "a", "x"), floor=0)
    with pytest.raises(ExpiredError):
        check(_signed(keys, _index(expires=timedelta(days=-1)), "a", "e"), floor=0)
    spaced = canonical_bytes(good).replace(b'{"signatures"', b'{ "signatures"')
    with pytest.raises(IndexFormatError, match="canonical"):
        parse_index(spaced, "index.json", 65536)
    with pytest.raises(SizeLimitError):
        parse_index(canonical_bytes(good), "index.json", 100)


def test_agent_flags_without_their_partners_are_a_usage_error(ecu: Ecu) -> None:
    result = run_cli("ota", "agent", "--config", ecu.config, "--port", "0", "--hawkbit", "https://h.example")
    assert result.code == 2, result
    assert "--hawkbit needs --tenant and --controller-id" in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    result = run_cli("ota", "agent", "--config", ecu.config, "--port", "0", "--tenant", "T")
    assert result.code == 2 and "go with --hawkbit" in result.err


def test_index_build_refuses_two_bundles_for_one_hardware_id(
    tmp_path: Path, build_bundle: BuildBundle
) -> None:
    first = build_bundle(output="one.sdvota")
    second = build_bundle(output="two.sdvota", counter=6)
    result = run_cli(
        "ota",
        "index",
        "build",
        "--bundle",
        first,
        "--bundle",
        second,
        "--version",
        "1",
        "-o",
        tmp_path / "i.json",
    )
    assert result.code == 2 and "two bundles for hardware id ecu-a" in result.err
    assert not (tmp_path / "i.json").exists()


def test_mutual_tls_sends_the_client_certificate(tmp_path: Path) -> None:
    from tests.ota.fleet.servers import start_nginx
    from tests.security.pki import Authority

    authority = Authority("fleet CA")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(authority.pem)
    certificate, key = authority.issue("127.0.0.1", server=True).write(tmp_path, "server")
    client_cert, client_key = authority.issue("VIN123-IHU", server=False).write(tmp_path, "client")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.json").write_text("{}")
    server = start_nginx(tmp_path / "www", tmp_path / "nginx", tls=(certificate, key), client_ca=ca)
    anonymous = FleetHttp(TlsConfig(ca_file=ca), DownloadConfig())
    known = FleetHttp(TlsConfig(ca_file=ca, client_cert=client_cert, client_key=client_key), DownloadConfig())
    try:
        with pytest.raises(FleetServerError, match="HTTP 400"):
            anonymous.get_bytes(server.url("index.json"))
        assert known.get_bytes(server.url("index.json")) == b"{}"
    finally:
        anonymous.close()
        known.close()
        server.stop()
    with pytest.raises(SecurityConfigError, match="is for another key"):
        FleetHttp(TlsConfig(client_cert=client_cert, client_key=tmp_path / "server.key"), DownloadConfig())
