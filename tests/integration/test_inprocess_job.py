"""A whole federated job in one process over the memory transport, checked through what it leaves on disk."""

import csv
import pickle
from pathlib import Path

import pytest
import torch

from fedscale_halor.cli import main
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.server.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"


def _small_digits(tmp_path: Path, data_dir: Path, **overrides: object):
    settings = {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "rounds": 6, "eval_interval": 3,
                "total_clients": 40, "num_participants": 8, **overrides}
    return load_config(DIGITS_CONF, overrides=settings)


def test_a_short_digits_job_leaves_complete_logs(tmp_path: Path, digits_data_dir: Path) -> None:
    # Prepare
    cfg = _small_digits(tmp_path, digits_data_dir)

    # Execute
    outcome = run_in_process(cfg, timestamp="t1", echo=False)

    # Assert: the FedScale log layout
    run_dir = tmp_path / "logs" / "digits" / "t1"
    assert outcome.run_dir == run_dir.resolve()
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [int(row["round"]) for row in rows] == [1, 2, 3, 4, 5, 6]
    assert all(int(row["completed"]) == 8 for row in rows)
    with (run_dir / "testing_perf").open("rb") as handle:
        perf = pickle.load(handle)
    assert sorted(perf["perf"]) == [3, 6]
    assert perf["perf"][6]["test_len"] == 360  # the whole digits test split
    assert float(rows[5]["test_top1"]) == pytest.approx(perf["perf"][6]["top_1"], abs=1e-6)
    assert perf["perf"][6]["top_1"] > 0.3  # well above chance (0.1) after 6 short rounds
    log_text = (run_dir / "aggregator.log").read_text()
    assert "round 6/6" in log_text and "test top-1" in log_text
    reloaded = load_config(run_dir / "config.yml")
    assert reloaded.job == cfg.job
    state, weights = load_checkpoint(run_dir / "checkpoint")
    assert state.round == 6 and state.model_version == 6
    assert all(torch.equal(weights[k], outcome.final_weights[k]) for k in weights)


def test_one_and_three_executors_end_with_identical_models(tmp_path: Path, digits_data_dir: Path) -> None:
    one = run_in_process(_small_digits(tmp_path, digits_data_dir, worker_ips="127.0.0.1:[1]", rounds=3), echo=False)
    three = run_in_process(_small_digits(tmp_path, digits_data_dir, worker_ips="127.0.0.1:[3]", rounds=3), echo=False)
    # one executor training three clients at once, one thread each
    lanes = run_in_process(_small_digits(tmp_path, digits_data_dir, worker_ips="127.0.0.1:[1]", rounds=3,
                                         executor_threads=3), echo=False)

    assert one.final_weights.keys() == three.final_weights.keys()
    for key in one.final_weights:
        assert torch.equal(one.final_weights[key], three.final_weights[key]), key
        assert torch.equal(one.final_weights[key], lanes.final_weights[key]), key


def test_other_seed_gives_another_model(tmp_path: Path, digits_data_dir: Path) -> None:
    base = run_in_process(_small_digits(tmp_path, digits_data_dir, rounds=1), echo=False)
    other = run_in_process(_small_digits(tmp_path, digits_data_dir, rounds=1, sample_seed=7), echo=False)

    assert any(not torch.equal(base.final_weights[k], other.final_weights[k]) for k in base.final_weights)


@pytest.mark.parametrize("policy", ["fed-prox", "fed-yogi", "fed-adam"])
def test_every_aggregation_policy_runs_end_to_end(tmp_path: Path, digits_data_dir: Path, policy: str) -> None:
    outcome = run_in_process(_small_digits(tmp_path, digits_data_dir, rounds=2, gradient_policy=policy), echo=False)

    assert outcome.history[-1].test is not None
    assert all(torch.isfinite(tensor).all() for tensor in outcome.final_weights.values())


def test_cli_start_prints_accuracy_and_logs(tmp_path: Path, digits_data_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["start", str(DIGITS_CONF), "--set", f"log_path={tmp_path / 'logs'}",
                   "--set", f"data_dir={digits_data_dir}", "--set", "rounds=1", "--timestamp", "cli"])

    out = capsys.readouterr().out
    assert status == 0
    assert "final test accuracy: top-1" in out
    assert f"logs: {(tmp_path / 'logs' / 'digits' / 'cli').resolve()}" in out


def test_cli_reports_a_bad_key_by_name_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["start", str(DIGITS_CONF), "--set", "roundz=3"])

    err = capsys.readouterr().err
    assert status == 2
    assert "roundz" in err and "rounds" in err


@pytest.mark.slow
def test_the_main_digits_job_reaches_90_percent(tmp_path: Path, digits_data_dir: Path) -> None:
    cfg = load_config(DIGITS_CONF, overrides={"log_path": str(tmp_path / "logs"), "data_dir": str(digits_data_dir)})

    outcome = run_in_process(cfg, echo=False)

    final = outcome.history[-1].test
    assert final is not None and final.num_samples == 360
    assert final.top1 >= 0.90


@pytest.mark.parametrize(("policy", "extra"), [
    ("fedavg", {}), ("fed-yogi", {}),
    # Halor's distribution steers every client's resampling: it must come back from the checkpoint too
    ("fedavg", {"halor": True, "halor_history": 5, "partitioning": 8, "dirichlet_alpha": 0.1}),
], ids=["fedavg", "fed-yogi", "fedavg-halor"])
def test_a_job_resumed_from_its_checkpoint_ends_with_the_model_of_a_job_that_never_stopped(
        tmp_path: Path, digits_data_dir: Path, policy: str, extra: dict[str, object]) -> None:
    # Prepare: the reference run; then a run whose aggregator "dies" after the checkpoint of round 3 (it is simply
    # told the job has 3 rounds), written over by a line of a round 4 that never finished
    reference = run_in_process(_small_digits(tmp_path, digits_data_dir, gradient_policy=policy, **extra),
                               timestamp="whole", echo=False)
    run_in_process(_small_digits(tmp_path, digits_data_dir, gradient_policy=policy, rounds=3, **extra),
                   timestamp="cut", echo=False)
    metrics = tmp_path / "logs" / "digits" / "cut" / "metrics.csv"
    metrics.write_text(metrics.read_text() + "4,9.0,0.1,8,8,0.5,0.05,,,,\n")

    # Execute
    resumed = run_in_process(_small_digits(tmp_path, digits_data_dir, gradient_policy=policy, **extra),
                             timestamp="cut", echo=False, resume=True)

    # Assert
    for key, tensor in reference.final_weights.items():
        assert torch.equal(resumed.final_weights[key], tensor), key
    assert [m.round for m in resumed.history] == [4, 5, 6]
    rows = list(csv.DictReader(metrics.open()))
    assert [int(row["round"]) for row in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[3]["clock_s"] != "9.0000"  # the unfinished round's line was replaced
    with (tmp_path / "logs" / "digits" / "cut" / "testing_perf").open("rb") as handle:
        assert sorted(pickle.load(handle)["perf"]) == [3, 6]


def test_resuming_a_run_without_a_checkpoint_names_the_folder(tmp_path: Path, digits_data_dir: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["start", str(DIGITS_CONF), "--in-process", "--resume", "--timestamp", "never",
                   "--set", f"log_path={tmp_path / 'logs'}", "--set", f"data_dir={digits_data_dir}"])

    assert status == 2
    assert f"no checkpoint to resume from in {tmp_path.resolve() / 'logs' / 'digits' / 'never' / 'checkpoint'}" in (
        capsys.readouterr().err)
