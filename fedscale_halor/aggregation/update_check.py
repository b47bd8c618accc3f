"""Whether a client's update fits the global model: an executor's bug or a forged message must not reach the fold,
where a wrong shape would stop the whole job instead of one client."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from fedscale_halor.types import TrainResult, Weights


def _tensor_mismatch(what: str, name: str, tensor: object, reference: torch.Tensor) -> str | None:
    if not isinstance(tensor, torch.Tensor):
        return f"{what} {name!r} is a {type(tensor).__name__}, not a tensor"
    if tuple(tensor.shape) != tuple(reference.shape):
        return f"{what} {name!r} has shape {tuple(tensor.shape)} where the model has {tuple(reference.shape)}"
    if tensor.dtype != reference.dtype:
        return f"{what} {name!r} has dtype {tensor.dtype} where the model has {reference.dtype}"
    return None


def _names(names: set[str]) -> str:
    listed = sorted(names)
    return ", ".join(repr(name) for name in listed[:5]) + (f" and {len(listed) - 5} more" if len(listed) > 5 else "")


def update_mismatch(result: TrainResult, model: Weights, model_version: int) -> str | None:
    """What makes ``result`` unusable against the global ``model`` of ``model_version``; None when it fits.

    A result without weights (a client that trained on no sample) fits any model."""
    if result.model_version != model_version:
        return f"trained on model version {result.model_version}, but the round's model is version {model_version}"
    if result.weights:
        missing, unknown = set(model) - set(result.weights), set(result.weights) - set(model)
        if missing:
            return f"the update lacks the model's tensors {_names(missing)}"
        if unknown:
            return f"the update has tensors the model does not: {_names(unknown)}"
        for name, reference in model.items():
            problem = _tensor_mismatch("tensor", name, result.weights[name], reference)
            if problem:
                return problem
    return _state_mismatch(result.client_state, model)


def _state_mismatch(state: Mapping[str, object], model: Weights) -> str | None:
    unknown = set(state) - set(model)
    if unknown:
        return f"the client state has tensors the model does not: {_names(unknown)}"
    for name, tensor in state.items():
        problem = _tensor_mismatch("client state tensor", name, tensor, model[name])
        if problem:
            return problem
    return None
