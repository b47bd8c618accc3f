"""`fedscale-halor submit`: start a job's processes on their hosts over SSH and return, as FedScale's submit does.

The aggregator starts on ``ps_ip`` (``aggregator_entry``), then each host of ``worker_ips`` starts its executor slots
(``executor_entry``); every host first runs ``setup_commands``. The resolved config and a fresh job token reach each
host on the SSH session's standard input, into the run folder. The job record lets `fedscale-halor stop` end them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import shlex
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.config.serialize import dump_config
from fedscale_halor.config.variables import repository_root
from fedscale_halor.launch.errors import LaunchError
from fedscale_halor.launch.hosts import ExecutorSlot, executor_slots, is_local_host
from fedscale_halor.launch.records import JobRecord, ProcessRecord, save_record
from fedscale_halor.launch.remote import (
    DetachedProcess,
    HostAccess,
    RemoteCommandError,
    host_argv,
    run_script,
    start_script,
    started_pids,
    unreachable_hosts,
)
from fedscale_halor.launch.rundir import create_run_dir
from fedscale_halor.launch.stop import stop_processes

_log = logging.getLogger("fedscale_halor.launch")

CONFIG_FILE_NAME = "config.yml"
TOKEN_FILE_NAME = "token"
_PARALLEL_HOSTS = 16


class SubmitError(LaunchError):
    """A job could not be started; whatever had started was stopped again."""


@dataclasses.dataclass(frozen=True)
class _HostLaunch:
    access: HostAccess
    role: str
    ranks: tuple[int, ...]  # -1 for the aggregator
    processes: tuple[DetachedProcess, ...]


def submit_job(cfg: ExperimentConfig, *, timestamp: str | None = None, jobs_dir: str | Path | None = None,
               run_dir: Path | None = None) -> JobRecord:
    """Start the job on its hosts and return its record without waiting for the job to end. ``run_dir``: an empty
    run folder created beforehand, whose name is the timestamp (a sweep reserves one per experiment first)."""
    if run_dir is not None and timestamp is not None:
        raise SubmitError("give a timestamp or a reserved run folder, not both")
    deployment = cfg.deployment
    if deployment.ps_port == 0:
        raise SubmitError("ps_port is 0 (a free port): submit needs a fixed port, since executors on other hosts "
                          "must know it before the aggregator starts; set ps_port")
    try:
        slots = executor_slots(deployment.worker_ips)
    except ValueError as error:
        raise SubmitError(str(error)) from None
    _check_hosts(cfg, slots)
    remote_workers = sorted({slot.host for slot in slots if not is_local_host(slot.host)})
    if is_local_host(deployment.ps_ip) and remote_workers:
        _log.warning("ps_ip %s names the local machine: executors on %s will look for the aggregator on their own "
                     "host", deployment.ps_ip, ", ".join(remote_workers))
    run_dir = run_dir.resolve() if run_dir is not None else create_run_dir(cfg.job.log_path, cfg.job.job_name,
                                                                           timestamp)
    # every host must find the run folder at the same place, whatever its working directory
    cfg = dataclasses.replace(cfg, job=dataclasses.replace(cfg.job, log_path=str(run_dir.parent.parent)))
    config_text = dump_config(cfg, run_dir / CONFIG_FILE_NAME).read_text(encoding="utf-8")
    token = secrets.token_hex(16)
    token_file = _write_private(run_dir / TOKEN_FILE_NAME, token)
    record = JobRecord(cfg.job.job_name, run_dir.name, str(run_dir), launcher="submit", token_file=str(token_file),
                       data_set=cfg.job.data_set)
    save_record(record, jobs_dir)
    files = {CONFIG_FILE_NAME: config_text, TOKEN_FILE_NAME: token}
    launches = _launches(cfg, slots, run_dir, token_file)
    try:
        # the aggregator first: executors give up if it is not there within register_timeout
        record = _record_started(record, _start(cfg, launches[0], run_dir, files), jobs_dir)
        with ThreadPoolExecutor(max_workers=min(_PARALLEL_HOSTS, max(1, len(launches) - 1))) as pool:
            outcomes = list(pool.map(lambda launch: _try_start(cfg, launch, run_dir, files), launches[1:]))
        for outcome in outcomes:
            if isinstance(outcome, list):
                record = _record_started(record, outcome, jobs_dir)
        failures = [outcome for outcome in outcomes if isinstance(outcome, RemoteCommandError)]
        if failures:
            raise failures[0]
    except RemoteCommandError as error:
        stop_processes(record.processes)
        save_record(record.with_status("failed"), jobs_dir)
        raise SubmitError(f"job {record.job_name} not started: {error}") from None
    return record


def _check_hosts(cfg: ExperimentConfig, slots: Sequence[ExecutorSlot]) -> None:
    """Every host answers over SSH before anything is written or started: a job is not half started because of a
    misspelt or unreachable host."""
    deployment = cfg.deployment
    auth = deployment.auth
    roles: dict[str, list[str]] = {}
    for host, role in [(deployment.ps_ip, "ps_ip"), *((slot.host, "worker_ips") for slot in slots)]:
        roles.setdefault(host, [])
        if role not in roles[host]:
            roles[host].append(role)
    accesses = [HostAccess(host, auth.ssh_user, auth.ssh_private_key, auth.ssh_port) for host in roles]
    problems = unreachable_hosts(accesses)
    if not problems:
        return
    reasons = "; ".join(f"{access.host} ({' and '.join(roles[access.host])}) cannot be reached: {problem}"
                        for access, problem in problems.items())
    probes = " and ".join(f"`{shlex.join([*host_argv(access)[:-2], 'true'])}`" for access in problems)
    raise SubmitError(f"job {cfg.job.job_name} not submitted, nothing was started: {reasons}; check the host "
                      f"{'names' if len(problems) > 1 else 'name'} in the config and that {probes} "
                      f"{'work' if len(problems) > 1 else 'works'} from this machine without a prompt")


def _launches(cfg: ExperimentConfig, slots: Sequence[ExecutorSlot], run_dir: Path,
              token_file: Path) -> list[_HostLaunch]:
    deployment = cfg.deployment
    user, key, port = deployment.auth.ssh_user, deployment.auth.ssh_private_key, deployment.auth.ssh_port
    config_path, stamp = str(run_dir / CONFIG_FILE_NAME), run_dir.name
    aggregator = DetachedProcess(deployment.aggregator_entry, (
        "--config", config_path, "--timestamp", stamp, "--token-file", str(token_file)),
        str(run_dir / "aggregator.log"))
    launches = [_HostLaunch(HostAccess(deployment.ps_ip, user, key, port), "aggregator", (-1,), (aggregator,))]
    address = f"{deployment.ps_ip}:{deployment.ps_port}"
    for host in dict.fromkeys(slot.host for slot in slots):
        ranks = tuple(slot.rank for slot in slots if slot.host == host)
        executors = tuple(DetachedProcess(deployment.executor_entry, (
            "--config", config_path, "--rank", str(rank), "--address", address, "--token-file", str(token_file)),
            str(run_dir / f"executor_{rank}.log")) for rank in ranks)
        launches.append(_HostLaunch(HostAccess(host, user, key, port), "executor", ranks, executors))
    return launches


def _start(cfg: ExperimentConfig, launch: _HostLaunch, run_dir: Path,
           files: dict[str, str]) -> list[ProcessRecord]:
    exp_path = cfg.deployment.exp_path or str(repository_root())
    script = start_script(exp_path, cfg.deployment.setup_commands, str(run_dir), files, launch.processes)
    result = run_script(launch.access, script)
    if result.returncode != 0:
        what = launch.role if launch.role == "aggregator" else "executors " + ", ".join(map(str, launch.ranks))
        raise RemoteCommandError(
            f"{launch.access.host}: starting the {what} failed with exit status {result.returncode} "
            f"(ran {shlex.join(host_argv(launch.access))}): {result.stderr.strip() or result.stdout.strip()}")
    pids = started_pids(result, len(launch.processes))
    access = launch.access
    return [ProcessRecord(launch.role, rank, access.host, pid, process_group=True, command_marker=str(run_dir),
                          ssh_user=access.ssh_user, ssh_private_key=access.ssh_private_key,
                          ssh_port=access.ssh_port)
            for rank, pid in zip(launch.ranks, pids, strict=True)]


def _try_start(cfg: ExperimentConfig, launch: _HostLaunch, run_dir: Path,
               files: dict[str, str]) -> list[ProcessRecord] | RemoteCommandError:
    try:
        return _start(cfg, launch, run_dir, files)
    except RemoteCommandError as error:
        return error


def _record_started(record: JobRecord, processes: Sequence[ProcessRecord],
                    jobs_dir: str | Path | None) -> JobRecord:
    for process in processes:
        record = record.with_process(process)
    save_record(record, jobs_dir)  # at once: an interrupted submit must still leave what it started stoppable
    return record


def _write_private(path: Path, text: str) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    return path
