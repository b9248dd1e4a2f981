"""Generate the Python modules of the gRPC contracts under ``proto/`` into ``src/sdv/_proto``.

Runs ``grpc_tools.protoc`` with the message (``--python_out``), service (``--grpc_python_out``) and type stub
(mypy-protobuf: ``--mypy_out``, ``--mypy_grpc_out``) generators, then rewrites the generated absolute imports
(``from kuksa.val.v2 import types_pb2``) to the package they are committed in
(``from sdv._proto.kuksa.val.v2 import types_pb2``) so that they never collide with another distribution's
top-level ``kuksa`` package; the project's own services (``sdv.cockpit.v1``, ``sdv.adas.v1``, ``sdv.ota.v1``, in
``proto/sdv/``) land under ``sdv._proto.sdv`` the same way. The protobuf *file* names stay ``kuksa/val/v2/types.proto`` and so on: they are part
of the published contract (server reflection lists them).

The output is deterministic for given tool versions, and the generated files are committed so installs need no
protoc; ``tests/api/test_codegen.py`` checks that they equal a fresh generation. Usage::

    python scripts/gen_protos.py            # regenerate src/sdv/_proto
    python scripts/gen_protos.py --out DIR  # write elsewhere (the freshness test does)
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE = "sdv._proto"
DEFAULT_OUT = ROOT / "src" / "sdv" / "_proto"
# Top-level proto packages whose generated imports are moved under PACKAGE.
PROTO_PACKAGES = ("kuksa", "sdv.cockpit", "sdv.adas", "sdv.ota")
_IMPORT = re.compile(
    rf"^(\s*)(from|import) ({'|'.join(re.escape(name) for name in PROTO_PACKAGES)})(\.|\s)", re.MULTILINE
)
_INIT_TEXT = '"""Generated from proto/ by scripts/gen_protos.py; do not edit."""\n'


def proto_files() -> list[Path]:
    """Every ``.proto`` file under ``proto/``, sorted for a stable order."""
    return sorted(PROTO_ROOT.rglob("*.proto"))


def _plugin(name: str) -> str:
    """The path of a protoc plugin installed next to the running interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"gen_protos: {name} not found; install the test extras (mypy-protobuf)")
    return found


def run_protoc(work: Path) -> None:
    """Run protoc with every generator into ``work``."""
    import grpc_tools  # noqa: PLC0415 - a development dependency, only needed here

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={work}",
        f"--grpc_python_out={work}",
        f"--mypy_out={work}",
        f"--mypy_grpc_out={work}",
        *(str(path.relative_to(PROTO_ROOT)) for path in proto_files()),
    ]
    result = subprocess.run(command, cwd=PROTO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"gen_protos: protoc failed:\n{result.stderr}")


def rewrite_imports(text: str) -> str:
    """Move the generated modules' imports of each other under :data:`PACKAGE`."""
    return _IMPORT.sub(lambda match: f"{match[1]}{match[2]} {PACKAGE}.{match[3]}{match[4]}", text)


def _keep(path: Path) -> bool:
    """Whether a generated file is kept: files without services still get an empty ``*_pb2_grpc`` module."""
    if not path.name.endswith(("_pb2_grpc.py", "_pb2_grpc.pyi")):
        return True
    return "class " in path.with_suffix(".py").read_text()


def generate(out: Path) -> list[Path]:
    """Generate every module into ``out`` (replacing what was there) and return the files written."""
    with tempfile.TemporaryDirectory(prefix="sdv-protos-") as temporary:
        work = Path(temporary)
        run_protoc(work)
        generated = sorted(path for path in work.rglob("*") if path.is_file() and _keep(path))
        if out.exists():
            shutil.rmtree(out)
        written: list[Path] = []
        for source in generated:
            target = out / source.relative_to(work)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rewrite_imports(source.read_text()))
            written.append(target)
    packages = {out} | {path.parent for path in written}
    packages |= {parent for package in packages for parent in package.parents if out in parent.parents}
    for package in sorted(packages):
        init = package / "__init__.py"
        init.write_text(_INIT_TEXT)
        written.append(init)
    return sorted(written)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT.relative_to(ROOT)}"
    )
    args = parser.parse_args(argv)
    written = generate(args.out.resolve())
    print(f"gen_protos: wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
