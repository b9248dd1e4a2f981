"""The layering an app developer relies on: importing the client and the SDK loads no server part and no CAN,
DBC or YAML library (the import-linter contracts in pyproject.toml check every layer in `make lint`)."""

from __future__ import annotations

import json
import subprocess
import sys

import grimp  # installed with import-linter, which `make lint` runs
import pytest

_HEAVY = ("cantools", "can", "yaml", "sdv.hal", "sdv.broker", "sdv.api", "sdv.services", "sdv.ota", "sdv.cli")


@pytest.mark.parametrize(
    "statement",
    [
        "import sdv",
        "import sdv.client",
        "import sdv.sdk",
        "from sdv.sdk import connect, connect_sync, Vehicle",
        "import sdv; sdv.connect_sync",
    ],
)
def test_app_imports_load_no_server_and_no_can_stack(statement: str) -> None:
    probe = (
        f"{statement}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m in {_HEAVY!r} or m.startswith(tuple(n + '.' for n in {_HEAVY!r})))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == []


def test_the_error_users_most_need_is_exported() -> None:
    import sdv

    assert "ServerUnreachableError" in sdv.__all__
    assert issubclass(sdv.ServerUnreachableError, sdv.SdvError)


def test_no_two_packages_import_each_other() -> None:
    graph = grimp.build_graph("sdv", exclude_type_checking_imports=True)
    packages = sorted({".".join(name.split(".")[:2]) for name in graph.modules if name.count(".") >= 1})
    packages += sorted(
        {".".join(name.split(".")[:3]) for name in graph.modules if name.startswith("sdv.ota.")}
    )
    packages = [name for name in dict.fromkeys(packages) if name in graph.modules and name != "sdv._proto"]
    cycles = [
        (first, second)
        for index, first in enumerate(packages)
        for second in packages[index + 1 :]
        if not second.startswith(first + ".")
        and graph.chain_exists(first, second, as_packages=True)
        and graph.chain_exists(second, first, as_packages=True)
    ]
    assert cycles == []


def test_no_module_is_over_500_lines() -> None:
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "src" / "sdv"
    long = {
        str(path.relative_to(source)): count
        for path in source.rglob("*.py")
        if "_proto" not in path.parts and (count := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}, "split these modules"


def test_every_public_error_is_exported_by_the_package() -> None:
    import sdv
    import sdv.errors

    errors = {name for name in sdv.errors.__all__ if isinstance(getattr(sdv.errors, name), type)}
    assert errors <= set(sdv.__all__)
    assert all(issubclass(getattr(sdv, name), sdv.SdvError) for name in errors if name != "Problem")
