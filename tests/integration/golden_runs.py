"""Golden runs: a matrix of today's features on small digits jobs, each reduced to a fingerprint of its final model.

``golden_digests.json`` holds the fingerprints; ``test_golden_digests.py`` checks that every case still ends with
the same model. A change that alters a model on purpose records them again, from the repository root:

    .venv/bin/python tests/integration/golden_runs.py --record

Each fingerprint is the sha256 of the final weights as safetensors bytes, plus each tensor's sum and L2 norm: on a
machine whose torch build or CPU capability differs from the recording's, floating-point results may differ in the
last bits, and the test then compares the statistics instead of the digest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from fedscale_halor.cli import main as cli_main
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.local import run_local

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"
GOLDEN_FILE = Path(__file__).with_name("golden_digests.json")
BASE = {"rounds": 3, "eval_interval": 3, "total_clients": 30, "num_participants": 6, "local_steps": 3,
        "worker_ips": "127.0.0.1:[1]", "save_checkpoint": False, "tensorboard": False}
TRACES = {"overcommitment": 1.5}  # with device traces: a third more selected than needed, so there are stragglers
STALE = {**TRACES, "stale_update": -1}


@dataclass(frozen=True)
class Case:
    overrides: Mapping[str, object] = field(default_factory=dict)
    traces: bool = False
    grpc: bool = False  # forked executors over gRPC (run_local) instead of one process


CASES: dict[str, Case] = {
    "fedavg": Case(),
    "fedavg-3-executors": Case({"worker_ips": "127.0.0.1:[3]"}),
    "fedavg-grpc-1": Case(grpc=True),
    "fedavg-grpc-3": Case({"worker_ips": "127.0.0.1:[3]"}, grpc=True),
    "fedprox": Case({"gradient_policy": "fed-prox"}),
    "fedyogi": Case({"gradient_policy": "fed-yogi"}),
    "traces-deadline": Case({**TRACES, "exp_type": 1, "deadline": 40}, traces=True),
    "traces-first-k": Case({**TRACES, "exp_type": 2}, traces=True),
    "traces-target-ratio": Case({**TRACES, "exp_type": 0, "deadline": 200, "target_ratio": 0.5}, traces=True),
    "stale-factor-1": Case({**STALE, "stale_factor": 1}, traces=True),
    "stale-factor-3": Case({**STALE, "stale_factor": 3}, traces=True),
    "stale-factor-mean": Case({**STALE, "stale_factor": -1}, traces=True),
    "stale-factor-adasgd": Case({**STALE, "stale_factor": -2}, traces=True),
    "stale-factor-dynsgd": Case({**STALE, "stale_factor": -3}, traces=True),
    "stale-factor-refl": Case({**STALE, "stale_factor": -4}, traces=True),
    "oort": Case({**TRACES, "sample_mode": "oort"}, traces=True),
    "refl-availability-priority": Case({**TRACES, "avail_priority": 1}, traces=True),
    "halor-under": Case({"halor": True, "halor_resample": "under"}),
    "halor-over": Case({"halor": True, "halor_resample": "over"}),
    "halor-under-grpc-3": Case({"halor": True, "halor_resample": "under", "worker_ips": "127.0.0.1:[3]"},
                               grpc=True),
}
# cases that must end with the same model: N executors and N processes give what one gives
SAME_MODEL = (("fedavg", "fedavg-3-executors", "fedavg-grpc-1", "fedavg-grpc-3"),
              ("halor-under", "halor-under-grpc-3"))


def fingerprint(weights: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in sorted(weights.items())}
    return {
        "sha256": hashlib.sha256(save(tensors)).hexdigest(),
        "stats": {name: {"sum": float(tensor.double().sum()), "norm": float(tensor.double().norm())}
                  for name, tensor in tensors.items()},
    }


def platform() -> dict[str, str]:
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def write_traces(folder: Path) -> Path:
    if not (folder / "client_device_capacity").is_file():
        status = cli_main(["traces", str(folder), "--clients", str(BASE["total_clients"]), "--seed", "0"])
        if status != 0:
            raise RuntimeError(f"fedscale-halor traces {folder} failed with status {status}")
    return folder


def run_case(name: str, scratch: Path, data_dir: Path) -> dict[str, Any]:
    """The fingerprint of the final model of case ``name``, run in ``scratch`` on the digits data in ``data_dir``."""
    case = CASES[name]
    overrides: dict[str, object] = {**BASE, **case.overrides, "log_path": str(scratch / "logs"),
                                    "data_dir": str(data_dir)}
    if case.traces:
        traces = write_traces(scratch / "traces")
        overrides.update(device_conf_file=str(traces / "client_device_capacity"),
                         device_avail_file=str(traces / "client_behave_trace"))
    cfg = load_config(DIGITS_CONF, overrides=overrides)
    run = run_local if case.grpc else run_in_process
    return fingerprint(run(cfg, timestamp=name, echo=False).final_weights)


def record(names: Sequence[str], output: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="golden-") as scratch:
        root = Path(scratch)
        cases = {}
        for name in names:
            first = run_case(name, root / f"{name}-a", root / "data")
            again = run_case(name, root / f"{name}-b", root / "data")
            if first != again:
                raise RuntimeError(f"case {name} is not deterministic: two runs gave {first['sha256']} and "
                                   f"{again['sha256']}")
            cases[name] = first
            print(f"{name}: {first['sha256']}", file=sys.stderr, flush=True)
    document = {"platform": platform(), "cases": cases}
    output.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return document


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help=f"run every case twice and write {GOLDEN_FILE.name}")
    parser.add_argument("--output", type=Path, default=GOLDEN_FILE)
    parser.add_argument("cases", nargs="*", default=list(CASES), help="cases to record (default: all)")
    args = parser.parse_args(argv)
    if not args.record:
        parser.error("nothing to do without --record")
    record(args.cases, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
