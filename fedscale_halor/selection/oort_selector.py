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

from oort import create_training_selector

from fedscale_halor.seeding import numpy_rng
from fedscale_halor.selection.base import ClientInfo, ClientOutcome, ClientSelector


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
        self._registered: frozenset[int] = frozenset()
        self._durations_known = False
        self._selections = 0

    def register(self, clients: Mapping[int, ClientInfo]) -> None:
        settings = self._settings
        round_capacity = settings.local_steps * settings.batch_size
        # Without device traces every expected duration is 0 s while outcomes carry wall times: Oort would then prefer
        # a round of 0 s and its straggler penalty would zero the score of every client that ever trained. With no
        # duration known up front, durations are left out of the scores altogether (all reported as 0 s).
        self._durations_known = any(info.expected_duration_s > 0 for info in clients.values())
        # Oort iterates its clients in registration order; sorting keeps the draws independent of the mapping's order.
        for client_id in sorted(clients):
            info = clients[client_id]
            self._oort.register_client(client_id, {
                "reward": min(info.num_samples, round_capacity),
                "duration": info.expected_duration_s if self._durations_known else 0.0,
            })
        self._registered = self._registered | frozenset(clients)

    def select(self, round_index: int, feasible: Sequence[int], count: int) -> list[int]:
        if count < 0:
            raise ValueError(f"oort: cannot select {count} clients (num_participants must not be negative)")
        if not self._registered:
            raise RuntimeError("oort: select() before register(); the round loop must register the clients first")
        pool = sorted(set(feasible))
        unknown = [client_id for client_id in pool if client_id not in self._registered]
        if unknown:
            raise ValueError(f"oort: feasible clients {unknown[:5]} were never registered ({len(unknown)} in all)")
        self._selections += 1
        if count == 0:
            return []
        if count >= len(pool):
            # Nothing to choose, so Oort's round (exploration decay, pacer) does not advance, as in FedScale.
            return pool
        if self._selections == 1 and self._settings.random_first_round:
            rng = numpy_rng(self._settings.seed, round_index, "select")
            chosen = rng.choice(len(pool), size=count, replace=False)
            return sorted(pool[index] for index in chosen)
        return sorted(self._oort.select_participant(count, feasible_clients=pool))

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
