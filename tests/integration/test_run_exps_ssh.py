"""run_exps.sh and kill_exps.sh against a real OpenSSH server on 127.0.0.1.

The server runs on a free port with a throwaway host key and user key; the launcher reaches it through the config's
auth (ssh_user, ssh_private_key, ssh_port), and with ssh_port set even 127.0.0.1 and localhost go over SSH, so the
two addresses stand for two servers of a sweep.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ports import free_port_run

from fedscale_halor.data.prepare import prepare_dataset
from fedscale_halor.launch.records import JobRecord, indexed_records, known_runs
from fedscale_halor.launch.stop import kill_experiments, process_group_alive

ROOT = Path(__file__).resolve().parents[2]
SSHD = Path("/usr/sbin/sshd")
POLICY_RC = Path("/usr/sbin/policy-rc.d")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    private_key: Path
    client_bin: Path  # first on PATH: `ssh` with this test's known_hosts file
    log: Path


def _install_openssh_server() -> None:
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        pytest.skip(f"{SSHD} is missing and cannot be installed here (needs apt-get and root)")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt_get, "install", "-y", "-q", "--no-install-recommends", "openssh-server"]
    # without an init system the package would start a system-wide sshd on port 22: tell it not to
    added_policy = not POLICY_RC.exists()
    if added_policy:
        POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC.chmod(0o755)
    try:
        result = subprocess.run(install, env=environment, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:  # stale package lists: refresh them once
            subprocess.run([apt_get, "update", "-q"], env=environment, capture_output=True, timeout=600)
            result = subprocess.run(install, env=environment, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("installing openssh-server took over 10 minutes")
    finally:
        if added_policy:
            POLICY_RC.unlink()
    if not SSHD.exists():
        pytest.skip(f"openssh-server could not be installed: {result.stderr.strip()[-500:]}")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    if not SSHD.exists():
        _install_openssh_server()
    ssh, keygen = shutil.which("ssh"), shutil.which("ssh-keygen")
    if ssh is None or keygen is None:
        pytest.skip("the OpenSSH client (ssh, ssh-keygen) is not installed")
    folder = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    port = free_port_run()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {folder / 'host_key'}", f"PidFile {folder / 'sshd.pid'}",
        "PubkeyAuthentication yes", f"AuthorizedKeysFile {folder / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "StrictModes no", "UsePAM no", "PermitRootLogin prohibit-password",
        "LogLevel INFO"]) + "\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    # the launcher's `ssh` keeps host keys in this folder, not in the user's ~/.ssh, and ignores ~/.ssh/config
    client_bin = folder / "bin"
    client_bin.mkdir()
    (client_bin / "ssh").write_text(f"#!/bin/sh\nexec {ssh} -F none -o UserKnownHostsFile={folder / 'known_hosts'} "
                                    "-o GlobalKnownHostsFile=/dev/null \"$@\"\n")
    (client_bin / "ssh").chmod(0o755)
    log = folder / "sshd.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log_file, stderr=log_file)
    try:
        deadline = time.monotonic() + 15
        while not _accepts(port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"sshd did not start: {log.read_text()[-800:]}")
            time.sleep(0.1)
        yield SshServer(port, getpass.getuser(), folder / "user_key", client_bin, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _rounds_done(record: JobRecord) -> int:
    metrics = Path(record.run_dir) / "metrics.csv"
    return max(0, len(metrics.read_text().splitlines()) - 1) if metrics.exists() else 0


def _alive(record: JobRecord) -> list[bool]:
    return [process_group_alive(process.pid) for process in record.processes]


def test_run_exps_sweeps_over_ssh_round_robin_and_kill_exps_stops_one_then_all(
        tmp_path: Path, sshd: SshServer, digits_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a tiny digits job that keeps running, two seeds on two "servers", both reached over SSH
    prepare_dataset("digits", digits_data_dir)
    jobs = tmp_path / "jobs"
    grid_variables = ("ROUNDS", "LOCAL_STEPS", "PARTICIPANTS", "DEADLINES", "AGGREGATORS", "TARGET_RATIOS", "CLIENTS",
                      "PARTITIONS", "OVERCOMMIT", "EXP_TYPES", "RANDOM_BEHV", "SAMPLERS", "STALES", "STALE_FACTORS",
                      "AVAIL_PRIOS", "HALOR", "HALOR_RESAMPLE", "SAMPLE_SEEDS", "IPS", "GPUS")
    monkeypatch.setenv("PATH", f"{sshd.client_bin}:{os.environ['PATH']}")  # for the clean-up below too
    environment = {key: value for key, value in os.environ.items() if key not in grid_variables}
    environment.update(FEDSCALE_HALOR_JOBS_DIR=str(jobs), IPS="127.0.0.1 localhost", GPUS="1", SAMPLE_SEEDS="1 2")
    settings = {"log_path": tmp_path / "logs", "data_dir": digits_data_dir, "ps_port": free_port_run(2),
                "rounds": 100000, "total_clients": 20, "num_participants": 4, "local_steps": 1,
                "eval_interval": 100000, "tensorboard": "false", "save_checkpoint": "false", "register_timeout": 60,
                "ssh_user": sshd.user, "ssh_private_key": sshd.private_key, "ssh_port": sshd.port,
                # sshd's sessions start with the system's PATH: the remote shell picks this environment's python
                "setup_commands": f"export PATH={Path(sys.executable).parent}:$PATH"}
    set_arguments = [f"--set={key}={value}" for key, value in settings.items()]

    def script(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", *arguments], cwd=ROOT, env=environment, capture_output=True, text=True,
                              timeout=120, check=False)

    try:
        # Execute: the sweep
        launched = script(str(ROOT / "run_exps.sh"), "digits", *set_arguments)

        # Assert: two experiments, one per server, each over SSH with its own timestamp and port
        assert launched.returncode == 0, launched.stdout + launched.stderr
        assert "started 2 of 2 experiment(s)" in launched.stdout
        first, second = sorted((record for _, record in indexed_records(jobs)), key=lambda r: r.timestamp)
        assert second.timestamp == f"{first.timestamp}_1"
        assert {p.host for p in first.processes} == {"127.0.0.1"} and {p.host for p in second.processes} == {
            "localhost"}
        assert {(p.ssh_port, p.ssh_user) for p in first.processes + second.processes} == {(sshd.port, sshd.user)}
        assert [p.role for p in first.processes] == ["aggregator", "executor"]
        assert first.data_set == second.data_set == "digits"
        assert sshd.log.read_text().count("Accepted publickey") >= 4  # aggregator and executors, on each server
        for record in (first, second):
            assert record.timestamp in launched.stdout and record.run_dir in launched.stdout
        _wait_until(lambda: _rounds_done(first) >= 1 and _rounds_done(second) >= 1, 90, "a round of each")

        # Execute: stop the first by its timestamp
        one = script(str(ROOT / "kill_exps.sh"), "digits", first.timestamp)

        # Assert: the first is gone, its record too; the second trains on
        assert one.returncode == 0, one.stdout + one.stderr
        assert f"stopped: digits {first.timestamp}" in one.stdout and "terminated" in one.stdout
        assert not any(_alive(first))
        assert all(_alive(second))
        assert known_runs(jobs) == {"digits": [second.timestamp]}
        rounds = _rounds_done(second)
        _wait_until(lambda: _rounds_done(second) > rounds, 30, "the second experiment's next round")
        status = subprocess.run([sys.executable, "-m", "fedscale_halor.cli", "status"], env=environment,
                                capture_output=True, text=True, check=True)
        (line,) = [line for line in status.stdout.splitlines() if second.timestamp in line]
        assert line.split()[:4] == ["digits", "digits", second.timestamp, "running"] and "localhost" in line

        # Execute: the same again, then everything, then everything again
        one_again = script(str(ROOT / "kill_exps.sh"), "digits", first.timestamp)
        everything = script(str(ROOT / "kill_exps.sh"), "all")
        everything_again = script(str(ROOT / "kill_exps.sh"), "all")

        # Assert: nothing of either experiment is left, and repeating is harmless
        assert one_again.returncode == 0 and "nothing to stop" in one_again.stdout
        assert everything.returncode == 0, everything.stdout + everything.stderr
        assert f"stopped: digits {second.timestamp}" in everything.stdout
        assert everything_again.returncode == 0 and "nothing to stop" in everything_again.stdout
        assert not any(_alive(first) + _alive(second))
        assert known_runs(jobs) == {}
        assert "stopped by a signal" in (Path(second.run_dir) / "aggregator.log").read_text()
    finally:
        kill_experiments(None, jobs_dir=jobs, grace_s=2.0)  # whatever a failed assertion left running
