"""The error tables of docs/api.md are the code's one error contract: each documented row is what the server
answers, and each class the contract names is documented."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

from sdv import errors
from sdv.api.errors import ERROR_CONTRACT, status_code
from sdv.broker.access import NO_RIGHTS
from sdv.viss.errors import VISS_ERRORS, viss_error

API_MD = Path(__file__).parents[2] / "docs" / "api.md"
_NAME = re.compile(r"`(\w+)`")


def _table_after(heading: str) -> list[list[str]]:
    """The cells of the first Markdown table below ``heading`` (header and separator rows left out)."""
    lines = API_MD.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]


def _error_class(name: str) -> type[errors.SdvError]:
    error_type = getattr(errors, name)
    assert issubclass(error_type, errors.SdvError), name
    return error_type


def _instance(error_type: type[errors.SdvError]) -> errors.SdvError:
    return error_type("documented")


def test_the_viss_error_table_is_the_contract_s_viss_column() -> None:
    documented = {}
    for name, number, reason in _table_after("### VISS errors"):
        error_type = _error_class(_NAME.fullmatch(name).group(1))  # type: ignore[union-attr]
        documented[error_type] = (int(number), reason.strip("`"))
        answer = viss_error(_instance(error_type), NO_RIGHTS)
        assert (answer.number, answer.reason) == documented[error_type], name
    assert documented == {error_type: (number, reason) for error_type, number, reason in VISS_ERRORS}


def test_the_grpc_status_table_matches_the_contract() -> None:
    seen = set()
    for row in _table_after("## Status codes"):
        names, status = _NAME.findall(row[1]), _NAME.findall(row[2])
        for name in names:
            error_type = _error_class(name)
            seen.add(error_type)
            assert status_code(_instance(error_type)) is getattr(grpc.StatusCode, status[0]), name
    signal_errors = {row.error for row in ERROR_CONTRACT if row.viss is not None} - {errors.SdvError}
    assert signal_errors <= seen


@pytest.mark.parametrize(
    "row", [row for row in ERROR_CONTRACT if row.viss is not None], ids=lambda r: r.error.__name__
)
def test_every_transport_answers_from_the_same_row(row: object) -> None:
    """A row's class gets its own row's answers on gRPC and VISS (no earlier row shadows it)."""
    error = _instance(row.error)  # type: ignore[attr-defined]
    assert status_code(error) is row.grpc  # type: ignore[attr-defined]
    answer = viss_error(error, NO_RIGHTS)
    assert (answer.number, answer.reason) == row.viss  # type: ignore[attr-defined]
