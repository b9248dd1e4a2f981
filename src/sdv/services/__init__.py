"""The typed vehicle services (cockpit, ADAS): which fields they carry and what each field expects.

The gRPC servicers live in :mod:`sdv.api`; this package is pure and imports nothing from grpc, so that the profile
checks in :mod:`sdv.hal.vehicle` can use it.
"""

from sdv.types.service_fields import (
    ADAS_FIELDS,
    COCKPIT_FIELDS,
    SERVICE_FIELDS,
    Family,
    ServiceField,
    family_of,
)

__all__ = ["ADAS_FIELDS", "COCKPIT_FIELDS", "SERVICE_FIELDS", "Family", "ServiceField", "family_of"]
