"""FedScale's Auxo job file (tests/unit/config/fixtures/upstream/fedscale/auxo/auxo.yml, as published) on digits:
Auxo switches on by the file's experiment folder, a cohort splits at the split round and each half then gets half
of the participants; a run resumed after the split ends as the run that was not interrupted."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from fedscale_halor.auxo.outcome import cohort_purity, view_top1
from fedscale_halor.config import ExperimentConfig
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.simulation.trace_generator import (
    generate_behavior_trace,
    generate_device_capacity,
    write_traces,
)

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "unit" / "config"))
from test_config_upstream_files import FIXTURES  # noqa: E402

# only the scale and the data set: the file's own learning rate, local steps, batch size and traces stay
SCALE = {"data_set": "digits", "data_map_file": "", "model": "digits_cnn", "partitioning": -1, "total_clients": 30,
         "num_participants": 10, "rounds": 6, "eval_interval": 3, "use_cuda": False, "save_checkpoint": True,
         "split_round": [2], "label_groups": 2}


def _auxo(tmp_path: Path, **overrides: object) -> ExperimentConfig:
    home = tmp_path / "FedScale"
    traces = home / "benchmark" / "dataset" / "data" / "device_info"
    if not traces.exists():
        write_traces(traces, generate_device_capacity(30, seed=0), generate_behavior_trace(30, seed=0))
    path = tmp_path / "auxo.yml"
    shutil.copyfile(FIXTURES / "fedscale" / "auxo" / "auxo.yml", path)
    return load_config(path, environ={"FEDSCALE_HOME": str(home), "HOME": str(tmp_path)},
                       overrides={**SCALE, "data_dir": str(tmp_path / "digits"), "log_path": str(tmp_path / "logs"),
                                  **overrides})


def test_fedscale_auxo_file_splits_a_cohort_at_its_split_round_on_digits(tmp_path: Path) -> None:
    # Prepare
    cfg = _auxo(tmp_path)
    assert cfg.job.num_participants == 10 and cfg.job.local_steps == 10 and cfg.job.learning_rate == 0.05

    # Execute
    outcome = run_in_process(cfg, timestamp="auxo", echo=False)

    # Assert: one cohort until its second clustering (round 3: round 1's updates are never clustered), then two
    cohorts = {}
    for metrics in outcome.history:
        cohorts.setdefault(metrics.round, []).append(metrics.cohort)
    assert [cohorts[round_index] for round_index in (1, 2, 3)] == [[0], [0], [0]]
    assert [cohorts[round_index] for round_index in (4, 5, 6)] == [[0, 1]] * 3
    after = [metrics for metrics in outcome.history if metrics.round >= 4]
    assert all(len(metrics.participants) <= 5 for metrics in after)
    final = [metrics for metrics in outcome.history if metrics.round == 6]
    assert sum(metrics.members for metrics in final) == 30
    assert (outcome.run_dir / "checkpoint" / "auxo_reward_table.json").is_file()


def test_a_resumed_auxo_run_ends_bit_identical(tmp_path: Path) -> None:
    whole = run_in_process(_auxo(tmp_path), timestamp="whole", echo=False)
    run_in_process(_auxo(tmp_path, rounds=3), timestamp="resumed", echo=False)

    resumed = run_in_process(_auxo(tmp_path), timestamp="resumed", echo=False, resume=True)

    for name in ("model.safetensors", "cohort_1.safetensors", "auxo_reward_table.json", "cohorts.json"):
        resumed_bytes = (resumed.run_dir / "checkpoint" / name).read_bytes()
        assert resumed_bytes == (whole.run_dir / "checkpoint" / name).read_bytes(), name


@pytest.mark.slow
def test_auxo_separates_the_planted_digits_groups_and_each_cohort_beats_the_single_model(tmp_path: Path) -> None:
    # Prepare: 40 clients in two planted label groups, half of them per round; the cohort splits at its 5th
    # clustering (round 6). The reward table then moves the clients the first k-means put on the wrong side.
    scale = {"total_clients": 40, "num_participants": 20, "split_round": [5], "rounds": 25, "eval_interval": 25}

    # Execute
    auxo = run_in_process(_auxo(tmp_path, **scale), timestamp="auxo", echo=False)
    single = run_in_process(_auxo(tmp_path, **scale, auxo=False), timestamp="fedavg", echo=False)

    # Assert: two cohorts, at least 90% of the clients with their own group, and each cohort's model better on
    # the group most of its members hold than the single model on that group
    final = [metrics for metrics in auxo.history if metrics.round == 25]
    assert sorted(metrics.cohort for metrics in final) == [0, 1]
    assert cohort_purity(final) >= 0.9
    (one_model,) = [metrics for metrics in single.history if metrics.round == 25]
    single_top1 = view_top1(one_model)
    groups = set()
    for metrics in final:
        group = max(metrics.view_members, key=metrics.view_members.get)
        groups.add(group)
        assert view_top1(metrics)[group] > single_top1[group] + 0.05, (metrics.cohort, group)
    assert groups == {0, 1}
