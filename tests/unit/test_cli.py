from pathlib import Path

import pytest

from fedscale_halor.cli import main


def test_prepare_converts_digits_once_and_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["prepare", "digits", "--data-dir", str(tmp_path / "digits")])

    out = capsys.readouterr().out
    assert status == 0
    assert f"digits: prepared arrays in {tmp_path / 'digits' / 'prepared'}" in out
    assert (tmp_path / "digits" / "prepared" / "train_x.npy").is_file()


def test_prepare_without_the_raw_files_names_the_missing_file(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["prepare", "cifar10", "--data-dir", str(tmp_path / "cifar10")])

    err = capsys.readouterr().err
    assert status == 2
    assert "cifar-10-batches-py" in err and "dataset/README.md" in err


def test_malformed_override_is_refused() -> None:
    with pytest.raises(SystemExit, match="key=value"):
        main(["start", "benchmark/configs/digits/conf.yml", "--set", "rounds"])


def test_a_job_that_fails_exits_with_status_1_and_says_why(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from fedscale_halor.launch import local
    from fedscale_halor.server.errors import NoExecutorsError

    def no_executor_came(*_: object, **__: object) -> None:
        raise NoExecutorsError("no executor registered within 5 s (register_timeout); expected 2")

    monkeypatch.setattr(local, "run_local", no_executor_came)

    status = main(["start", "benchmark/configs/digits/conf.yml"])

    assert status == 1
    assert "the job failed: no executor registered within 5 s" in capsys.readouterr().err


def test_traces_writes_fedscale_trace_files_that_the_clock_reads_and_the_same_seed_repeats(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fedscale_halor.simulation.traces import read_behavior_trace, read_device_capacity

    first = main(["traces", str(tmp_path / "a"), "--clients", "5", "--seed", "3"])
    again = main(["traces", str(tmp_path / "b"), "--clients", "5", "--seed", "3"])

    assert first == again == 0
    assert len(read_device_capacity(tmp_path / "a" / "client_device_capacity")) == 5
    assert len(read_behavior_trace(tmp_path / "a" / "client_behave_trace")) == 5
    for name in ("client_device_capacity", "client_behave_trace"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert f"wrote {tmp_path / 'a' / 'client_device_capacity'}" in capsys.readouterr().out


def test_the_shipped_trace_config_of_digits_names_its_trace_files() -> None:
    from fedscale_halor.launch.jobfile import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "benchmark" / "configs" / "digits" / "traces.yml")

    assert cfg.job.device_conf_file.endswith("data/traces/digits/client_device_capacity")
    assert cfg.job.device_avail_file.endswith("data/traces/digits/client_behave_trace")
    assert (cfg.job.exp_type, cfg.job.overcommitment, cfg.job.eval_interval) == (2, 1.3, 2)
