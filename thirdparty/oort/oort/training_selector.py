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
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

ClientId = Hashable

# The pacer compares the exploited utility of the last two windows of `pacer_step` rounds. A change within 10 % counts
# as a plateau (admit slower clients); a change of 5× or more means the threshold overshot (tighten it again).
_PLATEAU_CHANGE = 0.1
_SHARP_CHANGE = 5.0
_ALL_CLIENTS_PERCENTILE = 100.0
# Oort's weight of the temporal-uncertainty (staleness) bonus.
_STALENESS_WEIGHT = 0.1
# Guards against division by zero for zero durations and identical rewards.
_MIN_DURATION = 1e-4
_MIN_REWARD_RANGE = 1e-4
# The least-rewarded client still gets a sliver of utility, so equal rewards do not all normalize to zero.
_MIN_REWARD_SHRINK = 0.999


@dataclass(frozen=True)
class TrainingSelectorConfig:
    """Oort's knobs, with FedScale's defaults."""

    exploration_factor: float = 0.9
    exploration_decay: float = 0.98
    exploration_min: float = 0.3
    # Accepted for compatibility with FedScale's arguments; Oort's scoring does not use it.
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
    sample_seed: int = 233

    def __post_init__(self) -> None:
        for name in ("exploration_factor", "exploration_decay", "exploration_min", "blacklist_max_len", "clip_bound"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"oort: {name} must lie in [0, 1], got {value}")
        if self.round_threshold < 0:
            raise ValueError(f"oort: round_threshold is a percentile of durations (>= 0), got {self.round_threshold}")
        if self.pacer_step < 1:
            raise ValueError(f"oort: pacer_step must be at least 1 round, got {self.pacer_step}")
        if self.pacer_delta < 0 or self.round_penalty < 0 or self.cut_off_util < 0:
            raise ValueError("oort: pacer_delta, round_penalty and cut_off_util must not be negative")
        if self.sample_window < 1.0:
            raise ValueError(f"oort: sample_window must be at least 1.0, got {self.sample_window}")
        if self.blacklist_rounds < -1:
            raise ValueError(f"oort: blacklist_rounds is -1 (off) or a count of rounds, got {self.blacklist_rounds}")

    @classmethod
    def from_args(cls, args: object | None) -> TrainingSelectorConfig:
        """Read every knob from an attribute bag (argparse Namespace) or a mapping; missing knobs keep defaults."""
        values: dict[str, Any] = {}
        for knob in fields(cls):
            default = knob.default
            raw = args.get(knob.name, default) if isinstance(args, Mapping) else getattr(args, knob.name, default)
            values[knob.name] = type(default)(raw) if raw is not None else default
        return cls(**values)


@dataclass
class _ClientRecord:
    reward: float
    duration: float
    last_involved_round: int
    participations: int = 0
    available: bool = True


def _weighted_sample(
    rng: np.random.Generator, items: list[ClientId], weights: list[float], count: int
) -> list[ClientId]:
    """Draw ``count`` distinct items with probability proportional to their weights."""
    if count <= 0:
        return []
    if count >= len(items):
        return list(items)
    weight_array = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = float(weight_array.sum())
    # A tiny floor keeps zero-weight items drawable, so `count` distinct items can always be drawn.
    weight_array = weight_array + (total if total > 0 else 1.0) * 1e-9
    picks = rng.choice(len(items), size=count, replace=False, p=weight_array / weight_array.sum())
    return [items[index] for index in picks]


def _straggler_penalty(duration: float, preferred_duration: float, round_penalty: float) -> float:
    if duration <= preferred_duration:
        return 1.0
    return (preferred_duration / max(_MIN_DURATION, duration)) ** round_penalty


class TrainingSelector:
    """Chooses training participants round after round and learns from their feedback."""

    def __init__(self, config: TrainingSelectorConfig) -> None:
        self.config = config
        self._rng = np.random.default_rng(config.sample_seed)
        self._clients: dict[ClientId, _ClientRecord] = {}
        self._round = 0
        self._exploration = config.exploration_factor
        self._round_threshold = config.round_threshold
        self._preferred_duration = math.inf
        self._blacklist: frozenset[ClientId] = frozenset()
        self._exploited_last_round: list[ClientId] = []
        self._explored_last_round: list[ClientId] = []
        self._reported_since_selection: set[ClientId] = set()
        self._exploit_utility_history: list[float] = []
        self._explore_utility_history: list[float] = []
        self._last_scores: dict[ClientId, float] = {}

    # ----- feedback -------------------------------------------------------------------------------------------------

    def register_client(self, client_id: ClientId, feedbacks: Mapping[str, Any]) -> None:
        """Add a client with its prior reward (FedScale: its sample count) and expected duration; repeats ignored."""
        if client_id in self._clients:
            return
        if "reward" not in feedbacks:
            raise KeyError(f"oort: register_client({client_id!r}) needs feedbacks['reward'] (e.g. the sample count)")
        self._clients[client_id] = _ClientRecord(
            reward=self._finite(feedbacks["reward"], "reward", client_id),
            duration=self._finite(feedbacks.get("duration", 1.0), "duration", client_id),
            last_involved_round=self._round,
        )

    def update_client_util(self, client_id: ClientId, feedbacks: Mapping[str, Any]) -> None:
        """Record a finished client's reward and duration (keys as FedScale's: reward, duration, time_stamp, status)."""
        record = self._clients.get(client_id)
        if record is None:
            raise KeyError(f"oort: client {client_id!r} was never registered; call register_client first")
        record.reward = self._finite(feedbacks["reward"], "reward", client_id)
        record.duration = self._finite(feedbacks.get("duration", record.duration), "duration", client_id)
        record.last_involved_round = int(feedbacks.get("time_stamp", self._round))
        record.available = bool(feedbacks.get("status", True))
        record.participations += 1
        self._reported_since_selection.add(client_id)

    def update_duration(self, client_id: ClientId, duration: float) -> None:
        """Refresh a client's expected round duration; unknown clients are ignored, as in Oort."""
        record = self._clients.get(client_id)
        if record is not None:
            record.duration = self._finite(duration, "duration", client_id)

    # ----- selection ------------------------------------------------------------------------------------------------

    def select_participant(
        self, num_of_clients: int, feasible_clients: Collection[ClientId] | None = None
    ) -> list[ClientId]:
        """Pick up to ``num_of_clients`` registered clients among ``feasible_clients`` (default: all available)."""
        if num_of_clients < 0:
            raise ValueError(f"oort: cannot select {num_of_clients} clients")
        self._round += 1
        self._blacklist = self._compute_blacklist()
        self._run_pacer()
        self._preferred_duration = self._compute_preferred_duration()

        self._exploration = max(self._exploration * self.config.exploration_decay, self.config.exploration_min)

        feasible = None if feasible_clients is None else set(feasible_clients)
        pool = [
            client_id
            for client_id, record in self._clients.items()
            if (record.available if feasible is None else client_id in feasible)
        ]
        if num_of_clients >= len(pool):
            self._last_scores = {}
            self._exploited_last_round = [c for c in pool if self._clients[c].participations > 0]
            self._explored_last_round = [c for c in pool if self._clients[c].participations == 0]
            return pool
        candidates = [client_id for client_id in pool if client_id not in self._blacklist]

        self._last_scores = self._exploitation_scores(candidates)
        unexplored = [client_id for client_id in candidates if self._clients[client_id].participations == 0]
        # Slots the unexplored clients cannot fill go to exploitation rather than to chance.
        exploration_slots = min(int(num_of_clients * self._exploration), len(unexplored))

        exploited = self._exploit(num_of_clients - exploration_slots)
        explored = self._explore(unexplored, num_of_clients - len(exploited))
        picked = exploited + explored
        picked += self._fill(picked, candidates, pool, num_of_clients - len(picked))

        self._exploited_last_round, self._explored_last_round = exploited, explored
        logger.debug(
            "oort round %d: exploited %d, explored %d, exploration %.3f, round_threshold %.1f, blacklist %d",
            self._round, len(exploited), len(explored), self._exploration, self._round_threshold, len(self._blacklist),
        )
        return picked

    def _exploitation_scores(self, candidates: list[ClientId]) -> dict[ClientId, float]:
        explored = [client_id for client_id in candidates if self._clients[client_id].participations > 0]
        positive_rewards = sorted(self._clients[c].reward for c in explored if self._clients[c].reward > 0)
        if positive_rewards:
            clip_index = min(int(len(positive_rewards) * self.config.clip_bound), len(positive_rewards) - 1)
            clip_value = positive_rewards[clip_index]
            floor = positive_rewards[0] * _MIN_REWARD_SHRINK
            # The range ends at the clip value, so one outlier cannot squash every other client's utility to zero.
            reward_range = max(clip_value - floor, _MIN_REWARD_RANGE)
        else:
            clip_value, floor, reward_range = math.inf, 0.0, 1.0

        log_round = math.log(max(self._round, 1))
        scores: dict[ClientId, float] = {}
        for client_id in explored:
            record = self._clients[client_id]
            utility = max(0.0, (min(record.reward, clip_value) - floor) / reward_range)
            staleness_bonus = math.sqrt(_STALENESS_WEIGHT * log_round / max(record.last_involved_round, 1))
            penalty = _straggler_penalty(record.duration, self._preferred_duration, self.config.round_penalty)
            scores[client_id] = (utility + staleness_bonus) * penalty
        return scores

    def _exploit(self, slots: int) -> list[ClientId]:
        count = min(max(slots, 0), len(self._last_scores))
        if count == 0:
            return []
        ranked = sorted(self._last_scores, key=self._last_scores.__getitem__, reverse=True)
        cut_off = self._last_scores[ranked[count - 1]] * self.config.cut_off_util
        admitted = [client_id for client_id in ranked if self._last_scores[client_id] >= cut_off]
        return _weighted_sample(self._rng, admitted, [self._last_scores[c] for c in admitted], count)

    def _explore(self, unexplored: list[ClientId], slots: int) -> list[ClientId]:
        count = min(max(slots, 0), len(unexplored))
        if count == 0:
            return []
        # Prior reward (e.g. size) discounted by the straggler penalty: larger and faster clients are tried first.
        prior = {
            client_id: self._clients[client_id].reward
            * _straggler_penalty(self._clients[client_id].duration, self._preferred_duration, self.config.round_penalty)
            for client_id in unexplored
        }
        ranked = sorted(prior, key=prior.__getitem__, reverse=True)
        window = ranked[: max(count, int(self.config.sample_window * count))]
        return _weighted_sample(self._rng, window, [prior[c] for c in window], count)

    def _fill(
        self, picked: list[ClientId], candidates: list[ClientId], pool: list[ClientId], count: int
    ) -> list[ClientId]:
        """Top up a round that exploitation and exploration left short: at random, blacklisted clients last."""
        if count <= 0:
            return []
        taken = set(picked)
        spare = [client_id for client_id in candidates if client_id not in taken]
        extra = [spare[i] for i in self._rng.permutation(len(spare))[:count]]
        if len(extra) < count:
            # Returning fewer clients than asked would shrink the round; a blacklisted client is the lesser evil.
            blacklisted = sorted(
                (c for c in pool if c in self._blacklist and c not in taken),
                key=lambda c: self._clients[c].participations,
            )
            extra += blacklisted[: count - len(extra)]
        return extra

    # ----- pacer, blacklist, preferred duration ---------------------------------------------------------------------

    def _mean_reported_reward(self, clients: list[ClientId]) -> float:
        reported = [self._clients[c].reward for c in clients if c in self._reported_since_selection]
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

    def _compute_blacklist(self) -> frozenset[ClientId]:
        if self.config.blacklist_rounds == -1:
            return frozenset()
        over_used = [c for c, r in self._clients.items() if r.participations > self.config.blacklist_rounds]
        over_used.sort(key=lambda c: self._clients[c].participations, reverse=True)
        # Bounded so that a long run cannot blacklist (almost) everyone.
        max_len = int(self.config.blacklist_max_len * len(self._clients))
        if len(over_used) > max_len:
            logger.info("oort: %d clients exceed blacklist_rounds; %d most used blacklisted", len(over_used), max_len)
        return frozenset(over_used[:max_len])

    def _compute_preferred_duration(self) -> float:
        if self._round_threshold >= _ALL_CLIENTS_PERCENTILE or not self._clients:
            return math.inf
        durations = sorted(record.duration for record in self._clients.values())
        return durations[min(int(len(durations) * self._round_threshold / 100.0), len(durations) - 1)]

    # ----- reporting ------------------------------------------------------------------------------------------------

    def get_median_reward(self) -> float:
        """Median reward of the registered clients outside the blacklist (0.0 when there are none)."""
        rewards = [r.reward for c, r in self._clients.items() if c not in self._blacklist]
        return float(np.median(rewards)) if rewards else 0.0

    def get_mean_reward(self) -> float:
        """Mean reward of the registered clients outside the blacklist (0.0 when there are none)."""
        rewards = [r.reward for c, r in self._clients.items() if c not in self._blacklist]
        return float(np.mean(rewards)) if rewards else 0.0

    def get_client_reward(self, client_id: ClientId) -> dict[str, Any]:
        """One client's record: reward, duration, time_stamp (last involved round), count, status."""
        record = self._clients.get(client_id)
        if record is None:
            raise KeyError(f"oort: client {client_id!r} was never registered")
        return {
            "reward": record.reward,
            "duration": record.duration,
            "time_stamp": record.last_involved_round,
            "count": record.participations,
            "status": record.available,
        }

    def get_all_metrics(self) -> dict[ClientId, dict[str, Any]]:
        return {client_id: self.get_client_reward(client_id) for client_id in self._clients}

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
        return self._blacklist

    @property
    def unexplored(self) -> list[ClientId]:
        return [client_id for client_id, record in self._clients.items() if record.participations == 0]

    @property
    def last_scores(self) -> dict[ClientId, float]:
        """Exploitation scores computed by the latest selection, for inspection and logging."""
        return dict(self._last_scores)

    @staticmethod
    def _finite(value: Any, name: str, client_id: ClientId) -> float:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"oort: client {client_id!r} reported a non-finite {name}: {value!r}")
        return number


def create_training_selector(args: object | None = None) -> TrainingSelector:
    """Oort's entry point: a training selector configured from ``args`` (attributes or a mapping)."""
    return TrainingSelector(TrainingSelectorConfig.from_args(args))
