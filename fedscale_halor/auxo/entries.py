"""The numbers behind Auxo's reward table (QEntry in Auxo's published code): for every client and cohort, a reward R
saying how well the client fits the cohort, two sub-rewards saying which half of the cohort it leans to (the halves
a split would make), and a count of the rounds that taught the table about the pair.

A new entry starts at R = 1, sub-rewards [R/2, R/2] and no rounds. A reward r adds r to R and r/2 to each half; a
negative reward also forgets the halves (they restart at R/2 each) and the rounds counted so far, because a client
that stops fitting a cohort tells nothing about which half of it it prefers. Leaning to a half moves one unit (r0 = 1)
from the other half to it.

The arrays are indexed by 0-based client ids; upstream kept a dummy row 0 and numbered clients from 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

UNDECIDED = 2  # the half a client leans to when its halves are equal or it does not fit the cohort at all
_HALF_STEP = 1.0  # r0


class RewardEntries:
    """Rewards, sub-rewards and round counts of ``num_clients`` clients over a growing number of cohorts."""

    def __init__(self, num_clients: int) -> None:
        if num_clients < 1:
            raise ValueError(f"num_clients must be at least 1, got {num_clients}")
        self.reward = np.ones((num_clients, 1), dtype=np.float64)
        self.halves = np.full((num_clients, 1, 2), 0.5, dtype=np.float64)
        self.rounds = np.zeros((num_clients, 1), dtype=np.int64)

    @property
    def num_clients(self) -> int:
        return self.reward.shape[0]

    @property
    def cohort_count(self) -> int:
        return self.reward.shape[1]

    def add_reward(self, client: int, cohort: int, reward: float) -> None:
        """Add ``reward`` to the client's R in ``cohort`` and count the round."""
        before = self.reward[client, cohort]
        self.reward[client, cohort] = reward + before
        # the change actually made, as upstream, which can differ from ``reward`` in the last bit
        self.halves[client, cohort] += (self.reward[client, cohort] - before) / 2
        if reward < 0:
            self.halves[client, cohort] = self.reward[client, cohort] / 2
            self.rounds[client, cohort] = 0
        self.rounds[client, cohort] += 1

    def lean_to(self, client: int, cohort: int, half: int) -> None:
        """Move one unit of the client's sub-reward in ``cohort`` to ``half`` and count the round."""
        self.halves[client, cohort, half] += _HALF_STEP
        self.halves[client, cohort, 1 - half] -= _HALF_STEP
        self.rounds[client, cohort] += 1

    def half_of(self, client: int, cohort: int) -> int:
        """0 or 1: the half the client leans to in ``cohort``; UNDECIDED when its halves are equal or R < 0."""
        first, second = self.halves[client, cohort]
        if first == second or self.reward[client, cohort] < 0:
            return UNDECIDED
        return int(first < second)

    def known(self, client_ids: Sequence[int], cohort: int) -> np.ndarray:
        """Positions in ``client_ids`` of the clients the table knows belong to ``cohort``: taught at least once,
        with R above its starting value."""
        ids = np.asarray(client_ids, dtype=np.int64)
        mask = (self.rounds[ids, cohort] > 0) & (self.reward[ids, cohort] > 1)
        return np.flatnonzero(mask)

    def grow(self, cohort: int) -> int:
        """Split ``cohort``: every client's entry there and its entry in the new cohort restart from its R, plus one
        on the side of the half it leaned to (nothing on either side when undecided); its rounds stay with the
        preferred side only. Returns the new cohort's id."""
        first, second = self.halves[:, cohort, 0], self.halves[:, cohort, 1]
        keep = (first > second).astype(np.float64)
        leave = np.where(first != second, 1.0 - keep, 0.0)
        base = self.reward[:, cohort].copy()
        rounds = self.rounds[:, cohort].copy()
        old_reward, new_reward = base + keep, base + leave
        self.reward[:, cohort] = old_reward
        self.halves[:, cohort] = (old_reward / 2)[:, None]
        self.rounds[:, cohort] = rounds * keep.astype(np.int64)
        self.reward = np.concatenate([self.reward, new_reward[:, None]], axis=1)
        self.halves = np.concatenate([self.halves, np.repeat((new_reward / 2)[:, None, None], 2, axis=2)], axis=1)
        self.rounds = np.concatenate([self.rounds, (rounds * leave.astype(np.int64))[:, None]], axis=1)
        return self.cohort_count - 1

    def state_dict(self) -> dict[str, Any]:
        return {"reward": self.reward.tolist(), "halves": self.halves.tolist(), "rounds": self.rounds.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        reward = np.asarray(state["reward"], dtype=np.float64)
        halves = np.asarray(state["halves"], dtype=np.float64)
        rounds = np.asarray(state["rounds"], dtype=np.int64)
        clients, cohorts = reward.shape if reward.ndim == 2 else (-1, -1)
        if clients != self.num_clients or cohorts < 1:
            raise ValueError(f"saved rewards have shape {reward.shape}, expected ({self.num_clients}, cohorts)")
        if halves.shape != (clients, cohorts, 2) or rounds.shape != (clients, cohorts):
            raise ValueError(f"saved sub-rewards {halves.shape} or rounds {rounds.shape} do not match rewards "
                             f"{reward.shape}")
        self.reward, self.halves, self.rounds = reward, halves, rounds
