"""Where the COVESA VSS release files the tests read live: ``shared/vss/`` next to the repository (or next to one
of its parent directories, for a worktree), or the directory named by ``SDV_VSS_DIR``.

A missing file fails the test that needs it: the catalogue's compatibility is tested against the real releases
or not at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
RELEASES = ("4.0", "5.1", "6.0")


def vss_directory() -> Path | None:
    """The directory holding ``vss_release_<version>.json``, or None."""
    if os.environ.get("SDV_VSS_DIR"):
        return Path(os.environ["SDV_VSS_DIR"])
    for parent in REPOSITORY.parents:
        candidate = parent / "shared" / "vss"
        if (candidate / "vss_release_4.0.json").is_file():
            return candidate
    return None


def vss_release(version: str) -> Path:
    """The VSS release file of ``version``; fails the calling test when it cannot be found."""
    directory = vss_directory()
    path = directory / f"vss_release_{version}.json" if directory else None
    if path is None or not path.is_file():
        pytest.fail(
            f"vss_release_{version}.json not found: put the COVESA releases in ../shared/vss/ next to the "
            "repository or set SDV_VSS_DIR"
        )
    return path
