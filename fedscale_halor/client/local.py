"""Sequential local training of one client: plain SGD, optionally with FedProx's proximal term or FedDC's drift
penalty."""

from __future__ import annotations

import contextlib
import time
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from fedscale_halor.client.base import Trainer
from fedscale_halor.client.batching import batch_indices
from fedscale_halor.client.feddc import DriftPenalty, drift_increment
from fedscale_halor.client.fedprox import ProximalTerm
from fedscale_halor.client.memory_layout import prefer_channels_last
from fedscale_halor.client.model_state import ModelState, cpu_copy
from fedscale_halor.client.sgd_in_backward import SGDStep, fusable_linears, sgd_in_backward
from fedscale_halor.seeding import torch_generator
from fedscale_halor.types import ClientData, TrainResult, TrainTask, Weights


def cpu_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached CPU copies of the model's state dict (parameters and buffers), never aliasing the model."""
    return {name: cpu_copy(tensor) for name, tensor in model.state_dict().items()}


def _copy_out(model: nn.Module, view: ModelState | None) -> dict[str, torch.Tensor]:
    return view.copy_out() if view is not None else cpu_weights(model)


def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _on_device(model: nn.Module, device: torch.device) -> bool:
    """Whether every tensor of ``model`` already lives on ``device``: ``Module.to`` walks every submodule even then,
    about 0.1 ms of a small model's client."""
    index = device.index if device.index is not None or device.type != "cuda" else torch.cuda.current_device()
    wanted = torch.device(device.type, index) if device.type == "cuda" else device
    return all(tensor.device == wanted for tensor in (*model.parameters(), *model.buffers()))


def _seed(device: torch.device, seed: int) -> None:
    """Seed the generators that training on ``device`` draws from. Not ``torch.manual_seed``: in a CUDA build it
    also queues a seeding of every GPU with a formatted stack trace, ~0.1 ms per client even on a CPU."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


@dataclass(frozen=True)
class _PreparedModel:
    """What the trainer learns about a model once: its fusable dense layers and a direct view of its state."""

    fusable: list[nn.Linear]
    state: ModelState | None


class LocalTrainer(Trainer):
    """Runs exactly ``task.local_steps`` SGD steps over reshuffled mini-batches of the client's data.

    Every random choice (batch order, dropout) is seeded from ``task.seed``, so the same task on the same device
    gives the same weights. ``proximal_mu > 0`` turns the client into a FedProx client. ``feddc_alpha`` (not None)
    turns it into a FedDC client (``client/feddc.py``): it trains with the drift penalty, taking its drift from
    ``task.client_state``, and reports theta_i - w in ``TrainResult.client_state``. Without momentum, a proximal
    term or FedDC, dense layers take their SGD step inside the backward pass (``sgd_in_backward``): the extra
    gradient terms must reach those layers before their step, which that path cannot give them.
    """

    def __init__(self, momentum: float = 0.9, weight_decay: float = 5e-4, proximal_mu: float = 0.0,
                 device: str | torch.device = "cpu", feddc_alpha: float | None = None) -> None:
        if proximal_mu < 0:
            raise ValueError(f"proximal_mu must be non-negative, got {proximal_mu}")
        if feddc_alpha is not None and not feddc_alpha >= 0:
            raise ValueError(f"feddc_alpha must be non-negative, got {feddc_alpha}")
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.proximal_mu = proximal_mu
        self.feddc_alpha = feddc_alpha
        self.device = torch.device(device)
        # models already on the device in their layout (loading weights keeps both)
        self._ready: weakref.WeakKeyDictionary[nn.Module, _PreparedModel] = weakref.WeakKeyDictionary()

    def train(self, model: nn.Module, global_weights: Weights, data: ClientData, task: TrainTask) -> TrainResult:
        started = time.perf_counter()
        _check_inputs(data, task)
        prepared = self._ready.get(model)
        if prepared is None:  # walking a small model's modules for this was 5% of its client
            if not _on_device(model, self.device):
                model.to(self.device)
            if prefer_channels_last(model, self.device):
                prepared = self._ready[model] = _PreparedModel(fusable_linears(model), ModelState.of(model))
        view = prepared.state if prepared is not None else None
        try:
            if view is not None:
                view.load(global_weights)
            else:
                model.load_state_dict(global_weights, strict=True)
        except RuntimeError as error:
            raise ValueError(f"client {task.client_id}: the global weights do not fit the model: {error}") from error

        num_samples = len(data)
        if num_samples == 0 or task.local_steps == 0:
            # Nothing to learn from: hand back the global weights untouched rather than looping on an empty loader.
            return _result(task, _copy_out(model, view), num_samples, 0, 0.0, 0.0, started)

        with torch.random.fork_rng(devices=_rng_devices(self.device)):
            _seed(self.device, task.seed)
            loss_mean, loss_square_mean = self._run_steps(model, data, task, prepared)
        weights = _copy_out(model, view)
        state = {} if self.feddc_alpha is None else drift_increment(model, weights, global_weights)
        return _result(task, weights, num_samples, task.local_steps, loss_mean, loss_square_mean, started, state)

    def _run_steps(self, model: nn.Module, data: ClientData, task: TrainTask,
                   prepared: _PreparedModel | None) -> tuple[float, float]:
        plain_sgd = self.momentum == 0 and self.proximal_mu == 0 and self.feddc_alpha is None
        layers = prepared.fusable if prepared is not None else None
        stepping = (sgd_in_backward(model, SGDStep(task.learning_rate, self.weight_decay), layers) if plain_sgd
                    else contextlib.nullcontext(set()))
        with stepping as updated_in_backward:
            return self._loop(model, data, task, updated_in_backward)

    def _loop(self, model: nn.Module, data: ClientData, task: TrainTask,
              updated_in_backward: set[int]) -> tuple[float, float]:
        features = data.features.to(self.device)
        labels = data.labels.to(self.device)
        optimizer = _optimizer([parameter for parameter in model.parameters() if id(parameter) not in
                                updated_in_backward], task.learning_rate, self.momentum, self.weight_decay)
        proximal = ProximalTerm(model, self.proximal_mu) if self.proximal_mu > 0 else None
        drift = (DriftPenalty(model, self.feddc_alpha, task.client_state, task.client_id)
                 if self.feddc_alpha is not None else None)
        # Per-sample losses stay on the device so the loop never waits for the GPU; their statistics are taken
        # once at the end (a handful of small ops per step were 10% of a tiny model's client).
        batch_size = min(task.batch_size, len(data))
        losses: list[torch.Tensor] = []
        # d(mean)/d(loss_i), computed as the mean's own backward computes it: handing it to backward() spares the
        # mean's node in the graph, ~7% of a small model's client, and gives the same bits
        mean_gradient = torch.ones(batch_size, dtype=torch.float32, device=self.device) / batch_size
        if not model.training:  # train() walks every submodule, even when nothing changes
            model.train()
        for indices in batch_indices(len(data), task.batch_size, task.local_steps, torch_generator(task.seed)):
            device_indices = indices.to(self.device)
            per_sample_loss = F.cross_entropy(model(features[device_indices]), labels[device_indices],
                                              reduction="none")
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
            if proximal is None:
                per_sample_loss.backward(mean_gradient)
            else:
                (per_sample_loss.mean() + proximal()).backward()
            if drift is not None:
                drift.add_gradient()
            if optimizer is not None:
                optimizer.step()
            losses.append(per_sample_loss.detach())
        # Summed in float64 a step at a time, in step order; all batches have the same size, so the per-sample mean
        # equals the mean of the batch means.
        by_step = torch.stack(losses)
        sums = torch.stack([by_step.sum(dim=1, dtype=torch.float64),
                            by_step.square().sum(dim=1, dtype=torch.float64)])
        total, total_square = sums.cumsum(dim=1)[:, -1].tolist()
        samples_seen = by_step.numel()
        return total / samples_seen, total_square / samples_seen


def _optimizer(parameters: list[nn.Parameter], learning_rate: float, momentum: float,
               weight_decay: float) -> torch.optim.SGD | None:
    if not parameters:  # every layer steps inside backward()
        return None
    return torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum, weight_decay=weight_decay)


def _check_inputs(data: ClientData, task: TrainTask) -> None:
    if data.client_id != task.client_id:
        raise ValueError(f"task for client {task.client_id} was given the data of client {data.client_id}")
    if data.features.shape[0] != data.labels.shape[0]:
        raise ValueError(f"client {data.client_id}: {data.features.shape[0]} feature rows but "
                         f"{data.labels.shape[0]} labels")
    if task.local_steps < 0:
        raise ValueError(f"client {task.client_id}: local_steps must be non-negative, got {task.local_steps}")
    if task.batch_size < 1:
        raise ValueError(f"client {task.client_id}: batch_size must be positive, got {task.batch_size}")


def _result(task: TrainTask, weights: dict[str, torch.Tensor], num_samples: int, num_steps: int, loss_mean: float,
            loss_square_mean: float, started: float,
            client_state: dict[str, torch.Tensor] | None = None) -> TrainResult:
    return TrainResult(
        client_id=task.client_id,
        round=task.round,
        model_version=task.model_version,
        weights=weights,
        num_samples=num_samples,
        num_steps=num_steps,
        loss_mean=loss_mean,
        loss_square_mean=loss_square_mean,
        wall_time_s=time.perf_counter() - started,
        client_state=client_state or {},
    )
