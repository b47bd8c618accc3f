"""What a task of a Slurm job reads from Slurm's environment and the shared run folder."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fedscale_halor.launch.slurm_task import (
    AggregatorAddress,
    attempt_of,
    has_checkpoint,
    node_address,
    task_gpu_index,
    wait_for_address,
    write_address,
)


def test_an_executor_takes_the_first_gpu_slurm_left_it_or_its_local_rank_on_a_node_that_shows_all() -> None:
    assert task_gpu_index({"CUDA_VISIBLE_DEVICES": "3", "SLURM_LOCALID": "2"}) == 0
    assert task_gpu_index({"SLURM_LOCALID": "2"}) == 2
    assert task_gpu_index({"CUDA_VISIBLE_DEVICES": "", "SLURM_LOCALID": "1"}) == 1
    assert task_gpu_index({}) == 0


def test_a_requeued_job_keeps_its_id_and_counts_its_restarts() -> None:
    assert attempt_of({"SLURM_JOB_ID": "42", "SLURM_RESTART_COUNT": "2"}) == ("42", "2")
    assert attempt_of({"SLURM_JOB_ID": "42"}) == ("42", "0")


def test_an_executor_waits_for_the_address_of_its_own_attempt_not_the_one_before(tmp_path: Path) -> None:
    # Prepare: the address the job's first attempt left behind
    write_address(tmp_path, AggregatorAddress("node1", 4000, "42", "0"))

    def aggregator_of_the_requeued_job() -> None:
        time.sleep(0.3)
        write_address(tmp_path, AggregatorAddress("node7", 5000, "42", "1"))

    writer = threading.Thread(target=aggregator_of_the_requeued_job)
    writer.start()

    # Execute
    address = wait_for_address(tmp_path, "42", "1", timeout_s=10)
    writer.join()

    # Assert
    assert address == AggregatorAddress("node7", 5000, "42", "1")
    assert wait_for_address(tmp_path, "43", "0", timeout_s=0.3) is None
    assert [path.name for path in tmp_path.iterdir()] == ["aggregator_address"]  # no temporary file left


def test_the_aggregator_resumes_when_the_run_holds_a_checkpoint_or_its_previous_copy(tmp_path: Path) -> None:
    assert not has_checkpoint(tmp_path)
    (tmp_path / "checkpoint" / "previous").mkdir(parents=True)
    assert not has_checkpoint(tmp_path)  # an empty folder: no evaluation was saved yet
    (tmp_path / "checkpoint" / "previous" / "state.json").write_text("{}")
    assert has_checkpoint(tmp_path)


def test_executors_of_a_one_node_job_dial_loopback_and_others_the_node_name() -> None:
    assert node_address({"SLURM_JOB_NUM_NODES": "1", "SLURMD_NODENAME": "gpu17"}) == "127.0.0.1"
    assert node_address({"SLURM_JOB_NUM_NODES": "2", "SLURMD_NODENAME": "localhost"}) == "localhost"
