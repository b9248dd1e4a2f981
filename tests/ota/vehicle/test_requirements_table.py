"""The requirement table of docs/ota.md (GB 44496-2024 / UN R156 → feature → tests) cannot go stale: every test it
names exists as a test function of that file, and every row names at least one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.serve_process import REPOSITORY

DOC = REPOSITORY / "docs" / "ota.md"
_START, _END = "<!-- requirements-table -->", "<!-- /requirements-table -->"
_TEST = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _rows() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    assert text.count(_START) == 1 and text.count(_END) == 1, f"{DOC}: one {_START} ... {_END} block expected"
    table = text[text.index(_START) + len(_START) : text.index(_END)].strip().splitlines()
    assert table[0].startswith("| requirement | clause | feature | tests |"), table[0]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table[2:]]


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    }


def test_every_test_the_requirement_table_names_exists() -> None:
    rows = _rows()
    assert len(rows) >= 10  # the requirements of GB 44496 / R156 the issue lists, and more
    missing = []
    for row in rows:
        assert len(row) == 4, f"{DOC}: a row needs 4 cells: {row}"
        named = _TEST.findall(row[3])
        assert named, f"{DOC}: the row {row[0]!r} names no test"
        for file, name in named:
            path = REPOSITORY / file
            if not path.is_file() or name not in _test_functions(path):
                missing.append(f"{file}::{name}")
    assert not missing, f"{DOC} names tests that do not exist: {missing}"


def test_the_check_finds_a_test_that_is_not_there(tmp_path: Path) -> None:
    path = tmp_path / "test_x.py"
    path.write_text("def test_here() -> None:\n    pass\n\n\ndef helper() -> None:\n    pass\n")
    assert _test_functions(path) == {"test_here"}
    assert _TEST.findall("`tests/ota/test_x.py::test_gone`, `tests/a.py::test_b`") == [
        ("tests/ota/test_x.py", "test_gone"),
        ("tests/a.py", "test_b"),
    ]
