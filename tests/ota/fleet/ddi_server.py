"""A hawkBit DDI server for the tests, written from the published DDI API: the controller base, deploymentBase,
its feedback, cancelAction, confirmationBase and configData, for one tenant and controller, in a thread.

The documents follow the DDI API's published examples (``config.polling.sleep``, HAL ``_links``,
``deployment.download/update/maintenanceWindow/chunks/artifacts`` with ``hashes`` and ``download`` links,
``cancelAction.stopId``, feedback ``status.execution/result.finished/result.progress/details``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Action:
    """One deployment offered to the controller."""

    id: str
    artifact_url: str
    size: int
    sha256: str
    filename: str = "ihu-1.5.0.sdvota"
    version: str = "1.5.0"
    download: str = "forced"
    update: str = "forced"
    maintenance_window: str | None = None
    needs_confirmation: bool = False
    confirmed: bool | None = None
    cancel_requested: bool = False
    cancel_feedback: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)

    @property
    def closed(self) -> dict[str, Any] | None:
        return next((item for item in self.feedback if item["status"]["execution"] == "closed"), None)

    def document(self, key: str) -> dict[str, Any]:
        deployment: dict[str, Any] = {
            "download": self.download,
            "update": self.update,
            "chunks": [
                {
                    "part": "os",
                    "version": self.version,
                    "name": "ihu",
                    "artifacts": [
                        {
                            "filename": self.filename,
                            "hashes": {"sha1": "0" * 40, "md5": "0" * 32, "sha256": self.sha256},
                            "size": self.size,
                            "_links": {
                                "download": {"href": self.artifact_url},
                                "download-http": {"href": self.artifact_url},
                            },
                        }
                    ],
                }
            ],
        }
        if self.maintenance_window is not None:
            deployment["maintenanceWindow"] = self.maintenance_window
        return {"id": self.id, key: deployment, "actionHistory": {"status": "RUNNING", "messages": []}}


class DdiServer:
    """The server's state and its HTTP endpoint on 127.0.0.1 (an ephemeral port)."""

    def __init__(self, tenant: str, controller_id: str, token: str, sleep: str = "00:00:01") -> None:
        self.tenant, self.controller_id, self.token, self.sleep = tenant, controller_id, token, sleep
        self.actions: dict[str, Action] = {}
        self.config_data: list[dict[str, Any]] = []
        self.polls = 0
        self.unauthorized = 0
        self.lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self.base = f"{self.url}/{tenant}/controller/v1/{controller_id}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def offer(self, action: Action) -> Action:
        with self.lock:
            self.actions[action.id] = action
        return action

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    # -- the resources ----------------------------------------------------------------------------------------

    def _open(self) -> Action | None:
        return next((action for action in self.actions.values() if action.closed is None), None)

    def controller_base(self) -> dict[str, Any]:
        self.polls += 1
        links: dict[str, Any] = {}
        action = self._open()
        if action is not None:
            if action.cancel_requested:
                links["cancelAction"] = {"href": f"{self.base}/cancelAction/{action.id}"}
            elif action.needs_confirmation and action.confirmed is None:
                links["confirmationBase"] = {"href": f"{self.base}/confirmationBase/{action.id}?c=-1"}
            elif not action.needs_confirmation or action.confirmed:
                links["deploymentBase"] = {"href": f"{self.base}/deploymentBase/{action.id}?c=-2129030598"}
        if not self.config_data:
            links["configData"] = {"href": f"{self.base}/configData"}
        return {"config": {"polling": {"sleep": self.sleep}}, "_links": links}

    def get(self, path: str) -> tuple[int, Any]:
        resource = path.split("?", 1)[0].removeprefix(self.base)
        with self.lock:
            if resource == "":
                return 200, self.controller_base()
            kind, _, action_id = resource.strip("/").partition("/")
            action = self.actions.get(action_id)
            if action is None:
                return 404, {"errorCode": "hawkbit.server.error.repo.entitiyNotFound"}
            if kind == "deploymentBase":
                return 200, action.document("deployment")
            if kind == "confirmationBase":
                return 200, action.document("confirmation")
            if kind == "cancelAction":
                return 200, {"id": action.id, "cancelAction": {"stopId": action.id}}
        return 404, {}

    def send(self, method: str, path: str, body: Any) -> int:
        resource = path.removeprefix(self.base).strip("/")
        with self.lock:
            if method == "PUT" and resource == "configData":
                self.config_data.append(body)
                return 200
            parts = resource.split("/")
            if method != "POST" or len(parts) != 3 or parts[2] != "feedback" or parts[1] not in self.actions:
                return 404
            action = self.actions[parts[1]]
            if parts[0] == "deploymentBase":
                action.feedback.append(body)
            elif parts[0] == "cancelAction":
                action.cancel_feedback.append(body)
                if body["status"]["execution"] == "closed":
                    action.feedback.append(body)  # the action ends with its cancellation
            elif parts[0] == "confirmationBase":
                action.confirmed = body["confirmation"] == "confirmed"
            else:
                return 404
        return 200


def _handler(server: DdiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"TargetToken {server.token}":
                return True
            server.unauthorized += 1
            self._answer(401, {"errorCode": "unauthorized"})
            return False

        def _answer(self, status: int, document: Any) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/hal+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self._authorized():
                self._answer(*server.get(f"{server.url}{self.path}"))

        def _send(self, method: str) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            if self._authorized():
                self._answer(server.send(method, f"{server.url}{self.path}", body), {})

        def do_POST(self) -> None:
            self._send("POST")

        def do_PUT(self) -> None:
            self._send("PUT")

    return Handler
