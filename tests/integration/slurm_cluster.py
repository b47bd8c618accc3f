"""A single-node Slurm cluster on this machine for the Slurm launcher's tests: munged, slurmctld and slurmd, with a
slurm.conf of their own in a temporary folder (their own ports, state and logs), SLURM_CONF pointing Slurm's
commands at it.

Debian's ``slurm-wlm`` and ``munge`` packages provide the daemons (``bash install.sh --test`` installs them when it
runs as root). When they are missing, or the cluster does not come up, the fixture fails the test with what went
wrong, never skips it: a run without the cluster must not look like a run with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_SBIN_PATH = os.pathsep.join(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
_DAEMONS = ("munged", "slurmctld", "slurmd")
_COMMANDS = ("sbatch", "srun", "squeue", "scancel", "sacct", "sinfo", "scontrol")
_IDLE_TIMEOUT_S = 60.0
PARTITION = "fedscale"


@dataclass(frozen=True)
class SlurmCluster:
    conf: Path
    folder: Path
    node: str
    gpus: int  # GPUs Slurm hands out: character devices standing in for them, so that binding can be tested
    gpu_problem: str = ""  # why there are none


    def node_state(self) -> str:
        """sinfo's short state of the node: idle, alloc, mix, comp (a job's processes still ending), ..."""
        return _node_state(self.node)

    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.folder / "log" / name
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else ["(no log)"]
            parts.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(parts)


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=_SBIN_PATH)


def _fail(message: str) -> None:
    pytest.fail(f"Slurm could not be started for the Slurm launcher's tests: {message}", pytrace=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _munge_works() -> bool:
    munge, unmunge = _which("munge"), _which("unmunge")
    if munge is None or unmunge is None:
        return False
    credential = subprocess.run([munge, "-n"], capture_output=True, timeout=10)
    if credential.returncode != 0:
        return False
    return subprocess.run([unmunge], input=credential.stdout, capture_output=True, timeout=10).returncode == 0


def _start_munged(folder: Path) -> subprocess.Popen[bytes] | None:
    """Start munged unless one answers already; the process started (to stop afterwards), or None."""
    if _munge_works():
        return None
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        mungekey = _which("mungekey")
        if mungekey is None:
            _fail(f"{key} is missing and there is no mungekey to create it")
        subprocess.run([mungekey, "--create", f"--keyfile={key}"], check=True, timeout=30)
        shutil.chown(key, "munge", "munge")
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    # munged refuses root; as the munge user it reads the key the package created for that user
    log = (folder / "log" / "munged.log").open("ab")
    process = subprocess.Popen(["runuser", "-u", "munge", "--", str(_which("munged")), "--foreground"],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    while not _munge_works():
        if process.poll() is not None or time.monotonic() > deadline:
            _fail(f"munged did not answer (exit status {process.poll()}); see {folder / 'log' / 'munged.log'}")
        time.sleep(0.2)
    return process


def _fake_gpus(folder: Path, count: int = 2) -> tuple[int, str]:
    """Character devices Slurm's gres/gpu can hand out as GPUs (it checks that each file is one, and then sets each
    task's CUDA_VISIBLE_DEVICES): copies of /dev/null's node, which nothing opens. (count, problem)."""
    try:
        for index in range(count):
            os.mknod(folder / f"fake_gpu{index}", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as error:
        return 0, f"cannot create the device nodes that stand in for GPUs in {folder}: {error}"
    (folder / "gres.conf").write_text(f"AutoDetect=off\nName=gpu File={folder}/fake_gpu[0-{count - 1}]\n")
    return count, ""


def _slurm_conf(folder: Path, node: str, gpus: int) -> str:
    cpus = max(2, os.cpu_count() or 1)  # two executor tasks even on a one-core machine (config_overrides)
    gres = f" Gres=gpu:{gpus}" if gpus else ""
    return "\n".join([
        *(["GresTypes=gpu"] if gpus else []),
        "ClusterName=fedscale-test",
        f"SlurmctldHost={node}(127.0.0.1)",  # the address, in case the short host name does not resolve
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'log' / 'slurmd.log'}",
        # no cgroups: the test machine may be a container without a writable cgroup tree
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SlurmdParameters=config_overrides",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        # without a database, sacct reads ended jobs from the completion log (sacct --completion)
        "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={folder / 'log' / 'jobcomp.txt'}",
        "MpiDefault=none",
        "ReturnToService=2",
        "KillWait=10",
        "MinJobAge=600",
        f"NodeName={node} NodeHostname={node} NodeAddr=127.0.0.1 CPUs={cpus}{gres} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    ]) + "\n"


def _node_state(node: str) -> str:
    sinfo = subprocess.run([str(_which("sinfo")), "--noheader", "--Node", "--format=%N %t"], capture_output=True,
                           text=True, timeout=30)
    states = dict(line.split() for line in sinfo.stdout.splitlines() if len(line.split()) == 2)
    return states.get(node, sinfo.stderr.strip() or "not listed")


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _cancel_every_job() -> None:
    """Whatever a failed test left in the queue ends before the daemons do, so that no task outlives them."""
    scancel, squeue = _which("scancel"), _which("squeue")
    if scancel is None or squeue is None:
        return
    subprocess.run([scancel, f"--partition={PARTITION}"], capture_output=True, timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        queued = subprocess.run([squeue, "--noheader", "--format=%i"], capture_output=True, text=True, timeout=30)
        if queued.returncode != 0 or not queued.stdout.strip():
            return
        time.sleep(0.5)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    missing = [name for name in (*_DAEMONS, *_COMMANDS) if _which(name) is None]
    if missing:
        _fail(f"{', '.join(missing)} not found; install Debian's slurm-wlm and munge packages (`bash install.sh "
              "--test` does as root; otherwise `sudo apt-get install slurm-wlm munge`)")
    if os.geteuid() != 0:
        _fail("slurmd must run as root to start jobs; run the tests as root (as .ci/run does)")
    folder = tmp_path_factory.mktemp("slurm")
    for name in ("state", "spool", "log"):
        (folder / name).mkdir()
    node = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    gpus, gpu_problem = _fake_gpus(folder)  # gres.conf beside slurm.conf, where slurmd looks for it
    conf.write_text(_slurm_conf(folder, node, gpus))
    previous_conf = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)  # sbatch, squeue, scancel, sacct and srun inside the jobs read it
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        munged = _start_munged(folder)
        if munged is not None:
            started.append((munged, "munged"))
        for daemon in ("slurmctld", "slurmd"):
            log = (folder / "log" / f"{daemon}.out").open("ab")
            process = subprocess.Popen([str(_which(daemon)), "-D", "-f", str(conf)], stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            started.append((process, daemon))
        cluster = SlurmCluster(conf, folder, node, gpus, gpu_problem)
        deadline = time.monotonic() + _IDLE_TIMEOUT_S
        while (state := _node_state(node)) != "idle":
            dead = [name for process, name in started if process.poll() is not None]
            if dead or time.monotonic() > deadline:
                reason = f"{', '.join(dead)} exited" if dead else f"not idle after {_IDLE_TIMEOUT_S:g} s"
                _fail(f"node {node} is {state!r} ({reason}); slurm.conf {conf}\n{cluster.log_tails()}")
            time.sleep(0.5)
        yield cluster
    finally:
        _cancel_every_job()
        for process, name in reversed(started):
            _stop(process, name)
        if previous_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous_conf
