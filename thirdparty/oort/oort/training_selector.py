"""Oort's training selector: guided participant selection (Lai et al., OSDI'21).

Each registered client is an arm of a bandit. A client that has trained before is scored by

    score = clipped, normalized statistical utility + sqrt(0.1 · ln(round) / last_involved_round)

and, when it is slower than the preferred round duration T, multiplied by (T / duration) ** round_penalty.
The statistical utility is what the caller reports as ``reward``: Oort's choice is
samples × sqrt(mean of the squared per-sample losses). A decaying share of each round explores clients that have
never trained, preferring large and fast ones; the rest is drawn among the best scores. A pacer relaxes T when the
exploited utility stops improving, and clients that trained too often can be blacklisted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import Any

import numpy as np

from oort._client_table import ClientTable
from oort._ranking import descending, kth_largest, straggler_penalties, top_window
from oort.training_config import TrainingSelectorConfig

__all__ = ["ClientId", "TrainingSelector", "TrainingSelectorConfig", "create_training_selector"]

logger = logging.getLogger(__name__)

ClientId = Hashable

# The pacer compares the exploited utility of the last two windows of `pacer_step` rounds. A change within 10 % counts
# as a plateau (admit slower clients); a change of 5× or more means the threshold overshot (tighten it again).
_PLATEAU_CHANGE = 0.1
_SHARP_CHANGE = 5.0
_ALL_CLIENTS_PERCENTILE = 100.0
# Oort's weight of the temporal-uncertainty (staleness) bonus.
_STALENESS_WEIGHT = 0.1
# Guards against division by zero for identical rewards (zero durations: _ranking.MIN_DURATION).
_MIN_REWARD_RANGE = 1e-4
# The least-rewarded client still gets a sliver of utility, so equal rewards do not all normalize to zero.
_MIN_REWARD_SHRINK = 0.999


def _weighted_sample(rng: np.random.Generator, items: np.ndarray, weights: np.ndarray, count: int) -> np.ndarray:
    """Draw ``count`` distinct items with probability proportional to their weights."""
    if count <= 0:
        return items[:0]
    if count >= len(items):
        return items
    weight_array = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = float(weight_array.sum())
    # A tiny floor keeps zero-weight items drawable, so `count` distinct items can always be drawn.
    weight_array = weight_array + (total if total > 0 else 1.0) * 1e-9
    picks = rng.choice(len(items), size=count, replace=False, p=weight_array / weight_array.sum())
    return items[picks]


_NO_ROWS = np.empty(0, dtype=np.int64)


class TrainingSelector:
    """Chooses training participants round after round and learns from their feedback.

    Clients are rows of numpy columns in registration order (see ``_client_table``): a round costs a few vectorized
    passes over the registered clients plus Python work for the round's own clients, and chooses exactly what a
    client-by-client loop in registration order would."""

    def __init__(self, config: TrainingSelectorConfig) -> None:
        self.config = config
        self._rng = np.random.default_rng(config.sample_seed)
        self._table = ClientTable()
        self._round = 0
        self._exploration = config.exploration_factor
        self._round_threshold = config.round_threshold
        self._preferred_duration = math.inf
        self._blacklist_rows = _NO_ROWS
        self._blacklist_ids: frozenset[ClientId] | None = frozenset()
        self._exploited_last_round: list[int] = []  # rows, as are the other per-client records below
        self._explored_last_round: list[int] = []
        self._reported_since_selection: set[int] = set()
        self._exploit_utility_history: list[float] = []
        self._explore_utility_history: list[float] = []
        self._score_rows = _NO_ROWS
        self._scores = np.empty(0, dtype=np.float64)

    # ----- feedback -------------------------------------------------------------------------------------------------

    def register_client(self, client_id: ClientId, feedbacks: Mapping[str, Any]) -> None:
        """Add a client with its prior reward (FedScale: its sample count) and expected duration; repeats ignored."""
        if self._table.row(client_id) is not None:
            return
        if "reward" not in feedbacks:
            raise KeyError(f"oort: register_client({client_id!r}) needs feedbacks['reward'] (e.g. the sample count)")
        reward = self._finite(feedbacks["reward"], "reward", client_id)
        duration = self._finite(feedbacks.get("duration", 1.0), "duration", client_id)
        self._table.append_one(client_id, reward, duration, self._round)

    def register_clients(self, client_ids: Iterable[ClientId], rewards: Iterable[float],
                         durations: Iterable[float] | None = None) -> None:
        """``register_client`` for many clients at once, from columns (numpy arrays or sequences of equal length;
        durations default to 1.0). Repeats of registered clients and later repeats within the call are ignored.
        A non-finite reward or duration of a client to register raises ValueError naming the first such client, and
        then no client of the call is registered."""
        keys, fresh = self._table.fresh(client_ids)
        reward_column = np.asarray(rewards, dtype=np.float64).reshape(-1)
        duration_column = (np.ones(len(keys)) if durations is None
                           else np.asarray(durations, dtype=np.float64).reshape(-1))
        if not len(reward_column) == len(duration_column) == len(keys):
            raise ValueError(f"oort: register_clients got {len(keys)} client ids, {len(reward_column)} rewards and "
                             f"{len(duration_column)} durations; they must be as many")
        reward_column, duration_column = reward_column[fresh], duration_column[fresh]
        invalid = ~(np.isfinite(reward_column) & np.isfinite(duration_column))
        if invalid.any():
            first = int(np.argmax(invalid))
            client_id = keys[int(fresh[first])]
            client_id = client_id.item() if isinstance(client_id, np.generic) else client_id
            name, value = (("reward", reward_column[first]) if not np.isfinite(reward_column[first])
                           else ("duration", duration_column[first]))
            raise ValueError(f"oort: client {client_id!r} reported a non-finite {name}: {float(value)!r} "
                             "(register_clients registered none of its clients)")
        new_ids = keys[fresh] if isinstance(keys, np.ndarray) else [keys[i] for i in fresh.tolist()]
        self._table.append(new_ids, reward_column, duration_column, self._round)

    def update_client_util(self, client_id: ClientId, feedbacks: Mapping[str, Any]) -> None:
        """Record a finished client's reward and duration (keys as FedScale's: reward, duration, time_stamp, status)."""
        table = self._table
        row = table.row(client_id)
        if row is None:
            raise KeyError(f"oort: client {client_id!r} was never registered; call register_client first")
        reward = self._finite(feedbacks["reward"], "reward", client_id)
        duration = self._finite(feedbacks.get("duration", table.duration[row]), "duration", client_id)
        table.reward[row] = reward
        table.set_duration(row, duration)
        table.last_round[row] = int(feedbacks.get("time_stamp", self._round))
        table.available[row] = bool(feedbacks.get("status", True))
        table.participations[row] += 1
        self._reported_since_selection.add(row)

    def update_duration(self, client_id: ClientId, duration: float) -> None:
        """Refresh a client's expected round duration; unknown clients are ignored, as in Oort."""
        row = self._table.row(client_id)
        if row is not None:
            self._table.set_duration(row, self._finite(duration, "duration", client_id))

    # ----- selection ------------------------------------------------------------------------------------------------

    def select_participant(
        self, num_of_clients: int, feasible_clients: Collection[ClientId] | np.ndarray | None = None
    ) -> list[ClientId]:
        """Pick up to ``num_of_clients`` registered clients among ``feasible_clients`` (any collection of ids, or a
        numpy integer array; unregistered ids are ignored; default: all available)."""
        if num_of_clients < 0:
            raise ValueError(f"oort: cannot select {num_of_clients} clients")
        self._round += 1
        self._compute_blacklist()
        self._run_pacer()
        self._preferred_duration = self._compute_preferred_duration()

        self._exploration = max(self._exploration * self.config.exploration_decay, self.config.exploration_min)

        table = self._table
        if feasible_clients is None:
            pool = table.available.copy()
        else:
            pool = np.zeros(len(table), dtype=bool)
            pool[table.rows(feasible_clients)] = True
        trained = table.participations > 0
        if num_of_clients >= np.count_nonzero(pool):
            rows = np.flatnonzero(pool)
            self._score_rows, self._scores = _NO_ROWS, np.empty(0, dtype=np.float64)
            self._exploited_last_round = rows[trained[rows]].tolist()
            self._explored_last_round = rows[~trained[rows]].tolist()
            return table.ids(rows)
        blacklisted = self._blacklist_mask()
        candidates = pool & ~blacklisted if self._blacklist_rows.size else pool

        self._score_rows = np.flatnonzero(candidates & trained)
        self._scores = self._exploitation_scores(self._score_rows)
        unexplored = candidates & ~trained
        unexplored_count = int(np.count_nonzero(unexplored))
        # Slots the unexplored clients cannot fill go to exploitation rather than to chance.
        exploration_slots = min(int(num_of_clients * self._exploration), unexplored_count)

        exploited = self._exploit(num_of_clients - exploration_slots)
        explored = self._explore(unexplored, unexplored_count, num_of_clients - len(exploited))
        picked = np.concatenate([exploited, explored])
        extra = self._fill(picked, candidates, pool & blacklisted, num_of_clients - len(picked))

        self._exploited_last_round, self._explored_last_round = exploited.tolist(), explored.tolist()
        logger.debug(
            "oort round %d: exploited %d, explored %d, exploration %.3f, round_threshold %.1f, blacklist %d",
            self._round, len(exploited), len(explored), self._exploration, self._round_threshold,
            len(self._blacklist_rows),
        )
        return table.ids(np.concatenate([picked, extra]))

    def _exploitation_scores(self, rows: np.ndarray) -> np.ndarray:
        """Scores of the clients that trained (``rows``), as Oort's formula gives them in Python floats."""
        table = self._table
        rewards = table.reward[rows]
        positive_rewards = rewards[rewards > 0]
        if positive_rewards.size:
            clip_index = min(int(len(positive_rewards) * self.config.clip_bound), len(positive_rewards) - 1)
            clip_value = float(np.partition(positive_rewards, clip_index)[clip_index])
            floor = float(positive_rewards.min()) * _MIN_REWARD_SHRINK
            # The range ends at the clip value, so one outlier cannot squash every other client's utility to zero.
            reward_range = max(clip_value - floor, _MIN_REWARD_RANGE)
        else:
            clip_value, floor, reward_range = math.inf, 0.0, 1.0

        log_round = math.log(max(self._round, 1))
        utility = np.maximum(0.0, (np.minimum(rewards, clip_value) - floor) / reward_range)
        staleness_bonus = np.sqrt(_STALENESS_WEIGHT * log_round / np.maximum(table.last_round[rows], 1))
        penalty = straggler_penalties(table.duration[rows], self._preferred_duration, self.config.round_penalty)
        return (utility + staleness_bonus) * penalty

    def _exploit(self, slots: int) -> np.ndarray:
        count = min(max(slots, 0), len(self._scores))
        if count == 0:
            return _NO_ROWS
        cut_off = kth_largest(self._scores, count) * self.config.cut_off_util
        admitted = np.flatnonzero(self._scores >= cut_off)
        admitted = admitted[descending(self._scores[admitted])]
        return _weighted_sample(self._rng, self._score_rows[admitted], self._scores[admitted], count)

    def _explore(self, unexplored: np.ndarray, unexplored_count: int, slots: int) -> np.ndarray:
        count = min(max(slots, 0), unexplored_count)
        if count == 0:
            return _NO_ROWS
        # Prior reward (e.g. size) discounted by the straggler penalty: larger and faster clients are tried first.
        table, preferred, exponent = self._table, self._preferred_duration, self.config.round_penalty
        window = max(count, int(self.config.sample_window * count))
        if window < unexplored_count:
            rows, priors = top_window(table.reward, table.duration, unexplored, preferred, exponent, window)
        else:
            rows = np.flatnonzero(unexplored)
            priors = table.reward[rows] * straggler_penalties(table.duration[rows], preferred, exponent)
            order = descending(priors)
            rows, priors = rows[order], priors[order]
        return _weighted_sample(self._rng, rows, priors, count)

    def _fill(self, picked: np.ndarray, candidates: np.ndarray, blacklisted: np.ndarray, count: int) -> np.ndarray:
        """Top up a round that exploitation and exploration left short: at random, blacklisted clients last."""
        if count <= 0:
            return _NO_ROWS
        taken = np.zeros(len(self._table), dtype=bool)
        taken[picked] = True
        spare = np.flatnonzero(candidates & ~taken)
        extra = spare[self._rng.permutation(len(spare))[:count]]
        if len(extra) < count:
            # Returning fewer clients than asked would shrink the round; a blacklisted client is the lesser evil.
            spare_blacklisted = np.flatnonzero(blacklisted & ~taken)
            least_used = np.argsort(self._table.participations[spare_blacklisted], kind="stable")
            extra = np.concatenate([extra, spare_blacklisted[least_used][: count - len(extra)]])
        return extra

    # ----- pacer, blacklist, preferred duration ---------------------------------------------------------------------

    def _mean_reported_reward(self, rows: list[int]) -> float:
        rewards = self._table.reward
        reported = [float(rewards[row]) for row in rows if row in self._reported_since_selection]
        # Python's sum adds in order; the pacer's thresholds compare these means, so they stay as Python adds them.
        return sum(reported) / len(reported) if reported else 0.0

    def _run_pacer(self) -> None:
        self._exploit_utility_history.append(self._mean_reported_reward(self._exploited_last_round))
        self._explore_utility_history.append(self._mean_reported_reward(self._explored_last_round))
        self._reported_since_selection = set()

        step, delta = self.config.pacer_step, self.config.pacer_delta
        if self._round < 2 * step or self._round % step != 0:
            return
        previous_window = sum(self._exploit_utility_history[-2 * step : -step])
        current_window = sum(self._exploit_utility_history[-step:])
        change = abs(current_window - previous_window)
        if change <= previous_window * _PLATEAU_CHANGE:
            self._round_threshold = min(_ALL_CLIENTS_PERCENTILE, self._round_threshold + delta)
        elif change >= previous_window * _SHARP_CHANGE:
            self._round_threshold = max(delta, self._round_threshold - delta)
        else:
            return
        logger.debug("oort pacer: round %d, round_threshold now %.1f", self._round, self._round_threshold)

    def _compute_blacklist(self) -> None:
        self._blacklist_ids = None
        if self.config.blacklist_rounds == -1:
            self._blacklist_rows = _NO_ROWS
            return
        participations = self._table.participations
        over_used = np.flatnonzero(participations > self.config.blacklist_rounds)
        over_used = over_used[np.argsort(-participations[over_used], kind="stable")]  # most used first, stable
        # Bounded so that a long run cannot blacklist (almost) everyone.
        max_len = int(self.config.blacklist_max_len * len(self._table))
        if len(over_used) > max_len:
            logger.info("oort: %d clients exceed blacklist_rounds; %d most used blacklisted", len(over_used), max_len)
        self._blacklist_rows = over_used[:max_len]

    def _blacklist_mask(self) -> np.ndarray:
        mask = np.zeros(len(self._table), dtype=bool)
        mask[self._blacklist_rows] = True
        return mask

    def _compute_preferred_duration(self) -> float:
        table = self._table
        if self._round_threshold >= _ALL_CLIENTS_PERCENTILE or not len(table):
            return math.inf
        index = min(int(len(table) * self._round_threshold / 100.0), len(table) - 1)
        return table.sorted_durations.value_at(table.duration, index)

    # ----- reporting ------------------------------------------------------------------------------------------------

    def get_median_reward(self) -> float:
        """Median reward of the registered clients outside the blacklist (0.0 when there are none)."""
        rewards = self._table.reward[~self._blacklist_mask()]
        return float(np.median(rewards)) if rewards.size else 0.0

    def get_mean_reward(self) -> float:
        """Mean reward of the registered clients outside the blacklist (0.0 when there are none)."""
        rewards = self._table.reward[~self._blacklist_mask()]
        return float(np.mean(rewards)) if rewards.size else 0.0

    def get_client_reward(self, client_id: ClientId) -> dict[str, Any]:
        """One client's record: reward, duration, time_stamp (last involved round), count, status."""
        row = self._table.row(client_id)
        if row is None:
            raise KeyError(f"oort: client {client_id!r} was never registered")
        table = self._table
        return {
            "reward": float(table.reward[row]),
            "duration": float(table.duration[row]),
            "time_stamp": int(table.last_round[row]),
            "count": int(table.participations[row]),
            "status": bool(table.available[row]),
        }

    def get_all_metrics(self) -> dict[ClientId, dict[str, Any]]:
        table = self._table
        columns = zip(table.ids(np.arange(len(table))), table.reward.tolist(), table.duration.tolist(),
                      table.last_round.tolist(), table.participations.tolist(), table.available.tolist(), strict=True)
        return {
            client_id: {"reward": reward, "duration": duration, "time_stamp": last, "count": count, "status": status}
            for client_id, reward, duration, last, count, status in columns
        }

    def getAllMetrics(self) -> dict[ClientId, dict[str, Any]]:  # noqa: N802 -- the name callers of Oort use
        return self.get_all_metrics()

    @property
    def training_round(self) -> int:
        return self._round

    @property
    def exploration(self) -> float:
        return self._exploration

    @property
    def round_threshold(self) -> float:
        """Percentile of registered clients' durations that sets the preferred round duration (100: no preference)."""
        return self._round_threshold

    @property
    def preferred_duration(self) -> float:
        return self._preferred_duration

    @property
    def blacklist(self) -> frozenset[ClientId]:
        if self._blacklist_ids is None:
            self._blacklist_ids = frozenset(self._table.ids(self._blacklist_rows))
        return self._blacklist_ids

    @property
    def unexplored(self) -> list[ClientId]:
        return self._table.ids(np.flatnonzero(self._table.participations == 0))

    @property
    def last_scores(self) -> dict[ClientId, float]:
        """Exploitation scores computed by the latest selection, for inspection and logging."""
        return dict(zip(self._table.ids(self._score_rows), self._scores.tolist(), strict=True))

    @staticmethod
    def _finite(value: Any, name: str, client_id: ClientId) -> float:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"oort: client {client_id!r} reported a non-finite {name}: {value!r}")
        return number


def create_training_selector(args: object | None = None) -> TrainingSelector:
    """Oort's entry point: a training selector configured from ``args`` (attributes or a mapping)."""
    return TrainingSelector(TrainingSelectorConfig.from_args(args))
