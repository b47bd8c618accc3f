"""Auxo's settings, with the defaults of its published config (the Auxo example in FedScale).

``split_round`` lists the clustering epochs (per cohort) at which a cohort splits in two; a cohort's epoch counts
the rounds in which it was clustered. ``explorerate`` is the starting probability that the policy sends a client to
a random cohort, multiplied by ``exploredecay`` at every policy decision. ``start_round`` is the first round whose
updates are clustered, ``grad_ratio`` keeps the last ``1 / grad_ratio`` of the flattened update as the client's
signal, ``base_reward`` is the reward at distance zero from a cohort's centre and ``min_clients`` the fewest
reporting clients a cohort needs in a round to be clustered. ``signal_rounds`` lists the global rounds at whose end
the clients' signals are saved to the run folder (signal_log.py); empty: none are.

Only the ``cosine`` metric (k-means on L2-normalised signals) is supported; Auxo's ``kl`` metric is refused.
Upstream's automatic split test (``split_round`` unset) is not offered: its published config always sets it.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED_METRICS = ("cosine",)

# Two sub-halves need at least two points for k-means, and the neighbour step gives a quarter of the reporting
# clients (at least one) a decided client's half, so fewer than four reporting clients cannot be clustered.
_FEWEST_CLIENTS = 4


@dataclass(frozen=True)
class AuxoSettings:
    """Auxo's keys; construction fails with a ValueError naming the first bad key."""

    split_round: tuple[int, ...] = (50, 100)
    exploredecay: float = 0.99
    explorerate: float = 0.01
    metric: str = "cosine"
    start_round: int = 0
    grad_ratio: int = 2
    base_reward: float = 5.0
    min_clients: int = 5
    signal_rounds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # YAML gives lists; the dataclass is frozen, so the tuples are set through object.__setattr__.
        object.__setattr__(self, "split_round", tuple(self.split_round))
        object.__setattr__(self, "signal_rounds", tuple(self.signal_rounds))
        for round_index in self.signal_rounds:
            if isinstance(round_index, bool) or not isinstance(round_index, int) or round_index < 1:
                raise ValueError(f"signal_rounds must hold positive integers, got {list(self.signal_rounds)}")
        if not self.split_round:
            raise ValueError("split_round must list at least one clustering epoch")
        for epoch in self.split_round:
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
                raise ValueError(f"split_round must hold positive integers, got {list(self.split_round)}")
        if list(self.split_round) != sorted(set(self.split_round)):
            raise ValueError(f"split_round must be strictly increasing, got {list(self.split_round)}")
        if not 0.0 < self.exploredecay <= 1.0:
            raise ValueError(f"exploredecay must be in (0, 1], got {self.exploredecay}")
        if not 0.0 <= self.explorerate <= 1.0:
            raise ValueError(f"explorerate must be in [0, 1], got {self.explorerate}")
        if self.metric not in SUPPORTED_METRICS:
            raise ValueError(f"metric {self.metric!r} is not supported; use one of {list(SUPPORTED_METRICS)} "
                             "(Auxo's 'kl' metric is not ported)")
        if isinstance(self.start_round, bool) or not isinstance(self.start_round, int) or self.start_round < 0:
            raise ValueError(f"start_round must be a non-negative integer, got {self.start_round!r}")
        if isinstance(self.grad_ratio, bool) or not isinstance(self.grad_ratio, int) or self.grad_ratio < 1:
            raise ValueError(f"grad_ratio must be a positive integer, got {self.grad_ratio!r}")
        if not self.base_reward > 0:
            raise ValueError(f"base_reward must be positive, got {self.base_reward}")
        if (isinstance(self.min_clients, bool) or not isinstance(self.min_clients, int)
                or self.min_clients < _FEWEST_CLIENTS):
            raise ValueError(f"min_clients must be an integer of at least {_FEWEST_CLIENTS}, got {self.min_clients!r}")

    def clustering_due(self, round_number: int) -> bool:
        """Whether a cohort's updates of ``round_number`` (its count of completed rounds, 1 after the first) are
        clustered: never the first round's, as upstream's aggregator, and none before ``start_round``."""
        return round_number > 1 and round_number >= self.start_round
