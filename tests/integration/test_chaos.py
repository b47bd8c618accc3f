"""kill -9 of a real `fedscale-halor start` aggregator at a round a seeded generator picks; `start --resume` of the
same timestamp ends with the model, bit for bit, of the same job run without a stop, and sweeps the shared-memory
folder the killed aggregator left behind. (A killed executor is test_executor_exit's.)"""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import pytest
import torch
from forked_jobs import chaos_rng, end_orphans, forked_children, start_job, wait_for_round, wait_into_round

from fedscale_halor.server.checkpoint import load_checkpoint
from fedscale_halor.transport.shared_memory import PARENT_VARIABLE, FolderOwner

ROUNDS = 5


def _settings(log_path: Path, data_dir: Path) -> dict[str, object]:
    # a checkpoint after every round; executors that lost their aggregator give up after 2 s, not a minute
    return {"log_path": log_path, "data_dir": data_dir, "ps_port": 0, "rounds": ROUNDS, "eval_interval": 1,
            "total_clients": 40, "num_participants": 8, "local_steps": 10, "worker_ips": "127.0.0.1:[2]",
            "reconnect_timeout": 2}


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as lines:
        return list(csv.DictReader(lines))


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state, weights = load_checkpoint(run_dir / "checkpoint")
    assert state.round == ROUNDS
    return weights


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, digits_data_dir: Path) -> dict[str, torch.Tensor]:
    """The final model of the job run to its end without a stop."""
    root = tmp_path_factory.mktemp("uninterrupted")
    (root / "shm").mkdir()
    job = start_job("whole", _settings(root / "logs", digits_data_dir), env={PARENT_VARIABLE: str(root / "shm")})
    output, _ = job.communicate(timeout=300)
    assert job.returncode == 0, output
    return _final_weights(root / "logs" / "digits" / "whole")


@pytest.mark.parametrize("default_seed", [1, 6])  # 45 % into round 3, 66 % into the last round
def test_a_resumed_run_after_a_kill_of_the_aggregator_ends_with_the_model_of_a_run_never_stopped(
        tmp_path: Path, digits_data_dir: Path, uninterrupted: dict[str, torch.Tensor], default_seed: int) -> None:
    # Prepare: in which round the aggregator dies, after a checkpoint and its previous one, and how far into it (a
    # share of the round before's time, so that the kill lands in the round whatever the machine's speed)
    seed, rng = chaos_rng(default_seed)
    after_round, share = rng.randint(2, ROUNDS - 1), rng.uniform(0.0, 0.8)
    chosen = f"seed {seed}: killed {share:.0%} into round {after_round + 1}"
    settings = _settings(tmp_path / "logs", digits_data_dir)
    shm = tmp_path / "shm"
    shm.mkdir()
    env = {PARENT_VARIABLE: str(shm)}
    run_dir = tmp_path / "logs" / "digits" / "cut"
    job = start_job("cut", settings, env=env)

    # Execute: kill -9 the aggregator mid-job, then its executors unless they leave on their own
    wait_for_round(run_dir, 1, job)
    executors = forked_children(job.pid)
    wait_into_round(run_dir, after_round, share, job)
    os.kill(job.pid, signal.SIGKILL)
    output, _ = job.communicate(timeout=60)
    end_orphans(executors, grace_s=30)
    [left] = list(shm.iterdir())
    resumed = start_job("cut", settings, resume=True, env=env)
    resumed_output, _ = resumed.communicate(timeout=300)

    # Assert
    assert job.returncode == -signal.SIGKILL, f"{chosen}\n{output}"
    assert len(executors) == 2, chosen
    assert resumed.returncode == 0, f"{chosen}\n{resumed_output}"
    weights = _final_weights(run_dir)
    for key, tensor in uninterrupted.items():
        assert torch.equal(weights[key], tensor), f"{chosen}: {key}"
    assert [int(row["round"]) for row in _metrics(run_dir)] == list(range(1, ROUNDS + 1)), chosen
    # the folder of the killed aggregator, named after it, is gone with the resumed job's own
    owner = FolderOwner.from_name(left.name)
    assert owner is not None and owner.pid == job.pid, left
    assert list(shm.iterdir()) == [], chosen
    assert (f"removed the stale shared-memory folder {left}: its aggregator, pid {job.pid}, is dead"
            in (run_dir / "aggregator.log").read_text()), chosen
