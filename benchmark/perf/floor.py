"""The floor: the reference workload's training as a plain PyTorch loop in one process, no framework at all.

    python benchmark/perf/floor.py --data-dir D --out result.json [--threads 2] [--runtime-kernels] [--model M]

Same data (the synthetic set in D), same IID split, same model, optimizer, steps and FedAvg as the framework's job;
whatever the framework costs on top of this loop is its overhead. ``--runtime-kernels`` gives the loop the local
trainer's two kernel choices (channels-last convolutions, SGD inside backward for dense layers), so that the
runtime's own cost can be told apart from what those kernels gain. Prints nothing; writes the seconds of each round.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fedscale_halor.client.memory_layout import prefer_channels_last
from fedscale_halor.client.sgd_in_backward import SGDStep, sgd_in_backward
from fedscale_halor.data.datasets.synthetic import load
from fedscale_halor.models import build_model


def train_client(model: nn.Module, global_state: dict[str, torch.Tensor], features: torch.Tensor,
                 labels: torch.Tensor, steps: int, batch_size: int, learning_rate: float,
                 generator: torch.Generator, runtime_kernels: bool) -> dict[str, torch.Tensor]:
    model.load_state_dict(global_state)
    stepping = sgd_in_backward(model, SGDStep(learning_rate)) if runtime_kernels else contextlib.nullcontext(set())
    with stepping as updated_in_backward:
        rest = [parameter for parameter in model.parameters() if id(parameter) not in updated_in_backward]
        # a model of dense layers only steps all of them inside backward, leaving the optimizer nothing
        optimizer = torch.optim.SGD(rest, lr=learning_rate) if rest else None
        return _steps(model, optimizer, features, labels, steps, batch_size, generator)


def _steps(model: nn.Module, optimizer: torch.optim.Optimizer | None, features: torch.Tensor, labels: torch.Tensor,
           steps: int, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    loss_function = nn.CrossEntropyLoss()
    order = torch.randperm(len(labels), generator=generator)
    for step in range(steps):
        start = (step * batch_size) % len(labels)
        batch = order[start:start + batch_size]
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        loss_function(model(features[batch]), labels[batch]).backward()
        if optimizer is not None:
            optimizer.step()
    return {name: tensor.detach().clone(memory_format=torch.contiguous_format)
            for name, tensor in model.state_dict().items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runtime-kernels", action="store_true")
    parser.add_argument("--model", default="femnist_cnn")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    raw = load(Path(args.data_dir))
    features = torch.from_numpy(raw.train_features)
    labels = torch.from_numpy(raw.train_labels)
    rng = np.random.default_rng(args.seed)
    shards = np.array_split(rng.permutation(len(labels)), args.clients)
    model = build_model(args.model, raw.num_classes, tuple(raw.train_features.shape[1:]))
    if args.runtime_kernels:
        prefer_channels_last(model, torch.device("cpu"))
    global_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    generator = torch.Generator().manual_seed(args.seed)

    round_seconds = []
    for round_index in range(args.rounds):
        started = time.perf_counter()
        chosen = rng.choice(args.clients, size=args.per_round, replace=False)
        total = float(sum(len(shards[client]) for client in chosen))
        summed = {name: torch.zeros_like(tensor) for name, tensor in global_state.items()}
        for client in chosen:  # FedAvg as a running weighted sum: one client's weights alive at a time
            index = torch.from_numpy(shards[client])
            state = train_client(model, global_state, features[index], labels[index], args.steps, args.batch,
                                 args.lr, generator, args.runtime_kernels)
            for name, tensor in state.items():
                summed[name].add_(tensor, alpha=len(index) / total)
        global_state = summed
        if round_index == args.rounds - 1:  # the framework evaluates after its last round too
            model.load_state_dict(global_state)
            with torch.no_grad():
                model(torch.from_numpy(raw.test_features)).argmax(dim=1)
        round_seconds.append(time.perf_counter() - started)
    Path(args.out).write_text(json.dumps({"round_seconds": round_seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
