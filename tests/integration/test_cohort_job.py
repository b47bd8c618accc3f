"""Jobs of two cohorts (the example parity plug-in): each cohort trains its own model over its own clients with its
share of the participants, the same with one executor as with three and over gRPC, and a run resumed after the
split ends with the models of the run that was not interrupted."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.local import run_local
from fedscale_halor.types import RoundMetrics

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"
SPEC = "fedscale_halor.plugin.examples.parity_cohorts:ParityCohortsFactory"


def _digits(tmp_path: Path, data_dir: Path, split_round: int | None = 2, **overrides: object):
    """``split_round`` None: a plain job without the plug-in."""
    cohorts = {"plugins": [SPEC], "parity_split_round": split_round} if split_round is not None else {}
    settings = {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "rounds": 4, "eval_interval": 1,
                "total_clients": 20, "num_participants": 6, "local_steps": 2, **cohorts, **overrides}
    return load_config(DIGITS_CONF, overrides=settings)


def _models(run_dir: Path) -> list[bytes]:
    checkpoint = run_dir / "checkpoint"
    return [(checkpoint / name).read_bytes() for name in ("model.safetensors", "cohort_1.safetensors")]


def test_after_the_split_each_cohort_trains_its_own_clients_with_half_the_participants(
        tmp_path: Path, digits_data_dir: Path) -> None:
    # Execute
    outcome = run_in_process(_digits(tmp_path, digits_data_dir), timestamp="split", echo=False)

    # Assert: rounds 1-2 one cohort of 6 participants; rounds 3-4 two cohorts of 3, the even and the odd ids
    by_round = [(metrics.round, metrics.cohort, len(metrics.participants)) for metrics in outcome.history]
    assert by_round == [(1, 0, 6), (2, 0, 6), (3, 0, 3), (3, 1, 3), (4, 0, 3), (4, 1, 3)]
    for metrics in outcome.history[2:]:
        assert {client % 2 for client in metrics.participants} == {metrics.cohort}
        assert metrics.test is not None and metrics.test.num_samples > 0
    cohort_0, cohort_1 = (load_file(outcome.run_dir / "checkpoint" / name)
                          for name in ("model.safetensors", "cohort_1.safetensors"))
    assert cohort_0.keys() == cohort_1.keys()
    assert any(not cohort_0[name].equal(cohort_1[name]) for name in cohort_0)
    assert all(outcome.final_weights[name].equal(cohort_0[name]) for name in cohort_0)


def test_three_executors_and_executor_processes_end_with_the_models_and_tests_of_one(
        tmp_path: Path, digits_data_dir: Path) -> None:
    # planted label groups too: the test views travel to the executor processes
    one = run_in_process(_digits(tmp_path, digits_data_dir, label_groups=2), timestamp="one", echo=False)
    three = run_in_process(_digits(tmp_path, digits_data_dir, label_groups=2, worker_ips="127.0.0.1:[3]"),
                           timestamp="three", echo=False)
    forked = run_local(_digits(tmp_path, digits_data_dir, label_groups=2, worker_ips="127.0.0.1:[2]", ps_port=0),
                       timestamp="forked", echo=False)

    assert _models(one.run_dir) == _models(three.run_dir) == _models(forked.run_dir)
    # the test set is cut into one shard per executor: the counts agree exactly, the loss sums to rounding
    def counts(history: tuple[RoundMetrics, ...]) -> list[object]:
        return [(metrics.test.num_samples, metrics.test.top1_correct, metrics.test.top5_correct,
                 {view: result.top1_correct for view, result in metrics.view_tests.items()})
                for metrics in history if metrics.test is not None]

    assert counts(one.history) == counts(three.history) == counts(forked.history)


def test_with_planted_label_groups_each_client_is_tested_on_its_view_with_its_cohorts_model(
        tmp_path: Path, digits_data_dir: Path) -> None:
    # Prepare: two groups whose labels disagree everywhere (odd ids shifted by 5); the parity cohorts are the groups
    settings = {"label_groups": 2, "rounds": 15, "eval_interval": 15, "num_participants": 10, "local_steps": 5}
    one_model = run_in_process(_digits(tmp_path, digits_data_dir, split_round=None, **settings), timestamp="one",
                               echo=False)
    cohorts = run_in_process(_digits(tmp_path, digits_data_dir, split_round=1, **settings), timestamp="cohorts",
                             echo=False)

    # Assert: one model is tested on both views, its result the members' weighted sum (10 clients on each view)
    single = one_model.history[-1]
    assert single.view_members == {0: 10, 1: 10} and single.test is not None
    assert single.test == single.view_tests[0].times(10) + single.view_tests[1].times(10)
    # each cohort holds one group, is tested on its view only, and beats the one model there by far
    for final in cohorts.history[-2:]:
        assert final.view_members == {final.cohort: 10} and final.view_tests == {}
        assert final.test is not None and final.test.num_samples == single.view_tests[0].num_samples
        assert final.test.top1 > single.view_tests[final.cohort].top1 + 0.15


def test_a_run_resumed_after_the_split_ends_with_the_models_of_the_uninterrupted_run(
        tmp_path: Path, digits_data_dir: Path) -> None:
    # Prepare: the whole run, and one stopped after round 3 (a checkpoint of two cohorts)
    whole = run_in_process(_digits(tmp_path, digits_data_dir), timestamp="whole", echo=False)
    run_in_process(_digits(tmp_path, digits_data_dir, rounds=3), timestamp="resumed", echo=False)

    # Execute
    resumed = run_in_process(_digits(tmp_path, digits_data_dir), timestamp="resumed", echo=False, resume=True)

    # Assert
    assert [(metrics.round, metrics.cohort) for metrics in resumed.history] == [(4, 0), (4, 1)]
    assert _models(resumed.run_dir) == _models(whole.run_dir)


def test_cohorts_are_refused_beside_halor_with_both_keys_named(tmp_path: Path, digits_data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="parity_cohorts and halor: True do not run together"):
        run_in_process(_digits(tmp_path, digits_data_dir, halor=True), timestamp="refused", echo=False)
