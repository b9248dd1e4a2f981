"""VISS over HTTP with a real client (httpx) against ``sdv serve --viss``: GET is a get, POST a set."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.viss.conftest import TIMESTAMP, ServeProcess, serve_viss, write_limits

MAX_BODY = 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve_viss(
        "--viss-limits", str(write_limits(tmp_path_factory.mktemp("http"), max_message_bytes=MAX_BODY))
    ) as running:
        yield running


async def test_get_answers_the_signal_and_wildcards_through_the_filter(server: ServeProcess) -> None:
    async with httpx.AsyncClient(base_url=server.http) as client:
        speed = await client.get("/Vehicle/Speed")
        doors = await client.get(
            "/Vehicle/Cabin/Door",
            params={"filter": json.dumps({"variant": "paths", "parameter": "*.*.IsOpen"})},
        )
        dotted = await client.get("/Vehicle.Speed")
    assert speed.status_code == 200 and speed.headers["content-type"].startswith("application/json")
    body = speed.json()
    assert body["data"]["path"] == "Vehicle.Speed" and TIMESTAMP.match(body["ts"]) and "action" not in body
    assert len(doors.json()["data"]) == 4
    assert dotted.json()["data"]["path"] == "Vehicle.Speed"


async def test_post_sets_an_actuator(server: ServeProcess) -> None:
    async with httpx.AsyncClient(base_url=server.http) as client:
        answer = await client.post(
            "/Vehicle/Body/Lights/Beam/Low/IsOn", json={"value": "true", "requestId": "h1"}
        )
    assert answer.status_code == 200 and answer.json()["requestId"] == "h1"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("GET", "/Vehicle/Sped", None, 404, "unavailable_data"),
        ("GET", "/Vehicle/Speed?filter=%7Bnot", None, 400, "bad_request"),
        ("GET", "/Vehicle/Speed?filter=%7B%22variant%22%3A%22range%22%7D", None, 400, "bad_request"),
        ("POST", "/Vehicle/Speed", b'{"value": "3"}', 403, "forbidden_request"),
        ("POST", "/Vehicle/Body/Lights/Beam/Low/IsOn", b"{not json", 400, "bad_request"),
        ("POST", "/Vehicle/Body/Lights/Beam/Low/IsOn", b'{"velue": true}', 400, "bad_request"),
        (
            "POST",
            "/Vehicle/Body/Lights/Beam/Low/IsOn",
            b'{"value": "' + b"1" * MAX_BODY + b'"}',
            400,
            "bad_request",
        ),
        ("POST", "/Vehicle/Body/Lights/Beam/Low/IsOn", b"[" * 900, 400, "bad_request"),
        ("DELETE", "/Vehicle/Speed", None, 405, "bad_request"),
    ],
)
async def test_a_refused_http_request_has_the_viss_error_number_as_its_status(
    server: ServeProcess, method: str, path: str, body: bytes | None, status: int, reason: str
) -> None:
    async with httpx.AsyncClient(base_url=server.http) as client:
        answer = await client.request(method, path, content=body)
        after = await client.get("/Vehicle/Speed")
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert (error["number"], error["reason"]) == (str(status), reason) and error["message"]
    assert after.status_code == 200
