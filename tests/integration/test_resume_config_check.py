"""`start --resume` through the command line compares the config with the run folder's config.yml: a changed seed
is refused with both values named, --force-config goes ahead and leaves a record, more rounds go ahead."""

from pathlib import Path

import pytest
import yaml

from fedscale_halor.cli import main

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = str(ROOT / "benchmark" / "configs" / "digits" / "conf.yml")


def _start(tmp_path: Path, data_dir: Path, *extra: str, **keys: object) -> int:
    settings = {"log_path": tmp_path / "logs", "data_dir": data_dir, "rounds": 2, "eval_interval": 1,
                "total_clients": 20, "num_participants": 4, "local_steps": 2, "worker_ips": "127.0.0.1:[1]",
                "ps_port": 0, **keys}
    arguments = [part for key, value in settings.items() for part in ("--set", f"{key}={value}")]
    return main(["start", DIGITS_CONF, "--in-process", "--timestamp", "run", *extra, *arguments])


def _seed_in(path: Path) -> object:
    [seed] = [entry["sample_seed"] for entry in yaml.safe_load(path.read_text())["job_conf"] if "sample_seed" in entry]
    return seed


def test_a_resume_is_refused_for_a_changed_seed_forced_with_a_record_and_free_to_raise_the_rounds(
        tmp_path: Path, digits_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: a finished two-round run
    run_dir = tmp_path.resolve() / "logs" / "digits" / "run"
    assert _start(tmp_path, digits_data_dir) == 0
    original = (run_dir / "config.yml").read_bytes()
    capsys.readouterr()

    # Execute and assert: a changed seed is refused, in process and by the local launcher alike
    refusal = (f"cannot resume {run_dir}: its config.yml differs in keys that change what is trained: "
               "sample_seed (233 -> 999); pass --force-config to resume anyway")
    assert _start(tmp_path, digits_data_dir, "--resume", sample_seed=999, rounds=3) == 2
    assert refusal in capsys.readouterr().err
    assert main(["start", DIGITS_CONF, "--resume", "--timestamp", "run", "--set", f"log_path={tmp_path / 'logs'}",
                 "--set", f"data_dir={digits_data_dir}", "--set", "sample_seed=999", "--set", "ps_port=0",
                 "--set", "total_clients=20", "--set", "num_participants=4", "--set", "local_steps=2",
                 "--set", "eval_interval=1", "--set", "worker_ips=127.0.0.1:[1]"]) == 2
    assert refusal in capsys.readouterr().err
    assert (run_dir / "config.yml").read_bytes() == original
    assert not (run_dir / "config_changes.log").exists()

    # Execute and assert: forced, the run goes on with the new seed and the folder keeps the old config
    assert _start(tmp_path, digits_data_dir, "--resume", "--force-config", sample_seed=999, rounds=3) == 0
    assert (run_dir / "config.before-resume-1.yml").read_bytes() == original
    assert _seed_in(run_dir / "config.yml") == 999
    record = (run_dir / "config_changes.log").read_text()
    assert "resume 1 with --force-config" in record and "sample_seed (233 -> 999): changes what is trained" in record
    assert "--force-config: sample_seed changed from 233 to 999" in (run_dir / "aggregator.log").read_text()

    # Execute and assert: only more rounds, the run goes on without --force-config
    assert _start(tmp_path, digits_data_dir, "--resume", sample_seed=999, rounds=4) == 0
    assert "resume 2: config.yml before it kept as config.before-resume-2.yml" in (
        run_dir / "config_changes.log").read_text()
    assert "resume: rounds changed from 3 to 4" in (run_dir / "aggregator.log").read_text()
    rounds = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert rounds == ["1", "2", "3", "4"]


def test_force_config_without_resume_is_refused(tmp_path: Path, digits_data_dir: Path) -> None:
    with pytest.raises(SystemExit, match="--force-config only applies with --resume"):
        _start(tmp_path, digits_data_dir, "--force-config")
