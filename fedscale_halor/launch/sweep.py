"""Sweeps, as Halor's run_exps.sh runs them: one experiment per combination of a parameter grid, each with its own
timestamp and its own config rendered from the data set's job file, assigned to the servers round robin.

The planning functions are pure (grid expansion, round robin, rendering); ``run_sweep`` reserves the run folders,
starts the experiments through ``submit`` (a local bash for this machine, SSH for any other host) and prints a
table. A single experiment on this machine, not detached, becomes a plain ``fedscale-halor start`` in the
foreground instead, which is what `bash run_exps.sh digits` has always done. Under ``launcher: slurm`` (or
``--scheduler slurm``) each experiment is one Slurm batch job, placed by Slurm rather than on servers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.launch import records
from fedscale_halor.launch.errors import LaunchError
from fedscale_halor.launch.hosts import executor_slots
from fedscale_halor.launch.jobfile import load_config, with_overrides
from fedscale_halor.launch.remote import HostAccess
from fedscale_halor.launch.rundir import create_run_dir, new_timestamp
from fedscale_halor.launch.slurm import SlurmCommands, submit_slurm_job
from fedscale_halor.launch.submit import submit_job

# keys that IPS and GPUS decide, so a --set of them next to IPS would be ambiguous
_SERVER_KEYS = ("ps_ip", "worker_ips")
_KEY_PREFIXES = ("job_conf.", "job.", "deployment.", "auth.")


class SweepError(LaunchError):
    """A grid, server list or set of overrides that does not make a sweep."""


@dataclasses.dataclass(frozen=True)
class Axis:
    """One grid variable: a config key and the values it takes, in the order they are tried."""

    key: str
    values: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Server:
    """A host that runs whole experiments: their aggregator and executors. ``slots``: its executors in FedScale's
    worker_ips form, ``[n_gpu0,n_gpu1,...]``; empty keeps the counts of the config's worker_ips."""

    host: str
    slots: str = ""


@dataclasses.dataclass(frozen=True)
class Experiment:
    index: int  # 0-based, in grid order
    settings: tuple[tuple[str, str], ...]  # (key, value) of every grid variable, in grid order
    server: Server | None  # None: the config's own ps_ip and worker_ips

    def describe(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.settings) or "as configured"


def parse_axis(text: str) -> Axis:
    """``key=v1 v2 ...`` (values separated by white space, as a bash array prints them); no values: not swept."""
    key, separator, values = text.partition("=")
    if not separator or not key.strip():
        raise SweepError(f"a grid variable must be key=values, got {text!r}")
    return Axis(key.strip(), tuple(values.split()))


def expand_grid(axes: Sequence[Axis]) -> list[tuple[tuple[str, str], ...]]:
    """Every combination of the axes' values; the first axis varies slowest, as the outer loop of Halor's scripts.
    Axes without values are left out; without any axis there is one combination, the config itself."""
    swept = [axis for axis in axes if axis.values]
    keys = [axis.key for axis in swept]
    if len(set(keys)) != len(keys):
        raise SweepError(f"a config key is swept twice: {', '.join(sorted({k for k in keys if keys.count(k) > 1}))}")
    return [tuple(zip(keys, combination, strict=True))
            for combination in itertools.product(*(axis.values for axis in swept))]


def parse_servers(ips: Sequence[str], gpus: Sequence[str]) -> list[Server]:
    """IPS and GPUS of run_exps.sh: GPUS holds one entry for all servers or one per server; ``2`` means ``[2]``."""
    if gpus and not ips:
        raise SweepError("GPUS is given without IPS: name the servers whose executors it counts")
    if len(gpus) not in (0, 1, len(ips)):
        raise SweepError(f"GPUS has {len(gpus)} entries for {len(ips)} servers in IPS: give one entry for all "
                         "servers or one per server")
    servers = []
    for position, host in enumerate(ips):
        slots = _slot_list(gpus[0 if len(gpus) == 1 else position]) if gpus else ""
        servers.append(Server(host, slots))
    return servers


def plan_experiments(axes: Sequence[Axis], servers: Sequence[Server]) -> list[Experiment]:
    """One experiment per grid combination; experiment i runs on server i mod len(servers)."""
    return [Experiment(index, settings, servers[index % len(servers)] if servers else None)
            for index, settings in enumerate(expand_grid(axes))]


def experiment_overrides(cfg: ExperimentConfig, experiment: Experiment, count: int) -> dict[str, str]:
    """The config keys the experiment changes: its grid values, its server, and its port when the sweep holds more
    than one experiment (ps_port + index, so that experiments sharing a host do not share a port)."""
    overrides = dict(experiment.settings)
    if experiment.server is not None:
        slots = experiment.server.slots or _config_slots(cfg)
        overrides.update(ps_ip=experiment.server.host, worker_ips=f"{experiment.server.host}:{slots}")
    if count > 1 and cfg.deployment.ps_port:
        overrides["ps_port"] = str(cfg.deployment.ps_port + experiment.index)
    return overrides


def render_config(cfg: ExperimentConfig, experiment: Experiment, count: int) -> ExperimentConfig:
    return with_overrides(cfg, experiment_overrides(cfg, experiment, count))


def runs_on_this_machine(cfg: ExperimentConfig) -> bool:
    """Every process of the job runs here without SSH."""
    auth = cfg.deployment.auth
    hosts = [cfg.deployment.ps_ip, *(slot.host for slot in executor_slots(cfg.deployment.worker_ips))]
    return all(HostAccess(host, auth.ssh_user, auth.ssh_private_key, auth.ssh_port).local for host in hosts)


def reserve_run_dir(cfg: ExperimentConfig, base: str, jobs_dir: str | Path | None = None) -> Path:
    """Create the experiment's run folder under ``base`` or its first free suffix, skipping names the jobs index
    still holds, so that no record is overwritten; sweeps started in the same second never share a timestamp."""
    index = records.jobs_dir(jobs_dir) / cfg.job.job_name
    return create_run_dir(cfg.job.log_path, cfg.job.job_name, base,
                          taken=lambda stamp: (index / f"{stamp}.json").exists())


@dataclasses.dataclass(frozen=True)
class Launched:
    experiment: Experiment
    cfg: ExperimentConfig
    run_dir: Path | None  # None: not started (dry run, or a failure before its folder existed)
    error: str = ""
    slurm_job_id: str = ""  # launcher slurm: the experiment's batch job

    @property
    def timestamp(self) -> str:
        return self.run_dir.name if self.run_dir is not None else "-"


def launch_experiment(cfg: ExperimentConfig, experiment: Experiment, base: str,
                      jobs_dir: str | Path | None = None, slurm: SlurmCommands | None = None) -> Launched:
    """Start one experiment in the background through submit (or sbatch); a failure is returned, not raised, so
    that the other experiments of the sweep still start."""
    run_dir: Path | None = None
    under_slurm = cfg.deployment.launcher == "slurm"
    try:
        if runs_on_this_machine(cfg) and not under_slurm:
            cfg = _with_free_port(cfg)
        run_dir = reserve_run_dir(cfg, base, jobs_dir)
        if under_slurm:
            record = submit_slurm_job(cfg, run_dir=run_dir, jobs_dir=jobs_dir, slurm=slurm)
        else:
            record = submit_job(cfg, run_dir=run_dir, jobs_dir=jobs_dir)
    except (LaunchError, ConfigError, OSError, ValueError) as error:
        if run_dir is not None and not any(run_dir.iterdir()):
            run_dir.rmdir()  # nothing was recorded in it: the name goes back
            run_dir = None
        return Launched(experiment, cfg, run_dir, str(error))
    return Launched(experiment, cfg, Path(record.run_dir), slurm_job_id=record.slurm_job_id)


def format_table(launched: Sequence[Launched]) -> str:
    rows = [["#", "dataset", "timestamp", "host", "port", "executors", "settings", "logs"]]
    for item in launched:
        deployment, job = item.cfg.deployment, item.cfg.job
        logs = str(item.run_dir) if item.run_dir is not None else str(
            Path(job.log_path).expanduser().resolve() / job.job_name / "<timestamp>")
        host = f"slurm:{item.slurm_job_id or '-'}" if deployment.launcher == "slurm" else deployment.ps_ip
        rows.append([str(item.experiment.index + 1), job.data_set, item.timestamp, host,
                     str(deployment.ps_port or "free"), "; ".join(deployment.worker_ips), item.experiment.describe(),
                     f"FAILED: {item.error}" if item.error else logs])
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
                     for row in rows)


def run_sweep(config: Path, axes: Sequence[Axis], servers: Sequence[Server], overrides: Mapping[str, str], *,
              detach: bool = False, dry_run: bool = False, timestamp: str | None = None,
              jobs_dir: str | Path | None = None, scheduler: str | None = None,
              slurm: SlurmCommands | None = None) -> int:
    """Plan the sweep, then run its single local experiment in the foreground (this process becomes
    `fedscale-halor start`) or start every experiment in the background and print the table; ``scheduler`` slurm
    (or the config's launcher) submits each experiment as a Slurm job. Returns the exit status: 1 when some
    experiment did not start."""
    _check_overrides(axes, servers, overrides)
    if scheduler:
        overrides = {**overrides, "launcher": scheduler}
    base_cfg = load_config(config, overrides=overrides)
    under_slurm = base_cfg.deployment.launcher == "slurm"
    if under_slurm and servers:
        raise SweepError("IPS (--ips) names SSH servers, but under launcher slurm Slurm places every experiment: "
                         "leave IPS empty (GPUS too) and size the jobs with worker_ips and the slurm_* keys")
    experiments = plan_experiments(axes, servers)
    # every config first: a bad value stops the sweep before anything starts
    configs = [render_config(base_cfg, experiment, len(experiments)) for experiment in experiments]
    for cfg in configs:
        try:
            executor_slots(cfg.deployment.worker_ips)
        except ValueError as error:
            raise SweepError(str(error)) from None
    if dry_run:
        print(f"{len(experiments)} experiment(s) of {config} (dry run, nothing started):")
        print(format_table([Launched(experiment, cfg, None) for experiment, cfg in zip(experiments, configs,
                                                                                         strict=True)]))
        return 0
    if len(experiments) == 1 and not detach and not under_slurm and runs_on_this_machine(configs[0]):
        _become_start(config, overrides, experiments[0], base_cfg, timestamp)
    base = timestamp or new_timestamp()
    with _this_python_first_on_path():
        launched = [launch_experiment(cfg, experiment, base, jobs_dir, slurm)
                    for experiment, cfg in zip(experiments, configs, strict=True)]
    started = [item for item in launched if not item.error]
    print(f"started {len(started)} of {len(launched)} experiment(s) of {config} in the background:")
    print(format_table(launched))
    name = base_cfg.job.data_set
    where = "which Slurm's nodes share" if under_slurm else "on its server"
    print(f"each run logs to aggregator.log in its logs folder, {where}; progress of all: fedscale-halor status")
    print(f"stop one: bash kill_exps.sh {name} <timestamp>; all of {name}: bash kill_exps.sh {name}")
    return 0 if len(started) == len(launched) else 1


def _become_start(config: Path, overrides: Mapping[str, str], experiment: Experiment, base_cfg: ExperimentConfig,
                  timestamp: str | None) -> None:
    """Replace this process by `fedscale-halor start`: same pid, signals, output and exit status as running it."""
    changes = {**overrides, **experiment_overrides(base_cfg, experiment, 1)}
    argv = [sys.executable, "-m", "fedscale_halor.cli", "start", str(config),
            *(f"--set={key}={value}" for key, value in changes.items())]
    if timestamp:
        argv += ["--timestamp", timestamp]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


@contextlib.contextmanager
def _this_python_first_on_path() -> Iterator[None]:
    """A localhost experiment runs `python` from the PATH it inherits (after its setup commands): let that be the
    environment of this sweep, wherever the user's own PATH points."""
    previous = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join(filter(None, (str(Path(sys.executable).parent), previous)))
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PATH"]
        else:
            os.environ["PATH"] = previous


def _check_overrides(axes: Sequence[Axis], servers: Sequence[Server], overrides: Mapping[str, str]) -> None:
    given = {_bare_key(key) for key in overrides}
    swept = sorted(given & {_bare_key(axis.key) for axis in axes if axis.values})
    if swept:
        raise SweepError(f"{', '.join(swept)}: both a grid variable and a --set override; give it in one place")
    if servers and given & set(_SERVER_KEYS):
        raise SweepError("IPS decides ps_ip and worker_ips of every experiment: drop the --set of "
                         f"{', '.join(sorted(given & set(_SERVER_KEYS)))} or leave IPS empty")


def _bare_key(key: str) -> str:
    key = key.strip()
    for prefix in _KEY_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _slot_list(text: str) -> str:
    slots = text.strip()
    slots = slots if slots.startswith("[") else f"[{slots}]"
    try:
        executor_slots([f"server:{slots}"])
    except ValueError:
        raise SweepError(f"GPUS entry {text!r}: expected executors per GPU, such as 2 or [2,2]") from None
    return slots


def _config_slots(cfg: ExperimentConfig) -> str:
    # a server takes all the config's executors, counted per GPU index across the worker_ips entries
    counts: dict[int, int] = {}
    try:
        slots = executor_slots(cfg.deployment.worker_ips)
    except ValueError as error:
        raise SweepError(str(error)) from None
    for slot in slots:
        counts[slot.gpu_index] = counts.get(slot.gpu_index, 0) + 1
    return "[" + ",".join(str(counts.get(index, 0)) for index in range(max(counts) + 1)) + "]"


def _with_free_port(cfg: ExperimentConfig) -> ExperimentConfig:
    """On this machine the port can be checked: a taken or unset ps_port moves to a free one."""
    port = cfg.deployment.ps_port
    if port and port_is_free(port):
        return cfg
    with socket.socket() as probe:
        probe.bind(("", 0))
        free = probe.getsockname()[1]
    return dataclasses.replace(cfg, deployment=dataclasses.replace(cfg.deployment, ps_port=free))


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True

