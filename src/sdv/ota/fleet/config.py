"""The ``fleet:`` section of the agent configuration: where the agent pulls its updates from, and the bounds of it.

Example (in the agent's YAML file; relative paths are relative to it)::

    fleet:
      hawkbit:
        url: https://hawkbit.example.com
        tenant: DEFAULT
        controller_id: VIN123-IHU
        token_file: /etc/sdv/hawkbit.token      # or token_env: SDV_OTA_HAWKBIT_TOKEN
        token_kind: target                      # TargetToken; gateway: GatewayToken
        confirmation: {auto_confirm: true}
      tls: {ca_file: /etc/sdv/fleet-ca.pem, client_cert: /etc/sdv/ecu.pem, client_key: /etc/sdv/ecu.key}
      download: {max_rate_bytes_s: 1048576}

or, for a plain HTTPS server holding a signed index (``sdv ota index build/sign``)::

    fleet:
      index: {url: https://updates.example.com/ihu/index.json, poll_s: 300}

This module imports nothing of the agent, so that the agent's configuration can hold it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BackoffConfig",
    "ConfirmationConfig",
    "DownloadConfig",
    "FleetConfig",
    "HawkbitConfig",
    "IndexConfig",
    "TlsConfig",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)
_KIB = 1024
_MIB = 1024 * _KIB
_URL = r"^https?://[^\s/?#]+(/[^\s]*)?$"
_DAY_S = 86400.0


class BackoffConfig(BaseModel):
    """How long the agent waits before trying a failed request again: ``min(initial_s × factor^n, max_s)``,
    spread by ± ``jitter`` so that a fleet does not retry in step.

    Attributes:
        initial_s: the first delay (default 1 s).
        factor: growth per failed attempt (default 2).
        max_s: the longest delay (default 300 s).
        jitter: the relative spread of each delay (default 0.2: ± 20 %).
        max_attempts: failed attempts in a row (no byte arrived) before a download is given up and reported
            failed; the received bytes are kept for the next offer (default 8).
    """

    model_config = _STRICT

    initial_s: float = Field(default=1.0, gt=0, le=3600)
    factor: float = Field(default=2.0, ge=1, le=10)
    max_s: float = Field(default=300.0, gt=0, le=_DAY_S)
    jitter: float = Field(default=0.2, ge=0, lt=1)
    max_attempts: int = Field(default=8, ge=1, le=1000)


class DownloadConfig(BaseModel):
    """Bounds of every request and download.

    Attributes:
        chunk_bytes: bytes handed to the agent per step (default 256 KiB; at most the agent's
            ``transfer.max_chunk_bytes``).
        max_rate_bytes_s: bandwidth limit of a download (default: none).
        connect_timeout_s: to open a connection (default 10 s).
        read_timeout_s: a response that sends nothing for this long is cut and resumed (default 30 s).
        max_json_bytes: the largest JSON document read from a server (default 256 KiB).
        progress_interval_s: the most often progress is reported to the server and the log (default 5 s).
        backoff: retries of failed requests and interrupted downloads.
    """

    model_config = _STRICT

    chunk_bytes: int = Field(default=256 * _KIB, ge=4 * _KIB, le=64 * _MIB)
    max_rate_bytes_s: int | None = Field(default=None, ge=1024)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=600)
    read_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    max_json_bytes: int = Field(default=256 * _KIB, ge=1024, le=16 * _MIB)
    progress_interval_s: float = Field(default=5.0, ge=0, le=3600)
    backoff: BackoffConfig = BackoffConfig()


class TlsConfig(BaseModel):
    """TLS towards the update server (``https://`` URLs).

    Attributes:
        ca_file: the certificate authorities the server's certificate must chain to (default: the system's).
        client_cert: the ECU's certificate (chain) for mutual TLS.
        client_key: its private key.
    """

    model_config = _STRICT

    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        return self


class ConfirmationConfig(BaseModel):
    """The consent step of hawkBit's confirmation flow (``confirmationBase``).

    Attributes:
        auto_confirm: confirm every action the server asks consent for (default true).
        command: without ``auto_confirm``, the program asked instead (exit code 0: confirmed, otherwise
            denied); it gets ``SDV_OTA_ACTION`` (the action id) and ``SDV_OTA_VERSION`` in its environment.
            Neither: the action waits for consent given on the server.
        timeout_s: a consent command running longer denies.
    """

    model_config = _STRICT

    auto_confirm: bool = True
    command: list[str] | None = Field(default=None, min_length=1)
    timeout_s: float = Field(default=60.0, gt=0, le=_DAY_S)


class HawkbitConfig(BaseModel):
    """An Eclipse hawkBit server's Direct Device Integration (DDI) API.

    Attributes:
        url: the server's base URL (``https://host[:port][/prefix]``).
        tenant: the tenant.
        controller_id: this ECU's controller id.
        token_file: a file holding the security token (never on the command line).
        token_env: ... or an environment variable holding it (default ``SDV_OTA_HAWKBIT_TOKEN``, read when
            no ``token_file`` is set; none set: no ``Authorization`` header, for a server authenticating by
            client certificate).
        token_kind: ``target`` (``Authorization: TargetToken …``) or ``gateway`` (``GatewayToken …``).
        poll_s: the polling interval until the server names one (``config.polling.sleep``).
        min_poll_s: the shortest interval honoured, whatever the server says (default 1 s).
        max_poll_s: the longest (default one day).
        confirmation: the consent step.
        attributes: extra ``configData`` attributes sent with the software identification.
    """

    model_config = _STRICT

    url: str = Field(pattern=_URL, max_length=2048)
    tenant: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._~-]+$")
    controller_id: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9._~:-]+$")
    token_file: Path | None = None
    token_env: str = Field(default="SDV_OTA_HAWKBIT_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    token_kind: Literal["target", "gateway"] = "target"  # noqa: S105 - the kind of token, not one
    poll_s: float = Field(default=60.0, gt=0, le=_DAY_S)
    min_poll_s: float = Field(default=1.0, gt=0, le=_DAY_S)
    max_poll_s: float = Field(default=_DAY_S, gt=0, le=7 * _DAY_S)
    confirmation: ConfirmationConfig = ConfirmationConfig()
    attributes: dict[str, str] = Field(default_factory=dict, max_length=64)


class IndexConfig(BaseModel):
    """A plain HTTP(S) server holding a signed index of bundles (``sdv ota index``).

    Attributes:
        url: the index document's URL; a bundle's relative URL is relative to it.
        poll_s: how often the index is fetched (default 300 s).
    """

    model_config = _STRICT

    url: str = Field(pattern=_URL, max_length=2048)
    poll_s: float = Field(default=300.0, gt=0, le=_DAY_S)


class FleetConfig(BaseModel):
    """Where the agent pulls updates from: a hawkBit server or a signed index (one of them).

    Attributes:
        hawkbit: the hawkBit DDI server.
        index: the signed index.
        tls: TLS towards either.
        download: bounds of requests and downloads.
    """

    model_config = _STRICT

    hawkbit: HawkbitConfig | None = None
    index: IndexConfig | None = None
    tls: TlsConfig = TlsConfig()
    download: DownloadConfig = DownloadConfig()

    @model_validator(mode="after")
    def _one_source(self) -> FleetConfig:
        if (self.hawkbit is None) == (self.index is None):
            raise ValueError("name exactly one of hawkbit and index")
        return self
