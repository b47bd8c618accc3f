"""A forked executor's death is known from its exit, not after the executor timeout; executor_restarts starts it
again. Both runs end with the model of a run that lost nothing."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fedscale_halor.config.loader import load_config
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.server.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"

pytestmark = pytest.mark.slow


def _settings(tmp_path: Path, data_dir: Path) -> dict[str, object]:
    # an executor timeout far beyond the job's length: only the exit can tell the aggregator in time
    return {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "ps_port": 0, "rounds": 6,
            "eval_interval": 6, "total_clients": 60, "num_participants": 30, "local_steps": 20,
            "worker_ips": "127.0.0.1:[2]", "executor_timeout": 600}


def _forked_children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(child) for child in task.read_text().split()]
    return [child for child in children if b"fedscale_halor.cli" in Path(f"/proc/{child}/cmdline").read_bytes()]


@pytest.mark.parametrize("restarts", [0, 1], ids=["reassigned", "restarted"])
def test_a_killed_forked_executor_is_declared_dead_at_its_exit(tmp_path: Path, digits_data_dir: Path,
                                                               restarts: int) -> None:
    # Prepare
    settings = {**_settings(tmp_path, digits_data_dir), "executor_restarts": restarts}
    command = [sys.executable, "-m", "fedscale_halor.cli", "start", str(DIGITS_CONF), "--timestamp", "exit"]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    run_dir = tmp_path / "logs" / "digits" / "exit"

    # Execute: once round 1 is logged, kill -9 one of the two forked executors
    start = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and start.poll() is None:
        metrics = run_dir / "metrics.csv"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    victims = _forked_children(start.pid)
    assert len(victims) == 2, victims
    os.kill(victims[1], signal.SIGKILL)
    output, _ = start.communicate(timeout=300)

    # Assert: every round completes with all 30 clients, long before a 600 s timeout could have fired
    assert start.returncode == 0, output
    log = (run_dir / "aggregator.log").read_text()
    assert f"(pid {victims[1]}, signal 9): declared dead" in log, log[-3000:]
    assert ("executor_1 started again" in log) == (restarts == 1)
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [row["completed"] for row in rows] == ["30"] * 6
    memory = run_in_process(load_config(DIGITS_CONF, overrides={**settings, "log_path": str(tmp_path / "memory")}),
                            echo=False)
    _, weights = load_checkpoint(run_dir / "checkpoint")
    for key, tensor in memory.final_weights.items():
        assert torch.equal(weights[key], tensor), key
