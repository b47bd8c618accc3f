"""Frozen value types shared by every part of the package.

Weights are ordered ``str -> torch.Tensor`` mappings (a model's state dict, on the CPU). Per-client state (FedDC's
drift) is a mapping of the same kind, usually over the model's trainable parameters only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

Weights = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class ClientData:
    """One client's local training set, ready for a model: float features, int64 labels."""

    client_id: int
    features: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class TrainTask:
    """What one client must do in one round.

    ``client_state`` is what the aggregation strategy keeps for this one client across rounds and hands to its
    trainer (FedDC: the client's drift h_i, by parameter name); empty for strategies that keep none. It is payload,
    not identity: tasks compare and hash without it. Neither side may modify its tensors in place. ``summed``: the
    executor adds the update to its partial sum of the event's clients (aggregation/partial.py) instead of sending
    it on its own.
    """

    round: int
    client_id: int
    model_version: int
    learning_rate: float
    local_steps: int
    batch_size: int
    seed: int
    client_state: Mapping[str, torch.Tensor] = field(default_factory=dict, compare=False)
    summed: bool = False


@dataclass(frozen=True)
class ResampleTarget:
    """Halor's guidance for a round's clients: resample local data toward ``distribution`` (one share per class,
    summing to 1) by ``mode`` (``under`` or ``over``) before training."""

    distribution: tuple[float, ...]
    mode: str


@dataclass(frozen=True)
class TrainResult:
    """A client's outcome: its weights after local training and the statistics selectors need.

    ``client_state`` is what the trainer hands back for the strategy's per-client state (FedDC: theta_i - w, the
    change of the trained parameters against the weights the task started from); empty when there is none.
    """

    client_id: int
    round: int
    model_version: int
    weights: Weights
    num_samples: int
    num_steps: int
    loss_mean: float
    loss_square_mean: float
    wall_time_s: float
    client_state: Mapping[str, torch.Tensor] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class EvalResult:
    """Sums (never means) over an evaluated shard, so shards add up exactly."""

    num_samples: int = 0
    loss_sum: float = 0.0
    top1_correct: int = 0
    top5_correct: int = 0

    def __add__(self, other: EvalResult) -> EvalResult:
        return EvalResult(
            num_samples=self.num_samples + other.num_samples,
            loss_sum=self.loss_sum + other.loss_sum,
            top1_correct=self.top1_correct + other.top1_correct,
            top5_correct=self.top5_correct + other.top5_correct,
        )

    def times(self, count: int) -> EvalResult:
        """The sums of ``count`` evaluations alike (each client of a test view counts its view once)."""
        return EvalResult(self.num_samples * count, self.loss_sum * count, self.top1_correct * count,
                          self.top5_correct * count)

    @property
    def loss(self) -> float:
        return self.loss_sum / self.num_samples if self.num_samples else float("nan")

    @property
    def top1(self) -> float:
        return self.top1_correct / self.num_samples if self.num_samples else float("nan")

    @property
    def top5(self) -> float:
        return self.top5_correct / self.num_samples if self.num_samples else float("nan")


@dataclass(frozen=True)
class RoundMetrics:
    """Everything the sinks log about one finished round."""

    round: int
    clock_s: float
    wall_time_s: float
    participants: tuple[int, ...]
    completed: int
    train_loss: float
    learning_rate: float
    test: EvalResult | None = None
    dropouts: int = 0  # selected clients that went offline before finishing (virtual clock)
    stragglers: int = 0  # selected clients that finished after the round ended
    # Halor's global label distribution the round's clients resampled toward (None: Halor off or no sum yet)
    class_distribution: tuple[float, ...] | None = None
    attempts: int = 1  # runs of the round: more than 1 when attempts short of the quorum were retried
    # round trips (task handed out -> update received), in seconds, of the committed attempt
    client_round_trip_s: Mapping[int, float] = field(default_factory=dict)
    executor_round_trip_s: Mapping[str, float] = field(default_factory=dict)
    # straggler balancing: the local steps of the clients it shortened
    shortened_local_steps: Mapping[int, int] = field(default_factory=dict)
    cohort: int = 0  # whose round this was, in a job of several cohorts (each logs its own rounds)
    members: int = 0  # the cohort's clients when the round was evaluated (0: not evaluated)
    # with planted label groups: the model's result on each test view its members hold, and how many hold each
    view_tests: Mapping[int, EvalResult] = field(default_factory=dict)
    view_members: Mapping[int, int] = field(default_factory=dict)
