"""Real job files load: the shipped ones, FedScale's femnist job and a REFL/Halor-style job."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fedscale_halor.config import RECOGNIZED_UNSUPPORTED_KEYS
from fedscale_halor.config.variables import repository_root
from fedscale_halor.launch.jobfile import config_from_mapping, load_config

FIXTURES = Path(__file__).parent / "fixtures"
SHIPPED_DATASETS = ("digits", "cifar10", "fashion_mnist", "femnist", "google_speech")

REFL_ENVIRONMENT = {
    "MAIN_PATH": "/opt/refl", "DATA_PATH": "/data/cifar10", "CONDA_PATH": "/opt/conda", "CONDA_ENV": "refl",
    "WORKERS": "100", "SAMPLER": "random", "AGGREGATOR": "fed-avg", "LOCALSTEPS": "5", "STALEUPDATES": "1",
    "DEADLINE": "100", "TARGETRATIO": "0.8", "RANDBEHV": "1", "AVAILPRIO": "0", "PARTITION": "1",
    "CLIENTS": "3000", "EXPTYPE": "1", "OVERCOMMIT": "1.3", "SAMPLESEED": "233", "WANDB_ENTITY": "fl-lab",
}


@pytest.mark.parametrize("dataset", SHIPPED_DATASETS)
def test_every_shipped_config_loads_with_expanded_paths(dataset: str) -> None:
    # Prepare
    path = repository_root() / "benchmark" / "configs" / dataset / "conf.yml"
    home = str(repository_root())

    # Execute
    cfg = load_config(path, environ={})

    # Assert
    assert cfg.job.data_set == dataset
    assert cfg.job.job_name == dataset
    assert cfg.job.data_dir == f"{home}/data/{dataset}"
    assert cfg.job.log_path == f"{home}/logs"
    assert cfg.deployment.exp_path == home
    assert len(cfg.deployment.worker_ips) == 1 and cfg.deployment.worker_ips[0].startswith("127.0.0.1:[")
    assert cfg.unsupported_keys == ()


def test_digits_config_is_the_main_job() -> None:
    # Prepare
    path = repository_root() / "benchmark" / "configs" / "digits" / "conf.yml"

    # Execute
    cfg = load_config(path, environ={})
    job = cfg.job

    # Assert
    assert (job.model, job.total_clients, job.partitioning, job.dirichlet_alpha) == ("digits_cnn", 100, 9, 0.5)
    assert (job.num_participants, job.rounds, job.local_steps, job.batch_size) == (10, 60, 10, 10)
    assert (job.learning_rate, job.eval_interval, job.filter_less) == (0.05, 5, 0)
    assert (cfg.deployment.worker_ips, job.sample_seed) == (("127.0.0.1:[2]",), 233)


def test_shipped_configs_carry_halor_hyper_parameters() -> None:
    # Prepare
    configs = repository_root() / "benchmark" / "configs"

    # Execute
    cifar = load_config(configs / "cifar10" / "conf.yml", environ={}).job
    femnist = load_config(configs / "femnist" / "conf.yml", environ={}).job
    speech = load_config(configs / "google_speech" / "conf.yml", environ={}).job
    fashion = load_config(configs / "fashion_mnist" / "conf.yml", environ={}).job

    # Assert
    assert (cifar.model, cifar.learning_rate, cifar.batch_size, cifar.local_steps) == ("resnet18", 0.04, 10, 20)
    assert (cifar.partitioning, cifar.dirichlet_alpha) == (9, 0.1)
    assert (cifar.total_clients, cifar.num_participants) == (1000, 10)
    assert (femnist.model, femnist.partitioning, femnist.batch_size) == ("femnist_cnn", 0, 20)
    assert (femnist.learning_rate, femnist.filter_less) == (0.05, 21)
    assert (speech.model, speech.partitioning, speech.task) == ("resnet34_speech", 0, "speech")
    assert (fashion.model, fashion.partitioning) == ("femnist_cnn", 9)


def test_fedscale_femnist_job_loads_and_reports_its_unsupported_keys(caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    path = FIXTURES / "fedscale_femnist_conf.yml"
    home = str(repository_root())

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.config"):
        cfg = load_config(path, environ={"HOME": "/home/fl"})

    # Assert
    assert cfg.unsupported_keys == ("num_loaders",)
    assert cfg.job.device_conf_file.endswith("benchmark/dataset/data/device_info/client_device_capacity")
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0]
    assert all(key in warnings[0] for key in cfg.unsupported_keys)
    assert cfg.deployment.ps_ip == "10.0.0.1"
    assert cfg.deployment.worker_ips == ("10.0.0.1:[4]",)
    assert cfg.deployment.exp_path == f"{home}/fedscale/cloud"
    assert cfg.deployment.executor_entry == "execution/executor.py"
    assert cfg.deployment.setup_commands == ("source $HOME/anaconda3/bin/activate fedscale",)
    assert cfg.job.data_map_file == f"{home}/benchmark/dataset/data/femnist/client_data_mapping/train.csv"
    assert (cfg.job.num_participants, cfg.job.rounds, cfg.job.filter_less, cfg.job.local_steps) == (50, 1000, 21, 5)
    assert (cfg.job.use_cuda, cfg.job.save_checkpoint, cfg.job.test_bsz) == (True, False, 20)


def test_fedscale_home_from_the_environment_wins_over_the_default() -> None:
    # Prepare
    path = FIXTURES / "fedscale_femnist_conf.yml"

    # Execute
    cfg = load_config(path, environ={"FEDSCALE_HOME": "/srv/FedScale"})

    # Assert
    assert cfg.deployment.exp_path == "/srv/FedScale/fedscale/cloud"
    assert cfg.job.log_path == "/srv/FedScale/benchmark"


def test_refl_halor_job_loads_with_its_environment(caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    path = FIXTURES / "refl_halor_conf.yml"

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.config"):
        cfg = load_config(path, environ=REFL_ENVIRONMENT)

    # Assert
    job = cfg.job
    assert (job.total_clients, job.num_participants, job.local_steps, job.partitioning, job.sample_seed) == (
        3000, 100, 5, 1, 233)
    assert job.rounds == 1000  # from REFL's "epochs"
    assert job.gradient_policy == "fedavg"
    assert (job.yogi_eta, job.yogi_tau) == (0.003, 1e-8)
    assert job.data_dir == "/data/cifar10"
    assert cfg.deployment.exp_path == "/opt/refl/core"
    assert cfg.deployment.setup_commands[2] == "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$CONDA_PATH/lib"
    assert (job.deadline, job.target_ratio, job.random_behv, job.exp_type, job.overcommitment) == (
        100.0, 0.8, 1, 1, 1.3)
    assert (job.avail_priority, job.value_of("stale_update"), job.filter_class_ratio) == (0, 1, 0.4)
    assert job.device_avail_file == "/opt/refl/dataset/data/device_info/client_behave_trace"
    expected_unsupported = {"num_loaders", "last_worker", "wandb_key"}
    assert set(cfg.unsupported_keys) == expected_unsupported
    assert (job.value_of("halor"), job.value_of("halor_history"), job.value_of("halor_resample")) == (
        True, 5, "under")  # his_beta is halor_history
    assert (job.use_wandb, job.wandb_entity) == (True, "fl-lab")
    message = " ".join(record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
    assert all(key in message for key in expected_unsupported)


def test_old_fedscale_top_level_redis_section_is_recognized() -> None:
    # Prepare
    data = {"ps_ip": "10.0.0.4", "redis_conf": {"redis_host": "10.0.0.4", "redis_port": 6379},
            "job_conf": [{"job_name": "femnist"}]}

    # Execute
    cfg = config_from_mapping(data, None, environ={})

    # Assert
    assert cfg.unsupported_keys == ("redis_conf",)
    assert "redis_conf" in RECOGNIZED_UNSUPPORTED_KEYS
