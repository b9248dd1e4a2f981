"""The committed protobuf contract: wire-compatible with kuksa-client's, and equal to a fresh generation.

Our generated modules and kuksa-client's register the same protobuf file names in protobuf's default
descriptor pool. One process can import both only while the two serialized files are byte-identical; any
difference would make the second import fail instead of being reported. So each side's descriptors are dumped
by its own subprocess into a flat, comparable form.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ("kuksa/val/v1/types", "kuksa/val/v1/val", "kuksa/val/v2/types", "kuksa/val/v2/val")

# Prints, as JSON, one line per contract fact ("<file> message X field y" -> "number type label ...").
_DUMP = r"""
import importlib, json, sys
from google.protobuf import descriptor_pb2 as d

prefix, files = sys.argv[1], sys.argv[2:]
TYPES = {v: k for k, v in d.FieldDescriptorProto.Type.items()}
LABELS = {v: k for k, v in d.FieldDescriptorProto.Label.items()}
facts = {}

def message(where, m):
    facts[f"{where} message {m.name}"] = f"map_entry={m.options.map_entry}"
    for oneof in m.oneof_decl:
        facts[f"{where} message {m.name} oneof {oneof.name}"] = "declared"
    for f in m.field:
        oneof = m.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else "-"
        facts[f"{where} message {m.name} field {f.name}"] = (
            f"number={f.number} type={TYPES[f.type]} type_name={f.type_name or '-'} label={LABELS[f.label]} "
            f"oneof={oneof} proto3_optional={f.proto3_optional}"
        )
    for nested in m.nested_type:
        message(f"{where} message {m.name}", nested)
    for e in m.enum_type:
        enum(f"{where} message {m.name}", e)

def enum(where, e):
    for v in e.value:
        facts[f"{where} enum {e.name} value {v.name}"] = f"number={v.number}"

for name in files:
    module = importlib.import_module(prefix + name.replace("/", ".") + "_pb2")
    fdp = d.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(fdp)
    where = fdp.name
    facts[f"{where} file"] = f"package={fdp.package} syntax={fdp.syntax} deps={sorted(fdp.dependency)}"
    for m in fdp.message_type:
        message(where, m)
    for e in fdp.enum_type:
        enum(where, e)
    for s in fdp.service:
        for r in s.method:
            facts[f"{where} service {s.name} method {r.name}"] = (
                f"input={r.input_type} output={r.output_type} "
                f"client_streaming={r.client_streaming} server_streaming={r.server_streaming}"
            )
print(json.dumps(facts))
"""


def _dump(prefix: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", _DUMP, prefix, *FILES], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    facts: dict[str, str] = json.loads(result.stdout)
    return facts


@pytest.fixture(scope="module")
def ours() -> dict[str, str]:
    return _dump("sdv._proto.")


@pytest.fixture(scope="module")
def kuksa() -> dict[str, str]:
    return _dump("")


def test_every_file_service_message_field_and_enum_value_matches_kuksa_client(
    ours: dict[str, str], kuksa: dict[str, str]
) -> None:
    missing = sorted(set(kuksa) - set(ours))
    extra = sorted(set(ours) - set(kuksa))
    different = sorted(
        f"{key}: ours {ours[key]!r}, kuksa {kuksa[key]!r}"
        for key in kuksa.keys() & ours.keys()
        if ours[key] != kuksa[key]
    )
    assert not missing, "missing from our protos:\n" + "\n".join(missing)
    assert not extra, "not in kuksa-client's protos:\n" + "\n".join(extra)
    assert not different, "\n".join(different)


def test_the_comparison_covers_the_whole_contract(ours: dict[str, str]) -> None:
    # Guards the test above against comparing two empty dumps.
    methods = [key for key in ours if " method " in key]
    assert len(methods) == 16  # 11 in v2, 5 in v1
    assert ours["kuksa/val/v2/types.proto message Value field uint64"].startswith(
        "number=16 type=TYPE_UINT64"
    )
    assert (
        "client_streaming=True server_streaming=True"
        in ours["kuksa/val/v2/val.proto service VAL method OpenProviderStream"]
    )


def test_committed_generated_modules_equal_a_fresh_generation(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    committed_root = ROOT / "src" / "sdv" / "_proto"
    fresh = {path.relative_to(tmp_path): path.read_text() for path in tmp_path.rglob("*") if path.is_file()}
    committed = {
        path.relative_to(committed_root): path.read_text()
        for path in committed_root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert sorted(committed) == sorted(fresh), "run scripts/gen_protos.py"
    stale = [str(name) for name in sorted(fresh) if committed[name] != fresh[name]]
    assert not stale, f"generated files out of date (run scripts/gen_protos.py): {stale}"
