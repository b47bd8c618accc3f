"""Real processes on loopback: an aggregator serving gRPC and executor processes, as users run them."""

import contextlib
import csv
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from fedscale_halor.config.serialize import dump_config
from fedscale_halor.launch.executor_main import TOKEN_VARIABLE
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.local import run_local
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.checkpoint import load_checkpoint
from fedscale_halor.server.service import BoardService
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"

pytestmark = pytest.mark.slow


def _digits(tmp_path: Path, data_dir: Path, **overrides: object):
    settings = {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "ps_port": 0, "rounds": 3,
                "eval_interval": 3, "total_clients": 60, "num_participants": 30, "local_steps": 5,
                "worker_ips": "127.0.0.1:[3]", **overrides}
    return load_config(DIGITS_CONF, overrides=settings)


def _executor_pids(config_path: Path, rank: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(config_path).encode() in argv and b"--rank" in argv and argv[argv.index(b"--rank") + 1] == str(
                rank).encode():
            pids.append(int(entry.name))
    return pids


def test_three_executor_processes_train_thirty_clients_per_round(tmp_path: Path, digits_data_dir: Path) -> None:
    outcome = run_local(_digits(tmp_path, digits_data_dir), timestamp="grpc3", echo=False)

    rows = list(csv.DictReader((outcome.run_dir / "metrics.csv").open()))
    assert [(row["round"], row["completed"]) for row in rows] == [("1", "30"), ("2", "30"), ("3", "30")]
    assert float(rows[-1]["test_top1"]) > 0.3
    for rank in range(3):
        log = (outcome.run_dir / f"executor_{rank}.log").read_text()
        assert "shutting down" in log, log[-2000:]
    assert _executor_pids(outcome.run_dir / "config.yml", 0) == []


def test_grpc_and_memory_transports_and_executor_counts_give_the_same_model(tmp_path: Path,
                                                                           digits_data_dir: Path) -> None:
    one = run_local(_digits(tmp_path, digits_data_dir, worker_ips="127.0.0.1:[1]", rounds=2), echo=False)
    three = run_local(_digits(tmp_path, digits_data_dir, rounds=2), echo=False)
    memory = run_in_process(_digits(tmp_path, digits_data_dir, rounds=2), echo=False)

    for key in one.final_weights:
        assert torch.equal(one.final_weights[key], three.final_weights[key]), key
        assert torch.equal(one.final_weights[key], memory.final_weights[key]), key


def test_killing_an_executor_mid_round_still_completes_every_round(tmp_path: Path, digits_data_dir: Path) -> None:
    # Prepare: long enough rounds that the kill lands inside one; a short executor timeout to notice it
    # enough rounds after the kill that the 3 s executor timeout elapses before the job ends
    cfg = _digits(tmp_path, digits_data_dir, rounds=10, local_steps=40, executor_timeout=3)
    run_dir = tmp_path / "logs" / "digits" / "kill"
    outcome: list = []
    job = threading.Thread(target=lambda: outcome.append(run_local(cfg, timestamp="kill", echo=False)))
    job.start()

    # Execute: once round 1 is done, kill -9 executor 1
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        metrics = run_dir / "metrics.csv"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.1)
    victims = _executor_pids(run_dir / "config.yml", 1)
    assert victims, "executor 1 was not found"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    job.join(timeout=300)

    # Assert
    assert not job.is_alive()
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [row["round"] for row in rows] == [str(r) for r in range(1, 11)]
    assert all(row["completed"] == "30" for row in rows)
    assert "declared dead" in (run_dir / "aggregator.log").read_text()


def test_an_executor_with_a_wrong_token_is_refused_and_the_refusal_logged(tmp_path: Path, digits_data_dir: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    cfg = _digits(tmp_path, digits_data_dir)
    config_path = tmp_path / "conf.yml"
    dump_config(cfg, config_path)
    board = WorkBoard()
    with GrpcAggregatorServer(BoardService(board, "the-real-token"), "127.0.0.1", 0, chunk_bytes=2**20) as server:
        port = server.port
        completed = subprocess.run(
            [sys.executable, "-m", "fedscale_halor.launch.executor_main", "--config", str(config_path), "--rank",
             "0", "--address", f"127.0.0.1:{port}"],
            env={**os.environ, TOKEN_VARIABLE: "a-wrong-token"}, capture_output=True, text=True, timeout=120)

    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "refused" in completed.stdout + completed.stderr
    assert board.executor_count == 0
    assert any("refused executor executor_0" in record.getMessage() for record in caplog.records)


def test_executors_exit_cleanly_when_the_aggregator_goes_away(tmp_path: Path, digits_data_dir: Path) -> None:
    cfg = _digits(tmp_path, digits_data_dir, reconnect_timeout=2)  # the executor's wait for it to come back
    config_path = tmp_path / "conf.yml"
    dump_config(cfg, config_path)
    board = WorkBoard()
    server = GrpcAggregatorServer(BoardService(board, "token"), "127.0.0.1", 0, chunk_bytes=2**20)
    port = server.start()
    executor = subprocess.Popen(
        [sys.executable, "-m", "fedscale_halor.launch.executor_main", "--config", str(config_path), "--rank", "0",
         "--address", f"127.0.0.1:{port}"], env={**os.environ, TOKEN_VARIABLE: "token"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert board.wait_for_executors(1, timeout_s=60)

    server.stop()
    output, _ = executor.communicate(timeout=120)

    assert executor.returncode == 0, output
    assert "aggregator is gone" in output


def test_start_forks_its_executors_and_they_train_the_same_model_as_threads(tmp_path: Path,
                                                                            digits_data_dir: Path) -> None:
    # Prepare: the same small job as a user's `start` (executors forked) and in one process
    settings = ["log_path=" + str(tmp_path / "logs"), "data_dir=" + str(digits_data_dir), "ps_port=0", "rounds=2",
                "eval_interval=2", "total_clients=60", "num_participants=30", "local_steps=5",
                "worker_ips=127.0.0.1:[2]"]
    command = [sys.executable, "-m", "fedscale_halor.cli", "start", str(DIGITS_CONF), "--timestamp", "forked"]
    for setting in settings:
        command += ["--set", setting]

    # Execute
    start = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = tmp_path / "logs" / "digits" / "forked"
    children: dict[int, bytes] = {}  # pid -> command line, as first read
    sightings: Counter[int] = Counter()  # pid -> polls that read that command line again
    while start.poll() is None:
        for task in Path(f"/proc/{start.pid}/task").glob("*/children"):
            for pid in task.read_text().split():
                with contextlib.suppress(OSError):  # a child may end between the two reads
                    line = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if children.setdefault(int(pid), line) == line:
                        sightings[int(pid)] += 1
        time.sleep(0.05)
    output = start.stdout.read() if start.stdout else ""
    memory = run_in_process(_digits(tmp_path, digits_data_dir, rounds=2, worker_ips="127.0.0.1:[2]"), echo=False)

    # Assert
    assert start.returncode == 0, output
    # forked, not new interpreters: the executors carry the command line of `start` itself. Other short-lived
    # children (ctypes.util.find_library runs `ldconfig -p`) are not executors and are not counted: caught between
    # their fork and their exec they carry `start`'s command line too, but only for an instant, where an executor
    # lives through the whole job
    executors = [line for pid, line in children.items() if b"fedscale_halor" in line and sightings[pid] >= 3]
    assert len(executors) == 2 and all(b"fedscale_halor.cli" in line for line in executors), (children, sightings)
    for rank in range(2):
        assert "shutting down (job finished)" in (run_dir / f"executor_{rank}.log").read_text()
    assert "final test accuracy" in output
    _, forked_weights = load_checkpoint(run_dir / "checkpoint")
    for key, tensor in memory.final_weights.items():
        assert torch.equal(forked_weights[key], tensor), key
