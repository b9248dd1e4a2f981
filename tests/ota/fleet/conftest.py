"""Fixtures of the pulling tests (the servers live in :mod:`tests.ota.fleet.servers`)."""

from tests.ota.fleet.servers import nginx

__all__ = ["nginx"]
