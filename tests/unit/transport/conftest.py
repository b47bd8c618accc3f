"""Fixtures of the gRPC transport's tests: a scripted service served on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from transport_fakes import CHUNK_BYTES, ScriptedService

from fedscale_halor.transport.grpc_server import GrpcAggregatorServer


@pytest.fixture
def scripted_service() -> ScriptedService:
    return ScriptedService(token="job-token")


@pytest.fixture
def served(scripted_service: ScriptedService) -> Iterator[str]:
    """The address of a running gRPC server in front of ``scripted_service``."""
    with GrpcAggregatorServer(scripted_service, "127.0.0.1", 0, chunk_bytes=CHUNK_BYTES, max_workers=8) as server:
        yield f"127.0.0.1:{server.port}"
