"""What the gRPC runtime costs over the in-memory transport on the same work, and the bytes it moves per round.

    python benchmark/perf/transport_overhead.py [--jobs digits resnet18] [--rounds N]

Each job runs three times with one executor of 2 threads (2 training lanes): in one process over the in-memory
transport (``--in-process``), and as real processes over gRPC on loopback (``fedscale-halor start``), once with
payloads passed through shared memory (the default for executors on the aggregator's host) and once streamed in
gRPC chunks (``shared_memory: false``, what remote executors do). Prints the median seconds per round (round 1 left
out), the overheads, and the payload bytes per round each way.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    REPO_ROOT,
    Measured,
    round_seconds_from_metrics,
    start_job,
    wait_for_quiet_machine,
    write_synthetic_spec,
)

_TRAFFIC = re.compile(r"gRPC traffic: (\d+) bytes to executors, (\d+) bytes from executors")
MIB = 2**20


@dataclass(frozen=True)
class Job:
    config: Path
    overrides: dict[str, object]
    synthetic: dict[str, object] | None = None


JOBS = {
    # the main job of the quick start, as shipped
    "digits": Job(REPO_ROOT / "benchmark" / "configs" / "digits" / "conf.yml", {"rounds": 10}),
    # ResNet-18 on 32x32 colour images: 45 MB of weights per update
    "resnet18": Job(REPO_ROOT / "benchmark" / "perf" / "reference_workload.yml",
                    {"job_name": "resnet18_32", "model": "resnet18", "total_clients": 40, "num_participants": 4,
                     "local_steps": 3, "batch_size": 16, "rounds": 8, "test_bsz": 100},
                    {"num_train": 2_000, "num_test": 100, "num_classes": 10, "input_shape": [3, 32, 32], "seed": 0}),
}


def _traffic(run_dir: Path) -> tuple[int, int]:
    match = _TRAFFIC.search((run_dir / "aggregator.log").read_text())
    if match is None:
        raise RuntimeError(f"{run_dir / 'aggregator.log'} has no gRPC traffic line")
    return int(match[1]), int(match[2])


def measure(name: str, job: Job, work: Path, rounds: int | None, variant: str) -> tuple[Measured, Path]:
    overrides = {**job.overrides, "log_path": work / "logs", "worker_ips": "127.0.0.1:[1]", "executor_threads": 2,
                 "save_checkpoint": False, "shared_memory": variant != "streamed"}
    if rounds is not None:
        overrides["rounds"] = rounds
    if job.synthetic is not None:
        overrides["data_dir"] = write_synthetic_spec(work / f"{name}_data", **job.synthetic)
    timestamp = f"{name}_{variant}"
    memory = start_job(job.config, overrides, timestamp, in_process=variant == "memory",
                       log_file=work / f"{timestamp}.log")
    run_dir = next((work / "logs").glob(f"*/{timestamp}"))
    return Measured(round_seconds_from_metrics(run_dir), memory, {}), run_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", nargs="+", choices=sorted(JOBS), default=sorted(JOBS))
    parser.add_argument("--rounds", type=int, help="override each job's number of rounds")
    args = parser.parse_args()
    lines = []
    with tempfile.TemporaryDirectory(prefix="transport_overhead_") as scratch:
        work = Path(scratch)
        for name in args.jobs:
            runs = {}
            for variant in ("memory", "shared", "streamed"):
                wait_for_quiet_machine()
                runs[variant] = measure(name, JOBS[name], work, args.rounds, variant)
                print(f"  {name} {variant}: rounds {', '.join(f'{s:.2f}' for s in runs[variant][0].round_seconds)}",
                      flush=True)
            down, up = _traffic(runs["shared"][1])
            rounds = len(runs["shared"][0].round_seconds)
            memory_s, shared_s, streamed_s = (runs[variant][0].median_round_s()
                                              for variant in ("memory", "shared", "streamed"))
            lines.append(f"{name:<10}{memory_s:>11.3f}{shared_s:>9.3f}{(shared_s / memory_s - 1) * 100:>+8.1f}%"
                         f"{streamed_s:>11.3f}{(streamed_s / memory_s - 1) * 100:>+8.1f}%"
                         f"{down / rounds / MIB:>10.1f}{up / rounds / MIB:>9.1f}")
    print("\nseconds per round (median, round 1 left out), 1 executor with 2 threads; MiB of payload per round")
    print(f"{'job':<10}{'in-memory':>11}{'gRPC shm':>18}{'gRPC streamed':>20}{'MiB down':>10}{'MiB up':>9}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
