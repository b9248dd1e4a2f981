"""Opening and closing the zenoh session of one ECU: its configuration from ``federation:``, a bounded close.

The configuration is built as plain data (:func:`zenoh_settings`, pure, so that tests and ``sdv federation acl``
see what the session gets) and handed to zenoh as JSON. Closing runs in a thread of its own and is waited for at
most ``close_timeout_s``: a peer that does not answer must not hold up the shutdown of ``sdv serve``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zenoh

from sdv.errors import ConfigError, Problem
from sdv.federation_config import CloudLink, FederationConfig, FederationTls

__all__ = ["close_bounded", "open_session", "zenoh_settings"]

_LOG = logging.getLogger(__name__)


def _tls_settings(tls: FederationTls, resolve: Callable[[Path], Path]) -> dict[str, Any]:
    return {
        "root_ca_certificate": str(resolve(tls.root_ca)),
        "listen_certificate": str(resolve(tls.certificate)),
        "listen_private_key": str(resolve(tls.private_key)),
        "connect_certificate": str(resolve(tls.certificate)),
        "connect_private_key": str(resolve(tls.private_key)),
        "enable_mtls": True,
        "verify_name_on_connect": tls.verify_name,
    }


def zenoh_settings(
    config: FederationConfig,
    resolve: Callable[[Path], Path] = lambda path: path,
    access_control: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The zenoh configuration of the ECU's in-vehicle session (peer mode).

    Args:
        config: the ``federation:`` section.
        resolve: turns a file name of the section into the file to open (relative to the profile).
        access_control: the ``access_control`` section (``sdv federation acl``), if the ECU enforces one.
    """
    lease = config.lease_ms
    settings: dict[str, Any] = {
        "mode": "peer",
        "listen": {"endpoints": list(config.listen)},
        "connect": {"endpoints": list(config.peers)},
        "scouting": {"multicast": {"enabled": config.multicast_scouting}, "gossip": {"enabled": True}},
        "transport": {"link": {"tx": {"lease": lease, "keep_alive": config.keep_alives_per_lease}}},
        "timestamping": {"enabled": False},
    }
    if config.tls is not None:
        settings["transport"]["link"]["tls"] = _tls_settings(config.tls, resolve)
    if access_control is not None:
        settings["access_control"] = access_control
    return settings


def cloud_settings(link: CloudLink, resolve: Callable[[Path], Path]) -> dict[str, Any]:
    """The zenoh configuration of the gateway's cloud session: a client that connects out, listens on nothing."""
    settings: dict[str, Any] = {
        "mode": "client",
        "connect": {"endpoints": [link.endpoint], "timeout_ms": 0, "exit_on_failure": False},
        "listen": {"endpoints": []},
        "scouting": {"multicast": {"enabled": False}},
    }
    if link.tls is not None:
        settings["transport"] = {"link": {"tls": _tls_settings(link.tls, resolve)}}
    return settings


def read_access_control(path: Path) -> dict[str, Any]:
    """The ``access_control`` section in a file ``sdv federation acl`` wrote.

    Raises:
        ConfigError: the file cannot be read or is not such a file.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError([Problem(str(path), "(top level)", f"not a readable JSON file: {error}")]) from None
    section = document.get("access_control") if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise ConfigError(
            [Problem(str(path), "access_control", "expected the section `sdv federation acl` writes")]
        )
    return section


def open_session(settings: dict[str, Any], what: str) -> zenoh.Session:
    """Open a zenoh session with ``settings``.

    Raises:
        ConfigError: zenoh refused the configuration or could not listen (a port in use, a bad certificate).
    """
    try:
        return zenoh.open(zenoh.Config.from_json5(json.dumps(settings)))
    except zenoh.ZError as error:
        raise ConfigError(
            [Problem(what, "federation", f"the zenoh session could not open: {error}")]
        ) from None


def close_bounded(session: zenoh.Session, timeout_s: float) -> bool:
    """Close ``session``, waiting at most ``timeout_s``; returns whether it closed in time."""
    closer = threading.Thread(target=session.close, name="sdv-federation-close", daemon=True)
    closer.start()
    closer.join(timeout_s)
    if closer.is_alive():
        _LOG.warning("the federation session did not close within %g s; leaving it behind", timeout_s)
        return False
    return True
