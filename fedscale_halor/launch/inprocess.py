"""Run a whole job in one process: the aggregator's round loop here, executors on threads, the memory transport.

The reference runner for tests and for determinism checks; the gRPC runtime runs the very same Aggregator and
Executor objects in separate processes.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.launch.assembly import build_aggregator, build_executor, new_board
from fedscale_halor.launch.hosts import executor_slots
from fedscale_halor.launch.process_tuning import tune_process_for_training
from fedscale_halor.launch.resume_check import log_config_changes, write_run_config
from fedscale_halor.launch.rundir import attach_log_file, detach_log_file, open_run_dir
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


def run_in_process(cfg: ExperimentConfig, *, timestamp: str | None = None, echo: bool = True,
                   resume: bool = False, force_config: bool = False) -> JobOutcome:
    """``resume``: continue the run of ``timestamp`` from its last checkpoint, refused when the config changes what
    is trained (``resume_check``) unless ``force_config``."""
    job = cfg.job
    run_dir = open_run_dir(job.log_path, job.job_name, timestamp, resume=resume)
    _, config_changes = write_run_config(cfg, run_dir, resume=resume, force_config=force_config)
    handler = attach_log_file("fedscale_halor", run_dir / "aggregator.log", echo=echo)
    try:
        _log.info("job %s: logs in %s", job.job_name, run_dir)
        log_config_changes(config_changes, _log)
        tune_process_for_training()
        board = new_board(job)
        token = secrets.token_hex(16)
        service = BoardService(board, token)
        dataset = FederatedDataset.from_job(job)  # one view, shared by the aggregator and the executor threads
        aggregator = build_aggregator(job, board, run_dir, dataset, resume=resume)
        slots = executor_slots(cfg.deployment.worker_ips)
        threads = []
        for slot in slots:
            executor = build_executor(cfg, slot, InMemoryTransport(service, token), dataset)
            threads.append(_serve_on_thread(executor.run, f"executor_{slot.rank}", board))
        history = aggregator.run(executor_count=len(slots), register_timeout_s=job.register_timeout)
        for thread in threads:
            thread.join()
        _log.info("job %s finished; logs in %s", job.job_name, run_dir)
        return JobOutcome(run_dir, tuple(history), aggregator.weights)
    finally:
        detach_log_file("fedscale_halor", handler)


def _serve_on_thread(serve: Callable[[], None], name: str, board: WorkBoard) -> threading.Thread:
    def guarded() -> None:
        try:
            serve()
        except BaseException as error:
            _log.exception("%s crashed", name)
            board.fail(f"{name} crashed: {error!r}")

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread
