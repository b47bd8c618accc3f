"""Running a shell script on a job's host: this machine through bash, any other host through the OpenSSH client.

The script always travels on the standard input of ``bash -s``, so what it carries (the job's config, its token)
never appears on a command line, where `ps` on either machine would show it to every user.
"""

from __future__ import annotations

import secrets
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fedscale_halor.launch.errors import LaunchError
from fedscale_halor.launch.hosts import is_local_host

PID_MARKER = "FEDSCALE_HALOR_PID="
SETUP_FAILED_STATUS = 97
REACH_TIMEOUT_S = 60.0
_PARALLEL_PROBES = 16


class RemoteCommandError(LaunchError):
    """A script on a host could not be run or exited with an error."""


@dataclass(frozen=True)
class HostAccess:
    """How to reach a host: its name and the SSH credentials used when it is not this machine. ``ssh_port``:
    0 leaves the port to ssh; any other port means SSH even to this machine's own names (a tunnel, a container,
    a second sshd)."""

    host: str
    ssh_user: str = ""
    ssh_private_key: str = ""
    ssh_port: int = 0

    @property
    def local(self) -> bool:
        """The script runs in a local bash, without SSH."""
        return is_local_host(self.host) and not self.ssh_port


@dataclass(frozen=True)
class HostResult:
    host: str
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class DetachedProcess:
    """``python <entry> <arguments>``, to start in its own session on a host, its output going to ``log_file``.

    ``python`` is the one on the host's PATH once the setup commands have run (they may activate an environment).
    """

    entry: str
    arguments: tuple[str, ...]
    log_file: str

    @property
    def argv(self) -> tuple[str, ...]:
        return ("python", self.entry, *self.arguments)


def host_argv(access: HostAccess) -> list[str]:
    """The command that runs a script (read from stdin) on the host."""
    if access.local:
        return ["bash", "-s"]
    ssh = shutil.which("ssh")
    if ssh is None:
        raise RemoteCommandError(f"{access.host}: no 'ssh' client on PATH to reach the host")
    argv = [ssh, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
    key = Path(access.ssh_private_key).expanduser() if access.ssh_private_key else None
    if key is not None and key.is_file():
        argv += ["-i", str(key)]
    if access.ssh_user:
        argv += ["-l", access.ssh_user]
    if access.ssh_port:
        argv += ["-p", str(access.ssh_port)]
    return [*argv, access.host, "bash", "-s"]


def run_script(access: HostAccess, script: str, *, timeout_s: float = 600.0) -> HostResult:
    """Run ``script`` on the host and wait for it; a non-zero exit is returned, not raised."""
    argv = host_argv(access)
    try:
        completed = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RemoteCommandError(f"{access.host}: no answer within {timeout_s:g} s from {shlex.join(argv)}") from None
    except OSError as error:
        raise RemoteCommandError(f"{access.host}: cannot run {shlex.join(argv)}: {error}") from None
    return HostResult(access.host, completed.returncode, completed.stdout, completed.stderr)


def unreachable_hosts(accesses: Sequence[HostAccess], *,
                      timeout_s: float = REACH_TIMEOUT_S) -> dict[HostAccess, str]:
    """Each host that a script cannot reach (over SSH, as ``run_script`` would), with why: a name that does not
    resolve, a refused connection or key, ssh's own error. Every host is tried, in parallel; this machine needs no
    try."""
    remote = [access for access in dict.fromkeys(accesses) if not access.local]
    with ThreadPoolExecutor(max_workers=min(_PARALLEL_PROBES, max(1, len(remote)))) as pool:
        problems = list(pool.map(lambda access: _reach_problem(access, timeout_s), remote))
    return {access: problem for access, problem in zip(remote, problems, strict=True) if problem}


def _reach_problem(access: HostAccess, timeout_s: float) -> str:
    try:
        result = run_script(access, "exit 0\n", timeout_s=timeout_s)
    except RemoteCommandError as error:
        return str(error).removeprefix(f"{access.host}: ")
    if result.returncode == 0:
        return ""
    said = result.stderr.strip() or result.stdout.strip() or "no message"
    return f"{said} (ssh exit status {result.returncode})"


def start_script(exp_path: str, setup_commands: Sequence[str], run_dir: str, files: dict[str, str],
                 processes: Sequence[DetachedProcess]) -> str:
    """A script that writes ``files`` (name -> text, readable by the user only) into the run folder, enters
    ``exp_path``, runs the setup commands in this shell (their $VARs expand on the host), then starts each process
    detached and prints its pid after PID_MARKER, one line each, in order."""
    lines = ["umask 077", f"mkdir -p {shlex.quote(run_dir)} || exit 1"]
    for name, text in files.items():
        lines += _write_file_lines(str(Path(run_dir) / name), text)
    lines.append(f"cd {shlex.quote(exp_path)} || {_fail(f'cannot enter exp_path {exp_path}')}")
    for command in filter(str.strip, setup_commands):
        # in this shell, not a subshell: a `source venv/bin/activate` must reach the processes started below
        lines += ["{", command, f"}} || {{ status=$?; printf 'setup command failed with exit status %s: %s\\n' "
                                 f"\"$status\" {shlex.quote(command)} >&2; exit {SETUP_FAILED_STATUS}; }}"]
    # every check before the first start: a failure must not leave started processes that nobody recorded
    if processes:
        lines.append(f"command -v python > /dev/null || {_fail('no python on PATH after the setup commands')}")
    for entry in dict.fromkeys(process.entry for process in processes):
        lines.append(f"[ -f {shlex.quote(entry)} ] || {_fail(f'no {entry} in {exp_path}')}")
    for process in processes:
        # setsid from a shell without job control does not fork, so $! is the new session's (and group's) id;
        # appending lets the process's own log handler write to the same file without either overwriting the other
        lines.append(f"setsid nohup {shlex.join(process.argv)} >> {shlex.quote(process.log_file)} 2>&1 "
                     "< /dev/null &")
        lines.append(f'echo "{PID_MARKER}$!"')
    return "\n".join(lines) + "\n"


def started_pids(result: HostResult, expected: int) -> list[int]:
    pids = [int(line[len(PID_MARKER):]) for line in result.stdout.splitlines()
            if line.startswith(PID_MARKER) and line[len(PID_MARKER):].strip().isdigit()]
    if len(pids) != expected:
        raise RemoteCommandError(f"{result.host}: expected {expected} started process(es), the host reported "
                                 f"{len(pids)}; output: {result.stdout.strip()!r} {result.stderr.strip()!r}")
    return pids


@dataclass(frozen=True)
class GroupToStop:
    """A process to stop, as its record describes it (see ``ProcessRecord``)."""

    pid: int
    process_group: bool
    command_marker: str


def stop_script(targets: Sequence[GroupToStop], grace_s: float) -> str:
    """A script that sends SIGTERM to each target, waits up to ``grace_s`` seconds, then sends SIGKILL to what is
    left; it prints one line per target: ``<pid> terminated|killed|gone|foreign``."""
    lines = [
        "leader_alive() { ps -o stat= -p \"$1\" 2>/dev/null | grep -qv '^Z'; }",
        # a zombie is gone already (it waits only for its parent, often init, to reap it)
        "group_alive() { ps -e -o pgid= -o stat= | awk -v g=\"$1\" '$1 == g && $2 !~ /^Z/ {f = 1} END {exit !f}'; }",
        "alive() { if [ \"$2\" = group ]; then group_alive \"$1\"; else leader_alive \"$1\"; fi; }",
        "send_signal() { if [ \"$2\" = group ]; then kill \"-$3\" -- \"-$1\" 2>/dev/null; "
        "else kill \"-$3\" \"$1\" 2>/dev/null; fi; }",
        "ours() { [ -z \"$2\" ] || ! leader_alive \"$1\" || ps -ww -o args= -p \"$1\" | grep -qF -- \"$2\"; }",
        "signalled=''",
    ]
    for target in targets:
        kind = "group" if target.process_group else "single"
        pid, marker = target.pid, shlex.quote(target.command_marker)
        lines.append(f"if ! alive {pid} {kind}; then echo '{pid} gone'; elif ! ours {pid} {marker}; then "
                     f"echo '{pid} foreign'; else send_signal {pid} {kind} TERM; "
                     f"signalled=\"$signalled {pid}:{kind}\"; fi")
    steps = max(1, round(grace_s / 0.1))
    lines += [
        f"for _ in $(seq {steps}); do",
        "  left=''; for item in $signalled; do alive \"${item%%:*}\" \"${item#*:}\" && left=x; done",
        "  [ -z \"$left\" ] && break; sleep 0.1",
        "done",
        "for item in $signalled; do pid=${item%%:*}; kind=${item#*:};",
        "  if alive \"$pid\" \"$kind\"; then send_signal \"$pid\" \"$kind\" KILL; echo \"$pid killed\"; "
        "else echo \"$pid terminated\"; fi",
        "done",
    ]
    return "\n".join(lines) + "\n"


def _write_file_lines(path: str, text: str) -> list[str]:
    delimiter = f"FEDSCALE_HALOR_EOF_{secrets.token_hex(8)}"
    temporary = f"{shlex.quote(path + '.tmp.')}$$"
    # written aside and renamed, so a process of the job that reads the file meanwhile never sees it half written
    return [f"cat > {temporary} <<'{delimiter}' || exit 1", text.rstrip("\n"), delimiter,
            f"mv -f {temporary} {shlex.quote(path)} || exit 1"]


def _fail(message: str) -> str:
    return f"{{ printf '%s\\n' {shlex.quote(message)} >&2; exit 1; }}"
