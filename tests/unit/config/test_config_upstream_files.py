"""Halor's, REFL's and Oort's job files, as published, load with the variables their run scripts export.

The fixtures under fixtures/upstream/ hold the exact text of each file (their README names the commits). Each test
copies one into its temporary folder, sets the environment as the system's run script exports it for one setting
of the script's loops, loads it, and checks the values that decide what is trained.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from fedscale_halor.config import ConfigError, ExperimentConfig, dump_config
from fedscale_halor.launch.jobfile import load_config

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"

# ---------- the variables the run scripts export ----------

# Halor's run_exps_*.sh: the paths at their top, then one setting of their loops (each script's first values).
HALOR_PATHS = {"MAIN_PATH": "/home/Halor", "CONDA_ENV": "/home/anaconda3/envs/halor",
               "CONDA_PATH": "/home/anaconda3/", "WANDB_API_KEY": "", "WANDB_ENTITY": "", "LD_LIBRARY_PATH": ""}
HALOR_LOOP = {"EPOCHS": "1000", "WORKERS": "10", "STALEUPDATES": "0", "LOCALSTEPS": "1", "DEADLINE": "100",
              "TARGETRATIO": "0", "OVERCOMMIT": "1.3", "SAMPLER": "random", "AGGREGATOR": "fedavg", "PARTITION": "8",
              "EXPTYPE": "0", "CLIENTS": "1000", "SAMPLESEED": "0", "AVAILPRIO": "0", "AVAILPROP": "1",
              "RANDBEHV": "1", "ADAPT_SELECT": "0", "STALE_FACTOR": "0", "STALE_BETA": "0.35", "SCALE_COFF": "1",
              "DROPOUT_RATIO": "0.0", "SCALE_SYS": "0.01", "SCALE_SYS_PERCENT": "1.0"}
# run_exps_Oort.sh exports a real WandB key; a stand-in takes its place here.
WANDB_STAND_IN = "0123456789abcdef-stand-in-wandb-key"
HALOR_SCRIPTS = {
    "FedAvg": {**HALOR_LOOP, "TAGS": "FedAvg"},
    "Oort": {**HALOR_LOOP, "TAGS": "Oort", "SAMPLER": "oort", "AVAILPROP": "0.9", "WANDB_API_KEY": WANDB_STAND_IN},
    "REFL": {**HALOR_LOOP, "TAGS": "REFL", "AVAILPRIO": "1"},
    "SAFA": {**HALOR_LOOP, "TAGS": "n-safa", "TARGETRATIO": "0.1", "ADAPT_SELECT": "1"},
}
HALOR_DATA_FOLDER = {"FedAvg": "/home/Halor/data", "Oort": "/home/Halor/dataset/data",
                     "REFL": "/home/Halor/dataset/data", "SAFA": "/home/Halor/dataset/data"}

# REFL's run_exps.sh: its paths, then its main loop (tags other than the SAFA ones), whose availability priority
# is on; availprios lists 0 as the other choice.
REFL_PATHS = {"MAIN_PATH": "/home/user/REFL", "CONDA_ENV": "/home/user/anaconda3/envs/refl",
              "CONDA_PATH": "/home/user/anaconda3/", "WANDB_API_KEY": "", "WANDB_ENTITY": ""}
REFL_MAIN_LOOP = {"TAGS": "avail", "EPOCHS": "1000", "WORKERS": "10", "STALEUPDATES": "-1", "LOCALSTEPS": "1",
                  "DEADLINE": "100", "TARGETRATIO": "0.8", "OVERCOMMIT": "1.3", "SAMPLER": "random",
                  "AGGREGATOR": "yogi", "PARTITION": "1", "EXPTYPE": "0", "CLIENTS": "0", "SAMPLESEED": "0",
                  "AVAILPRIO": "1", "AVAILPROP": "0.9", "RANDBEHV": "1", "ADAPT_SELECT": "0", "STALE_FACTOR": "-4",
                  "STALE_BETA": "0.35", "SCALE_COFF": "1", "DROPOUT_RATIO": "0.0", "SCALE_SYS": "1.0",
                  "SCALE_SYS_PERCENT": "0.0"}
# The script's SAFA block (its default tags, "safa", and "safa1", "r-safa", "n-safa").
REFL_SAFA_BLOCK = {**REFL_MAIN_LOOP, "EPOCHS": "250", "PARTITION": "1", "WORKERS": "10", "DEADLINE": "100",
                   "EXPTYPE": "0", "LOCALSTEPS": "1", "SAMPLER": "random", "AGGREGATOR": "fedavg", "CLIENTS": "3000",
                   "STALEUPDATES": "5", "AVAILPRIO": "0", "RANDBEHV": "1", "TARGETRATIO": "0.8", "ADAPT_SELECT": "1"}

OORT_ENVIRONMENT = {"HOME": "/home/fl"}


def load_upstream(tmp_path: Path, fixture: str, environ: dict[str, str]) -> ExperimentConfig:
    path = tmp_path / Path(fixture).name
    shutil.copyfile(FIXTURES / fixture, path)
    return load_config(path, environ=environ)


def halor_environment(script: str, dataset: str) -> dict[str, str]:
    return {**HALOR_PATHS, **HALOR_SCRIPTS[script], "DATASET": dataset,
            "DATA_PATH": f"{HALOR_DATA_FOLDER[script]}/{dataset}"}


def refl_environment(loop: dict[str, str], dataset: str) -> dict[str, str]:
    return {**REFL_PATHS, **loop, "DATASET": dataset, "DATA_PATH": f"/home/user/REFL/dataset/data/{dataset}"}


# ---------- Halor ----------

HALOR_FILES = {  # dataset: (filter_less, batch_size, data_regulation, feddc_alpha)
    "cifar10": (11, 10, 0, 0.01),
    "fashion_mnist": (17, 16, 1, 0.1),
    "google_speech": (11, 10, 1, 0.005),
}


@pytest.mark.parametrize("script", sorted(HALOR_SCRIPTS))
@pytest.mark.parametrize("dataset", sorted(HALOR_FILES))
def test_halor_files_load_with_each_run_script(tmp_path: Path, dataset: str, script: str) -> None:
    # Prepare
    environ = halor_environment(script, dataset)
    filter_less, batch_size, data_regulation, feddc_alpha = HALOR_FILES[dataset]

    # Execute
    cfg = load_upstream(tmp_path, f"halor/{dataset}/conf_exp.yml", environ)

    # Assert
    job = cfg.job
    assert (job.data_set, job.job_name, job.rounds, job.num_participants, job.total_clients) == (
        dataset, dataset, 1000, 10, 1000)
    assert (job.partitioning, job.dirichlet_alpha, job.used_samples, job.filter_class_ratio) == (8, 0.1, 0, 1.0)
    assert (job.filter_less, job.batch_size, job.test_bsz, job.learning_rate) == (
        filter_less, batch_size, batch_size, 0.04)
    assert (job.value_of("data_regulation"), job.feddc, job.feddc_alpha, job.value_of("halor_history")) == (
        data_regulation, 1, feddc_alpha, 5)
    assert (job.local_steps, job.exp_type, job.deadline, job.value_of("stale_update"), job.sample_seed) == (
        1, 0, 100.0, 0, 0)
    assert (job.gradient_policy, job.yogi_eta, job.yogi_tau) == ("fedavg", 0.003, 1e-8)
    assert (job.scale_sys, job.scale_sys_percent, job.random_behv, job.overcommitment) == (0.01, 1.0, 1, 1.3)
    assert job.target_ratio == (0.1 if script == "SAFA" else 1.0)  # Halor's 0: no target
    assert job.value_of("adapt_selection") == (1 if script == "SAFA" else 0)
    assert job.avail_priority == (1 if script == "REFL" else 0)
    assert job.sample_mode == ("oort" if script == "Oort" else "random")
    assert (job.use_wandb, job.wandb_entity, job.wandb_tags) == (True, "", (HALOR_SCRIPTS[script]["TAGS"],))
    assert job.data_dir == environ["DATA_PATH"]
    assert job.device_avail_file == "/home/Halor/dataset/data/device_info/client_behave_trace"
    assert (cfg.deployment.exp_path, cfg.deployment.executor_entry) == ("/home/Halor/core", "executor.py")
    assert {"num_loaders", "last_worker", "avail_probability", "send_delta", "model_boost", "stale_all",
            "wandb_key"} == set(cfg.unsupported_keys)


def test_halor_speech_file_reads_its_mapping_folder_and_staleness_keys(tmp_path: Path) -> None:
    # Prepare
    environ = halor_environment("FedAvg", "google_speech")

    # Execute
    cfg = load_upstream(tmp_path, "halor/google_speech/conf_exp.yml", environ)

    # Assert
    job = cfg.job
    assert (job.task, job.model) == ("speech", "resnet34")
    assert job.data_map_file == "/home/Halor/data/google_speech/client_data_mapping/train.csv"
    stale_keys = ("stale_factor", "stale_beta", "scale_coff")
    assert tuple(job.value_of(key) for key in stale_keys) == (0.0, 0.35, 1.0)
    assert job.dropout_ratio == 0.0


def test_halor_files_leave_no_secret_in_the_dumped_config(tmp_path: Path) -> None:
    # Prepare
    cfg = load_upstream(tmp_path, "halor/cifar10/conf_exp.yml", halor_environment("Oort", "cifar10"))

    # Execute
    text = dump_config(cfg, tmp_path / "resolved.yml").read_text(encoding="utf-8")

    # Assert
    assert WANDB_STAND_IN not in text
    assert "wandb_key" in text.splitlines()[2]  # named among the ignored keys, without its value


def test_halor_script_refusing_a_training_key_names_halor_s_neutral_value(tmp_path: Path) -> None:
    # Prepare: the REFL script with an availability oracle that is not exact
    environ = {**halor_environment("REFL", "cifar10"), "AVAILPROP": "0.9"}

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_upstream(tmp_path, "halor/cifar10/conf_exp.yml", environ)

    # Assert
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'conf_exp.yml'}: job_conf.avail_probability: a REFL key")
    assert "does not support" in message and "loads only with 0 or 1" in message and "got '0.9'" in message


# ---------- REFL ----------

def test_refl_main_loop_is_refused_for_its_availability_oracle(tmp_path: Path) -> None:
    # Prepare
    environ = refl_environment(REFL_MAIN_LOOP, "cifar10")

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_upstream(tmp_path, "refl/cifar10/conf_exp.yml", environ)

    # Assert
    assert "job_conf.avail_probability: a REFL key (accuracy of the availability oracle" in str(raised.value)
    assert "REFL reads it only with avail_priority 1 or 2" in str(raised.value)


@pytest.mark.parametrize("dataset", ["cifar10", "google_speech"])
def test_refl_files_load_without_availability_priority(tmp_path: Path, dataset: str) -> None:
    # Prepare
    environ = refl_environment({**REFL_MAIN_LOOP, "AVAILPRIO": "0"}, dataset)

    # Execute
    cfg = load_upstream(tmp_path, f"refl/{dataset}/conf_exp.yml", environ)

    # Assert
    job = cfg.job
    assert (job.data_set, job.rounds, job.num_participants) == (dataset, 1000, 10)
    assert job.total_clients == 0  # REFL's CLIENTS=0: all of the data set's clients, decided once it is opened
    assert (job.partitioning, job.gradient_policy, job.target_ratio, job.exp_type) == (1, "fed-yogi", 0.8, 0)
    assert (job.value_of("stale_update"), job.avail_priority, job.local_steps, job.deadline) == (-1, 0, 1, 100.0)
    assert (job.scale_sys, job.scale_sys_percent) == (1.0, 0.0)
    assert "avail_probability" in cfg.unsupported_keys  # REFL ignores it without availability priority


def test_refl_cifar10_values(tmp_path: Path) -> None:
    # Execute
    cfg = load_upstream(tmp_path, "refl/cifar10/conf_exp.yml",
                        refl_environment({**REFL_MAIN_LOOP, "AVAILPRIO": "0"}, "cifar10"))

    # Assert
    job = cfg.job
    assert (job.filter_less, job.learning_rate, job.batch_size, job.filter_class_ratio) == (11, 0.01, 10, 0.4)
    assert (job.value_of("adapt_selection"), job.model, job.wandb_tags) == (1, "resnet18", ("avail",))


def test_refl_speech_values(tmp_path: Path) -> None:
    # Execute
    cfg = load_upstream(tmp_path, "refl/google_speech/conf_exp.yml",
                        refl_environment({**REFL_MAIN_LOOP, "AVAILPRIO": "0"}, "google_speech"))

    # Assert
    job = cfg.job
    assert (job.task, job.filter_less, job.used_samples, job.filter_class_ratio) == ("speech", 21, 0, 0.1)
    assert (job.value_of("stale_factor"), job.value_of("stale_beta"), job.value_of("scale_coff")) == (-4.0, 0.35, 1.0)
    assert job.data_map_file == "/home/user/REFL/dataset/data/google_speech/client_data_mapping/train.csv"


def test_refl_safa_block_loads_under_a_tag_that_does_not_start_with_safa(tmp_path: Path) -> None:
    # Prepare
    environ = refl_environment({**REFL_SAFA_BLOCK, "TAGS": "r-safa"}, "cifar10")

    # Execute
    cfg = load_upstream(tmp_path, "refl/cifar10/conf_exp.yml", environ)

    # Assert
    job = cfg.job
    assert (job.total_clients, job.value_of("stale_update"), job.target_ratio, job.gradient_policy) == (
        3000, 5, 0.8, "fedavg")


@pytest.mark.parametrize("tags", ["safa", "safa1"])
def test_refl_safa_tags_are_refused_because_they_switch_refl_to_safa_rounds(tmp_path: Path, tags: str) -> None:
    # Prepare
    environ = refl_environment({**REFL_SAFA_BLOCK, "TAGS": tags, "TARGETRATIO": "0.1"}, "cifar10")

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_upstream(tmp_path, "refl/cifar10/conf_exp.yml", environ)

    # Assert
    assert "job_conf.wandb_tags: REFL and Halor run SAFA's round" in str(raised.value)


@pytest.mark.parametrize(("fixture", "data_set"), [
    ("refl/openimage/conf_exp.yml", "openImg"), ("refl/reddit/conf_exp.yml", "reddit"),
    ("refl/stackoverflow/conf_exp.yml", "stackoverflow")])
def test_refl_files_of_data_sets_this_platform_lacks_are_refused_by_data_set(
        tmp_path: Path, fixture: str, data_set: str) -> None:
    # Prepare
    environ = refl_environment({**REFL_MAIN_LOOP, "AVAILPRIO": "0"}, data_set)

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_upstream(tmp_path, fixture, environ)

    # Assert
    assert "job_conf.data_set: expected one of 'digits', 'cifar10'" in str(raised.value)
    assert repr(data_set) in str(raised.value)


# ---------- Oort ----------

def test_oort_speech_file_loads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.config"):
        cfg = load_upstream(tmp_path, "oort/speech/conf.yml", OORT_ENVIRONMENT)

    # Assert
    job = cfg.job
    assert (cfg.deployment.ps_ip, cfg.deployment.worker_ips) == ("10.0.0.7", ("10.0.0.6:[1]",))
    assert cfg.deployment.exp_path == "/home/fl/Kuiper/training"
    assert (job.data_set, job.task, job.model, job.rounds, job.num_participants) == (
        "google_speech", "speech", "resnet34", 500, 5)
    assert (job.sample_mode, job.gradient_policy, job.round_penalty, job.eval_interval) == (
        "oort", "fed-yogi", 2.0, 20)
    assert job.data_map_file == "/mnt/dataset/google_speech/clientDataMap"
    assert job.device_conf_file == "/home/fl/Kuiper/data/device_info/client_profile.pkl"
    assert job.total_clients == 0
    assert cfg.unsupported_keys == ()
    assert not caplog.records


@pytest.mark.parametrize(("fixture", "data_set"), [
    ("oort/conf.yml", "openImg"), ("oort/openimage/conf.yml", "openImg"), ("oort/lm/conf.yml", "blog"),
    ("oort/stackoverflow/conf.yml", "blog")])
def test_oort_files_of_data_sets_this_platform_lacks_are_refused_by_data_set(
        tmp_path: Path, fixture: str, data_set: str) -> None:
    # Execute
    with pytest.raises(ConfigError) as raised:
        load_upstream(tmp_path, fixture, OORT_ENVIRONMENT)

    # Assert
    assert "job_conf.data_set: expected one of" in str(raised.value)
    assert repr(data_set) in str(raised.value)


def test_oort_language_model_file_with_a_data_set_this_platform_has_stops_at_its_test_ratio(tmp_path: Path) -> None:
    # Prepare: the same keys with a data set and task this platform runs
    text = (FIXTURES / "oort" / "lm" / "conf.yml").read_text(encoding="utf-8")
    path = tmp_path / "conf.yml"
    path.write_text(text.replace("data_set: blog", "data_set: cifar10").replace("task: nlp", "task: cv"),
                    encoding="utf-8")

    # Execute
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ=OORT_ENVIRONMENT)

    # Assert: Oort evaluates a tenth of the test set; here the whole test set is evaluated
    assert str(raised.value).startswith(f"{path}: job_conf.test_ratio: a FedScale key (share of the test set")
    assert "loads only with 1" in str(raised.value)
