"""A job over a million synthetic clients: how long it takes to start and what the process holds beyond PyTorch.

    python benchmark/perf/million_start.py [--clients 1000000] [--sample-mode random|oort] [--rounds 3]

The data set (5 synthetic samples of 8 features per client) is prepared first, in its own process, as ``prepare``
would. Then a fresh process imports PyTorch and the package (its baseline RSS), and runs the job in one process
(``run_in_process``: the aggregator, and one executor of 2 lanes sharing its data set view): partition,
registration with the selector, and ``--rounds`` rounds of 100 clients. It prints the seconds to the end of round 1
(the start: partition, registration, first selection, one round of training), the later rounds' seconds, and the
peak RSS beyond the baseline (an upper bound of the aggregator's own share: the executor lives in it too).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SAMPLES_PER_CLIENT = 5


def _job(clients: int, data_dir: Path, log_path: Path, sample_mode: str, rounds: int) -> dict[str, object]:
    return {"ps_ip": "127.0.0.1", "worker_ips": ["127.0.0.1:[1]"], "job_conf": [
        {"job_name": "million"}, {"data_set": "synthetic"}, {"data_dir": str(data_dir)}, {"model": "digits_mlp"},
        {"total_clients": clients}, {"partitioning": -1}, {"num_participants": 100}, {"rounds": rounds},
        {"local_steps": 1}, {"batch_size": SAMPLES_PER_CLIENT}, {"eval_interval": 1000}, {"save_checkpoint": False},
        {"log_path": str(log_path)}, {"sample_mode": sample_mode}, {"executor_threads": 2}]}


def _memory_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process, in MiB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def measure(job_file: Path, prepare_only: bool) -> dict[str, object]:
    import torch  # noqa: F401 -- the baseline holds PyTorch itself

    from fedscale_halor.data.federated import FederatedDataset
    from fedscale_halor.launch.inprocess import run_in_process
    from fedscale_halor.launch.jobfile import config_from_mapping

    cfg = config_from_mapping(json.loads(job_file.read_text()), job_file)
    if prepare_only:
        started = time.perf_counter()
        FederatedDataset.from_job(cfg.job)
        return {"prepare_s": time.perf_counter() - started}
    baseline_mib, _ = _memory_mib()
    started = time.perf_counter()
    outcome = run_in_process(cfg, echo=False)
    total_s = time.perf_counter() - started
    rounds = [metrics.wall_time_s for metrics in outcome.history]
    _, peak_mib = _memory_mib()
    return {"start_s": total_s - sum(rounds[1:]), "later_rounds_s": rounds[1:], "baseline_mib": baseline_mib,
            "beyond_baseline_mib": peak_mib - baseline_mib}


def run(clients: int, sample_mode: str, rounds: int, scratch: Path) -> dict[str, object]:
    data_dir = scratch / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "synthetic.json").write_text(json.dumps({"num_train": clients * SAMPLES_PER_CLIENT, "num_test": 200,
                                                         "input_shape": [8], "num_classes": 10}))
    job_file = scratch / "job.json"
    job_file.write_text(json.dumps(_job(clients, data_dir, scratch / "logs", sample_mode, rounds)))
    figures: dict[str, object] = {}
    for step in ("prepare", "measure"):
        out = subprocess.run([sys.executable, __file__, "--child", str(job_file), *(["--prepare"] if step == "prepare"
                                                                                    else [])],
                             check=True, capture_output=True, text=True)
        figures.update(json.loads(out.stdout.strip().splitlines()[-1]))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--sample-mode", default="random")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.prepare)))
        return 0
    with tempfile.TemporaryDirectory(prefix="million_start_") as scratch:
        figures = run(args.clients, args.sample_mode, args.rounds, Path(scratch))
    later = ", ".join(f"{seconds:.2f}" for seconds in figures["later_rounds_s"])  # type: ignore[union-attr]
    print(f"{args.clients} clients, {args.sample_mode} selection: prepare {figures['prepare_s']:.1f} s (once); "
          f"start to the end of round 1 {figures['start_s']:.1f} s; later rounds {later} s; "
          f"peak RSS beyond PyTorch {figures['beyond_baseline_mib']:.0f} MiB "
          f"(PyTorch and the package: {figures['baseline_mib']:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
