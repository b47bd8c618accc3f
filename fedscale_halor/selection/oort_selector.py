"""Oort's guided participant selection behind the ClientSelector seam; the only module that imports ``oort``.

The adapter drives Oort as FedScale's client manager does in its ``oort`` sample mode:

- every client is registered with the reward ``min(num_samples, local_steps x batch_size)`` (the samples one round can
  train at most) and its expected round duration;
- the first selection is uniform at random; Oort chooses from the second on, among the feasible clients only; a round
  with no more feasible clients than asked takes them all without consulting Oort;
- a client that completed reports its statistical utility (samples x sqrt(mean squared loss)), its duration and the
  round; a straggler (trained, but after the round's cut) is credited with the mean utility of the round's completed
  clients and its own duration, as FedScale's aggregator credits "explored, but not ran" clients. A straggler's own
  update did not count, so its own utility would reward it for nothing; the mean keeps it an ordinary arm of the
  bandit while its long duration feeds Oort's straggler penalty. With no completed client the credit is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from oort import create_training_selector

from fedscale_halor.seeding import numpy_rng
from fedscale_halor.selection.base import (
    ClientIds,
    ClientInfo,
    ClientOutcome,
    ClientSelector,
    client_columns,
    distinct_sorted,
    id_array,
    is_sorted,
)


@dataclass(frozen=True)
class OortSettings:
    """Oort's knobs with FedScale's defaults (Oort validates them and names the offending knob), plus what the
    adapter needs: the job's selection seed and the local work per round that caps the initial reward."""

    exploration_factor: float = 0.9
    exploration_decay: float = 0.98
    exploration_min: float = 0.3
    exploration_alpha: float = 0.3
    round_threshold: float = 30.0
    round_penalty: float = 2.0
    pacer_step: int = 20
    pacer_delta: float = 5.0
    blacklist_rounds: int = -1
    blacklist_max_len: float = 0.3
    clip_bound: float = 0.9
    cut_off_util: float = 0.05
    sample_window: float = 5.0
    seed: int = 233
    local_steps: int = 20
    batch_size: int = 10
    # FedScale's client manager samples its first round at random and hands Oort the rounds after it.
    random_first_round: bool = True

    def __post_init__(self) -> None:
        for name in ("local_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"oort: {name} must be at least 1, got {getattr(self, name)}")

    def oort_args(self) -> dict[str, float | int]:
        """The knobs under the names Oort reads (its seed is ``sample_seed``)."""
        args: dict[str, float | int] = {
            name: value
            for name, value in asdict(self).items()
            if name not in ("seed", "local_steps", "batch_size", "random_first_round")
        }
        args["sample_seed"] = self.seed
        return args


class OortSelector(ClientSelector):
    """Oort's training selector over the registered clients; deterministic for a seed and a sequence of calls."""

    def __init__(self, settings: OortSettings) -> None:
        self._settings = settings
        self._oort = create_training_selector(settings.oort_args())
        self._registered = np.empty(0, dtype=np.int64)  # sorted, distinct
        self._durations_known = False
        self._selections = 0

    def register(self, clients: Mapping[int, ClientInfo]) -> None:
        infos = list(clients.values())
        self.register_columns(
            np.fromiter(clients.keys(), dtype=np.int64, count=len(clients)),
            np.fromiter((info.num_samples for info in infos), dtype=np.int64, count=len(infos)),
            np.fromiter((info.expected_duration_s for info in infos), dtype=np.float64, count=len(infos)),
        )

    def register_columns(self, client_ids: np.ndarray, num_samples: np.ndarray,
                         expected_duration_s: np.ndarray | None = None,
                         online_fraction: np.ndarray | None = None) -> None:
        ids, samples, durations, _ = client_columns(client_ids, num_samples, expected_duration_s, online_fraction)
        round_capacity = self._settings.local_steps * self._settings.batch_size
        # Without device traces every expected duration is 0 s while outcomes carry wall times: Oort would then prefer
        # a round of 0 s and its straggler penalty would zero the score of every client that ever trained. With no
        # duration known up front, durations are left out of the scores altogether (all reported as 0 s).
        self._durations_known = bool(np.any(durations > 0))
        # Oort iterates its clients in registration order; sorting keeps the draws independent of the input's order.
        if not is_sorted(ids):
            order = np.argsort(ids, kind="stable")
            ids, samples, durations = ids[order], samples[order], durations[order]
        self._oort.register_clients(
            ids,
            np.minimum(samples, round_capacity).astype(np.float64),
            durations if self._durations_known else np.zeros(len(ids)),
        )
        self._registered = distinct_sorted(np.concatenate([self._registered, ids]) if self._registered.size else ids)

    def select(self, round_index: int, feasible: ClientIds, count: int) -> list[int]:
        if count < 0:
            raise ValueError(f"oort: cannot select {count} clients (num_participants must not be negative)")
        if not self._registered.size:
            raise RuntimeError("oort: select() before register(); the round loop must register the clients first")
        pool = distinct_sorted(id_array(feasible))
        unknown = self._unknown(pool)
        if unknown.size:
            raise ValueError(f"oort: feasible clients {unknown[:5].tolist()} were never registered "
                             f"({unknown.size} in all)")
        self._selections += 1
        if count == 0:
            return []
        if count >= len(pool):
            # Nothing to choose, so Oort's round (exploration decay, pacer) does not advance, as in FedScale.
            return pool.tolist()
        if self._selections == 1 and self._settings.random_first_round:
            rng = numpy_rng(self._settings.seed, round_index, "select")
            chosen = rng.choice(len(pool), size=count, replace=False)
            return sorted(pool[chosen].tolist())
        return sorted(self._oort.select_participant(count, feasible_clients=pool))

    def _unknown(self, pool: np.ndarray) -> np.ndarray:
        """The ids of the sorted ``pool`` that were never registered."""
        registered = self._registered
        if not pool.size:
            return pool
        if registered[0] == 0 and registered[-1] == len(registered) - 1:
            # Registered ids 0..n-1: a sorted pool lies within them when its ends do.
            if pool[0] >= 0 and pool[-1] < len(registered):
                return pool[:0]
            return pool[(pool < 0) | (pool >= len(registered))]
        places = np.minimum(np.searchsorted(registered, pool), len(registered) - 1)
        return pool[registered[places] != pool]

    def feedback(self, round_index: int, outcomes: Sequence[ClientOutcome]) -> None:
        completed_utilities = [outcome.statistical_utility for outcome in outcomes if outcome.completed]
        straggler_credit = sum(completed_utilities) / len(completed_utilities) if completed_utilities else 0.0
        for outcome in sorted(outcomes, key=lambda outcome: outcome.client_id):
            self._oort.update_client_util(outcome.client_id, {
                "reward": outcome.statistical_utility if outcome.completed else straggler_credit,
                "duration": outcome.duration_s if self._durations_known else 0.0,
                "time_stamp": round_index,
                # Only read by Oort when no feasible set is given, which this adapter always gives.
                "status": outcome.completed,
            })

    def client_record(self, client_id: int) -> dict[str, object]:
        """What Oort holds about a client: reward, duration, time_stamp (last round involved), count, status."""
        return self._oort.get_client_reward(client_id)

    def median_reward(self) -> float:
        """Median reward over the clients outside Oort's blacklist (for logs, as FedScale reports it)."""
        return self._oort.get_median_reward()
