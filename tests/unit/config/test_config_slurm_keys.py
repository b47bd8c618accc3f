"""The Slurm launcher's keys: read flat beside the deployment keys, checked, and written back the same way."""

from pathlib import Path

import pytest
import yaml

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.loader import load_config
from fedscale_halor.config.schema import SlurmConfig
from fedscale_halor.config.serialize import dump_config


def _job_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf.yml"
    path.write_text(text)
    return path


def test_slurm_keys_load_from_the_top_level_and_from_job_conf_into_one_section(tmp_path: Path) -> None:
    path = _job_file(tmp_path, "launcher: slurm\nslurm_partition: gpu\nslurm_time: '1-02:00:00'\n"
                               "slurm_extra_directives: ['--mem=16G', '--qos=long']\n"
                               "job_conf:\n  - job_name: sweep\n  - slurm_gpus_per_executor: 1\n")

    cfg = load_config(path)

    assert cfg.deployment.launcher == "slurm"
    assert cfg.deployment.slurm == SlurmConfig(slurm_partition="gpu", slurm_time="1-02:00:00",
                                               slurm_gpus_per_executor=1,
                                               slurm_extra_directives=("--mem=16G", "--qos=long"))


def test_a_file_without_slurm_keys_keeps_ssh_and_the_defaults(tmp_path: Path) -> None:
    cfg = load_config(_job_file(tmp_path, "ps_ip: 127.0.0.1\n"))

    assert cfg.deployment.launcher == "ssh"
    assert cfg.deployment.slurm == SlurmConfig()


def test_overrides_reach_the_slurm_keys_with_or_without_the_deployment_prefix(tmp_path: Path) -> None:
    cfg = load_config(_job_file(tmp_path, "slurm_account: lab\n"),
                      overrides={"launcher": "slurm", "deployment.slurm_time": "90",
                                 "slurm_extra_directives": "--mem=1G;--exclusive"})

    assert (cfg.deployment.launcher, cfg.deployment.slurm.slurm_account, cfg.deployment.slurm.slurm_time,
            cfg.deployment.slurm.slurm_extra_directives) == ("slurm", "lab", "90", ("--mem=1G", "--exclusive"))


@pytest.mark.parametrize(("text", "message"), [
    ("slurm_partion: gpu\n", r"conf.yml: slurm_partion: unknown key; did you mean 'slurm_partition'\?"),
    ("launcher: k8s\n", r"conf.yml: launcher: expected one of 'ssh', 'slurm', got 'k8s'"),
    ("slurm_time: 2h\n", r"conf.yml: slurm_time: expected a Slurm time limit such as '90' \(minutes\)"),
    ("slurm_gpus_per_executor: -1\n", r"conf.yml: slurm_gpus_per_executor: expected an integer >= 0, got -1"),
    ("slurm_extra_directives: ['#SBATCH --mem=1G']\n",
     r"conf.yml: slurm_extra_directives\[0\]: expected an sbatch option such as '--mem=16G'"),
    ("slurm_extra_directives: [\"--mem=1G\\n#SBATCH --uid=0\"]\n", r"slurm_extra_directives\[0\]: expected"),
])
def test_a_bad_slurm_key_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_job_file(tmp_path, text))


def test_the_saved_config_writes_the_slurm_keys_flat_and_reloads_to_the_same_deployment(tmp_path: Path) -> None:
    cfg = load_config(_job_file(tmp_path, "launcher: slurm\nslurm_partition: gpu\nslurm_executors_per_node: 4\n"))

    saved = dump_config(cfg, tmp_path / "run" / "config.yml")

    written = yaml.safe_load(saved.read_text())
    assert "slurm" not in written
    assert (written["launcher"], written["slurm_partition"], written["slurm_executors_per_node"]) == ("slurm", "gpu", 4)
    reloaded = load_config(saved).deployment
    assert (reloaded.launcher, reloaded.slurm) == (cfg.deployment.launcher, cfg.deployment.slurm)
