"""`submit` checks that every host answers over SSH before it writes or starts anything."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.records import known_runs
from fedscale_halor.launch.remote import HostAccess, unreachable_hosts
from fedscale_halor.launch.submit import SubmitError, submit_job

ROOT = Path(__file__).resolve().parents[3]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"

# an `ssh` that notes each host and the script it was sent, and fails like ssh for the hosts in FAKE_SSH_DOWN
_FAKE_SSH = """#!{python}
import json, os, sys
argv = sys.argv[1:]
index = 0
while argv[index].startswith("-"):
    index += 2 if argv[index] in ("-o", "-i", "-l", "-p") else 1
host = argv[index]
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps([host, sys.stdin.read()]) + "\\n")
if host in os.environ["FAKE_SSH_DOWN"].split(","):
    sys.stderr.write(f"ssh: connect to host {{host}} port 22: Connection timed out\\n")
    sys.exit(255)
"""


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    ssh = folder / "ssh"
    ssh.write_text(_FAKE_SSH.format(python=sys.executable))
    ssh.chmod(ssh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SSH_LOG", str(tmp_path / "ssh.jsonl"))
    monkeypatch.setenv("FAKE_SSH_DOWN", "node-b")
    return tmp_path / "ssh.jsonl"


def _job(tmp_path: Path, **overrides: object):
    settings = {"log_path": str(tmp_path / "logs"), "ps_ip": "ps-host", "worker_ips": ["node-a:[2]", "node-b:[1]"],
                "ssh_private_key": "", **overrides}
    return load_config(DIGITS_CONF, overrides=settings)


def test_a_name_that_does_not_resolve_is_reported_with_sshs_own_words() -> None:
    # Prepare
    down = HostAccess("no-such-host.invalid")

    # Execute
    problems = unreachable_hosts([HostAccess("127.0.0.1"), down, HostAccess("localhost")])

    # Assert: this machine is not tried at all
    assert list(problems) == [down]
    assert problems[down].startswith("ssh: Could not resolve hostname no-such-host.invalid: ")
    assert problems[down].endswith(" (ssh exit status 255)")


def test_no_ssh_client_is_a_reason_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    assert unreachable_hosts([HostAccess("node-a")]) == {
        HostAccess("node-a"): "no 'ssh' client on PATH to reach the host"}


def test_one_unreachable_worker_stops_the_submit_before_any_host_starts_anything(tmp_path: Path,
                                                                                fake_ssh: Path) -> None:
    # Prepare
    cfg = _job(tmp_path)

    # Execute
    with pytest.raises(SubmitError) as raised:
        submit_job(cfg, timestamp="down", jobs_dir=tmp_path / "jobs")

    # Assert: every host was only asked to answer; no folder, record or process exists
    assert str(raised.value) == (
        "job digits not submitted, nothing was started: node-b (worker_ips) cannot be reached: ssh: connect to host "
        "node-b port 22: Connection timed out (ssh exit status 255); check the host name in the config and that "
        f"`{tmp_path / 'bin' / 'ssh'} -o BatchMode=yes -o StrictHostKeyChecking=accept-new node-b true` works from "
        "this machine without a prompt")
    calls = [json.loads(line) for line in fake_ssh.read_text().splitlines()]
    assert sorted(calls) == [["node-a", "exit 0\n"], ["node-b", "exit 0\n"], ["ps-host", "exit 0\n"]]
    assert not (tmp_path / "logs").exists()
    assert known_runs(tmp_path / "jobs") == {}


def test_every_unreachable_host_is_named_with_its_roles(tmp_path: Path, fake_ssh: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.setenv("FAKE_SSH_DOWN", "node-b,ps-host")
    cfg = _job(tmp_path, ps_ip="node-b", worker_ips=["node-b:[1]", "ps-host:[1]", "127.0.0.1:[1]"])

    # Execute
    with pytest.raises(SubmitError) as raised:
        submit_job(cfg, timestamp="down", jobs_dir=tmp_path / "jobs")

    # Assert
    message = str(raised.value)
    assert message.startswith(
        "job digits not submitted, nothing was started: node-b (ps_ip and worker_ips) cannot be reached: ssh: "
        "connect to host node-b port 22: Connection timed out (ssh exit status 255); ps-host (worker_ips) cannot be "
        "reached: ssh: connect to host ps-host port 22: Connection timed out (ssh exit status 255); check the host "
        "names in the config and that `")
    assert message.endswith(" ps-host true` work from this machine without a prompt")
