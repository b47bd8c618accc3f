"""FedProx's client-side proximal term (Li et al., "Federated Optimization in Heterogeneous Networks")."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ProximalTerm:
    """``(mu / 2) * ||w - w_global||^2`` over the trainable parameters, anchored at the weights seen at creation."""

    def __init__(self, model: nn.Module, mu: float) -> None:
        if mu < 0:
            raise ValueError(f"proximal mu must be non-negative, got {mu}")
        self.mu = float(mu)
        self._parameters: Sequence[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
        self._anchors: Sequence[torch.Tensor] = [p.detach().clone() for p in self._parameters]

    def __call__(self) -> torch.Tensor:
        pairs = zip(self._parameters, self._anchors, strict=True)
        squared_distance = torch.stack([(parameter - anchor).pow(2).sum() for parameter, anchor in pairs]).sum()
        return 0.5 * self.mu * squared_distance
