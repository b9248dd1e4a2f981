"""Fuzz targets log nothing: the loaders warn about every repair of every mutated file."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.fuzz.harness import FUZZ_SECONDS


@pytest.fixture(autouse=True)
def _quiet_sdv_logs() -> Iterator[None]:
    logger = logging.getLogger("sdv")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With a time budget, a target runs for that long plus its last round: beyond the suite's own timeout."""
    if FUZZ_SECONDS:
        for item in items:
            if "tests/fuzz/" in item.nodeid:
                item.add_marker(pytest.mark.timeout(2 * FUZZ_SECONDS + 600))
