"""Every VISS request kind over a real WebSocket client against ``sdv serve --viss`` replaying the demo drive."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.viss.conftest import (
    TIMESTAMP,
    ServeProcess,
    connect,
    notifications,
    request,
    serve_viss,
    write_limits,
)

SPEED = "Vehicle.Speed"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
MAX_SUBSCRIPTIONS = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    limits = write_limits(
        tmp_path_factory.mktemp("viss"),
        max_message_bytes=4096,
        max_subscriptions_per_connection=MAX_SUBSCRIPTIONS,
    )
    with serve_viss("--viss-limits", str(limits)) as running:
        yield running


def _error(answer: dict[str, Any]) -> tuple[str, str]:
    return answer["error"]["number"], answer["error"]["reason"]


async def test_get_answers_the_value_as_viss_text_with_viss_timestamps(server: ServeProcess) -> None:
    async with await connect(server) as connection:
        answer = await request(connection, {"action": "get", "path": SPEED, "requestId": "speed-1"})
    assert answer["action"] == "get" and answer["requestId"] == "speed-1"
    data = answer["data"]
    assert data["path"] == SPEED
    assert 0 <= float(data["dp"]["value"]) <= 300 and isinstance(data["dp"]["value"], str)
    assert TIMESTAMP.match(data["dp"]["ts"]) and TIMESTAMP.match(answer["ts"])


async def test_get_of_a_branch_with_the_paths_filter_expands_its_wildcards(server: ServeProcess) -> None:
    async with await connect(server) as connection:
        answer = await request(
            connection,
            {
                "action": "get",
                "path": "Vehicle.Cabin.Door",
                "requestId": "2",
                "filter": {"variant": "paths", "parameter": ["*.*.IsOpen"]},
            },
        )
        whole_branch = await request(
            connection, {"action": "get", "path": "Vehicle.Cabin.Door", "requestId": "3"}
        )
    paths = sorted(entry["path"] for entry in answer["data"])
    assert paths == [
        f"Vehicle.Cabin.Door.Row{row}.{side}.IsOpen"
        for row in (1, 2)
        for side in ("DriverSide", "PassengerSide")
    ]
    assert {entry["dp"]["value"] for entry in answer["data"]} <= {"true", "false"}
    assert sorted(entry["path"] for entry in whole_branch["data"]) == paths


async def test_get_with_static_metadata_answers_the_vss_tree(server: ServeProcess) -> None:
    async with await connect(server) as connection:
        answer = await request(
            connection,
            {
                "action": "get",
                "path": SPEED,
                "requestId": "m",
                "filter": {"variant": "static-metadata", "parameter": ""},
            },
        )
    speed = answer["metadata"]["Vehicle"]["children"]["Speed"]
    assert (speed["type"], speed["datatype"], speed["unit"], speed["max"]) == ("sensor", "float", "km/h", 300)
    assert "data" not in answer


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"action": "get", "path": "Vehicle.Sped", "requestId": "1"}, ("404", "unavailable_data")),
        ({"action": "get", "path": "Vehicle.Cabin.Nothing.*", "requestId": "1"}, ("404", "unavailable_data")),
        ({"action": "set", "path": SPEED, "value": "3", "requestId": "1"}, ("403", "forbidden_request")),
        ({"action": "set", "path": LOW_BEAM, "value": "maybe", "requestId": "1"}, ("400", "bad_request")),
        ({"action": "set", "path": LOW_BEAM, "requestId": "1"}, ("400", "bad_request")),
        (
            {"action": "set", "path": "Vehicle.Body.Lights.*.IsOn", "value": "1", "requestId": "1"},
            ("400", "bad_request"),
        ),
        ({"action": "fly", "path": SPEED, "requestId": "1"}, ("400", "bad_request")),
        ({"path": SPEED, "requestId": "1"}, ("400", "bad_request")),
        ({"action": "get", "requestId": "1"}, ("400", "bad_request")),
        (
            {"action": "get", "path": SPEED, "requestId": "1", "filter": {"variant": "range"}},
            ("400", "bad_request"),
        ),
        ({"action": "get", "path": SPEED, "requestId": "1", "filter": "paths"}, ("400", "bad_request")),
        (
            {
                "action": "subscribe",
                "path": SPEED,
                "requestId": "1",
                "filter": {"variant": "timebased", "parameter": {"period": "1"}},
            },
            ("400", "bad_request"),
        ),
        (
            {
                "action": "subscribe",
                "path": SPEED,
                "requestId": "1",
                "filter": {"variant": "change", "parameter": {"logic-op": "xor", "diff": "1"}},
            },
            ("400", "bad_request"),
        ),
        ({"action": "unsubscribe", "subscriptionId": "99", "requestId": "1"}, ("404", "unavailable_data")),
    ],
)
async def test_a_refused_request_is_answered_with_its_viss_error_and_the_connection_serves_on(
    server: ServeProcess, message: dict[str, Any], expected: tuple[str, str]
) -> None:
    async with await connect(server) as connection:
        answer = await request(connection, message)
        assert _error(answer) == expected, answer
        assert answer["error"]["message"] and TIMESTAMP.match(answer["ts"])
        assert answer.get("action") == (message.get("action") if message.get("action") != "fly" else None)
        assert "data" in await request(connection, {"action": "get", "path": SPEED, "requestId": "after"})


async def test_an_unknown_path_is_answered_with_the_close_matches(server: ServeProcess) -> None:
    async with await connect(server) as connection:
        answer = await request(connection, {"action": "get", "path": "Vehicle.Sped", "requestId": "1"})
    assert "Vehicle.Speed" in answer["error"]["message"]


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"get"', "\u00ff" * 10, "[" * 3000])
async def test_malformed_json_is_a_bad_request_and_the_connection_serves_on(
    server: ServeProcess, text: str
) -> None:
    async with await connect(server) as connection:
        await connection.send(text)
        answer = json.loads(await connection.recv())
        assert _error(answer) == ("400", "bad_request") and "requestId" not in answer
        assert "data" in await request(connection, {"action": "get", "path": SPEED, "requestId": "after"})


async def test_an_oversized_message_closes_that_connection_with_1009_and_others_are_served(
    server: ServeProcess,
) -> None:
    async with await connect(server) as bystander, await connect(server) as sender:
        await sender.send(json.dumps({"action": "get", "path": SPEED, "requestId": "x" * 5000}))
        await sender.wait_closed()
        assert sender.close_code == 1009
        assert "data" in await request(bystander, {"action": "get", "path": SPEED, "requestId": "b"})


async def test_a_websocket_without_the_vissv2_subprotocol_is_refused(server: ServeProcess) -> None:
    import websockets

    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws)
    assert refused.value.response.status_code == 400
    assert b"VISSv2" in refused.value.response.body


async def test_set_of_an_actuator_is_answered_once_carried_out(server: ServeProcess) -> None:
    async with await connect(server) as connection:
        answer = await request(
            connection, {"action": "set", "path": LOW_BEAM, "value": "true", "requestId": "s"}
        )
        native = await request(
            connection, {"action": "set", "path": LOW_BEAM, "value": False, "requestId": "n"}
        )
    assert "error" not in answer and answer["action"] == "set" and TIMESTAMP.match(answer["ts"])
    assert "error" not in native


async def test_subscribe_timebased_notifies_every_period_even_without_changes(server: ServeProcess) -> None:
    brand = "Vehicle.VehicleIdentification.Brand"  # an attribute: it never changes
    async with await connect(server) as connection:
        answer = await request(
            connection,
            {
                "action": "subscribe",
                "path": brand,
                "requestId": "t",
                "filter": {"variant": "timebased", "parameter": {"period": "50"}},
            },
        )
        subscription_id = answer["subscriptionId"]
        received = await notifications(connection, subscription_id, 4)
    assert [message["data"]["dp"]["value"] for message in received] == ["SDV Demo"] * 4
    assert all(TIMESTAMP.match(message["ts"]) for message in received)


async def test_subscribe_change_notifies_only_changes_passing_the_filter(server: ServeProcess) -> None:
    async with await connect(server) as connection:
        answer = await request(
            connection,
            {
                "action": "subscribe",
                "path": SPEED,
                "requestId": "c",
                "filter": {"variant": "change", "parameter": {"logic-op": "ne", "diff": "0"}},
            },
        )
        received = await notifications(connection, answer["subscriptionId"], 4)
    values = [float(message["data"]["dp"]["value"]) for message in received]
    assert all(later != earlier for earlier, later in itertools.pairwise(values)), values


async def test_unsubscribe_ends_the_notifications_of_that_subscription(server: ServeProcess) -> None:
    async with await connect(server) as connection:
        kept = await request(
            connection,
            {
                "action": "subscribe",
                "path": "Vehicle.VehicleIdentification.Brand",
                "requestId": "k",
                "filter": {"variant": "timebased", "parameter": {"period": "20"}},
            },
        )
        ended = await request(
            connection, {"action": "subscribe", "path": "Vehicle.Chassis", "requestId": "e"}
        )
        await notifications(connection, ended["subscriptionId"], 2)
        answer = await request(
            connection, {"action": "unsubscribe", "subscriptionId": ended["subscriptionId"], "requestId": "u"}
        )
        assert answer["subscriptionId"] == ended["subscriptionId"] and "error" not in answer
        after = [json.loads(await connection.recv()) for _ in range(5)]  # the timebased one goes on
    assert {message["subscriptionId"] for message in after} == {kept["subscriptionId"]}


async def test_a_connection_holds_at_most_its_limit_of_subscriptions(server: ServeProcess) -> None:
    async with await connect(server) as connection:
        for number in range(MAX_SUBSCRIPTIONS):
            answer = await request(
                connection, {"action": "subscribe", "path": SPEED, "requestId": str(number)}
            )
            assert "subscriptionId" in answer
        refused = await request(connection, {"action": "subscribe", "path": SPEED, "requestId": "over"})
    assert _error(refused) == ("429", "too_many_requests")
    assert "max_subscriptions_per_connection" in refused["error"]["message"]
