"""The virtual clock of a job with device traces: who is online now, and the plan of each round.

Built once by the aggregator from the job's trace files (``device_conf_file``, ``device_avail_file``); a job
without a device trace has no virtual clock, and every selected client completes its round.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.seeding import derive_seed
from fedscale_halor.selection.base import ClientColumns, ClientInfo
from fedscale_halor.simulation.balancing import balanced_local_steps
from fedscale_halor.simulation.client_profiles import ClientProfile, assign_traces
from fedscale_halor.simulation.plan import ClientTiming, RoundPlan, RoundTiming, client_round_seconds, plan_round
from fedscale_halor.simulation.traces import DeviceCapacity, read_behavior_trace, read_device_capacity

# rounds of history behind a moving-average deadline
DEADLINE_WINDOW = 10
# how far the clock moves when a round has nobody to wait for (no client online, or all dropped at once)
IDLE_STEP_S = 60.0


class VirtualClock:
    """Simulated time: it starts at 0 and moves by each round's planned duration."""

    def __init__(self, profiles: Mapping[int, ClientProfile], settings: RoundTiming, job_seed: int) -> None:
        self._profiles = profiles
        self._settings = settings
        self._job_seed = job_seed
        self._durations: list[float] = []
        self.now_s = 0.0

    @classmethod
    def from_job(cls, job: JobConfig, client_ids: Sequence[int], model_bytes: int) -> VirtualClock | None:
        """The job's clock, or None when the job names no device trace."""
        if not job.device_conf_file:
            return None
        settings = RoundTiming(
            num_participants=job.num_participants, batch_size=job.batch_size, local_steps=job.local_steps,
            model_bytes=model_bytes, exp_type=job.exp_type, deadline_s=job.deadline, target_ratio=job.target_ratio,
            dropout_ratio=job.dropout_ratio, model_cost_scale=job.model_cost_scale,
        )
        capacities = read_device_capacity(job.device_conf_file)
        behaviors = read_behavior_trace(job.device_avail_file) if job.device_avail_file else None

        def round_time(capacity: DeviceCapacity) -> float:
            return client_round_seconds(ClientTiming(capacity.compute_ms_per_sample, capacity.bandwidth_kbps),
                                        settings)

        profiles = assign_traces(client_ids, capacities, behaviors, random_behv=job.random_behv,
                                 seed=job.sample_seed, scale_sys=job.scale_sys,
                                 scale_sys_percent=job.scale_sys_percent, round_time=round_time)
        return cls(profiles, settings, job.sample_seed)

    def feasible(self, client_ids: Sequence[int] | np.ndarray) -> list[int]:
        """The clients online now."""
        ids = client_ids.tolist() if isinstance(client_ids, np.ndarray) else client_ids
        return [client for client in ids if self._profiles[client].is_online(self.now_s)]

    def is_online(self, client: int, time_s: float) -> bool:
        return self._profiles[client].is_online(time_s)

    def round_seconds(self, client: int) -> float:
        """How long ``client`` takes to download, train the job's local steps and upload, online or not."""
        return client_round_seconds(self._timing(client, online=False), self._settings)

    def selection_size(self, num_participants: int, overcommitment: float) -> int:
        return math.ceil(num_participants * overcommitment)

    def set_participants(self, count: int) -> None:
        """The clients a round waits for (the first-K cut and straggler balancing's deadline), for a cohort that
        gets a share of the job's participants."""
        self._settings = dataclasses.replace(self._settings, num_participants=count)

    def plan(self, round_index: int, selected: Sequence[int],
             local_steps: Mapping[int, int] | None = None) -> RoundPlan:
        """``local_steps``: clients that train other than the job's local steps."""
        timings = {client: self._timing(client) for client in selected}
        return plan_round(selected, timings, self._settings, previous_durations=self._durations[-DEADLINE_WINDOW:],
                          dropout_seed=derive_seed(self._job_seed, round_index, "dropout"), local_steps=local_steps)

    def balanced_local_steps(self, selected: Sequence[int], min_local_steps: int) -> dict[int, int]:
        """Straggler balancing: the selected clients predicted to miss the deadline, with the local steps that let
        them finish (see simulation/balancing.py)."""
        timings = {client: self._timing(client, online=False) for client in selected}
        return balanced_local_steps(selected, timings, self._settings, min_local_steps)

    def expected_round_s(self) -> float:
        """The moving average of recent rounds' durations (0 before the first round)."""
        recent = self._durations[-DEADLINE_WINDOW:]
        return sum(recent) / len(recent) if recent else 0.0

    def advance(self, plan: RoundPlan) -> None:
        """Move the clock past a round; a round with nobody to wait for still takes a typical round, or an idle
        step before there is any history."""
        step = plan.duration_s if plan.duration_s > 0 else (self.expected_round_s() or IDLE_STEP_S)
        self._durations.append(step)
        self.now_s += step

    def client_infos(self, sample_counts: Mapping[int, int]) -> dict[int, ClientInfo]:
        """What selectors may know of each client before the first round."""
        return {client: ClientInfo(num_samples=count,
                                   expected_duration_s=self.round_seconds(client),
                                   online_fraction=self._online_fraction(client))
                for client, count in sample_counts.items()}

    def client_columns(self, client_ids: np.ndarray, num_samples: np.ndarray) -> ClientColumns:
        """``client_infos`` as columns, for as many clients as the job has without an object each."""
        ids = client_ids.tolist()
        return ClientColumns(client_ids, num_samples,
                             expected_duration_s=np.fromiter((self.round_seconds(client) for client in ids),
                                                             np.float64, len(ids)),
                             online_fraction=np.fromiter((self._online_fraction(client) for client in ids),
                                                         np.float64, len(ids)))

    def _timing(self, client: int, online: bool = True) -> ClientTiming:
        profile = self._profiles[client]
        online_for = profile.online_until(self.now_s) if online else math.inf
        return ClientTiming(profile.capacity.compute_ms_per_sample, profile.capacity.bandwidth_kbps, online_for)

    def _online_fraction(self, client: int) -> float:
        availability = self._profiles[client].availability
        return 1.0 if availability is None else availability.online_fraction
