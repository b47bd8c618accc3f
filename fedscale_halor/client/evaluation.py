"""Evaluation of a model on a shard of the test set, reported as sums so that shards add up exactly."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from fedscale_halor.client.memory_layout import prefer_channels_last
from fedscale_halor.types import EvalResult, Weights

TOP_K = 5


def evaluate(model: nn.Module, weights: Weights, features: torch.Tensor, labels: torch.Tensor, batch_size: int,
             device: str | torch.device = "cpu") -> EvalResult:
    """Loss sum (per-sample cross-entropy), top-1 and top-k hits, with k = min(5, number of classes)."""
    if features.shape[0] != labels.shape[0]:
        raise ValueError(f"evaluation set has {features.shape[0]} feature rows but {labels.shape[0]} labels")
    if batch_size < 1:
        raise ValueError(f"evaluation batch_size must be positive, got {batch_size}")
    num_samples = int(labels.shape[0])
    if num_samples == 0:
        return EvalResult()
    target_device = torch.device(device)
    model.to(target_device)
    prefer_channels_last(model, target_device)
    model.load_state_dict(weights, strict=True)
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=target_device)
    top1_correct = torch.zeros((), dtype=torch.int64, device=target_device)
    topk_correct = torch.zeros((), dtype=torch.int64, device=target_device)
    with torch.inference_mode():
        for start in range(0, num_samples, batch_size):
            batch_features = features[start:start + batch_size].to(target_device)
            batch_labels = labels[start:start + batch_size].to(target_device)
            logits = model(batch_features)
            loss_sum += F.cross_entropy(logits, batch_labels, reduction="sum").to(torch.float64)
            top_k = min(TOP_K, logits.shape[1])
            hits = logits.topk(top_k, dim=1).indices == batch_labels.unsqueeze(1)
            top1_correct += hits[:, 0].sum()
            topk_correct += hits.any(dim=1).sum()
    return EvalResult(num_samples=num_samples, loss_sum=float(loss_sum), top1_correct=int(top1_correct),
                      top5_correct=int(topk_correct))
