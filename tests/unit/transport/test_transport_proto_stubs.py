from __future__ import annotations

from pathlib import Path

import pytest

from fedscale_halor.transport.proto import generate


def test_the_committed_stubs_match_the_proto_file(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (bash install.sh --test) regenerates the stubs")

    generate.generate(tmp_path)

    for name in generate.GENERATED_FILES:
        committed = (generate.PROTO_DIR / name).read_text(encoding="utf-8")
        assert (tmp_path / name).read_text(encoding="utf-8") == committed, (
            f"{name} is stale: run python -m fedscale_halor.transport.proto.generate")


def test_the_grpc_stub_imports_its_messages_relative_to_the_package() -> None:
    stub = (generate.PROTO_DIR / "aggregator_pb2_grpc.py").read_text(encoding="utf-8")

    assert "from . import aggregator_pb2 as" in stub
    assert "\nimport aggregator_pb2" not in stub
