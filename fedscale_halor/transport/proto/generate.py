"""Regenerate the Python stubs of aggregator.proto: ``python -m fedscale_halor.transport.proto.generate``.

protoc writes ``import aggregator_pb2`` into the gRPC stub, which only works with this folder on sys.path; the import
is rewritten to a package-relative one so the stubs work as part of the package.
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILE = "aggregator.proto"
GENERATED_FILES = ("aggregator_pb2.py", "aggregator_pb2.pyi", "aggregator_pb2_grpc.py")
_ABSOLUTE_IMPORT = re.compile(r"^import aggregator_pb2 as (\w+)$", re.MULTILINE)


def run_protoc(out_dir: Path) -> None:
    from grpc_tools import protoc  # a build-time tool, needed only here

    well_known_protos = resources.files("grpc_tools") / "_proto"
    arguments = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_DIR}",
        f"--proto_path={well_known_protos}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_DIR / PROTO_FILE),
    ]
    status = protoc.main(arguments)
    if status != 0:
        raise RuntimeError(f"protoc failed on {PROTO_DIR / PROTO_FILE} with exit status {status}")


def make_stub_import_relative(stub: Path) -> None:
    source = stub.read_text(encoding="utf-8")
    fixed, count = _ABSOLUTE_IMPORT.subn(r"from . import aggregator_pb2 as \1", source)
    if count != 1:
        raise RuntimeError(f"{stub}: expected one 'import aggregator_pb2 as ...' line to rewrite, found {count}")
    stub.write_text(fixed, encoding="utf-8")


def generate(out_dir: Path = PROTO_DIR) -> None:
    run_protoc(out_dir)
    make_stub_import_relative(out_dir / "aggregator_pb2_grpc.py")


def main() -> int:
    generate()
    print(f"regenerated {', '.join(GENERATED_FILES)} from {PROTO_FILE} in {PROTO_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
