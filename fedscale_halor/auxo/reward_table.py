"""Auxo's reward table: which cohort each client belongs to, learnt from the clients' signals one cohort-round at a
time, and when a cohort splits in two (Auxo's published code in FedScale: QTable, HeterClientManager.cohort_clustering).

One ``observe(cohort, client_ids, signals)`` call is one cohort's clustering step after a round, given the raw
signals (signals.py) of the clients that reported in it:

1. the signals are centred on the cohort's mean, and the centred ones L2-normalised;
2. intra-cohort step (on the normalised signals), while the cohort's epoch (its count of steps) is at most
   ``max(split_round) + 1``: the first time (again after each split), MiniBatchKMeans(2, random_state=0,
   batch_size=10) over the reporting clients (once there are several cohorts, only those the table knows belong to
   this one, if at least two) and every clustered client leans to its cluster's half; later, undecided clients take
   the half of their nearest decided client (when the guard on its vote passes), or, when all decided clients lean
   to one half, the ``len // 4`` nearest clients of the first decided one lean to its half;
3. inter-cohort step (on the centred signals), once there are several cohorts: each client's reward is
   (base_reward - slope · d) · known_ratio, d its distance to the mean of the known members, slope = base_reward /
   (mean + std of the distances); with fewer than two known members (and not everyone training each round) the step
   ends here;
4. the cohort splits when its epoch is in ``split_round``;
5. the policy picks a cohort for every client: a random one for a client never taught anywhere, or with
   probability epsilon (which decays at every pick), else the one with the highest reward;
6. membership follows the policy: for everyone at a split, else for this round's clients (one in this cohort
   leaves for its pick; one elsewhere that picked this cohort joins it).

Deliberate differences from upstream:
- clients are numbered 0..N-1; upstream kept a dummy client 0;
- after a split, the first clustering of a cohort with several cohorts leans the known clients themselves to their
  halves; upstream applied the labels to the clients whose ids equal the known clients' positions in the round;
- a cohort with no known member skips the inter-cohort step even when everyone trains (upstream's centre of no
  points is NaN), and equal distances all get base_reward · known_ratio (upstream divides by zero);
- neighbours are found by exact Euclidean distance, ties going to the earlier client in the round;
- the merge of small cohorts (off in Auxo's config) is not ported;
- a step with too few clients forgets them; upstream kept them for the next step, out of line with their signals.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from fedscale_halor.auxo.entries import UNDECIDED, RewardEntries
from fedscale_halor.auxo.settings import AuxoSettings
from fedscale_halor.auxo.signals import centered, normalized

_STATE_FORMAT = 1


def distance_rewards(distances: np.ndarray, known_ratio: float, base_reward: float) -> np.ndarray:
    """base_reward at distance 0 falling linearly to 0 at mean + std of ``distances``, scaled by ``known_ratio``
    (a centre from few known members earns less trust)."""
    distances = np.asarray(distances, dtype=np.float64)
    spread = np.mean(distances) + np.std(distances)
    if spread == 0:
        return np.full(distances.shape, base_reward * known_ratio)
    slope = base_reward / spread
    return (base_reward - slope * distances) * known_ratio


def confident_vote(p_first: float, p_second: float) -> bool:
    """Whether a neighbour vote with these probabilities for halves 0 and 1 is clear enough to act on."""
    confidence = p_first / max(p_second, 0.1)
    return confidence > 1.5 or confidence < 0.67


def _nearest(points: np.ndarray, target: np.ndarray, count: int) -> np.ndarray:
    distances = np.linalg.norm(points - target, axis=1)
    return np.argsort(distances, kind="stable")[:count]


class RewardTable:
    """Cohort membership of ``num_clients`` clients; ``train_ratio`` is participants per round / clients
    (shares.train_ratio) and ``seed`` drives the policy's random picks."""

    def __init__(self, num_clients: int, settings: AuxoSettings, *, train_ratio: float, seed: int) -> None:
        if train_ratio <= 0:
            raise ValueError(f"train_ratio must be positive, got {train_ratio}")
        self.settings = settings
        self.train_ratio = float(train_ratio)
        self._entries = RewardEntries(num_clients)
        self._epochs = [0]
        self._clustered = [False]  # per cohort: has its first k-means (since the last split) run
        self._picks = np.zeros(num_clients, dtype=np.int64)
        self._membership = np.zeros(num_clients, dtype=np.int64)
        self._epsilon = float(settings.explorerate)
        self._rng = random.Random(seed)

    @property
    def num_clients(self) -> int:
        return self._entries.num_clients

    @property
    def cohort_count(self) -> int:
        return self._entries.cohort_count

    @property
    def epsilon(self) -> float:
        return self._epsilon

    def assignment(self) -> np.ndarray:
        """The cohort of every client, by client id."""
        return self._membership.copy()

    def members(self, cohort: int) -> np.ndarray:
        """The ids of ``cohort``'s clients, ascending."""
        self._check_cohort(cohort)
        return np.flatnonzero(self._membership == cohort)

    def rewards(self) -> np.ndarray:
        """R per client (rows) and cohort (columns)."""
        return self._entries.reward.copy()

    def observe(self, cohort: int, client_ids: Sequence[int], signals: np.ndarray) -> bool:
        """One clustering step of ``cohort`` from the signals (one row per client, in ``client_ids``' order) of the
        clients that reported in its last round. Returns True when the cohort split; the new cohort's id is then
        ``cohort_count - 1``. Fewer than ``min_clients`` clients change nothing."""
        self._check_cohort(cohort)
        ids = np.asarray(client_ids, dtype=np.int64).reshape(-1)
        matrix = np.asarray(signals)
        if matrix.ndim != 2 or matrix.shape[0] != len(ids):
            raise ValueError(f"signals must have one row per client ({len(ids)}), got shape {matrix.shape}")
        if len(set(ids.tolist())) != len(ids) or (len(ids) and (ids.min() < 0 or ids.max() >= self.num_clients)):
            raise ValueError(f"client_ids must be distinct ids in [0, {self.num_clients}), got {ids.tolist()}")
        if not np.all(np.isfinite(matrix.astype(np.float64))):
            raise ValueError("signals contain NaN or infinity")
        if len(ids) < self.settings.min_clients:
            return False
        centred = centered(matrix)
        self._lean_to_halves(cohort, ids, normalized(centred))
        split = self._reward_and_pick(cohort, ids, centred)
        self._follow_picks(cohort, ids, split)
        return split

    def _lean_to_halves(self, cohort: int, ids: np.ndarray, points: np.ndarray) -> None:
        self._epochs[cohort] += 1
        if not self._clustered[cohort]:
            if self.cohort_count > 1:
                known = self._entries.known(ids, cohort)
                if len(known) <= 1:
                    return
                ids, points = ids[known], points[known]
            # imported here: scikit-learn takes seconds to import, and every job, Auxo or not, imports this module
            from sklearn.cluster import MiniBatchKMeans
            from sklearn.exceptions import ConvergenceWarning

            with warnings.catch_warnings():
                # identical signals make one distinct cluster; the labels are still usable
                warnings.simplefilter("ignore", ConvergenceWarning)
                labels = MiniBatchKMeans(n_clusters=2, random_state=0, batch_size=10).fit(points).labels_
            for client, label in zip(ids.tolist(), labels.tolist(), strict=True):
                self._entries.lean_to(client, cohort, int(label))
            self._clustered[cohort] = True
            return
        if self._epochs[cohort] > max(self.settings.split_round) + 1:
            return  # past the last split the halves no longer matter
        halves = np.array([self._entries.half_of(client, cohort) for client in ids.tolist()])
        decided = np.flatnonzero(halves != UNDECIDED)
        if len(decided) == 0:
            return
        if np.all(halves[decided] == halves[decided[0]]):
            # one half only: grow it around its first client, whose neighbours likely share its half
            centre = decided[0]
            for position in _nearest(points, points[centre], len(ids) // 4).tolist():
                self._entries.lean_to(int(ids[position]), cohort, int(halves[centre]))
            return
        for position in np.flatnonzero(halves == UNDECIDED).tolist():
            neighbour = decided[_nearest(points[decided], points[position], 1)[0]]
            half = int(halves[neighbour])
            # one neighbour votes with certainty, so this guard always passes; it matters for wider votes
            if confident_vote(float(half == 0), float(half == 1)):
                self._entries.lean_to(int(ids[position]), cohort, half)

    def _reward_and_pick(self, cohort: int, ids: np.ndarray, points: np.ndarray) -> bool:
        if self.cohort_count > 1:
            known = self._entries.known(ids, cohort)
            if len(known) == 0 or (len(known) < 2 and self.train_ratio < 1):
                return False
            distances = np.linalg.norm(points - points[known].mean(axis=0), axis=1)
            rewards = distance_rewards(distances, len(known) / len(ids), self.settings.base_reward)
            for client, reward in zip(ids.tolist(), rewards.tolist(), strict=True):
                self._entries.add_reward(client, cohort, reward)
        split = self._epochs[cohort] in self.settings.split_round
        if split:
            self._entries.grow(cohort)
            self._epochs.append(self._epochs[cohort])
            self._clustered[cohort] = False
            self._clustered.append(False)
        for client in range(self.num_clients):
            self._picks[client] = self._pick(client)
        return split

    def _pick(self, client: int) -> int:
        self._epsilon *= self.settings.exploredecay
        never_taught = self._entries.rounds[client].sum() == 0
        # never_taught first: upstream draws the exploration number only for clients it has taught
        if never_taught or self._rng.random() < self._epsilon:
            return self._rng.randint(0, self.cohort_count - 1)
        return int(np.argmax(self._entries.reward[client]))

    def _follow_picks(self, cohort: int, ids: np.ndarray, split: bool) -> None:
        if split:
            self._membership = self._picks.copy()
            return
        if self.cohort_count == 1:
            return
        for client in ids.tolist():
            pick = int(self._picks[client])
            if (self._membership[client] == cohort) != (pick == cohort):
                self._membership[client] = pick

    def _check_cohort(self, cohort: int) -> None:
        if not 0 <= cohort < self.cohort_count:
            raise ValueError(f"cohort must be in [0, {self.cohort_count}), got {cohort}")

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly, as JSON-able lists and numbers."""
        version, internal, gauss = self._rng.getstate()
        return {
            "format": _STATE_FORMAT,
            "entries": self._entries.state_dict(),
            "epochs": list(self._epochs),
            "clustered": list(self._clustered),
            "picks": self._picks.tolist(),
            "membership": self._membership.tolist(),
            "epsilon": self._epsilon,
            "rng": [version, list(internal), gauss],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(f"unknown reward-table state format {state.get('format')!r}")
        entries = RewardEntries(self.num_clients)
        entries.load_state_dict(state["entries"])
        cohorts = entries.cohort_count
        epochs, clustered = [int(e) for e in state["epochs"]], [bool(c) for c in state["clustered"]]
        picks = np.asarray(state["picks"], dtype=np.int64)
        membership = np.asarray(state["membership"], dtype=np.int64)
        if len(epochs) != cohorts or len(clustered) != cohorts:
            raise ValueError(f"saved epochs/clustered flags do not cover the {cohorts} saved cohorts")
        for name, values in (("picks", picks), ("membership", membership)):
            if values.shape != (self.num_clients,) or values.min() < 0 or values.max() >= cohorts:
                raise ValueError(f"saved {name} must name one of {cohorts} cohorts for each of {self.num_clients} "
                                 "clients")
        version, internal, gauss = state["rng"]
        rng = random.Random()
        rng.setstate((int(version), tuple(int(word) for word in internal), gauss))
        self._entries, self._epochs, self._clustered = entries, epochs, clustered
        self._picks, self._membership = picks, membership
        self._epsilon = float(state["epsilon"])
        self._rng = rng
