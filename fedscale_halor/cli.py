"""The ``fedscale-halor`` command."""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the commands import what they need when they run, so that `--help` stays instant
    from fedscale_halor.launch.stop import StoppedRun


def _parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise SystemExit(f"fedscale-halor: --set expects key=value, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _start(args: argparse.Namespace) -> int:
    from fedscale_halor.launch.aggregator_main import stop_on_sigterm
    from fedscale_halor.launch.inprocess import run_in_process
    from fedscale_halor.launch.jobfile import load_config
    from fedscale_halor.launch.local import run_local
    from fedscale_halor.launch.preflight import check_before_start
    from fedscale_halor.server.aggregator import final_accuracy

    if args.resume and not args.timestamp:
        raise SystemExit("fedscale-halor: --resume needs the --timestamp of the run to continue")
    if args.force_config and not args.resume:
        raise SystemExit("fedscale-halor: --force-config only applies with --resume")
    cfg = load_config(args.config, overrides=_parse_overrides(args.set))
    check_before_start(cfg)
    restore_sigterm = stop_on_sigterm()  # so that `fedscale-halor stop` from another terminal lets cleanup run
    try:
        # a fresh command may fork its executors: they share its memory instead of importing everything again
        if args.in_process:
            outcome = run_in_process(cfg, timestamp=args.timestamp, resume=args.resume,
                                     force_config=args.force_config)
        else:
            outcome = run_local(cfg, timestamp=args.timestamp, fork=True, resume=args.resume,
                                force_config=args.force_config)
    finally:
        restore_sigterm()
    final = final_accuracy(outcome.history)
    if final is not None:
        print(f"final test accuracy: top-1 {final.top1:.4f}, top-5 {final.top5:.4f} ({final.num_samples} samples)")
    print(f"logs: {outcome.run_dir}")
    return 0


def _submit(args: argparse.Namespace) -> int:
    from fedscale_halor.launch.jobfile import load_config
    from fedscale_halor.launch.slurm import submit_slurm_job
    from fedscale_halor.launch.submit import submit_job

    overrides = _parse_overrides(args.set)
    if args.scheduler:
        overrides["launcher"] = args.scheduler
    cfg = load_config(args.config, overrides=overrides)
    if args.resume and not args.timestamp:
        raise SystemExit("fedscale-halor: --resume needs the --timestamp of the run to continue")
    if args.force_config and not args.resume:
        raise SystemExit("fedscale-halor: --force-config only applies with --resume")
    if cfg.deployment.launcher == "slurm":
        record = submit_slurm_job(cfg, timestamp=args.timestamp, resume=args.resume, force_config=args.force_config)
        print(f"submitted job {record.job_name}, timestamp {record.timestamp}, to Slurm as job {record.slurm_job_id}"
              f"{' (resuming from its checkpoint)' if args.resume else ''}")
        print(f"logs: {record.run_dir}")
        print(f"stop it with: fedscale-halor stop {shlex.quote(record.job_name)} {shlex.quote(record.timestamp)}")
        return 0
    if args.resume:
        raise SystemExit("fedscale-halor: submit --resume continues Slurm runs (--scheduler slurm); a run submitted "
                         "over SSH resumes with `fedscale-halor start --timestamp T --resume` on its ps_ip")
    record = submit_job(cfg, timestamp=args.timestamp)
    hosts = ", ".join(dict.fromkeys(process.host for process in record.processes))
    print(f"submitted job {record.job_name}, timestamp {record.timestamp}: {len(record.processes)} processes on "
          f"{hosts}")
    print(f"logs: {record.run_dir}")
    print(f"stop it with: fedscale-halor stop {shlex.quote(record.job_name)} {shlex.quote(record.timestamp)}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from fedscale_halor.launch.records import known_runs
    from fedscale_halor.launch.stop import stop_job

    if args.all and (args.job or args.timestamp):
        raise SystemExit("fedscale-halor: stop --all takes no job or timestamp")
    if not args.all and not args.job:
        raise SystemExit("fedscale-halor: stop needs a job name (or --all)")
    runs = [run for job in known_runs() for run in stop_job(job)] if args.all else stop_job(args.job, args.timestamp)
    if not runs:
        print("no recorded runs")
    return _report_stopped(runs, lambda run: f"{run.record.job_name} {run.record.timestamp} ({run.record.run_dir}):",
                           "the record stays running, run stop again")


def _kill(args: argparse.Namespace) -> int:
    from fedscale_halor.launch.stop import kill_experiments

    everything = args.name == "all"
    if everything and args.timestamp:
        raise SystemExit("fedscale-halor: kill all takes no timestamp")
    runs = kill_experiments(None if everything else args.name, args.timestamp)
    if not runs:
        which = "" if everything else f" of {args.name}" + (f" with timestamp {args.timestamp}" if args.timestamp
                                                             else "")
        print(f"nothing to stop: no recorded experiment{which} (ended or stopped already)")
    return _report_stopped(runs, _experiment_headline, "the record stays, run the same command again")


def _experiment_headline(run: StoppedRun) -> str:
    record = run.record
    outcomes = {stopped.outcome for stopped in run.processes}
    if run.slurm_job is not None:
        outcomes.add(run.slurm_job.outcome)
    state = ("not stopped" if not run.complete else "stopped" if outcomes & {"terminated", "killed", "cancelled"}
             else "had ended")
    return (f"{state}: {record.data_set or record.job_name} {record.timestamp} (job {record.job_name}, "
            f"logs {record.run_dir})")


def _report_stopped(runs: Sequence[StoppedRun], headline: Callable[[StoppedRun], str], retry_hint: str) -> int:
    """Print what happened to each process of each run; 1 when some host did not answer."""
    complete = True
    for run in runs:
        print(headline(run))
        for stopped in run.processes:
            detail = f": {stopped.detail}" if stopped.detail else ""
            print(f"  {stopped.process.describe()}: {stopped.outcome}{detail}")
        if run.slurm_job is not None:
            print(f"  {run.slurm_job.describe()}")
        if not run.complete:
            complete = False
            print(f"  not every host answered; {retry_hint}", file=sys.stderr)
    return 0 if complete else 1


def _sweep(args: argparse.Namespace) -> int:
    from fedscale_halor.launch.sweep import parse_axis, parse_servers, run_sweep

    return run_sweep(Path(args.config), [parse_axis(text) for text in args.grid],
                     parse_servers(args.ips.split(), args.gpus.split()), _parse_overrides(args.set),
                     detach=args.detach, dry_run=args.dry_run, timestamp=args.timestamp, scheduler=args.scheduler)


def _status(args: argparse.Namespace) -> int:
    from fedscale_halor.launch.status import format_statuses, run_statuses

    print(format_statuses(run_statuses()))
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from fedscale_halor.data.prepare import prepare_dataset

    data_dir = Path(args.data_dir) if args.data_dir else Path.cwd() / "data" / args.dataset
    prepared = prepare_dataset(args.dataset, data_dir, Path(args.prepared_dir) if args.prepared_dir else None,
                               force=args.force)
    print(f"{args.dataset}: prepared arrays in {prepared}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    if args.signals:
        from fedscale_halor.logging.signal_plots import plot_signals

        for run_dir in args.runs:
            for picture in plot_signals(Path(run_dir)):
                print(f"wrote {picture}")
        return 0
    from fedscale_halor.logging.plots import plot_time_to_accuracy

    written = plot_time_to_accuracy([Path(run_dir) for run_dir in args.runs], Path(args.out), target=args.target)
    print(f"wrote {written}")
    return 0


def _traces(args: argparse.Namespace) -> int:
    from fedscale_halor.simulation.trace_generator import (
        generate_behavior_trace,
        generate_device_capacity,
        write_traces,
    )

    written = write_traces(args.out, generate_device_capacity(args.clients, args.seed),
                           generate_behavior_trace(args.clients, args.seed), formats=(args.format,))
    for path in written:
        print(f"wrote {path}")
    return 0


def _add_job_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("config", help="job config file (FedScale YAML)")
    command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config key (repeatable)")
    command.add_argument("--timestamp", help="name of the run's log folder (default: the current time)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedscale-halor", description=__doc__)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback behind an error message (for reports, not for fixing a config)")
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="run a job on this machine: the aggregator and one executor process "
                                              "per worker_ips slot, over gRPC")
    _add_job_arguments(start)
    start.add_argument("--resume", action="store_true",
                       help="continue the run of --timestamp from its last checkpoint (after the aggregator died); "
                            "refused when the config differs from the run's config.yml in keys that change what is "
                            "trained")
    start.add_argument("--force-config", action="store_true",
                       help="with --resume: continue even with such keys changed; the run folder keeps its former "
                            "config and records the changes in config_changes.log")
    start.add_argument("--in-process", action="store_true",
                       help="run the executors as threads of this process over the in-memory transport")
    start.set_defaults(handler=_start)

    submit = commands.add_parser("submit", help="start a job over SSH (the aggregator on ps_ip and the executors on "
                                                "their worker_ips hosts, each after setup_commands) or as one Slurm "
                                                "batch job (launcher: slurm); returns at once")
    _add_job_arguments(submit)
    submit.add_argument("--scheduler", choices=("ssh", "slurm"),
                        help="how to start the job (default: the config's launcher, ssh unless it says slurm)")
    submit.add_argument("--resume", action="store_true",
                        help="Slurm: submit the run of --timestamp again, continuing from its last checkpoint (after "
                             "scancel, a time limit or a node failure)")
    submit.add_argument("--force-config", action="store_true",
                        help="with --resume: continue even when the config changes what is trained")
    submit.set_defaults(handler=_submit)

    stop = commands.add_parser("stop", help="stop the processes of a submitted or started job (scancel for Slurm)")
    stop.add_argument("job", nargs="?", help="the job's name (job_name)")
    stop.add_argument("--all", action="store_true", help="stop every recorded run of every job")
    stop.add_argument("timestamp", nargs="?", help="the run to stop (default: every recorded run of the job)")
    stop.set_defaults(handler=_stop)

    kill = commands.add_parser("kill", help="what kill_exps.sh runs: stop the recorded experiments of a data set "
                                            "(or job), or all of them, and drop their records")
    kill.add_argument("name", help="a data set or job name, or 'all'")
    kill.add_argument("timestamp", nargs="?", help="only this experiment")
    kill.set_defaults(handler=_kill)

    sweep = commands.add_parser("sweep", help="what run_exps.sh runs: one experiment per combination of a grid, "
                                              "on servers round robin")
    _add_job_arguments(sweep)
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=VALUES",
                       help="a swept config key and its values, separated by spaces (repeatable; in loop order)")
    sweep.add_argument("--ips", default="", help="servers, separated by spaces (default: the config's hosts)")
    sweep.add_argument("--gpus", default="", help="executors per server as [n_gpu0,...]: one for all or one each")
    sweep.add_argument("--detach", action="store_true",
                       help="start a single local experiment in the background too")
    sweep.add_argument("--dry-run", action="store_true", help="print the experiments without starting them")
    sweep.add_argument("--scheduler", choices=("ssh", "slurm"),
                       help="slurm: one Slurm batch job per experiment (default: the config's launcher)")
    sweep.set_defaults(handler=_sweep)

    status = commands.add_parser("status", help="the recorded runs: data set, state, round, accuracy and hosts")
    status.set_defaults(handler=_status)

    plot = commands.add_parser("plot", help="time-to-accuracy PNG comparing runs (by round and by simulated time)")
    plot.add_argument("runs", nargs="+", help="run folders (<log_path>/<job_name>/<timestamp>)")
    plot.add_argument("--out", default="time_to_accuracy.png", help="PNG to write (default time_to_accuracy.png)")
    plot.add_argument("--target", type=float, help="draw this accuracy as a dashed line")
    plot.add_argument("--signals", action="store_true",
                      help="instead, draw each Auxo run's saved client signals (signal_rounds) in two dimensions, "
                           "coloured by cohort: <run>/auxo_signals/round_<r>.png per saved round")
    plot.set_defaults(handler=_plot)

    traces = commands.add_parser("traces", help="write synthetic device-capacity and availability traces in "
                                                "FedScale's format (device_conf_file, device_avail_file)")
    traces.add_argument("out", help="folder to write client_device_capacity and client_behave_trace into")
    traces.add_argument("--clients", type=int, default=1000, help="number of devices (default 1000)")
    traces.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    traces.add_argument("--format", choices=("pickle", "json"), default="pickle",
                        help="FedScale's pickles (default) or the same data as JSON")
    traces.set_defaults(handler=_traces)

    prepare = commands.add_parser("prepare", help="convert a downloaded data set into memory-mappable arrays")
    prepare.add_argument("dataset")
    prepare.add_argument("--data-dir", help="folder of the raw data set (default ./data/<dataset>)")
    prepare.add_argument("--prepared-dir", help="where the arrays go (default <data-dir>/prepared)")
    prepare.add_argument("--force", action="store_true", help="convert again even if arrays exist")
    prepare.set_defaults(handler=_prepare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from fedscale_halor.config.errors import ConfigError
    from fedscale_halor.errors import InputFileError
    from fedscale_halor.launch.errors import LaunchError
    from fedscale_halor.server.errors import JobFailedError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (ConfigError, FileNotFoundError, InputFileError, LaunchError) as error:
        _explain(error, args.debug)
        return 2
    except JobFailedError as error:
        _explain(error, args.debug, prefix="the job failed: ")
        return 1


def _explain(error: BaseException, debug: bool, prefix: str = "") -> None:
    """A user's mistake is one line; ``--debug`` adds the traceback behind it."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    print(f"fedscale-halor: {prefix}{error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
