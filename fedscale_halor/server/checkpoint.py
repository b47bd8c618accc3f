"""Checkpoints of the global model: safetensors weights plus a small JSON of where the job stands."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from fedscale_halor.types import Weights

STRATEGY_FILE = "strategy.safetensors"
HALOR_FILE = "halor_window.json"
HALOR_SIZES_FILE = "halor_sizes.json"  # Halor's guard: the clients' known resampled sizes

HalorWindow = Sequence[tuple[int, Sequence[int]]]


@dataclass(frozen=True)
class CheckpointState:
    round: int
    model_version: int
    clock_s: float


def save_checkpoint(folder: Path, state: CheckpointState, weights: Weights,
                    strategy_state: Weights | None = None, halor_window: HalorWindow | None = None,
                    halor_sizes: Mapping[int, int] | None = None) -> Path:
    """Write ``model.safetensors``, the strategy's ``strategy.safetensors`` (when it has state: a server optimizer's
    moments, FedDC's drift of every client that trained, one tensor per client and parameter), Halor's
    window of histogram sums and its guard's resampled sizes (when the job runs Halor) and ``state.json``
    atomically (temp files, then rename); ``state.json`` goes last, so it never describes files that are not there
    yet."""
    folder.mkdir(parents=True, exist_ok=True)
    if halor_window is not None:
        halor_path = folder / HALOR_FILE
        entries = [{"round": round_index, "histogram_sum": list(counts)} for round_index, counts in halor_window]
        halor_path.with_suffix(".partial").write_text(json.dumps(entries), encoding="utf-8")
        os.replace(halor_path.with_suffix(".partial"), halor_path)
    if halor_sizes is not None:
        sizes_path = folder / HALOR_SIZES_FILE
        sizes = {str(client): int(size) for client, size in sorted(halor_sizes.items())}
        sizes_path.with_suffix(".partial").write_text(json.dumps({"resampled_sizes": sizes}), encoding="utf-8")
        os.replace(sizes_path.with_suffix(".partial"), sizes_path)
    if strategy_state:
        strategy_path = folder / STRATEGY_FILE
        save_file({name: tensor.detach().contiguous().cpu() for name, tensor in strategy_state.items()},
                  str(strategy_path.with_suffix(".partial")))
        os.replace(strategy_path.with_suffix(".partial"), strategy_path)
    model_path, state_path = folder / "model.safetensors", folder / "state.json"
    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in weights.items()}
    save_file(tensors, str(model_path.with_suffix(".partial")), metadata={"round": str(state.round)})
    os.replace(model_path.with_suffix(".partial"), model_path)
    state_path.with_suffix(".partial").write_text(json.dumps(asdict(state)), encoding="utf-8")
    os.replace(state_path.with_suffix(".partial"), state_path)
    return model_path


def load_strategy_state(folder: Path) -> dict[str, torch.Tensor]:
    """The strategy's saved state (server optimizer, FedDC's drifts); empty for strategies that keep none."""
    path = folder / STRATEGY_FILE
    return load_file(str(path)) if path.is_file() else {}


def load_halor_window(folder: Path) -> list[tuple[int, list[int]]]:
    """Halor's saved window of (round, histogram sum); empty when the checkpoint has none."""
    path = folder / HALOR_FILE
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [(int(entry["round"]), [int(count) for count in entry["histogram_sum"]]) for entry in entries]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a window of Halor histogram sums: {error}") from error


def load_halor_sizes(folder: Path) -> dict[int, int]:
    """The resampled sizes Halor's guard knew (client id -> samples); empty when the checkpoint has none."""
    path = folder / HALOR_SIZES_FILE
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["resampled_sizes"]
        return {int(client): int(size) for client, size in entries.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path}: not a map of Halor's resampled sizes: {error}") from error


def load_checkpoint_state(folder: Path) -> CheckpointState:
    """Where the checkpointed job stood, without reading its weights."""
    state_path = folder / "state.json"
    if not state_path.is_file():
        raise FileNotFoundError(f"checkpoint file missing: {state_path}")
    return CheckpointState(**json.loads(state_path.read_text(encoding="utf-8")))


def load_checkpoint(folder: Path) -> tuple[CheckpointState, dict[str, torch.Tensor]]:
    state = load_checkpoint_state(folder)
    model_path = folder / "model.safetensors"
    if not model_path.is_file():
        raise FileNotFoundError(f"checkpoint file missing: {model_path}")
    return state, load_file(str(model_path))
