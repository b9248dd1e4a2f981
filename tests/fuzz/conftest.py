"""Fuzz targets log nothing: the loaders warn about every repair of every mutated file."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _quiet_sdv_logs() -> Iterator[None]:
    logger = logging.getLogger("sdv")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)
