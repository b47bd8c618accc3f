"""What Halor's pre-round step costs inside a real job: the digits quick-start job over gRPC, Halor off and on.

    python benchmark/perf/halor_in_job.py [--rounds 30] [--executors 2]

Runs ``fedscale-halor start`` on benchmark/configs/digits/halor.yml twice, as real processes over gRPC on loopback:
with ``halor: False`` and with Halor on (resampling ``over``, so both runs train on the same amount of data and the
round times differ only by the protocol). Prints the median seconds per round (round 1 left out: it holds the
executors' warm-up and, with Halor, the first fetch of public keys), the median seconds of the Halor step itself as
the aggregator logs it, its share of the round, and the extra gRPC bytes per round.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO_ROOT, round_seconds_from_metrics, start_job, wait_for_quiet_machine

CONFIG = REPO_ROOT / "benchmark" / "configs" / "digits" / "halor.yml"
_STEP = re.compile(r"round (\d+): Halor sum over \d+ of \d+ sampled clients in ([0-9.]+) s")
_TRAFFIC = re.compile(r"gRPC traffic: (\d+) bytes to executors, (\d+) bytes from executors")


def run(halor: bool, rounds: int, executors: int, log_path: Path) -> tuple[float, float | None, int]:
    """Median round seconds, median Halor step seconds (None when off), and total gRPC bytes of the job."""
    timestamp = "halor_on" if halor else "halor_off"
    overrides = {"halor": halor, "halor_resample": "over", "rounds": rounds, "eval_interval": rounds,
                 "log_path": log_path, "ps_port": 0, "worker_ips": f"127.0.0.1:[{executors}]"}
    start_job(CONFIG, overrides, timestamp, log_file=log_path / f"{timestamp}.out")
    run_dir = log_path / "digits_halor" / timestamp
    log = (run_dir / "aggregator.log").read_text()
    steps = [float(seconds) for round_index, seconds in _STEP.findall(log) if int(round_index) > 1]
    traffic = _TRAFFIC.search(log)
    if traffic is None:
        raise RuntimeError(f"no gRPC traffic line in {run_dir / 'aggregator.log'}")
    round_s = statistics.median(round_seconds_from_metrics(run_dir)[1:])
    return round_s, statistics.median(steps) if steps else None, int(traffic[1]) + int(traffic[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--executors", type=int, default=2)
    args = parser.parse_args()
    wait_for_quiet_machine()
    with tempfile.TemporaryDirectory(prefix="halor_in_job_") as scratch:
        off_round_s, _, off_bytes = run(False, args.rounds, args.executors, Path(scratch))
        on_round_s, step_s, on_bytes = run(True, args.rounds, args.executors, Path(scratch))
    assert step_s is not None
    print(f"digits, 100 clients, 10 per round, {args.executors} executors over gRPC, {args.rounds} rounds")
    print(f"{'':<12}{'s/round':>10}{'Halor step s':>14}{'share':>8}{'KiB/round':>11}")
    print(f"{'Halor off':<12}{off_round_s:>10.3f}{'-':>14}{'-':>8}{off_bytes / args.rounds / 1024:>11.1f}")
    print(f"{'Halor on':<12}{on_round_s:>10.3f}{step_s:>14.4f}{step_s / on_round_s:>8.1%}"
          f"{on_bytes / args.rounds / 1024:>11.1f}")
    print(f"extra gRPC bytes per round with Halor: {(on_bytes - off_bytes) / args.rounds / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
