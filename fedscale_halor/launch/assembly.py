"""Builds the aggregator and executors of a job from its config; shared by every runner and transport."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from fedscale_halor.config.schema import ExperimentConfig, JobConfig
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.executor.executor import Executor, ExecutorParts
from fedscale_halor.launch.components import build_selector, build_strategy, build_trainer, executor_device
from fedscale_halor.launch.hosts import ExecutorSlot
from fedscale_halor.launch.plugins import (
    cohort_plugin,
    executor_plugins,
    payload_registry,
    planner_of,
    round_plugins,
    run_name_parts,
)
from fedscale_halor.logging.base import FanOutSink
from fedscale_halor.logging.factory import job_sinks
from fedscale_halor.models import build_model
from fedscale_halor.models.fit import build_model_for
from fedscale_halor.plugin.factory import ExecutorSide, ServerSide
from fedscale_halor.seeding import derive_seed
from fedscale_halor.server.aggregator import Aggregator, AggregatorParts
from fedscale_halor.server.board import LivenessPolicy, WorkBoard
from fedscale_halor.server.checkpoint import load_checkpoint_state
from fedscale_halor.server.planning import EveryoneCompletes, RoundPlanner, TracedClock
from fedscale_halor.simulation.clock import VirtualClock
from fedscale_halor.transport.base import Transport

_log = logging.getLogger("fedscale_halor.aggregator")


def initial_weights(model: torch.nn.Module, job_seed: int) -> dict[str, torch.Tensor]:
    """The round-0 global model: the architecture's initialisation under a seed derived from the job seed."""
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(job_seed, 0, "model-init"))
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def torch_threads_per_executor(job: JobConfig) -> int:
    """The executor's CPU threads (``executor_threads``; 0 means 1). On a CPU they become training lanes, one
    client per thread, each client on a single torch thread; so a reduction is never split over threads and the
    same seed gives the same model whatever the number of executors or threads."""
    return job.executor_threads or 1


_STOCHASTIC_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def training_lanes(threads: int, device: str, model: nn.Module) -> int:
    """How many clients an executor trains at once. One on a GPU (the device is what runs in parallel there), and
    one for models that draw random numbers while training: lanes share torch's global generator, so their draws
    would interleave and a client's result would depend on its neighbour's."""
    if threads <= 1 or device != "cpu":
        return 1
    if any(isinstance(module, _STOCHASTIC_MODULES) or getattr(module, "dropout", 0) for module in model.modules()):
        _log.info("the model draws random numbers while training: its executors train one client at a time on "
                  "%d torch threads", threads)
        return 1
    return threads


# Smaller hand-outs than plain guided self-scheduling for folds that take results in client-id order (FedDC's):
# with two executors each taking half a round at once, the in-order fold held up to eleven 26 MB updates of the
# reference workload waiting for their predecessors.
CHUNKS_PER_EXECUTOR = 4


def new_board(job: JobConfig) -> WorkBoard:
    return WorkBoard(chunks_per_executor=CHUNKS_PER_EXECUTOR, payloads=payload_registry(job), liveness=LivenessPolicy(
        executor_timeout_s=job.executor_timeout,
        reassign_dead_clients=job.dead_executor_clients == "reassign",
        orphan_timeout_s=job.register_timeout,
        hang_up_grace_s=heartbeat_interval_s(job),
    ))


def round_planner(job: JobConfig, client_ids: Sequence[int], model_bytes: int) -> RoundPlanner:
    """The virtual clock when the job names a device trace; otherwise every selected client completes."""
    clock = VirtualClock.from_job(job, client_ids, model_bytes)
    if clock is None:
        return EveryoneCompletes(job.num_participants)
    return TracedClock(clock, job.num_participants, job.overcommitment, job.local_steps,
                       straggler_balancing=job.straggler_balancing, min_local_steps=job.min_local_steps)


def heartbeat_interval_s(job: JobConfig) -> float:
    """Four heartbeats per executor timeout: one lost heartbeat never gets a live executor declared dead."""
    return max(0.5, job.executor_timeout / 4)


def build_aggregator(job: JobConfig, board: WorkBoard, run_dir: Path,
                     dataset: FederatedDataset | None = None, *, resume: bool = False) -> Aggregator:
    """``resume``: continue the run in ``run_dir`` from its checkpoint, keeping the logs of the rounds before it."""
    resumed_round = load_checkpoint_state(run_dir / "checkpoint").round if resume else None
    dataset = dataset or FederatedDataset.from_job(job)
    _log.info("%s: %d clients, %d test samples, %d classes", job.data_set, len(dataset.client_ids),
              dataset.num_test_samples, dataset.num_classes)
    # before the sinks and the clock: a model that cannot take the data set's samples stops the job here
    model = build_model_for(job.model, dataset.num_classes, dataset.input_shape, job.data_set)
    sinks = job_sinks(job, run_dir, _log, keep_rounds_up_to=resumed_round, timestamp=run_dir.name,
                      name_parts=run_name_parts(job))
    sink = FanOutSink(sinks)
    weights = initial_weights(model, job.sample_seed)
    client_sizes = dataset.sample_counts()
    model_bytes = sum(tensor.numel() * tensor.element_size() for tensor in weights.values())
    server = ServerSide(board, dataset.client_ids, client_sizes, dataset.num_classes, run_dir=run_dir)
    plugins = round_plugins(job, server)
    aggregator = Aggregator(job, AggregatorParts(
        board=board, client_ids=dataset.client_ids, initial_weights=weights,
        selector=build_selector(job), strategy=build_strategy(job), sink=sink,
        checkpoint_dir=run_dir / "checkpoint",
        client_sizes=client_sizes,
        planner=planner_of(plugins, round_planner(job, dataset.client_ids, model_bytes)),
        plugins=plugins,
        cohorts=cohort_plugin(job, server),
        client_views={client: dataset.test_view(client) for client in dataset.client_ids}
        if len(dataset.test_views) > 1 else {},
    ))
    if resume:
        aggregator.restore(run_dir / "checkpoint")
    return aggregator


def build_executor(cfg: ExperimentConfig, slot: ExecutorSlot, transport: Transport,
                   dataset: FederatedDataset | None = None, threads: int | None = None) -> Executor:
    """``threads``: the executor's CPU threads (default: the job's); its process's torch threads are set for them,
    to 1 when they become training lanes."""
    job = cfg.job
    dataset = dataset or FederatedDataset.from_job(job)
    device = executor_device(job, slot.gpu_index)
    threads = torch_threads_per_executor(job) if threads is None else threads

    def new_model() -> nn.Module:
        return build_model(job.model, dataset.num_classes, dataset.input_shape).to(device)

    model = new_model()
    lanes = training_lanes(threads, device, model)
    torch.set_num_threads(1 if lanes > 1 else max(1, threads))
    executor_id = f"executor_{slot.rank}"
    parts = ExecutorParts(
        model=model, lane_models=tuple(new_model() for _ in range(lanes - 1)),
        dataset=dataset, trainer=build_trainer(job, device), test_batch_size=job.test_bsz, device=device,
        heartbeat_s=heartbeat_interval_s(job), payloads=payload_registry(job),
        plugins=executor_plugins(job, ExecutorSide(executor_id, dataset)),
    )
    return Executor(executor_id, transport, parts)
