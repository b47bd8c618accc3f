"""The Slurm batch script, checked line by line against hand-written expectations."""

from pathlib import Path

from fedscale_halor.config.loader import config_from_mapping
from fedscale_halor.launch.slurm_script import batch_plan, batch_script, directives


def _config(**deployment: object) -> object:
    return config_from_mapping({"launcher": "slurm", **deployment,
                                "job_conf": [{"job_name": "digits run"}, {"executor_threads": 4}]}, None)


def test_a_gpu_job_asks_for_one_task_per_slot_with_its_gpus_and_runs_two_steps() -> None:
    cfg = _config(worker_ips=["node:[2,1]"], slurm_partition="gpu", slurm_account="lab", slurm_time="02:00:00",
                  slurm_gpus_per_executor=1, slurm_executors_per_node=4, slurm_extra_directives=["--mem=16G"],
                  setup_commands=["source /opt/venv/bin/activate"])

    script = batch_script(batch_plan(cfg, Path("/shared/logs/digits/t1"), "/shared/code"))

    assert script.splitlines() == [
        "#!/bin/bash",
        "#SBATCH --job-name=digits_run",
        "#SBATCH --output=/shared/logs/digits/t1/slurm-%j.out",
        "#SBATCH --open-mode=append",
        "#SBATCH --requeue",
        "#SBATCH --ntasks=3",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "#SBATCH --time=02:00:00",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --mem=16G",
        "# job digits run: written by fedscale-halor submit; the run's logs are in /shared/logs/digits/t1",
        "cd /shared/code || { echo 'cannot enter exp_path /shared/code' >&2; exit 1; }",
        "{",
        "source /opt/venv/bin/activate",
        "} || { status=$?; printf 'setup command failed with exit status %s: %s\\n' \"$status\" "
        "'source /opt/venv/bin/activate' >&2; exit 97; }",
        'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        'srun --overlap --nodes=1 --ntasks=1 --nodelist="$head_node" --cpus-per-task=1 --gres=none '
        "--output=/shared/logs/digits/t1/aggregator.log --open-mode=append "
        "python -m fedscale_halor.launch.slurm_task aggregator --run-dir /shared/logs/digits/t1 &",
        "aggregator=$!",
        "srun --ntasks=3 --cpus-per-task=4 --gpus-per-task=1 --ntasks-per-node=4 "
        "--output=/shared/logs/digits/t1/executor_%t.log --open-mode=append "
        "python -m fedscale_halor.launch.slurm_task executor --run-dir /shared/logs/digits/t1 &",
        "executors=$!",
        'wait "$aggregator"',
        "status=$?",
        '[ "$status" -eq 0 ] || kill "$executors" 2>/dev/null',
        'wait "$executors"',
        'exit "$status"',
    ]


def test_a_cpu_job_passes_no_gpu_option_and_leaves_partition_account_and_time_to_the_cluster() -> None:
    cfg = _config(worker_ips=["a:[1]", "b:[1]"], slurm_cpus_per_executor=2)

    plan = batch_plan(cfg, Path("/logs/run"), "/code")
    script = batch_script(plan)

    assert directives(plan) == ["--job-name=digits_run", "--output=/logs/run/slurm-%j.out", "--open-mode=append",
                                "--requeue", "--ntasks=2", "--cpus-per-task=2"]
    assert "gpu" not in script and "gres" not in script
    assert ("srun --ntasks=2 --cpus-per-task=2 --output=/logs/run/executor_%t.log --open-mode=append python -m "
            "fedscale_halor.launch.slurm_task executor --run-dir /logs/run &") in script.splitlines()


def test_executor_threads_set_the_cpus_of_an_executor_task_when_no_slurm_key_does() -> None:
    cfg = config_from_mapping({"job_conf": [{"executor_threads": 0}]}, None)

    assert batch_plan(cfg, Path("/r"), "/c").cpus_per_executor == 1
    assert batch_plan(_config(), Path("/r"), "/c").cpus_per_executor == 4
