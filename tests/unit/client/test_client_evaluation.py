import math

import torch
from torch import nn

from fedscale_halor.client import evaluate


class LogitsAreFeatures(nn.Module):
    """Returns its input plus a learnable bias as logits, recording the mode it ran in."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_classes))
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, torch.is_inference_mode_enabled()))
        return features + self.bias


DESCENDING = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
ASCENDING = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_sums_of_loss_and_top1_top5_hits_by_hand() -> None:
    # Prepare: with logits 6..1 (any order) the log-sum-exp is L = ln(e^1 + ... + e^6) and the loss of a sample is
    # L - (logit of its label).
    #   sample 0: label 0, logit 6, rank 1 -> top-1 and top-5 hit, loss L - 6
    #   sample 1: label 1, logit 5, rank 2 -> top-5 hit only,        loss L - 5
    #   sample 2: label 5, logit 1, rank 6 -> no hit,                loss L - 1
    #   sample 3: label 5, logit 6, rank 1 -> top-1 and top-5 hit, loss L - 6
    features = torch.tensor([DESCENDING, DESCENDING, DESCENDING, ASCENDING])
    labels = torch.tensor([0, 1, 5, 5])
    model = LogitsAreFeatures(6)
    model.train()
    log_sum_exp = math.log(sum(math.exp(k) for k in range(1, 7)))

    # Execute: batches of 3 leave a last batch of one
    result = evaluate(model, {"bias": torch.zeros(6)}, features, labels, batch_size=3)

    # Assert
    assert result.num_samples == 4
    assert result.top1_correct == 2
    assert result.top5_correct == 3
    assert math.isclose(result.loss_sum, 4 * log_sum_exp - 18, rel_tol=1e-6)
    assert model.seen == [(False, True), (False, True)]


def test_the_given_weights_are_loaded_before_evaluating() -> None:
    # Prepare: a bias of +10 on class 2 makes it every sample's prediction
    features = torch.tensor([DESCENDING, ASCENDING])
    labels = torch.tensor([2, 0])
    bias = torch.tensor([0.0, 0.0, 10.0, 0.0, 0.0, 0.0])

    # Execute
    result = evaluate(LogitsAreFeatures(6), {"bias": bias}, features, labels, batch_size=8)

    # Assert: sample 0 hits at top 1; sample 1's label 0 has logit 1, ranked last of six
    assert (result.top1_correct, result.top5_correct) == (1, 1)


def test_top_k_is_capped_by_the_number_of_classes() -> None:
    # Prepare: with 3 classes the top-5 set is every class
    features = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    labels = torch.tensor([2, 1])

    # Execute
    result = evaluate(LogitsAreFeatures(3), {"bias": torch.zeros(3)}, features, labels, batch_size=2)

    # Assert
    assert (result.top1_correct, result.top5_correct) == (0, 2)


def test_an_empty_shard_gives_zero_sums() -> None:
    # Execute
    result = evaluate(LogitsAreFeatures(3), {"bias": torch.zeros(3)}, torch.zeros(0, 3),
                      torch.zeros(0, dtype=torch.int64), batch_size=4)

    # Assert
    assert (result.num_samples, result.loss_sum, result.top1_correct, result.top5_correct) == (0, 0.0, 0, 0)
