"""Keys that FedScale, REFL or Halor config files use, beyond the schema, and how the loader treats them.

A file written for FedScale, REFL or Halor should load here without edits: keys those systems define but this
platform does not implement yet are accepted, recorded and reported by name, instead of failing the whole file.
When a key gains a schema field, remove it from these tuples (a unit test checks that the two never overlap).
"""

from __future__ import annotations

from collections.abc import Mapping

# FedScale's fedscale/cloud/config_parser.py (and older FedScale job files, e.g. the top-level redis_conf).
# Speech keys keep FedScale's dashes because that is how they appear in its command lines and files.
FEDSCALE_UNSUPPORTED_KEYS: tuple[str, ...] = (
    "adam_epsilon", "arrival_interval", "async_buffer", "async_mode", "backbone", "backend",
    "block_size", "cfg_file", "checkin_period", "clf_block_size", "clip_threshold",
    "clock_factor", "conf_path", "connection_timeout", "cuda_device", "data_cache",
    "dump_epoch", "embedding_file", "engine", "epsilon", "executor_configs",
    "experiment_mode",
    "finetune", "gamma", "hidden-layers", "hidden-size", "input_dim", "input_shape", "labels-path", "line_by_line",
    "loss_decay", "malicious_factor", "max_concurrency", "max_staleness", "memory_capacity", "mlm",
    "mlm_probability", "model_size", "model_zoo", "n_actions", "n_states", "no-bidirectional", "noise-dir",
    "noise-max", "noise-min", "noise-prob", "noise_factor", "num_loaders", "output_dim",
    "overwrite_cache", "qfed_q", "redis_conf", "rnn-type",
    "sample-rate", "spec-augment", "speed-volume-perturb", "target_delta",
    "target_replace_iter", "test-manifest", "test_output_dir", "test_ratio", "test_size_file", "this_rank",
    "time_stamp", "train-manifest", "train_size_file", "train_uniform", "upload_step", "vocab_tag_size",
    "vocab_token_size", "wandb_token", "window", "window-size", "window-stride",
)

# REFL's core/argParser.py and its core/evals/configs/*/conf_exp.yml job files.
REFL_UNSUPPORTED_KEYS: tuple[str, ...] = (
    "adapt_scale_coff", "avail_probability",
    "data_map_dir", "deadline_alpha", "deadline_control", "deadline_percent",
    "enforce_sgd", "initial_deadline", "initial_total_worker",
    "last_worker", "learners", "manager_port", "model_boost", "no_filter_dropouts", "process_files_ratio",
    "prohibit_reselect", "resume_wandb",
    "send_delta", "stale_all", "stale_skip_round",
    "straggler_penalty", "test_interval", "train_ratio",
    "wandb_key",
)

# Halor's keys all have schema fields (his_beta under its own name, halor_history).
HALOR_UNSUPPORTED_KEYS: tuple[str, ...] = ()

RECOGNIZED_UNSUPPORTED_KEYS: tuple[str, ...] = tuple(
    sorted(set(FEDSCALE_UNSUPPORTED_KEYS) | set(REFL_UNSUPPORTED_KEYS) | set(HALOR_UNSUPPORTED_KEYS))
)

# Other systems' names for schema keys: REFL counts rounds in "epochs", as FedScale did before it renamed them.
KEY_ALIASES: Mapping[str, str] = {
    "epochs": "rounds",
    "decay_epoch": "decay_round",
    # Oort's and FedScale's older name for the number of participants per round.
    "total_worker": "num_participants",
    # Halor's name for the number of rounds of histograms in the global distribution.
    "his_beta": "halor_history",
}

# Spellings of a value that other systems accept, mapped to the schema's own spelling (keys are lower case;
# None stands for YAML's null, which FedScale uses to mean its default policy).
VALUE_ALIASES: Mapping[str, Mapping[str | None, str]] = {
    "gradient_policy": {
        None: "fedavg",
        "fedavg": "fedavg",
        "fed-avg": "fedavg",
        "fed_avg": "fedavg",
        "fed-prox": "fed-prox",
        "fedprox": "fed-prox",
        "prox": "fed-prox",
        "fed-yogi": "fed-yogi",
        "fedyogi": "fed-yogi",
        "yogi": "fed-yogi",
        "fed-adam": "fed-adam",
        "fedadam": "fed-adam",
        "adam": "fed-adam",
    },
}

# Keys holding file or folder paths: a leading "~" means the user's home, as in a shell.
PATH_KEYS: frozenset[str] = frozenset({"data_dir", "log_path", "data_map_file", "ssh_private_key", "exp_path",
                                    "device_conf_file", "device_avail_file",
                                    "tls_cert_file", "tls_key_file", "tls_ca_file"})

# Shell text run on each host: its $VARs belong to the shell of the host that runs it, so the loader keeps them.
SHELL_TEXT_KEYS: frozenset[str] = frozenset({"setup_commands"})

# Key names whose values are credentials: never written to a dumped config or a dashboard.
SECRET_KEY_MARKERS: tuple[str, ...] = ("api_key", "token", "password")
REDACTED = "<redacted>"


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in SECRET_KEY_MARKERS)

