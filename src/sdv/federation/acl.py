"""The zenoh access rules of a vehicle, generated from its ECUs' ownership (pure).

Every ECU enforces the same rules on what it receives (``ingress``): the subject of a peer is the common name of
its TLS client certificate (mutual TLS), which is its ECU name. An ECU may

* put the signals it owns, answer gets on them and declare queryables for them and for its own actuators and
  announcement (``meta/<ecu>``), and hold the liveliness token ``ecu/<ecu>``;
* subscribe to and query anything of the vehicle (reading and sending actuation requests, which the owner checks
  itself against the app's token).

Everything else is denied (``default_permission: deny``), so a compromised ECU cannot forge another's signals or
answer for its actuators. What an ECU sends (``egress``) to the vehicle's ECUs is not restricted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdv.federation.keys import KeyLayout
from sdv.federation.ownership_map import EcuOwnership

__all__ = ["access_rules"]

_READ_MESSAGES = ["declare_subscriber", "query", "declare_liveliness_subscriber", "liveliness_query"]
_OWNER_MESSAGES = ["put", "delete", "declare_queryable", "reply"]
_EVERY_MESSAGE = [*_READ_MESSAGES, *_OWNER_MESSAGES, "liveliness_token"]


def access_rules(vehicle: str, ecus: Mapping[str, EcuOwnership]) -> dict[str, Any]:
    """The ``access_control`` section every ECU of ``vehicle`` runs with.

    Args:
        vehicle: the vehicle id.
        ecus: each ECU's ownership, by ECU name.
    """
    layout = KeyLayout(vehicle)
    everything = f"{layout.root}/**"
    rules: list[dict[str, Any]] = [
        {
            "id": "vehicle-read",
            "messages": _READ_MESSAGES,
            "flows": ["ingress"],
            "permission": "allow",
            "key_exprs": [everything],
        },
        {
            "id": "vehicle-send",
            "messages": _EVERY_MESSAGE,
            "flows": ["egress"],
            "permission": "allow",
            "key_exprs": [everything],
        },
    ]
    subjects: list[dict[str, Any]] = []
    policies: list[dict[str, Any]] = []
    for ecu, ownership in sorted(ecus.items()):
        owned = [layout.signal(signal.path) for signal in ownership.owned]
        owned += [layout.actuator(path) for path in ownership.actuators]
        owned.append(layout.meta(ecu))
        rules.append(
            {
                "id": f"{ecu}-owns",
                "messages": _OWNER_MESSAGES,
                "flows": ["ingress"],
                "permission": "allow",
                "key_exprs": owned,
            }
        )
        rules.append(
            {
                "id": f"{ecu}-token",
                "messages": ["liveliness_token"],
                "flows": ["ingress"],
                "permission": "allow",
                "key_exprs": [layout.ecu(ecu)],
            }
        )
        subjects.append({"id": ecu, "cert_common_names": [ecu]})
        policies.append(
            {
                "id": f"{ecu}-policy",
                "rules": ["vehicle-read", "vehicle-send", f"{ecu}-owns", f"{ecu}-token"],
                "subjects": [ecu],
            }
        )
    return {
        "enabled": True,
        "default_permission": "deny",
        "rules": rules,
        "subjects": subjects,
        "policies": policies,
    }
