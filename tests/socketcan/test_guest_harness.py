"""The guest harness where no guest can run: the SocketCAN tests are reported skipped with the reason.

Not marked ``socketcan``: this runs on the build machine, in the ordinary test stage.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.serve_process import REPOSITORY

GUEST = REPOSITORY / "tests" / "socketcan" / "guest.py"


def test_without_a_guest_the_socketcan_tests_are_skipped_with_the_reason() -> None:
    guest = [
        sys.executable,
        str(GUEST),
        "--no-install",
        "--otherwise-here",
        "SDV_SOCKETCAN_UNAVAILABLE",
        "--",
    ]
    pytest_run = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-m", "socketcan"]
    done = subprocess.run(
        [*guest, *pytest_run, "tests/socketcan"],
        cwd=REPOSITORY,
        env={**os.environ, "XDG_CACHE_HOME": "/proc/no-such-cache"},  # a cache that cannot be made
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "guest unavailable: cannot prepare a guest" in done.stderr
    assert " passed" not in done.stdout and " failed" not in done.stdout
    assert "SKIPPED" in done.stdout and "no SocketCAN guest could run: cannot prepare a guest" in done.stdout


def test_a_backend_asked_for_by_a_name_it_does_not_know_is_refused_with_the_choices(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(GUEST), "--no-install", "--", "true"],
        cwd=REPOSITORY,
        env={**os.environ, "SDV_GUEST_BACKEND": "kvm", "XDG_CACHE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 125
    assert "SDV_GUEST_BACKEND=kvm: not one of uml, qemu-kvm, qemu" in done.stderr
