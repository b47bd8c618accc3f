"""A forked executor's death is known from its exit, not after the executor timeout; executor_restarts starts it
again. Both runs end with the model of a run that lost nothing. The round the executor dies in is drawn by a
seeded generator (forked_jobs.chaos_rng)."""

import csv
import os
import signal
from pathlib import Path

import pytest
import torch
from forked_jobs import DIGITS_CONF, chaos_rng, forked_children, start_job, wait_into_round

from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.server.checkpoint import load_checkpoint

ROUNDS = 6

pytestmark = pytest.mark.slow


def _settings(tmp_path: Path, data_dir: Path) -> dict[str, object]:
    # an executor timeout far beyond the job's length: only the exit can tell the aggregator in time
    return {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "ps_port": 0, "rounds": ROUNDS,
            "eval_interval": ROUNDS, "total_clients": 60, "num_participants": 30, "local_steps": 20,
            "worker_ips": "127.0.0.1:[2]", "executor_timeout": 600}


@pytest.mark.parametrize("restarts", [0, 1], ids=["reassigned", "restarted"])
def test_a_killed_forked_executor_is_declared_dead_at_its_exit(tmp_path: Path, digits_data_dir: Path,
                                                               restarts: int) -> None:
    # Prepare: when the kill comes: a round's line and a share of that round's time after it, before the last round
    seed, rng = chaos_rng(restarts + 1)
    after_round, share = rng.randint(1, ROUNDS - 2), rng.uniform(0.0, 0.8)
    settings = {**_settings(tmp_path, digits_data_dir), "executor_restarts": restarts}
    run_dir = tmp_path / "logs" / "digits" / "exit"

    # Execute: once that round is logged, kill -9 one of the two forked executors
    start = start_job("exit", settings)
    delay_s = wait_into_round(run_dir, after_round, share, start)
    chosen = f"seed {seed}: killed {delay_s:.2f} s after the line of round {after_round}"
    victims = forked_children(start.pid)
    assert len(victims) == 2, f"{chosen}: {victims}"
    os.kill(victims[1], signal.SIGKILL)
    output, _ = start.communicate(timeout=300)

    # Assert: every round completes with all 30 clients, long before a 600 s timeout could have fired
    assert start.returncode == 0, f"{chosen}\n{output}"
    log = (run_dir / "aggregator.log").read_text()
    assert f"(pid {victims[1]}, signal 9): declared dead" in log, f"{chosen}\n{log[-3000:]}"
    assert ("executor_1 started again" in log) == (restarts == 1), chosen
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [row["completed"] for row in rows] == ["30"] * ROUNDS, chosen
    memory = run_in_process(load_config(DIGITS_CONF, overrides={**settings, "log_path": str(tmp_path / "memory")}),
                            echo=False)
    _, weights = load_checkpoint(run_dir / "checkpoint")
    for key, tensor in memory.final_weights.items():
        assert torch.equal(weights[key], tensor), f"{chosen}: {key}"
