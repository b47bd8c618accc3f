"""The sweep behind run_exps.sh: grid expansion, round robin, rendered configs, unique timestamps, the choice between
the foreground and the background, and the script's environment overrides."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.launch import sweep
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.records import JobRecord, ProcessRecord, save_record
from fedscale_halor.launch.submit import SubmitError
from fedscale_halor.launch.sweep import (
    Axis,
    Server,
    SweepError,
    expand_grid,
    parse_axis,
    parse_servers,
    plan_experiments,
    render_config,
    reserve_run_dir,
    run_sweep,
    runs_on_this_machine,
)

ROOT = Path(__file__).resolve().parents[3]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"


def _digits(tmp_path: Path, **overrides: object) -> ExperimentConfig:
    return load_config(DIGITS_CONF, overrides={"log_path": str(tmp_path / "logs"), **overrides})


def test_the_grid_expands_to_every_combination_with_the_first_variable_slowest() -> None:
    # Prepare: two swept keys and one left to the config
    axes = [parse_axis("rounds=10 20"), parse_axis("deadline="), parse_axis("sample_mode=random oort")]

    # Execute
    combinations = expand_grid(axes)

    # Assert
    assert combinations == [(("rounds", "10"), ("sample_mode", "random")), (("rounds", "10"), ("sample_mode", "oort")),
                            (("rounds", "20"), ("sample_mode", "random")), (("rounds", "20"), ("sample_mode", "oort"))]
    assert expand_grid([]) == expand_grid([Axis("rounds", ())]) == [()]


def test_a_key_swept_twice_or_a_malformed_variable_is_refused() -> None:
    # Prepare
    twice = [Axis("rounds", ("1",)), Axis("rounds", ("2",))]

    # Execute / Assert
    with pytest.raises(SweepError, match="swept twice: rounds"):
        expand_grid(twice)
    with pytest.raises(SweepError, match="key=values"):
        parse_axis("rounds 10")


def test_experiments_go_to_the_servers_round_robin() -> None:
    # Prepare: 5 experiments, 2 servers
    axes = [Axis("sample_seed", ("0", "1", "2", "3", "4"))]
    servers = parse_servers(["node-a", "node-b"], ["2"])

    # Execute
    experiments = plan_experiments(axes, servers)

    # Assert
    assert [(e.index, e.settings, e.server) for e in experiments] == [
        (index, (("sample_seed", str(index)),), Server("node-a" if index % 2 == 0 else "node-b", "[2]"))
        for index in range(5)]
    assert [e.server for e in plan_experiments(axes, [])] == [None] * 5


def test_gpus_hold_one_entry_for_all_servers_or_one_per_server() -> None:
    # Execute / Assert
    assert parse_servers(["a", "b"], ["[2,1]", "4"]) == [Server("a", "[2,1]"), Server("b", "[4]")]
    assert parse_servers(["a", "b"], []) == [Server("a"), Server("b")]
    with pytest.raises(SweepError, match="2 entries for 3 servers"):
        parse_servers(["a", "b", "c"], ["1", "2"])
    with pytest.raises(SweepError, match="without IPS"):
        parse_servers([], ["2"])
    with pytest.raises(SweepError, match="GPUS entry 'two'"):
        parse_servers(["a"], ["two"])


def test_a_rendered_config_carries_the_grid_values_its_server_and_its_own_port(tmp_path: Path) -> None:
    # Prepare: 4 experiments on 2 servers; the digits config has 2 executors on 127.0.0.1 and ps_port 29501
    cfg = _digits(tmp_path)
    experiments = plan_experiments([Axis("rounds", ("10", "20")), Axis("gradient_policy", ("fedavg", "fed-yogi")),
                                    Axis("halor", ("true",))], parse_servers(["node-a", "node-b"], []))

    # Execute
    rendered = [render_config(cfg, experiment, len(experiments)) for experiment in experiments]

    # Assert
    assert [(c.job.rounds, c.job.gradient_policy, c.job.value_of("halor")) for c in rendered] == [
        (10, "fedavg", True), (10, "fed-yogi", True), (20, "fedavg", True), (20, "fed-yogi", True)]
    assert [(c.deployment.ps_ip, c.deployment.worker_ips, c.deployment.ps_port) for c in rendered] == [
        ("node-a", ("node-a:[2]",), 29501), ("node-b", ("node-b:[2]",), 29502),
        ("node-a", ("node-a:[2]",), 29503), ("node-b", ("node-b:[2]",), 29504)]
    assert {c.job.num_participants for c in rendered} == {cfg.job.num_participants}  # not swept: the config's


def test_a_single_experiment_keeps_the_config_deployment_and_a_bad_value_fails_while_rendering(tmp_path: Path) -> None:
    # Prepare
    cfg = _digits(tmp_path)
    (single,) = plan_experiments([Axis("rounds", ("7",))], [])
    (bad,) = plan_experiments([Axis("sample_mode", ("fastest",))], [])

    # Execute
    rendered = render_config(cfg, single, 1)

    # Assert
    assert (rendered.job.rounds, rendered.deployment) == (7, cfg.deployment)
    with pytest.raises(ConfigError, match="sample_mode"):
        render_config(cfg, bad, 1)


def test_only_local_hosts_without_an_ssh_port_count_as_this_machine(tmp_path: Path) -> None:
    # Execute / Assert
    assert runs_on_this_machine(_digits(tmp_path))
    assert not runs_on_this_machine(_digits(tmp_path, ssh_port=2222))
    assert not runs_on_this_machine(_digits(tmp_path, worker_ips=["127.0.0.1:[1]", "node-a:[1]"]))


def test_sweeps_started_in_the_same_second_never_share_a_timestamp(tmp_path: Path) -> None:
    # Prepare: one timestamp indexed already (its folder gone), and two sweeps of 3 experiments with the same base
    cfg = _digits(tmp_path)
    jobs = tmp_path / "jobs"
    save_record(JobRecord("digits", "1125_101010_2", str(tmp_path / "gone"), launcher="submit"), jobs)
    reserved: list[list[str]] = [[], []]

    def one_sweep(number: int) -> None:
        for _ in range(3):
            reserved[number].append(reserve_run_dir(cfg, "1125_101010", jobs).name)

    # Execute: in parallel, as two terminals would
    threads = [threading.Thread(target=one_sweep, args=(number,)) for number in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Assert
    names = reserved[0] + reserved[1]
    assert len(set(names)) == 6
    assert set(names) == {"1125_101010", "1125_101010_1", "1125_101010_3", "1125_101010_4", "1125_101010_5",
                          "1125_101010_6"}
    assert all((tmp_path / "logs" / "digits" / name).is_dir() for name in names)


def test_a_single_local_experiment_becomes_start_in_the_foreground(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: exec is replaced by a recorder
    executed: list[list[str]] = []

    def fake_exec(path: str, argv: list[str]) -> None:
        executed.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(sweep.os, "execv", fake_exec)

    # Execute
    with pytest.raises(SystemExit):
        run_sweep(DIGITS_CONF, [Axis("rounds", ("3",))], [], {"log_path": str(tmp_path / "logs")},
                  jobs_dir=tmp_path / "jobs")

    # Assert
    (argv,) = executed
    assert argv[1:6] == ["-m", "fedscale_halor.cli", "start", str(DIGITS_CONF), f"--set=log_path={tmp_path}/logs"]
    assert argv[6:] == ["--set=rounds=3"]


def test_a_sweep_starts_every_experiment_in_the_background_and_prints_the_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: submit is replaced by a recorder that fails for node-b
    submitted: list[ExperimentConfig] = []

    def fake_submit(cfg: ExperimentConfig, *, run_dir: Path, jobs_dir: Path) -> JobRecord:
        if cfg.deployment.ps_ip == "node-b":
            raise SubmitError("node-b: Connection refused")
        submitted.append(cfg)
        record = JobRecord("digits", run_dir.name, str(run_dir), launcher="submit", data_set="digits",
                           processes=(ProcessRecord("aggregator", -1, cfg.deployment.ps_ip, 4242),))
        save_record(record, jobs_dir)
        return record

    monkeypatch.setattr(sweep, "submit_job", fake_submit)
    monkeypatch.setattr(sweep.os, "execv", lambda *_: pytest.fail("a sweep of three must not run in the foreground"))
    axes = [Axis("sample_mode", ("random", "oort", "random"))]

    # Execute
    status = run_sweep(DIGITS_CONF, axes, parse_servers(["localhost", "node-b"], ["1"]),
                       {"log_path": str(tmp_path / "logs")}, timestamp="1125_101010", jobs_dir=tmp_path / "jobs")

    # Assert: the failure is reported, its reserved folder handed back, the others started
    out = capsys.readouterr().out
    assert status == 1
    assert [(c.deployment.ps_ip, c.job.sample_mode) for c in submitted] == [("localhost", "random"),
                                                                            ("localhost", "random")]
    assert sorted(path.name for path in (tmp_path / "logs" / "digits").iterdir()) == ["1125_101010",
                                                                                      "1125_101010_1"]
    assert "started 2 of 3 experiment(s)" in out
    lines = out.splitlines()
    assert lines[1].split() == ["#", "dataset", "timestamp", "host", "port", "executors", "settings", "logs"]
    assert lines[2].split()[:3] == ["1", "digits", "1125_101010"] and "localhost:[1]" in lines[2]
    assert lines[3].split()[:4] == ["2", "digits", "-", "node-b"] and "FAILED: node-b: Connection refused" in lines[3]
    assert lines[4].split()[:3] == ["3", "digits", "1125_101010_1"]
    assert str(tmp_path / "logs" / "digits" / "1125_101010_1") in lines[4]
    assert "bash kill_exps.sh digits" in out


def test_a_detached_single_experiment_goes_to_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    started: list[Path] = []

    def fake_submit(cfg: ExperimentConfig, *, run_dir: Path, jobs_dir: Path) -> JobRecord:
        started.append(run_dir)
        return JobRecord("digits", run_dir.name, str(run_dir), launcher="submit")

    monkeypatch.setattr(sweep, "submit_job", fake_submit)
    monkeypatch.setattr(sweep.os, "execv", lambda *_: pytest.fail("--detach must not run in the foreground"))

    # Execute
    status = run_sweep(DIGITS_CONF, [], [], {"log_path": str(tmp_path / "logs")}, detach=True,
                       jobs_dir=tmp_path / "jobs")

    # Assert
    assert status == 0 and len(started) == 1


def test_grid_keys_and_servers_cannot_also_come_from_set(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(SweepError, match="rounds: both a grid variable and a --set override"):
        run_sweep(DIGITS_CONF, [Axis("rounds", ("1", "2"))], [], {"job_conf.rounds": "3"}, dry_run=True)
    with pytest.raises(SweepError, match="drop the --set of worker_ips"):
        run_sweep(DIGITS_CONF, [], [Server("node-a")], {"worker_ips": "x:[1]"}, dry_run=True)


def _run_exps_dry_run(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items()
             if key not in ("ROUNDS", "SAMPLERS", "IPS", "GPUS", "SAMPLE_SEEDS")}
    return subprocess.run(["bash", str(ROOT / "run_exps.sh"), "digits", "--dry-run", "--set",
                           f"log_path={tmp_path / 'logs'}"], env={**clean, **environment}, capture_output=True,
                          text=True, check=False, timeout=300)


def test_run_exps_takes_its_grid_from_the_environment(tmp_path: Path) -> None:
    # Execute: the shipped grid, then overrides from the environment
    shipped = _run_exps_dry_run(tmp_path)
    swept = _run_exps_dry_run(tmp_path, ROUNDS="10 20", SAMPLERS="random oort", IPS="node-a node-b", GPUS="[1,1]")

    # Assert
    assert shipped.returncode == 0, shipped.stderr
    assert "1 experiment(s)" in shipped.stdout and "as configured" in shipped.stdout
    assert swept.returncode == 0, swept.stderr
    rows = [line.split() for line in swept.stdout.splitlines()[2:]]
    assert [(row[0], row[3], row[4], row[5], row[6], row[7]) for row in rows] == [
        ("1", "node-a", "29501", "node-a:[1,1]", "rounds=10", "sample_mode=random"),
        ("2", "node-b", "29502", "node-b:[1,1]", "rounds=10", "sample_mode=oort"),
        ("3", "node-a", "29503", "node-a:[1,1]", "rounds=20", "sample_mode=random"),
        ("4", "node-b", "29504", "node-b:[1,1]", "rounds=20", "sample_mode=oort")]
    assert not (tmp_path / "logs").exists()  # a dry run reserves nothing
