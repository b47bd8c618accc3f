"""FedDC's client side (Gao et al., "FedDC: Federated Learning with Non-IID Data via Local Drift Decoupling and
Correction", CVPR 2022): the drift penalty and the drift increment a client reports.

Client i trains on L_i(theta) + (alpha / 2) * ||theta + h_i - w||^2, where w is the global model the task starts
from and h_i the client's drift (kept by the aggregator, sent with the task; zero before the client's first round).
The penalty's gradient alpha * (theta + h_i - w) is added to each trainable parameter's gradient after
``backward()``: the same step as putting the penalty into the loss, without a second autograd graph over every
parameter. After training the client reports theta_i - w, from which the aggregator moves h_i.

Only trainable parameters carry a drift; buffers (BatchNorm statistics) are averaged as FedAvg does.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fedscale_halor.types import Weights


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]


def check_drift(drift: Mapping[str, torch.Tensor], parameters: list[tuple[str, nn.Parameter]],
                client_id: int) -> None:
    """An empty drift is zero; any other must cover exactly the trainable parameters, each with its shape."""
    if not drift:
        return
    names = {name for name, _ in parameters}
    unknown = sorted(set(drift) - names)
    if unknown:
        raise ValueError(f"client {client_id}: the FedDC drift has key {unknown[0]!r}, which is no trainable "
                         "parameter of the model")
    for name, parameter in parameters:
        if name not in drift:
            raise ValueError(f"client {client_id}: the FedDC drift lacks parameter {name!r}")
        if drift[name].shape != parameter.shape:
            raise ValueError(f"client {client_id}: the FedDC drift of {name!r} has shape {tuple(drift[name].shape)}, "
                             f"the parameter has {tuple(parameter.shape)}")


class DriftPenalty:
    """(alpha / 2) * ||theta + h - w||^2 over the trainable parameters, with w the weights the model holds at
    creation; kept as one anchor w - h per parameter."""

    def __init__(self, model: nn.Module, alpha: float, drift: Mapping[str, torch.Tensor], client_id: int = -1) -> None:
        if not alpha >= 0:
            raise ValueError(f"FedDC alpha must be non-negative, got {alpha}")
        self.alpha = float(alpha)
        parameters = trainable_parameters(model)
        check_drift(drift, parameters, client_id)
        self._parameters = [parameter for _, parameter in parameters]
        with torch.no_grad():
            self._anchors = [
                parameter.detach() - drift[name].to(device=parameter.device, dtype=parameter.dtype) if drift
                else parameter.detach().clone()
                for name, parameter in parameters]

    def value(self) -> torch.Tensor:
        """The penalty itself (for inspection; training uses ``add_gradient``)."""
        with torch.no_grad():
            squared = sum((parameter - anchor).square().sum(dtype=torch.float64)
                          for parameter, anchor in zip(self._parameters, self._anchors, strict=True))
        return 0.5 * self.alpha * torch.as_tensor(squared, dtype=torch.float64)

    def add_gradient(self) -> None:
        """Add alpha * (theta - anchor) to every trainable parameter's gradient (creating it where backward left
        none); call between ``backward()`` and the optimizer's step."""
        if self.alpha == 0:
            return
        with torch.no_grad():
            for parameter, anchor in zip(self._parameters, self._anchors, strict=True):
                if parameter.grad is None:
                    parameter.grad = (parameter - anchor).mul_(self.alpha)
                else:
                    parameter.grad.add_(parameter - anchor, alpha=self.alpha)


def drift_increment(model: nn.Module, trained: Weights, start: Weights) -> dict[str, torch.Tensor]:
    """theta_i - w for each trainable parameter, from the trained and the starting state dicts (CPU tensors)."""
    return {name: trained[name] - start[name].to(device=trained[name].device, dtype=trained[name].dtype)
            for name, _ in trainable_parameters(model)}
