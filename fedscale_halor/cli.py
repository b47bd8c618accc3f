"""The ``fedscale-halor`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise SystemExit(f"fedscale-halor: --set expects key=value, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _start(args: argparse.Namespace) -> int:
    from fedscale_halor.config.loader import load_config
    from fedscale_halor.launch.inprocess import run_in_process
    from fedscale_halor.launch.local import run_local
    from fedscale_halor.server.aggregator import final_accuracy

    cfg = load_config(args.config, overrides=_parse_overrides(args.set))
    runner = run_in_process if args.in_process else run_local
    outcome = runner(cfg, timestamp=args.timestamp)
    final = final_accuracy(outcome.history)
    if final is not None:
        print(f"final test accuracy: top-1 {final.top1:.4f}, top-5 {final.top5:.4f} ({final.num_samples} samples)")
    print(f"logs: {outcome.run_dir}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from fedscale_halor.data.prepare import prepare_dataset

    data_dir = Path(args.data_dir) if args.data_dir else Path.cwd() / "data" / args.dataset
    prepared = prepare_dataset(args.dataset, data_dir, Path(args.prepared_dir) if args.prepared_dir else None,
                               force=args.force)
    print(f"{args.dataset}: prepared arrays in {prepared}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedscale-halor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="run a job on this machine: the aggregator and one executor process "
                                              "per worker_ips slot, over gRPC")
    start.add_argument("config", help="job config file (FedScale YAML)")
    start.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (repeatable)")
    start.add_argument("--timestamp", help="name of the run's log folder (default: the current time)")
    start.add_argument("--in-process", action="store_true",
                       help="run the executors as threads of this process over the in-memory transport")
    start.set_defaults(handler=_start)

    prepare = commands.add_parser("prepare", help="convert a downloaded data set into memory-mappable arrays")
    prepare.add_argument("dataset")
    prepare.add_argument("--data-dir", help="folder of the raw data set (default ./data/<dataset>)")
    prepare.add_argument("--prepared-dir", help="where the arrays go (default <data-dir>/prepared)")
    prepare.add_argument("--force", action="store_true", help="convert again even if arrays exist")
    prepare.set_defaults(handler=_prepare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from fedscale_halor.config.errors import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (ConfigError, FileNotFoundError) as error:
        print(f"fedscale-halor: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
