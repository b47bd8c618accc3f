"""SubprocessSlurm reads what Slurm's own commands print: fake sbatch, squeue, sacct and scancel scripts first on
PATH print what the real ones print on a cluster without an accounting database."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fedscale_halor.launch.slurm import SlurmError, SubprocessSlurm

_SCRIPTS = {
    "sbatch": 'echo "4242;cluster-a"\n',
    # a job squeue has forgotten (MinJobAge passed)
    "squeue": 'exit 0\n',
    # no slurmdbd: plain sacct fails; the completion log lists a requeued job once per attempt
    "sacct": ('case " $* " in\n'
              '  *" --completion "*) printf "41|COMPLETED\\n7|PENDING\\n7|CANCELLED by 0\\n" ;;\n'
              '  *) echo "Slurm accounting storage is disabled" >&2; exit 1 ;;\n'
              'esac\n'),
    "scancel": 'echo "scancel: error: Kill job error on job id 7: Invalid job id specified" >&2; exit 1\n',
}


@pytest.fixture
def fake_slurm_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in _SCRIPTS.items():
        script = folder / name
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(folder))
    return folder


def test_the_job_id_is_read_from_sbatch_parsable_output_on_a_federation(fake_slurm_commands: Path,
                                                                         tmp_path: Path) -> None:
    assert SubprocessSlurm().submit(tmp_path / "job.sh") == "4242"


def test_a_job_squeue_forgot_is_found_in_the_completion_log_at_its_last_attempt(fake_slurm_commands: Path) -> None:
    slurm = SubprocessSlurm()

    assert slurm.state("7") == "CANCELLED"
    assert slurm.state("41") == "COMPLETED"
    assert slurm.state("99") is None


def test_cancelling_a_job_slurm_no_longer_knows_is_no_error(fake_slurm_commands: Path) -> None:
    SubprocessSlurm().cancel("7")


def test_a_missing_command_says_where_the_launcher_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(SlurmError, match="no 'squeue' on PATH: launcher slurm runs where Slurm's commands are"):
        SubprocessSlurm().state("7")
