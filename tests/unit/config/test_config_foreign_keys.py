"""Keys of FedScale, REFL, Halor and Oort: aliases, machinery keys ignored, training keys refused unless neutral."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fedscale_halor.config import ConfigError
from fedscale_halor.config.known_keys import (
    FALLBACK_ALIASES,
    FOLDER_ALIASES,
    FOREIGN_KEYS,
    KEY_ALIASES,
)
from fedscale_halor.config.schema import DeploymentConfig, JobConfig
from fedscale_halor.config.validation import field_specs
from fedscale_halor.launch.jobfile import config_from_mapping, with_overrides
from fedscale_halor.launch.plugins import settings_sections

SOURCE = Path("conf.yml")

# Every option of Halor's core/argParser.py, which holds all of REFL's core/argParser.py and adds its own.
HALOR_AND_REFL_PARSER_KEYS = (
    "job_name", "log_path", "exp_type", "stale_update", "stale_factor", "straggler_penalty", "deadline_percent",
    "deadline", "deadline_alpha", "deadline_control", "initial_deadline", "target_ratio", "last_worker",
    "no_filter_dropouts", "avail_priority", "random_behv", "total_clients", "used_samples", "partitioning",
    "filter_class", "filter_class_ratio", "zipf_param", "process_files_ratio", "train_ratio", "use_wandb",
    "resume_wandb", "wandb_key", "wandb_tags", "wandb_entity", "enforce_sgd", "dropout_ratio", "send_delta",
    "model_boost", "stale_all", "adapt_selection", "adapt_selection_cap", "initial_total_worker",
    "avail_probability", "stale_skip_round", "stale_beta", "scale_coff", "adapt_scale_coff", "prohibit_reselect",
    "scale_sys_percent", "scale_sys", "dirichlet_alpha", "his_beta", "modification", "data_regulation",
    "similarity", "utility_threshold_ratio", "utility_sample_ratio", "utility_sample_mode", "feddc", "feddc_alpha",
    "ps_ip", "ps_port", "manager_port", "this_rank", "learners", "total_worker", "data_map_dir", "use_cuda",
    "cuda_device", "time_stamp", "task", "pacer_delta", "pacer_step", "exploration_alpha", "exploration_factor",
    "exploration_decay", "sample_window", "device_avail_file", "clock_factor", "data_dir", "device_conf_file",
    "model", "data_set", "sample_mode", "filter_less", "filter_more", "train_uniform", "conf_path",
    "overcommitment", "model_size", "round_threshold", "round_penalty", "clip_bound", "blacklist_rounds",
    "blacklist_max_len", "epochs", "local_steps", "batch_size", "test_bsz", "backend", "test_interval",
    "learning_rate", "min_learning_rate", "input_dim", "output_dim", "dump_epoch", "decay_factor", "decay_epoch",
    "num_loaders", "eval_interval", "sample_seed", "test_ratio", "loss_decay", "exploration_min", "cut_off_util",
    "gradient_policy", "yogi_eta", "yogi_tau", "yogi_beta", "yogi_beta2", "proxy_mu", "cfg_file", "test_output_dir",
    "train_size_file", "test_size_file", "data_cache", "backbone", "malicious_factor", "noise_factor",
    "line_by_line", "mlm", "mlm_probability", "overwrite_cache", "block_size", "weight_decay", "adam_epsilon",
    "vocab_token_size", "vocab_tag_size", "num_classes", "train-manifest", "test-manifest", "sample-rate",
    "labels-path", "window-size", "window-stride", "window", "hidden-size", "hidden-layers", "rnn-type", "finetune",
    "speed-volume-perturb", "spec-augment", "noise-dir", "noise-prob", "noise-min", "noise-max", "no-bidirectional",
)

TRAINING_KEYS = sorted(key for key, spec in FOREIGN_KEYS.items() if spec.is_training_key)
MACHINERY_KEYS = sorted(key for key, spec in FOREIGN_KEYS.items() if not spec.is_training_key)


def schema_keys() -> set[str]:
    plugin_keys = {name for section in settings_sections(()) for name in field_specs(section)}
    return set(field_specs(JobConfig)) | set(field_specs(DeploymentConfig)) | plugin_keys


def job(*entries: dict[str, object]) -> dict[str, object]:
    return {"job_conf": list(entries)}


def non_neutral_value(key: str) -> object:
    neutral = FOREIGN_KEYS[key].neutral or ()
    return True if neutral == (False,) else 0.37


def active_context(key: str) -> list[dict[str, object]]:
    """Job entries under which upstream reads ``key``."""
    only_when = FOREIGN_KEYS[key].only_when
    return [{only_when[0]: only_when[1][0]}] if only_when else []


# ---------- the tables ----------

def test_every_halor_and_refl_parser_key_is_known() -> None:
    # Prepare
    known = schema_keys() | set(KEY_ALIASES) | set(FOLDER_ALIASES) | set(FALLBACK_ALIASES) | set(FOREIGN_KEYS)

    # Execute
    missing = [key for key in HALOR_AND_REFL_PARSER_KEYS if key not in known]

    # Assert
    assert missing == []


def test_other_systems_keys_never_shadow_schema_keys_and_aliases_name_schema_keys() -> None:
    # Prepare
    aliases = set(KEY_ALIASES) | set(FOLDER_ALIASES) | set(FALLBACK_ALIASES)
    targets = set(KEY_ALIASES.values()) | {name for name, _ in FOLDER_ALIASES.values()} | set(FALLBACK_ALIASES.values())

    # Execute / Assert
    assert schema_keys() & (set(FOREIGN_KEYS) | aliases) == set()
    assert set(FOREIGN_KEYS) & aliases == set()
    assert targets <= schema_keys()
    assert all(spec.system in {"FedScale", "REFL", "Halor", "Oort"} for spec in FOREIGN_KEYS.values())


# ---------- training keys ----------

@pytest.mark.parametrize("key", TRAINING_KEYS)
def test_training_key_off_its_neutral_value_is_refused_naming_its_system(key: str) -> None:
    # Prepare
    spec = FOREIGN_KEYS[key]
    data = job(*active_context(key), {key: non_neutral_value(key)})

    # Execute
    with pytest.raises(ConfigError) as raised:
        config_from_mapping(data, SOURCE, environ={})

    # Assert
    message = str(raised.value)
    assert message.startswith(f"conf.yml: job_conf.{key}: a {spec.system} key (")
    assert "that this platform does not support: it loads only with" in message


@pytest.mark.parametrize(("key", "value"), [(key, value) for key in TRAINING_KEYS
                                            for value in FOREIGN_KEYS[key].neutral or ()])
def test_training_key_at_a_neutral_value_loads_and_is_reported(
        key: str, value: object, caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    data = job(*active_context(key), {key: value})

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.config"):
        cfg = config_from_mapping(data, SOURCE, environ={})

    # Assert
    assert cfg.unsupported_keys == (key,)
    assert key in caplog.records[0].getMessage()


@pytest.mark.parametrize("written", ["0", "False", False, 0, "0.0", "$OFF"])
def test_neutral_values_are_compared_as_upstream_parsers_read_them(written: object) -> None:
    # Execute
    cfg = config_from_mapping(job({"send_delta": written}, {"last_worker": written}), SOURCE, environ={"OFF": "0"})

    # Assert
    assert cfg.unsupported_keys == ("send_delta", "last_worker")


def test_key_upstream_reads_only_with_another_setting_loads_without_it() -> None:
    # Prepare: REFL reads avail_probability and prohibit_reselect only with availability priority
    data = job({"avail_priority": 0}, {"avail_probability": 0.9}, {"prohibit_reselect": 5})

    # Execute
    cfg = config_from_mapping(data, SOURCE, environ={})

    # Assert
    assert cfg.unsupported_keys == ("avail_probability", "prohibit_reselect")


def test_malicious_factor_matters_to_synchronous_jobs_only() -> None:
    # Prepare: FedScale's async executor trains with its core client, which never reads malicious_factor
    synchronous = job({"malicious_factor": 4})
    asynchronous = job({"async_mode": True}, {"malicious_factor": 4})

    # Execute
    cfg = config_from_mapping(asynchronous, SOURCE, environ={})

    # Assert
    assert cfg.unsupported_keys == ("malicious_factor",)
    with pytest.raises(ConfigError, match=r"malicious_factor.*async_mode False"):
        config_from_mapping(synchronous, SOURCE, environ={})


def test_refusal_names_the_neutral_values_and_the_setting_that_makes_the_key_matter() -> None:
    # Execute
    with pytest.raises(ConfigError) as raised:
        config_from_mapping(job({"avail_priority": 2}, {"prohibit_reselect": 5}), SOURCE, environ={})

    # Assert
    assert str(raised.value) == (
        "conf.yml: job_conf.prohibit_reselect: a REFL key (rounds during which a client that ran is not selected "
        "again (with availability priority)) that this platform does not support: it loads only with 0, which "
        "leaves training unchanged; REFL reads it only with avail_priority 1 or 2; got 5")


def test_halor_key_is_refused_as_a_halor_key() -> None:
    # Execute
    with pytest.raises(ConfigError, match=r"^conf.yml: job_conf.similarity: a Halor key \(") as raised:
        config_from_mapping(job({"similarity": 1}), SOURCE, environ={})

    # Assert
    assert "loads only with 0" in str(raised.value)


def test_override_of_a_training_key_is_checked_like_a_file_value() -> None:
    # Prepare
    base = config_from_mapping({}, SOURCE, environ={})

    # Execute
    kept = with_overrides(base, {"stale_all": "0"}, environ={})
    with pytest.raises(ConfigError, match=r"^conf.yml: override stale_all: a REFL key"):
        with_overrides(base, {"stale_all": "1"}, environ={})

    # Assert
    assert kept.unsupported_keys == ("stale_all",)


# ---------- machinery keys ----------

@pytest.mark.parametrize("key", MACHINERY_KEYS)
def test_machinery_key_loads_whatever_its_value(key: str) -> None:
    # Execute
    cfg = config_from_mapping(job({key: "anything at all"}), SOURCE, environ={})

    # Assert
    assert cfg.unsupported_keys == (key,)


def test_machinery_key_with_an_empty_or_unset_variable_loads() -> None:
    # Execute: REFL's scripts export WANDB_API_KEY="" for `wandb_key: $WANDB_API_KEY`
    with_empty = config_from_mapping(job({"wandb_key": "$WANDB_API_KEY"}), SOURCE, environ={"WANDB_API_KEY": ""})
    unset = config_from_mapping(job({"wandb_key": "$WANDB_API_KEY"}), SOURCE, environ={})

    # Assert
    assert with_empty.unsupported_keys == unset.unsupported_keys == ("wandb_key",)


# ---------- aliases and upstream spellings ----------

@pytest.mark.parametrize(("alias", "value", "field", "expected"), [
    ("data_mapfile", "/mnt/map.csv", "data_map_file", "/mnt/map.csv"),
    ("client_path", "/mnt/client_profile.pkl", "device_conf_file", "/mnt/client_profile.pkl"),
    ("upload_epoch", 7, "local_steps", 7),
    ("overcommit", 1.1, "overcommitment", 1.1),
    ("epochs", 12, "rounds", 12),
    ("his_beta", 3, "halor_history", 3),
])
def test_other_systems_spellings_of_schema_keys(alias: str, value: object, field: str, expected: object) -> None:
    # Execute
    cfg = config_from_mapping(job({alias: value}), SOURCE, environ={})

    # Assert
    assert cfg.job.value_of(field) == expected
    assert cfg.unsupported_keys == ()


def test_mapping_folder_is_read_as_its_training_mapping() -> None:
    # Execute
    cfg = config_from_mapping(job({"data_map_dir": "$DATA_PATH/client_data_mapping/"}), SOURCE,
                              environ={"DATA_PATH": "/data/google_speech"})

    # Assert
    assert cfg.job.data_map_file == "/data/google_speech/client_data_mapping/train.csv"


def test_mapping_folder_and_mapping_file_that_disagree_are_refused() -> None:
    # Prepare
    data = job({"data_map_dir": "/a"}, {"data_map_file": "/b/train.csv"})

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: job_conf.data_map_file: given again with a different value"):
        config_from_mapping(data, SOURCE, environ={})


def test_initial_total_worker_stands_in_only_for_a_missing_total_worker() -> None:
    # Execute
    alone = config_from_mapping(job({"initial_total_worker": 30}), SOURCE, environ={})
    beside = config_from_mapping(job({"initial_total_worker": 30}, {"total_worker": 10}), SOURCE, environ={})

    # Assert
    assert (alone.job.num_participants, alone.unsupported_keys) == (30, ())
    assert (beside.job.num_participants, beside.unsupported_keys) == (10, ("initial_total_worker",))


def test_override_of_a_mapping_folder_reads_its_training_mapping() -> None:
    # Prepare
    base = config_from_mapping({}, SOURCE, environ={})

    # Execute
    cfg = with_overrides(base, {"data_map_dir": "/data/femnist/client_data_mapping"}, environ={})

    # Assert
    assert cfg.job.data_map_file == "/data/femnist/client_data_mapping/train.csv"


@pytest.mark.parametrize(("written", "expected"), [("kuiper", "oort"), ("Kuiper", "oort"), ("oort", "oort")])
def test_oort_s_first_name_selects_oort(written: str, expected: str) -> None:
    # Execute
    cfg = config_from_mapping(job({"sample_mode": written}), SOURCE, environ={})

    # Assert
    assert cfg.job.sample_mode == expected


@pytest.mark.parametrize(("written", "expected"), [(0, 1.0), ("0", 1.0), ("$TARGETRATIO", 1.0), (0.8, 0.8)])
def test_refl_s_zero_target_ratio_means_no_target(written: object, expected: float) -> None:
    # Execute
    cfg = config_from_mapping(job({"target_ratio": written}), SOURCE, environ={"TARGETRATIO": "0"})

    # Assert
    assert cfg.job.target_ratio == expected


def test_oort_worker_entries_are_read_as_processes_on_the_host() -> None:
    # Execute
    cfg = config_from_mapping({"worker_ips": ["10.0.0.3:1", " 10.0.0.4:2", "10.0.0.5:[1,1]"]}, SOURCE, environ={})

    # Assert
    assert cfg.deployment.worker_ips == ("10.0.0.3:[1]", "10.0.0.4:[2]", "10.0.0.5:[1,1]")


# ---------- values as upstream files write them ----------

@pytest.mark.parametrize("total_clients", [None, 0, "0", "$CLIENTS"])
def test_zero_or_unset_total_clients_means_all_clients_and_skips_the_participant_check(total_clients: object) -> None:
    # Prepare
    entries = [{"total_worker": 10}, {"partitioning": 8}]
    if total_clients is not None:
        entries.append({"total_clients": total_clients})

    # Execute
    cfg = config_from_mapping(job(*entries), SOURCE, environ={"CLIENTS": "0"})

    # Assert
    assert (cfg.job.total_clients, cfg.job.num_participants) == (0, 10)


def test_participants_beyond_a_set_total_clients_are_still_refused() -> None:
    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: job_conf.num_participants: expected at most total_clients"):
        config_from_mapping(job({"total_clients": 5}, {"total_worker": 10}, {"partitioning": 8}), SOURCE, environ={})


def test_upstream_value_spellings_load() -> None:
    # Prepare: as REFL's and Halor's files write them
    data = job({"use_wandb": 1}, {"last_worker": 0}, {"yogi_eta": "3e-3"}, {"yogi_tau": "1e-8"},
               {"learning_rate": "1e-4"}, {"min_learning_rate": "1e-5"}, {"wandb_entity": "$WANDB_ENTITY"},
               {"wandb_tags": "$TAGS"}, {"wandb_key": "$WANDB_API_KEY"})

    # Execute
    cfg = config_from_mapping(data, SOURCE, environ={"WANDB_ENTITY": "", "TAGS": "", "WANDB_API_KEY": ""})

    # Assert
    assert (cfg.job.use_wandb, cfg.job.yogi_eta, cfg.job.yogi_tau) == (True, 0.003, 1e-8)
    assert (cfg.job.learning_rate, cfg.job.min_learning_rate) == (1e-4, 1e-5)
    assert (cfg.job.wandb_entity, cfg.job.wandb_tags) == ("", ())
    assert cfg.unsupported_keys == ("last_worker", "wandb_key")


@pytest.mark.parametrize("tags", ["safa", "safa_1", ["safa", "extra"]])
def test_safa_tags_are_refused(tags: object) -> None:
    # Execute / Assert
    with pytest.raises(ConfigError, match=r"^conf.yml: job_conf.wandb_tags: REFL and Halor run SAFA's round"):
        config_from_mapping(job({"wandb_tags": tags}), SOURCE, environ={})


@pytest.mark.parametrize(("written", "suggestion"), [
    ("data_regulaton", "data_regulation"), ("avail_probabilty", "avail_probability"), ("feddc_alfa", "feddc_alpha"),
    ("data_map_dirs", "data_map_dir"), ("initial_total_workers", "initial_total_worker")])
def test_unknown_key_still_suggests_the_closest_known_key(written: str, suggestion: str) -> None:
    # Execute / Assert
    with pytest.raises(ConfigError, match=rf"^conf.yml: job_conf.{written}: unknown key; did you mean '{suggestion}'"):
        config_from_mapping(job({written: 1}), SOURCE, environ={})
