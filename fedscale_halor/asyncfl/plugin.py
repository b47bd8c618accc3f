"""Asynchronous buffered aggregation as a plug-in of the round (docs/asynchronous.md).

The plug-in replaces the round's planner (``AsyncPlanner``): a round of the loop is one aggregation step. Every task
it trains reports after the round, as a late update: its change against the model it trained on is kept until the
step that collects it, which folds ``base + change`` with the weight 1 / sqrt(1 + staleness). So the new model is
``current + sum(c_i * change_i) / sum(c_i)``, FedScale's async rule, with c_i the fold's coefficient (the importance,
times the sample count under ``weighted_avg``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from fedscale_halor.asyncfl.planner import AsyncPlanner
from fedscale_halor.asyncfl.schedule import AsyncRules, AsyncSchedule, AsyncTask, staleness_importance
from fedscale_halor.asyncfl.settings import AsyncConfig
from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.plugin.factory import PluginFactory, ServerSide
from fedscale_halor.plugin.round import Fold, RoundPlugin, SavedFiles
from fedscale_halor.server.planning import RoundPlanner, TracedClock
from fedscale_halor.types import RoundMetrics, TrainResult, Weights

_log = logging.getLogger("fedscale_halor.aggregator")

SCHEDULE_FILE = "async_schedule.json"
UPDATES_FILE = "async_updates.safetensors"


@dataclass(frozen=True)
class AsyncSettings:
    rules: AsyncRules
    overcommitment: float

    @classmethod
    def from_job(cls, job: JobConfig) -> AsyncSettings:
        keys = job.plugin_settings.get(AsyncConfig)
        return cls(AsyncRules(keys.arrival_interval, keys.async_buffer, keys.max_concurrency, keys.max_staleness),
                   job.overcommitment)


class AsyncPlugin(RoundPlugin):
    checkpoint_files = (SCHEDULE_FILE, UPDATES_FILE)

    def __init__(self, settings: AsyncSettings) -> None:
        self._settings = settings
        self._planner: AsyncPlanner | None = None
        self._reported: list[TrainResult] = []  # this round's trained tasks, weights not yet turned into changes
        self._changes: dict[AsyncTask, TrainResult] = {}  # trained, not yet collected: weights hold the change
        self._folded: tuple[int, ...] = ()  # the clients whose updates made the round's version
        self._dropped = 0
        self._saved_schedule: AsyncSchedule | None = None

    def planner(self, default: RoundPlanner) -> RoundPlanner:
        if not isinstance(default, TracedClock):
            raise ConfigError("async_mode: asynchronous aggregation needs device_conf_file: clients check in and "
                              "report on the virtual clock of the device trace")
        self._planner = AsyncPlanner(default.clock, self._settings.rules, self._settings.overcommitment)
        if self._saved_schedule is not None:
            self._planner.schedule = self._saved_schedule
        return self._planner

    def late_clients(self, round_index: int, stragglers: Mapping[int, float]) -> Mapping[int, float]:
        return self._async_planner().train_now()

    def take_late(self, round_index: int, results: Sequence[TrainResult], round_start_s: float,
                  finish_after_start_s: Mapping[int, float]) -> None:
        self._reported = list(results)

    def fold_more(self, round_index: int, fold: Fold, fresh_client_ids: Sequence[int], clock_s: float) -> None:
        committed = self._async_planner().committed
        assert committed is not None
        base = fold.base_weights
        trained = {task.client_id: task for task in committed.trained}
        for result in self._reported:
            change = {name: result.weights[name] - base[name] for name in base}
            self._changes[trained[result.client_id]] = replace(result, weights=change, client_state={})
        self._reported = []
        for task in committed.step.dropped:
            self._changes.pop(task, None)
        step = committed.step
        folded: list[int] = []
        self._dropped = len(step.dropped)
        for task, staleness in zip(step.collected, step.staleness, strict=True):
            update = self._changes.pop(task, None)
            if update is None:  # its training failed: the board reported it
                continue
            moved = {name: base[name] + change for name, change in update.weights.items()}
            fold.add_stale(replace(update, weights=moved), staleness_importance(staleness))
            folded.append(task.client_id)
        self._folded = tuple(sorted(folded))
        mean_staleness = sum(step.staleness) / len(step.staleness) if step.staleness else 0.0
        _log.info("round %d: version %d at %.1f s folds %d updates (mean staleness %.2f), %d too stale dropped, "
                  "%d trained this round, %d pending", round_index, step.version + 1, step.time_s, len(folded),
                  mean_staleness, len(step.dropped), len(committed.trained),
                  len(self._async_planner().schedule.pending))

    def round_metrics(self, metrics: RoundMetrics) -> RoundMetrics:
        # participants: the clients whose updates make the new version (those trained this round are logged above)
        return replace(metrics, participants=self._folded, completed=len(self._folded), stragglers=self._dropped)

    def save(self) -> Mapping[str, bytes]:
        schedule = self._async_planner().schedule
        held = sorted(self._changes.items(), key=lambda item: (item[0].end_s, item[0].client_id))
        record = {
            "pending": [[task.client_id, task.start_s, task.end_s] for task in schedule.pending],
            "last_check_in_s": schedule.last_check_in_s,
            "published_s": schedule.published_s,
            "updates": [{"task": [task.client_id, task.start_s, task.end_s], "round": result.round,
                         "model_version": result.model_version, "num_samples": result.num_samples,
                         "num_steps": result.num_steps, "loss_mean": result.loss_mean,
                         "loss_square_mean": result.loss_square_mean, "wall_time_s": result.wall_time_s}
                        for task, result in held],
        }
        tensors = {f"{index}/{name}": tensor.contiguous() for index, (_, result) in enumerate(held)
                   for name, tensor in result.weights.items()}
        return {SCHEDULE_FILE: json.dumps(record).encode(), UPDATES_FILE: save_tensors(tensors)}

    def restore(self, files: SavedFiles) -> None:
        saved = files.read(SCHEDULE_FILE, self._parse_schedule, "the asynchronous schedule")
        if saved is None:
            return
        schedule, updates = saved
        tensors = files.read(UPDATES_FILE, load_tensors, "the asynchronous updates not yet aggregated") or {}
        self._changes = {task: replace(result, weights=_prefixed(tensors, f"{index}/"))
                         for index, (task, result) in enumerate(updates)}
        self._saved_schedule = schedule
        if self._planner is not None:
            self._planner.schedule = schedule

    def _parse_schedule(self, data: bytes) -> tuple[AsyncSchedule, list[tuple[AsyncTask, TrainResult]]]:
        """The schedule and the held updates' records (their weights still to be read); a missing or mistyped
        field raises KeyError or TypeError, which the checkpoint reader reports with the file."""
        record = json.loads(data)
        schedule = AsyncSchedule(self._settings.rules, [_task(entry) for entry in record["pending"]],
                                 float(record["last_check_in_s"]), [float(time) for time in record["published_s"]])
        updates = []
        for entry in record["updates"]:
            task = _task(entry["task"])
            updates.append((task, TrainResult(
                client_id=task.client_id, round=int(entry["round"]), model_version=int(entry["model_version"]),
                weights={}, num_samples=int(entry["num_samples"]), num_steps=int(entry["num_steps"]),
                loss_mean=float(entry["loss_mean"]), loss_square_mean=float(entry["loss_square_mean"]),
                wall_time_s=float(entry["wall_time_s"]))))
        return schedule, updates

    def _async_planner(self) -> AsyncPlanner:
        if self._planner is None:
            raise RuntimeError("the asynchronous plug-in runs only as the round's planner")
        return self._planner


def _task(entry: Sequence[float]) -> AsyncTask:
    client, start, end = entry
    return AsyncTask(int(client), float(start), float(end))


def _prefixed(tensors: Mapping[str, torch.Tensor], prefix: str) -> Weights:
    return {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}


class AsyncFactory(PluginFactory):
    """Built in: on with ``async_mode`` (which a job file naming FedScale's async aggregator as its
    ``aggregator_entry`` switches on)."""

    name = "async"
    settings = AsyncConfig
    excludes = ("halor", "stale_updates")

    def enabled(self, job: JobConfig) -> bool:
        return job.plugin_settings.get(AsyncConfig).async_mode

    def switched_on_by(self, job: JobConfig) -> str:
        return "async_mode"

    def run_name_part(self, job: JobConfig) -> str | None:
        keys = job.plugin_settings.get(AsyncConfig)
        return f"async{keys.async_buffer}" if keys.async_mode else None

    def round_plugin(self, job: JobConfig, server: ServerSide) -> RoundPlugin:
        refused = {"feddc": job.feddc != 0, "straggler_balancing": job.straggler_balancing}
        for key, on in refused.items():
            if on:
                raise ConfigError(f"async_mode: asynchronous aggregation does not run with {key} "
                                  f"(docs/asynchronous.md); turn {key} off or set async_mode: false")
        if not job.device_conf_file:
            raise ConfigError("async_mode: asynchronous aggregation needs device_conf_file: clients check in and "
                              "report on the virtual clock of the device trace")
        try:
            return AsyncPlugin(AsyncSettings.from_job(job))
        except ValueError as error:
            raise ConfigError(f"async_mode: {error}") from None
