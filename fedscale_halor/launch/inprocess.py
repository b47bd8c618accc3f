"""Run a whole job in one process: the aggregator's round loop here, executors on threads, the memory transport.

This is the reference runner for tests and for machines where starting processes is not wanted; the gRPC runtime
runs the very same Aggregator and Executor objects over the network.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from fedscale_halor.config.components import build_selector, build_strategy, build_trainer, executor_device
from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.config.serialize import dump_config
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.executor.executor import Executor, ExecutorParts
from fedscale_halor.launch.hosts import ExecutorSlot, executor_slots
from fedscale_halor.launch.rundir import attach_log_file, create_run_dir, detach_log_file
from fedscale_halor.logging.base import FanOutSink
from fedscale_halor.logging.csv_sink import CsvSink
from fedscale_halor.logging.testing_perf import PerfHistorySink
from fedscale_halor.logging.text_sink import TextSink
from fedscale_halor.models import build_model
from fedscale_halor.seeding import derive_seed
from fedscale_halor.server.aggregator import Aggregator, AggregatorParts
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.service import BoardService
from fedscale_halor.transport.memory import InMemoryTransport
from fedscale_halor.types import RoundMetrics, Weights

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass(frozen=True)
class JobOutcome:
    run_dir: Path
    history: tuple[RoundMetrics, ...]
    final_weights: Weights


def initial_weights(model: torch.nn.Module, job_seed: int) -> dict[str, torch.Tensor]:
    """The round-0 global model: the architecture's initialisation under a seed derived from the job seed."""
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(job_seed, 0, "model-init"))
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def run_in_process(cfg: ExperimentConfig, *, timestamp: str | None = None, echo: bool = True) -> JobOutcome:
    job = cfg.job
    run_dir = create_run_dir(job.log_path, job.job_name, timestamp)
    dump_config(cfg, run_dir / "config.yml")
    handler = attach_log_file("fedscale_halor", run_dir / "aggregator.log", echo=echo)
    try:
        _log.info("job %s: logs in %s", job.job_name, run_dir)
        if job.executor_threads > 0:
            torch.set_num_threads(job.executor_threads)
        dataset = FederatedDataset.from_job(job)
        _log.info("%s: %d clients, %d test samples, %d classes", job.data_set, len(dataset.client_ids),
                  dataset.num_test_samples, dataset.num_classes)
        board = WorkBoard()
        token = secrets.token_hex(16)
        service = BoardService(board, token)
        model = build_model(job.model, dataset.num_classes, dataset.input_shape)
        sink = FanOutSink([
            TextSink(_log, job.rounds),
            CsvSink(run_dir / "metrics.csv"),
            PerfHistorySink(run_dir / "testing_perf", job),
        ])
        aggregator = Aggregator(job, AggregatorParts(
            board=board, client_ids=dataset.client_ids, initial_weights=initial_weights(model, job.sample_seed),
            selector=build_selector(job), strategy=build_strategy(job), sink=sink,
            checkpoint_dir=run_dir / "checkpoint",
        ))
        slots = executor_slots(cfg.deployment.worker_ips)
        threads = [_start_executor(slot, board, service, token, cfg, dataset) for slot in slots]
        history = aggregator.run(executor_count=len(slots), register_timeout_s=job.register_timeout)
        for thread in threads:
            thread.join()
        _log.info("job %s finished; logs in %s", job.job_name, run_dir)
        return JobOutcome(run_dir, tuple(history), aggregator.weights)
    finally:
        detach_log_file("fedscale_halor", handler)


def _start_executor(slot: ExecutorSlot, board: WorkBoard, service: BoardService, token: str,
                    cfg: ExperimentConfig, dataset: FederatedDataset) -> threading.Thread:
    job = cfg.job
    rank = slot.rank
    device = executor_device(job, slot.gpu_index)
    parts = ExecutorParts(
        model=build_model(job.model, dataset.num_classes, dataset.input_shape).to(device),
        dataset=dataset, trainer=build_trainer(job, device), test_batch_size=job.test_bsz, device=device,
    )
    executor = Executor(f"executor_{rank}", InMemoryTransport(service, token), parts)

    def serve() -> None:
        try:
            executor.run()
        except BaseException as error:
            _log.exception("executor_%d crashed", rank)
            board.fail(f"executor_{rank} crashed: {error!r}")

    thread = threading.Thread(target=serve, name=f"executor_{rank}", daemon=True)
    thread.start()
    return thread
