from pathlib import Path

import pytest

from fedscale_halor.cli import main
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.records import JobRecord, save_record
from fedscale_halor.launch.submit import SubmitError, submit_job

ROOT = Path(__file__).resolve().parents[3]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"


def test_a_free_port_cannot_be_submitted(tmp_path: Path) -> None:
    cfg = load_config(DIGITS_CONF, overrides={"ps_port": 0, "log_path": str(tmp_path / "logs")})

    with pytest.raises(SubmitError, match="ps_port"):
        submit_job(cfg, jobs_dir=tmp_path / "jobs")
    assert not (tmp_path / "logs").exists()


def test_the_cli_reports_a_refused_submit_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["submit", str(DIGITS_CONF), "--set", "ps_port=0", "--set", f"log_path={tmp_path}"])

    assert status == 2
    assert "ps_port" in capsys.readouterr().err


def test_stopping_an_unknown_job_names_the_known_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FEDSCALE_HALOR_JOBS_DIR", str(tmp_path))
    save_record(JobRecord("digits", "0101_000000", str(tmp_path / "gone"), launcher="submit"))

    status = main(["stop", "cifar10"])

    err = capsys.readouterr().err
    assert status == 2
    assert "'cifar10'" in err and "known jobs: digits" in err


def test_stopping_a_run_whose_processes_are_gone_marks_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FEDSCALE_HALOR_JOBS_DIR", str(tmp_path))
    save_record(JobRecord("digits", "0101_000000", str(tmp_path / "gone"), launcher="start"))

    status = main(["stop", "digits", "0101_000000"])

    assert status == 0
    assert "digits 0101_000000" in capsys.readouterr().out
    assert '"status": "stopped"' in (tmp_path / "digits" / "0101_000000.json").read_text()
