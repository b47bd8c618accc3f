import stat
from pathlib import Path

import pytest

from fedscale_halor.launch.remote import (
    DetachedProcess,
    GroupToStop,
    HostAccess,
    HostResult,
    RemoteCommandError,
    host_argv,
    start_script,
    started_pids,
    stop_script,
)


@pytest.fixture
def ssh_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `ssh` first on PATH; never run here, only named in the commands built."""
    folder = tmp_path / "bin"
    folder.mkdir()
    ssh = folder / "ssh"
    ssh.write_text("#!/bin/sh\nexit 99\n")
    ssh.chmod(ssh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    return ssh


def test_another_host_is_reached_with_batch_mode_ssh_and_the_job_credentials(ssh_on_path: Path,
                                                                              tmp_path: Path) -> None:
    key = tmp_path / "id_job"
    key.write_text("a key")

    argv = host_argv(HostAccess("worker-a", ssh_user="alice", ssh_private_key=str(key)))

    assert argv == [str(ssh_on_path), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
                    "-i", str(key), "-l", "alice", "worker-a", "bash", "-s"]


def test_a_missing_key_file_and_an_empty_user_are_left_to_ssh_defaults(ssh_on_path: Path, tmp_path: Path) -> None:
    argv = host_argv(HostAccess("worker-a", ssh_user="", ssh_private_key=str(tmp_path / "no-such-key")))

    assert argv == [str(ssh_on_path), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
                    "worker-a", "bash", "-s"]


def test_this_machine_runs_the_script_in_bash_without_ssh(ssh_on_path: Path) -> None:
    assert host_argv(HostAccess("127.0.0.1", ssh_user="alice")) == ["bash", "-s"]
    assert host_argv(HostAccess("localhost")) == ["bash", "-s"]


def test_no_ssh_client_names_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(RemoteCommandError, match="worker-a: no 'ssh' client"):
        host_argv(HostAccess("worker-a"))


def test_the_start_script_writes_the_files_then_sets_up_then_starts_detached(tmp_path: Path) -> None:
    run_dir = "/logs/my job/0101_000000"
    process = DetachedProcess("core/executor.py", ("--config", f"{run_dir}/config.yml", "--rank", "3"),
                              f"{run_dir}/executor_3.log")

    script = start_script("/srv/fed scale", ["source $HOME/venv/bin/activate", "", "export A=1"], run_dir,
                          {"token": "s3cr3t-token"}, [process])

    lines = script.splitlines()
    assert lines.index("umask 077") < lines.index("s3cr3t-token") < lines.index("source $HOME/venv/bin/activate")
    assert lines.index("source $HOME/venv/bin/activate") < lines.index("export A=1")
    cd_line = next(i for i, line in enumerate(lines) if line.startswith("cd "))
    start_line = next(i for i, line in enumerate(lines) if line.startswith("setsid nohup "))
    assert lines[cd_line].startswith("cd '/srv/fed scale' ||")
    assert lines.index("s3cr3t-token") < cd_line < lines.index("export A=1") < start_line
    assert lines[start_line] == ("setsid nohup python core/executor.py --config '/logs/my job/0101_000000/config.yml' "
                                 "--rank 3 >> '/logs/my job/0101_000000/executor_3.log' 2>&1 < /dev/null &")
    assert lines[start_line + 1] == 'echo "FEDSCALE_HALOR_PID=$!"'
    # the token travels in a quoted heredoc, so the host's shell expands nothing in it
    heredoc = lines[lines.index("s3cr3t-token") - 1]
    assert heredoc.startswith("cat > '/logs/my job/0101_000000/token.tmp.'$$ <<'FEDSCALE_HALOR_EOF_")


def test_pids_are_read_from_the_markers_only() -> None:
    result = HostResult("worker-a", 0, "Welcome!\nFEDSCALE_HALOR_PID=123\nFEDSCALE_HALOR_PID=456\n", "")

    assert started_pids(result, 2) == [123, 456]
    with pytest.raises(RemoteCommandError, match="worker-a: expected 3"):
        started_pids(result, 3)


def test_the_stop_script_signals_groups_and_single_processes_then_kills_what_is_left() -> None:
    script = stop_script([GroupToStop(100, True, "/logs/run"), GroupToStop(200, False, "")], grace_s=2.0)

    assert "send_signal 100 group TERM" in script
    assert "send_signal 200 single TERM" in script
    assert "ours 100 /logs/run" in script
    assert "seq 20" in script and 'send_signal "$pid" "$kind" KILL' in script


def test_an_ssh_port_is_passed_to_ssh_and_sends_this_machine_over_ssh_too(ssh_on_path: Path) -> None:
    argv = host_argv(HostAccess("127.0.0.1", ssh_user="alice", ssh_port=2222))

    assert argv == [str(ssh_on_path), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
                    "-l", "alice", "-p", "2222", "127.0.0.1", "bash", "-s"]
