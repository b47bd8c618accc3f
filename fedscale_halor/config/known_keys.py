"""Keys that FedScale, REFL, Halor or Oort job files use beyond the schema, and how the loader treats each one.

A job file written for one of those systems loads here unchanged when every key it sets either has a schema field
(possibly under another spelling: ``KEY_ALIASES``), or is one of the ``FOREIGN_KEYS`` below:

- a *machinery* key (``neutral`` is None) only tunes how the upstream system runs (ports, ranks, data loaders,
  WandB plumbing, options of tasks this platform does not run): it is accepted, recorded in
  ``ExperimentConfig.unsupported_keys`` and named in one warning;
- a *training* key changes what is trained or measured upstream and is not implemented here: it is accepted, with
  the same warning, only at one of its ``neutral`` values (the upstream values that leave training unchanged), or
  when the job's ``only_when`` field makes upstream ignore it; any other value is refused with a ConfigError naming
  the system and the neutral values.

When a key gains a schema field, remove it from ``FOREIGN_KEYS`` (a unit test checks that the two never overlap).
The meanings below were read from the systems' argument parsers and the code that reads each argument: FedScale's
fedscale/cloud/config_parser.py, REFL's core/argParser.py (ahmedcs/REFL), Halor's core/argParser.py
(anonymous05941/Halor, which extends REFL's) and Oort's training/argParser.py (SymbioticLab/Oort).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FEDSCALE, REFL, HALOR, OORT = "FedScale", "REFL", "Halor", "Oort"
SYSTEMS: tuple[str, ...] = (FEDSCALE, REFL, HALOR, OORT)


@dataclass(frozen=True)
class ForeignKey:
    """A key another system defines that has no schema field here."""

    system: str
    meaning: str
    # None: machinery, ignored whatever its value. Otherwise the values that leave upstream training unchanged.
    neutral: tuple[object, ...] | None = None
    # (job field, values): upstream reads the key only while the field has one of these values.
    only_when: tuple[str, tuple[object, ...]] | None = None

    @property
    def is_training_key(self) -> bool:
        return self.neutral is not None


def _machinery(system: str, meaning: str) -> ForeignKey:
    return ForeignKey(system, meaning)


def _training(system: str, meaning: str, *neutral: object,
              only_when: tuple[str, tuple[object, ...]] | None = None) -> ForeignKey:
    return ForeignKey(system, meaning, tuple(neutral), only_when)


_WITH_AVAIL_PRIORITY = ("avail_priority", (1, 2))
_NLP = "used by its NLP tasks only, which this platform does not run"
_DETECTION = "used by its object-detection task only, which this platform does not run"
_VOICE = "used by its DeepSpeech voice task only, which this platform does not run"
_RL = "used by its reinforcement-learning task only, which this platform does not run"
_ASYNC = "read only by its async aggregator, whose check-ins here follow arrival_interval alone"

FOREIGN_KEYS: Mapping[str, ForeignKey] = {
    # ---- REFL's additions to FedScale's parser (Halor inherits all of them) ----
    "straggler_penalty": _training(REFL, "penalty on stragglers' utility scores", 1.25),
    "deadline_percent": _training(REFL, "keeps only this share of the fastest participants of each round", 0),
    "deadline_alpha": _training(REFL, "weight of the history in the moving-average deadline and round length",
                                0.25),
    "deadline_control": _training(REFL, "control logic adapting the deadline", 0),
    "initial_deadline": _training(REFL, "deadline of the first round when deadline <= 0 (and with exp_type 1)",
                                  1000),
    "last_worker": _training(REFL, "a round lasts until its last completed client instead of the deadline",
                             False),
    "no_filter_dropouts": _training(REFL, "keeps dropped-out clients, their completion inflated this many times",
                                    0),
    "train_ratio": _training(REFL, "share of each client's training samples kept", 1.0),
    "test_ratio": _training(FEDSCALE, "share of the test set evaluated (REFL and Halor also cut the data)", 1.0),
    "enforce_sgd": _training(REFL, "plain SGD (no momentum, no weight decay) for local training", False),
    "send_delta": _training(REFL, "clients send model deltas, aggregated by another rule", False),
    "model_boost": _training(REFL, "runs stragglers only when the last round's model change was small", False),
    "stale_all": _training(REFL, "every participant but the fastest becomes a straggler", False),
    "stale_skip_round": _training(REFL, "applies stale updates in rounds without fresh ones", False),
    "adapt_scale_coff": _training(REFL, "adapts scale_coff to the test loss", False),
    "avail_probability": _training(REFL, "accuracy of the availability oracle of its availability priority",
                                   0, 1, only_when=_WITH_AVAIL_PRIORITY),
    "prohibit_reselect": _training(REFL, "rounds during which a client that ran is not selected again (with "
                                         "availability priority)", 0, only_when=_WITH_AVAIL_PRIORITY),
    "process_files_ratio": _machinery(REFL, f"share of files read for the mapping of its NLP data sets; {_NLP}"),
    "resume_wandb": _machinery(REFL, "resumes a WandB run"),
    "wandb_key": _machinery(REFL, "WandB API key; this platform reads WANDB_API_KEY or wandb login, and never "
                                  "keeps the value"),
    "manager_port": _machinery(REFL, "port of its control-plane manager"),
    "learners": _machinery(REFL, "ranks of its executors, set by its launcher"),
    # ---- Halor's additions to REFL's parser ----
    "modification": _training(HALOR, "switch of Halor's parser (default 1; its published code does not read it)",
                              1),
    "similarity": _training(HALOR, "loads the global label distribution for client similarity", 0),
    "utility_threshold_ratio": _training(HALOR, "utility threshold of Halor's parser (default 0.95)", 0.95),
    "utility_sample_ratio": _training(HALOR, "utility sample share of Halor's parser (default 0.7)", 0.7),
    "utility_sample_mode": _training(HALOR, "utility sampling mode of Halor's parser (default 3)", 3),
    # ---- FedScale's parser (REFL, Halor and Oort share most of it) ----
    "clock_factor": _training(FEDSCALE, "multiplier of the simulated clock", 1.0),
    "loss_decay": _training(FEDSCALE, "decay of the moving training loss behind Oort's statistical utility", 0.2),
    "train_uniform": _training(FEDSCALE, "uniform training sampling", False),
    "noise_factor": _training(FEDSCALE, "differential-privacy noise (Oort: noise on the clients' utilities)", 0),
    "malicious_factor": _training(FEDSCALE, "malicious clients; REFL's 0 and the default 1e15 leave all honest; "
                                            "FedScale's async executor trains with its core client, which does "
                                            "not read it", 0, 1e15, only_when=("async_mode", (False,))),
    "checkin_period": _machinery(FEDSCALE, f"client check-in period; {_ASYNC}"),
    "clip_threshold": _machinery(FEDSCALE, "clipping of its differential-privacy gradient policy, which "
                                           "gradient_policy does not offer here"),
    "target_delta": _machinery(FEDSCALE, "delta of its differential-privacy accounting, which gradient_policy "
                                         "does not offer here"),
    "qfed_q": _machinery(FEDSCALE, "q of its q-FedAvg gradient policy, which gradient_policy does not offer here"),
    "model_size": _machinery(FEDSCALE, "model size for the clock; the clock here (like REFL's) uses the model's "
                                       "own size"),
    "model_zoo": _machinery(FEDSCALE, "source of model implementations; models come from this platform's "
                                      "registry by name"),
    "num_loaders": _machinery(FEDSCALE, "data-loader worker processes"),
    "backend": _machinery(FEDSCALE, "torch.distributed backend"),
    "engine": _machinery(FEDSCALE, "deep-learning framework"),
    "experiment_mode": _machinery(FEDSCALE, "simulation or deployment mode"),
    "executor_configs": _machinery(FEDSCALE, "per-host executor layout, set by its launcher"),
    "connection_timeout": _machinery(FEDSCALE, "timeout of its gRPC connections"),
    "memory_capacity": _machinery(FEDSCALE, "memory budget of its resource manager"),
    "redis_conf": _machinery(FEDSCALE, "Redis settings of older FedScale job files"),
    "this_rank": _machinery(FEDSCALE, "process rank, set by its launcher"),
    "cuda_device": _machinery(FEDSCALE, "CUDA device, set by its launcher"),
    "time_stamp": _machinery(FEDSCALE, "run time stamp, set by its launcher"),
    "conf_path": _machinery(FEDSCALE, "folder of its configuration files"),
    "test_interval": _machinery(FEDSCALE, "testing interval its code no longer reads (eval_interval does that)"),
    "dump_epoch": _machinery(FEDSCALE, "rounds between model dumps to its log folder"),
    "upload_step": _machinery(FEDSCALE, "upload step of its deployment mode"),
    "wandb_token": _machinery(FEDSCALE, "WandB token; this platform reads WANDB_API_KEY or wandb login, and never "
                                        "keeps the value"),
    "data_cache": _machinery(FEDSCALE, f"data cache file, {_DETECTION}"),
    "cfg_file": _machinery(FEDSCALE, f"Faster R-CNN configuration, {_DETECTION}"),
    "test_output_dir": _machinery(FEDSCALE, f"detection output folder, {_DETECTION}"),
    "train_size_file": _machinery(FEDSCALE, f"training-set size file, {_DETECTION}"),
    "test_size_file": _machinery(FEDSCALE, f"test-set size file, {_DETECTION}"),
    "backbone": _machinery(FEDSCALE, f"detection backbone weights, {_DETECTION}"),
    "adam_epsilon": _machinery(FEDSCALE, f"AdamW epsilon, {_NLP}"),
    "block_size": _machinery(FEDSCALE, f"token block size, {_NLP}"),
    "clf_block_size": _machinery(FEDSCALE, f"text-classification block size, {_NLP}"),
    "embedding_file": _machinery(FEDSCALE, f"word embeddings, {_NLP}"),
    "line_by_line": _machinery(FEDSCALE, f"one sequence per text line, {_NLP}"),
    "mlm": _machinery(FEDSCALE, f"masked-language-model loss, {_NLP}"),
    "mlm_probability": _machinery(FEDSCALE, f"masked-token share, {_NLP}"),
    "overwrite_cache": _machinery(FEDSCALE, f"rebuilds cached token files, {_NLP}"),
    "vocab_tag_size": _machinery(FEDSCALE, f"tag vocabulary size, {_NLP}"),
    "vocab_token_size": _machinery(FEDSCALE, f"token vocabulary size, {_NLP}"),
    "input_dim": _machinery(FEDSCALE, "input size of models this platform does not offer"),
    "output_dim": _machinery(FEDSCALE, "output size of models this platform does not offer"),
    "input_shape": _machinery(FEDSCALE, "input shape of models this platform does not offer"),
    "epsilon": _machinery(FEDSCALE, f"exploration epsilon, {_RL}"),
    "gamma": _machinery(FEDSCALE, f"discount factor, {_RL}"),
    "n_actions": _machinery(FEDSCALE, f"action count, {_RL}"),
    "n_states": _machinery(FEDSCALE, f"state count, {_RL}"),
    "target_replace_iter": _machinery(FEDSCALE, f"target-network refresh, {_RL}"),
    # Voice keys keep FedScale's dashes because that is how they appear in its command lines and files.
    "train-manifest": _machinery(FEDSCALE, f"training manifest, {_VOICE}"),
    "test-manifest": _machinery(FEDSCALE, f"test manifest, {_VOICE}"),
    "sample-rate": _machinery(FEDSCALE, f"audio sample rate, {_VOICE}"),
    "labels-path": _machinery(FEDSCALE, f"transcription alphabet, {_VOICE}"),
    "window-size": _machinery(FEDSCALE, f"spectrogram window size, {_VOICE}"),
    "window-stride": _machinery(FEDSCALE, f"spectrogram window stride, {_VOICE}"),
    "window": _machinery(FEDSCALE, f"spectrogram window type, {_VOICE}"),
    "hidden-size": _machinery(FEDSCALE, f"RNN hidden size, {_VOICE}"),
    "hidden-layers": _machinery(FEDSCALE, f"RNN layer count, {_VOICE}"),
    "rnn-type": _machinery(FEDSCALE, f"RNN cell type, {_VOICE}"),
    "finetune": _machinery(FEDSCALE, f"fine-tunes from a checkpoint, {_VOICE}"),
    "speed-volume-perturb": _machinery(FEDSCALE, f"tempo and gain perturbation, {_VOICE}"),
    "spec-augment": _machinery(FEDSCALE, f"spectral augmentation, {_VOICE}"),
    "noise-dir": _machinery(FEDSCALE, f"noise-injection folder, {_VOICE}"),
    "noise-prob": _machinery(FEDSCALE, f"noise-injection probability, {_VOICE}"),
    "noise-min": _machinery(FEDSCALE, f"lowest injected noise level, {_VOICE}"),
    "noise-max": _machinery(FEDSCALE, f"highest injected noise level, {_VOICE}"),
    "no-bidirectional": _machinery(FEDSCALE, f"unidirectional RNNs, {_VOICE}"),
    # ---- Oort's parser: the keys its published job files set ----
    "output_dir": _machinery(OORT, f"output folder of its language models, {_NLP}"),
    "skip_partition": _machinery(OORT, f"takes the pre-partitioned text data as is, {_NLP}"),
}


def keys_of(system: str) -> tuple[str, ...]:
    """The foreign keys of one system, sorted."""
    return tuple(sorted(key for key, spec in FOREIGN_KEYS.items() if spec.system == system))


FEDSCALE_UNSUPPORTED_KEYS: tuple[str, ...] = keys_of(FEDSCALE)
REFL_UNSUPPORTED_KEYS: tuple[str, ...] = keys_of(REFL)
HALOR_UNSUPPORTED_KEYS: tuple[str, ...] = keys_of(HALOR)
OORT_UNSUPPORTED_KEYS: tuple[str, ...] = keys_of(OORT)
RECOGNIZED_UNSUPPORTED_KEYS: tuple[str, ...] = tuple(sorted(FOREIGN_KEYS))

# Other systems' names for schema keys.
KEY_ALIASES: Mapping[str, str] = {
    # REFL and Halor count rounds in "epochs", as FedScale did before it renamed them.
    "epochs": "rounds",
    "decay_epoch": "decay_round",
    # Oort's and FedScale's older name for the number of participants per round.
    "total_worker": "num_participants",
    # Halor's name for the number of rounds of histograms in the global distribution.
    "his_beta": "halor_history",
    # Oort's names: the client-to-sample mapping, the device trace, local steps and overcommitment.
    "data_mapfile": "data_map_file",
    "client_path": "device_conf_file",
    "upload_epoch": "local_steps",
    "overcommit": "overcommitment",
}

# REFL's and Halor's data_map_dir is the folder of the mapping: their executors read <data_map_dir>/train.csv.
FOLDER_ALIASES: Mapping[str, tuple[str, str]] = {
    "data_map_dir": ("data_map_file", "train.csv"),
}

# Keys read as a schema key only when the file does not set that key itself (REFL's aggregator takes
# initial_total_worker participants per round when total_worker is 0 or unset); otherwise they are ignored.
FALLBACK_ALIASES: Mapping[str, str] = {
    "initial_total_worker": "num_participants",
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
    # Kuiper is Oort's name in its first releases (its job files say "sample_mode: kuiper").
    "sample_mode": {
        "kuiper": "oort",
    },
}

# Numbers other systems give a special meaning, mapped to the schema's number for it.
NUMBER_ALIASES: Mapping[str, Mapping[float, float]] = {
    # REFL and Halor: "0 means no round failures", no target; here a round that waits for all its participants.
    "target_ratio": {0.0: 1.0},
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
