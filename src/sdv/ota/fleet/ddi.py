"""The Eclipse hawkBit Direct Device Integration (DDI) API, as far as the agent uses it.

Resources (below ``{url}/{tenant}/controller/v1/{controllerId}``): the controller base (GET; ``config.polling``
and ``_links``), ``deploymentBase/{actionId}`` (GET, and ``…/feedback`` POST), ``cancelAction/{actionId}``
(GET, and ``…/feedback`` POST), ``confirmationBase/{actionId}`` (GET, and ``…/feedback`` POST) and ``configData``
(PUT). Documents are read with the fields the agent needs; the server's other fields are ignored.

Invariants:

* every link to a DDI resource is followed only if it lies below the configured controller's base URL;
* an artifact is downloaded from its ``download`` link (``download-http`` when the server is plain HTTP), which
  may name another server (a content delivery network); the token is sent only to the DDI server itself
  (:class:`~sdv.ota.fleet.http.FleetHttp`), and the bundle is verified by its signatures, not by its origin.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sdv.ota.errors import FleetServerError
from sdv.ota.fleet.config import HawkbitConfig
from sdv.ota.fleet.http import FleetHttp

__all__ = [
    "ActionDocument",
    "ArtifactDocument",
    "ControllerBase",
    "DdiClient",
    "Deployment",
    "Feedback",
    "parse_sleep",
]

_READ = ConfigDict(extra="ignore", frozen=True)
_SLEEP = re.compile(r"^([0-9]{1,4}):([0-5][0-9]):([0-5][0-9])$")
_SECONDS_PER_MINUTE = 60
_HandlingType = Literal["skip", "attempt", "forced"]
_M = TypeVar("_M", bound=BaseModel)


class Link(BaseModel):
    """A HAL link."""

    model_config = _READ

    href: str = Field(max_length=4096)


class _Polling(BaseModel):
    model_config = _READ

    sleep: str = Field(max_length=16)


class _Config(BaseModel):
    model_config = _READ

    polling: _Polling


class ControllerBase(BaseModel):
    """The controller base resource: how long to sleep and what the server wants (``deploymentBase``,
    ``cancelAction``, ``confirmationBase``, ``configData``)."""

    model_config = _READ

    config: _Config | None = None
    links: dict[str, Link] = Field(default_factory=dict, alias="_links", max_length=32)


class _Hashes(BaseModel):
    model_config = _READ

    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class ArtifactDocument(BaseModel):
    """One artifact of a chunk."""

    model_config = _READ

    filename: str = Field(max_length=1024)
    size: int = Field(ge=1)
    hashes: _Hashes
    links: dict[str, Link] = Field(default_factory=dict, alias="_links", max_length=16)


class Chunk(BaseModel):
    """A software module of a deployment."""

    model_config = _READ

    part: str = Field(default="", max_length=256)
    version: str = Field(default="", max_length=256)
    name: str = Field(default="", max_length=256)
    artifacts: list[ArtifactDocument] = Field(default_factory=list, max_length=64)


class Deployment(BaseModel):
    """What to do and when: the handling of download and update, the maintenance window, the chunks."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    download: _HandlingType = "forced"
    update: _HandlingType = "forced"
    maintenance_window: Literal["available", "unavailable"] | None = Field(
        default=None, alias="maintenanceWindow"
    )
    chunks: list[Chunk] = Field(default_factory=list, max_length=64)


class ActionDocument(BaseModel):
    """``deploymentBase/{id}`` or ``confirmationBase/{id}``: the action and its deployment."""

    model_config = _READ

    id: str = Field(max_length=64)
    deployment: Deployment | None = None
    confirmation: Deployment | None = None

    @property
    def offer(self) -> Deployment:
        """The deployment offered (or, in the confirmation flow, asked consent for)."""
        return self.deployment or self.confirmation or Deployment()


class _Stop(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    stop_id: str = Field(alias="stopId", max_length=64)


class CancelDocument(BaseModel):
    """``cancelAction/{id}``: which action to stop."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(max_length=64)
    cancel_action: _Stop = Field(alias="cancelAction")


class Feedback(BaseModel):
    """An action's feedback (``status.execution``, ``status.result``, ``status.details``)."""

    model_config = ConfigDict(frozen=True)

    execution: Literal[
        "proceeding", "closed", "canceled", "rejected", "resumed", "scheduled", "download", "downloaded"
    ]
    finished: Literal["success", "failure", "none"] = "none"
    details: tuple[str, ...] = ()
    progress: tuple[int, int] | None = None

    def document(self) -> dict[str, Any]:
        """The JSON body."""
        result: dict[str, Any] = {"finished": self.finished}
        if self.progress is not None:
            result["progress"] = {"cnt": self.progress[0], "of": self.progress[1]}
        return {"status": {"execution": self.execution, "result": result, "details": list(self.details)}}


def parse_sleep(text: str) -> float:
    """``config.polling.sleep`` (``HH:MM:SS``) in seconds.

    Raises:
        FleetServerError: another spelling.
    """
    match = _SLEEP.match(text)
    if match is None:
        raise FleetServerError(f"config.polling.sleep {text[:16]!r} is not HH:MM:SS")
    hours, minutes, seconds = (int(part) for part in match.groups())
    return float((hours * _SECONDS_PER_MINUTE + minutes) * _SECONDS_PER_MINUTE + seconds)


class DdiClient:
    """Requests to one controller's DDI resources.

    Args:
        config: the server, tenant and controller id.
        http: the client (its headers carry the token).
    """

    def __init__(self, config: HawkbitConfig, http: FleetHttp) -> None:
        self._http = http
        self.base = f"{config.url.rstrip('/')}/{config.tenant}/controller/v1/{config.controller_id}"

    def _check(self, url: str, what: str) -> str:
        if url != self.base and not url.startswith(self.base + "/") and not url.startswith(self.base + "?"):
            raise FleetServerError(f"the {what} link {url[:120]!r} leaves the server {self.base}")
        return url

    def _read(self, model: type[_M], url: str) -> _M:
        document = self._http.get_json(url)
        try:
            return model.model_validate(document)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "$"
            raise FleetServerError(f"GET {url}: {where}: {first['msg']}") from None

    def poll(self) -> ControllerBase:
        """GET the controller base."""
        return self._read(ControllerBase, self.base)

    def link(self, base: ControllerBase, name: str) -> str | None:
        """The checked URL of one of the base's links."""
        link = base.links.get(name)
        return None if link is None else self._check(link.href, name)

    def action(self, url: str) -> ActionDocument:
        """GET ``deploymentBase/{id}`` or ``confirmationBase/{id}``."""
        return self._read(ActionDocument, url)

    def cancel(self, url: str) -> CancelDocument:
        """GET ``cancelAction/{id}``."""
        return self._read(CancelDocument, url)

    def feedback(self, kind: str, action_id: str, feedback: Feedback) -> None:
        """POST an action's feedback (``kind``: ``deploymentBase`` or ``cancelAction``)."""
        self._http.send_json("POST", f"{self.base}/{kind}/{action_id}/feedback", feedback.document())

    def confirm(self, action_id: str, confirmed: bool, details: str) -> None:
        """POST the consent to an action (``confirmationBase/{id}/feedback``)."""
        document = {"confirmation": "confirmed" if confirmed else "denied", "details": [details]}
        self._http.send_json("POST", f"{self.base}/confirmationBase/{action_id}/feedback", document)

    def config_data(self, data: dict[str, str]) -> None:
        """PUT the ECU's attributes (``configData``, merged into what the server holds)."""
        self._http.send_json("PUT", f"{self.base}/configData", {"mode": "merge", "data": data})

    def download_url(self, artifact: ArtifactDocument) -> str:
        """The artifact's download link on this server."""
        secure = self.base.startswith("https://")
        order = ("download", "download-http") if secure else ("download-http", "download")
        for name in order:
            if name in artifact.links:
                href = artifact.links[name].href
                if not href.startswith(("https://", "http://")):
                    raise FleetServerError(
                        f"artifact {artifact.filename[:120]!r}: {href[:120]!r} is no HTTP URL"
                    )
                return href
        raise FleetServerError(f"artifact {artifact.filename[:120]!r} has no download link")
