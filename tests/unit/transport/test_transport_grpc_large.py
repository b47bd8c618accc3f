from __future__ import annotations

import time

import torch
from transport_fakes import ScriptedService

from fedscale_halor.transport.grpc_client import GrpcTransport
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer
from fedscale_halor.transport.messages import ExecutorInfo, UpdateModel

MIB = 2**20


def test_a_100_mb_model_crosses_in_1_mib_chunks_intact() -> None:
    # Prepare: 25M float32 values (100 MB), far over gRPC's default 4 MiB message limit
    generator = torch.Generator().manual_seed(0)
    weights = {"big.weight": torch.randn(25_000_000, generator=generator), "bn.num_batches_tracked": torch.tensor(3)}
    service = ScriptedService(events=[UpdateModel(version=4, weights=weights)])

    with GrpcAggregatorServer(service, "127.0.0.1", 0, chunk_bytes=MIB) as server:
        executor = GrpcTransport(f"127.0.0.1:{server.port}", "job-token", chunk_bytes=MIB)
        executor.register(ExecutorInfo("executor_0", "node", "cpu"))
        started = time.monotonic()

        event = executor.next_event("executor_0")

        elapsed = time.monotonic() - started
        executor.close()

    assert isinstance(event, UpdateModel) and event.version == 4
    assert list(event.weights) == list(weights)
    assert all(torch.equal(event.weights[name], weights[name]) for name in weights)
    assert elapsed < 30.0
