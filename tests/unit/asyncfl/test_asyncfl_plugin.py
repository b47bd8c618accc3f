"""The asynchronous plug-in: its planner's rounds, its fold of buffered changes, its checkpoint, its refusals."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import pytest
import torch

from fedscale_halor.aggregation.fold import MeanFold
from fedscale_halor.asyncfl.planner import AsyncPlanner, AsyncRound
from fedscale_halor.asyncfl.plugin import SCHEDULE_FILE, UPDATES_FILE, AsyncFactory, AsyncPlugin, AsyncSettings
from fedscale_halor.asyncfl.schedule import AsyncRules, AsyncSchedule, AsyncTask, BufferStep, CheckIn
from fedscale_halor.config.errors import ConfigError
from fedscale_halor.launch.jobfile import job_with
from fedscale_halor.launch.plugins import job_factories
from fedscale_halor.server.planning import EveryoneCompletes, TracedClock
from fedscale_halor.types import TrainResult, Weights


class FakeClock:
    """Every client online, each with a fixed round time."""

    def __init__(self, durations: Mapping[int, float]) -> None:
        self._durations = durations
        self.now_s = 0.0

    def feasible(self, client_ids: Sequence[int]) -> list[int]:
        return list(client_ids)

    def round_seconds(self, client: int) -> float:
        return self._durations[client]

    def is_online(self, client: int, time_s: float) -> bool:
        return True


class DictFiles:
    def __init__(self, files: Mapping[str, bytes]) -> None:
        self._files = files

    def read(self, name: str, parse: Callable[[bytes], object], what: str) -> object:
        return parse(self._files[name]) if name in self._files else None


RULES = AsyncRules(arrival_interval_s=2.0, buffer_size=3, max_concurrency=10, max_staleness=8)


def _plugin(durations: Mapping[int, float] | None = None) -> tuple[AsyncPlugin, AsyncPlanner, FakeClock]:
    clock = FakeClock(durations or {})
    plugin = AsyncPlugin(AsyncSettings(RULES, overcommitment=1.0))
    planner = plugin.planner(TracedClock(clock, 10, 1.0, 1))  # type: ignore[arg-type]
    assert isinstance(planner, AsyncPlanner)
    return plugin, planner, clock


def _result(client: int, value: float, samples: int = 1) -> TrainResult:
    return TrainResult(client_id=client, round=1, model_version=0, weights={"w": torch.tensor([value])},
                       num_samples=samples, num_steps=1, loss_mean=0.0, loss_square_mean=0.0, wall_time_s=0.0)


def _commit(planner: AsyncPlanner, trained: tuple[AsyncTask, ...], collected: tuple[AsyncTask, ...] = (),
            staleness: tuple[int, ...] = ()) -> None:
    step = BufferStep(version=planner.schedule.version, collected=collected, staleness=staleness, dropped=(),
                      time_s=planner.schedule.now_s + 10.0)
    planner.committed = AsyncRound(planner.schedule, CheckIn(trained, (), ()), step, trained)


def _fold_round(plugin: AsyncPlugin, base: float, reported: Sequence[TrainResult], *, weighted: bool) -> Weights:
    fold = MeanFold({"w": torch.tensor([base])}, (), weighted=weighted)
    plugin.take_late(1, reported, 0.0, {})
    plugin.fold_more(1, fold, (), 0.0)
    return fold.finish()


A, B, C = AsyncTask(1, 1.0, 50.0), AsyncTask(2, 2.0, 60.0), AsyncTask(3, 12.0, 20.0)


@pytest.mark.parametrize(("weighted", "samples", "expected"), [
    # FedScale's rule: 5 + (1 * 11 + 1/2 * 11 + 1/3 * 22) / (1 + 1/2 + 1/3) = 5 + (66 + 33 + 44) / 11 = 18
    (False, {1: 1, 2: 1, 3: 1}, 18.0),
    # with sample counts 2, 3 and 1 every coefficient is 1: 5 + (11 + 11 + 22) / 3
    (True, {1: 2, 2: 3, 3: 1}, 5.0 + 44.0 / 3.0),
])
def test_three_buffered_changes_fold_by_one_over_sqrt_of_one_plus_staleness(
        weighted: bool, samples: dict[int, int], expected: float) -> None:
    # Prepare: clients 1 and 2 train from a model at 1.0 (changes +11 and +22) and nothing is collected; client 3
    # trains from the next model, at 5.0 (change +11); then one buffer collects 3, 1 and 2 with staleness 0, 3, 8
    plugin, planner, _ = _plugin()
    _commit(planner, trained=(A, B))
    _fold_round(plugin, 1.0, [_result(1, 12.0, samples[1]), _result(2, 23.0, samples[2])], weighted=weighted)
    _commit(planner, trained=(C,), collected=(C, A, B), staleness=(0, 3, 8))

    # Execute
    new = _fold_round(plugin, 5.0, [_result(3, 16.0, samples[3])], weighted=weighted)

    # Assert
    assert new["w"].item() == pytest.approx(expected, rel=1e-6)


def test_a_collected_task_whose_training_failed_is_left_out() -> None:
    # Prepare: client 2 was planned but never reported
    plugin, planner, _ = _plugin()
    _commit(planner, trained=(A, B), collected=(A, B), staleness=(0, 0))

    # Execute
    new = _fold_round(plugin, 1.0, [_result(1, 12.0)], weighted=False)

    # Assert
    assert new["w"].item() == pytest.approx(12.0)


def test_a_retried_attempt_plans_again_from_the_committed_schedule() -> None:
    # Prepare
    _, planner, clock = _plugin({0: 5.0, 1: 7.0, 2: 9.0})

    # Execute: the first attempt checks in 0, 1 and 2; its retry, without the failed 1, checks in 0 and 2
    planner.plan(1, [0, 1, 2])
    first = planner.train_now()
    planner.plan(1, [0, 2])
    retried = planner.train_now()
    now = planner.advance(planner.plan(1, [0, 2]), [])

    # Assert: check-ins at 2 and 4 both times, not continuing after the abandoned attempt
    assert first == {0: 7.0, 1: 11.0, 2: 15.0}
    assert retried == {0: 7.0, 2: 13.0}
    assert now == 13.0 and clock.now_s == 13.0 and planner.schedule.pending == []


def test_every_trained_task_counts_as_completed_for_the_selector() -> None:
    # Prepare
    _, planner, _ = _plugin({0: 5.0})
    planned = planner.plan(1, [0])

    # Execute / Assert: its update is folded later, but the client did finish (Oort credits its utility)
    assert planned.completing == () and planner.completed(planned, _result(0, 1.0))


def test_a_retry_gives_up_the_pending_task_of_a_client_that_failed() -> None:
    # Prepare: client 0's task from an earlier round is pending and starts in this one
    _, planner, _ = _plugin({0: 5.0, 2: 9.0})
    planner.schedule = AsyncSchedule(RULES, pending=[AsyncTask(0, 12.0, 17.0)], last_check_in_s=12.0,
                                     published_s=[0.0, 10.0])

    # Execute: the first attempt trains 0 and the new 2; 0 fails, and the retry plans without it
    planner.plan(2, [2])
    first = planner.train_now()
    planner.plan(2, [2], failed={0})
    retried = planner.train_now()

    # Assert
    assert first == {0: 7.0, 2: 13.0} and retried == {2: 13.0}


def test_held_changes_and_the_schedule_survive_a_checkpoint() -> None:
    # Prepare: a round that trains clients 1 and 2 and collects nothing
    plugin, planner, _ = _plugin()
    planner.schedule = AsyncSchedule(RULES, pending=[A, B], last_check_in_s=2.0, published_s=[0.0, 30.0])
    _commit(planner, trained=(A, B))
    _fold_round(plugin, 1.0, [_result(1, 12.0), replace(_result(2, 23.0), num_samples=4)], weighted=False)

    # Execute
    files = plugin.save()
    restored, restored_planner, clock = _plugin()
    restored.restore(DictFiles(files))
    restored_planner.restore(30.0)
    _commit(restored_planner, trained=(), collected=(A, B), staleness=(1, 1))
    new = _fold_round(restored, 5.0, [], weighted=True)

    # Assert: the schedule as it was, and the changes folded on the new base: 5 + (1 * 11 + 4 * 22) / 5
    assert set(files) == {SCHEDULE_FILE, UPDATES_FILE}
    assert restored_planner.schedule.pending == [A, B] and restored_planner.schedule.published_s == [0.0, 30.0]
    assert clock.now_s == 30.0
    assert new["w"].item() == pytest.approx(5.0 + 99.0 / 5.0)


def test_a_checkpoint_whose_clock_disagrees_with_its_schedule_is_refused() -> None:
    # Prepare
    _, planner, _ = _plugin()
    planner.schedule = AsyncSchedule(RULES, published_s=[0.0, 30.0])

    # Execute / Assert
    with pytest.raises(ValueError, match="disagree"):
        planner.restore(12.0)


@pytest.mark.parametrize(("changes", "key"), [
    ({"feddc": 1}, "feddc"), ({"stale_update": -1}, "stale_update"), ({"data_regulation": 1}, "data_regulation"),
    ({"straggler_balancing": True}, "straggler_balancing"), ({"halor": True}, "halor"),
    ({"device_conf_file": ""}, "device_conf_file")])
def test_the_factory_refuses_what_asynchronous_aggregation_cannot_run_with(changes: dict, key: str) -> None:
    # Prepare
    job = job_with(**{"async_mode": True, "device_conf_file": "traces/client_device_capacity", **changes})

    # Execute / Assert
    with pytest.raises(ConfigError, match=key):
        job_factories(job)  # the plug-ins async does not run beside
        AsyncFactory().round_plugin(job, None)  # type: ignore[arg-type]


def test_the_plug_in_needs_the_virtual_clock() -> None:
    # Execute / Assert
    with pytest.raises(ConfigError, match="device_conf_file"):
        AsyncPlugin(AsyncSettings(RULES, 1.0)).planner(EveryoneCompletes(10))
