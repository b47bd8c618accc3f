"""The job configuration as frozen dataclasses: one field per YAML key, each with a default and its meaning.

Field names are FedScale's / Halor's YAML keys, so a config file maps onto them one to one. These are the core's
keys; a plug-in's keys are the fields of its own settings class (``PluginFactory.settings``), which the loader
validates by the same rules and the job carries in ``plugin_settings``.
``metadata["help"]`` is the documentation of the key; ``metadata["choices"]`` or ``metadata["range"]`` bound it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from fedscale_halor.settings import PluginSettings, knob


@dataclass(frozen=True)
class AuthConfig:
    ssh_user: str = knob("", "user for SSH logins to ps_ip and worker_ips; empty means the current user")
    ssh_private_key: str = knob("~/.ssh/id_rsa", "private key file for SSH logins")
    ssh_port: int = knob(0, "SSH port of ps_ip and worker_ips; 0 means ssh's own choice (22, or ~/.ssh/config). "
                            "When set, every host is reached over SSH on it, 127.0.0.1 and localhost included",
                         range=(0, 65535))


@dataclass(frozen=True)
class SlurmConfig:
    """How `submit` asks Slurm for the job's allocation (``launcher: slurm``); each key is an ``sbatch`` option.

    Written flat in a job file, beside the other deployment keys (``slurm_partition: gpu``), as Slurm users name
    them; ``DeploymentConfig.slurm`` holds them together."""

    slurm_partition: str = knob("", "sbatch --partition; empty: the cluster's default partition")
    slurm_account: str = knob("", "sbatch --account charged for the job; empty: the user's default account")
    slurm_time: str = knob("", "sbatch --time, the allocation's time limit as Slurm writes it (e.g. '02:00:00' or "
                               "'1-00:00:00'); empty: the partition's default")
    slurm_gpus_per_executor: int = knob(0, "GPUs of each executor task (sbatch --gpus-per-task); 0: CPU-only "
                                           "executors, no GPU option is passed", range=(0, None))
    slurm_executors_per_node: int = knob(0, "executor tasks per node (sbatch --ntasks-per-node); 0: as Slurm "
                                            "packs them", range=(0, None))
    slurm_cpus_per_executor: int = knob(0, "CPUs of each executor task (sbatch --cpus-per-task); 0: "
                                           "executor_threads, at least 1", range=(0, None))
    slurm_extra_directives: tuple[str, ...] = knob(
        (), "further sbatch options, one per item, each written as an '#SBATCH' line (e.g. '--mem=16G', "
            "'--constraint=a100', '--qos=long')")


@dataclass(frozen=True)
class DeploymentConfig:
    """Where the job's processes run (the top level of a FedScale config file)."""

    ps_ip: str = knob("127.0.0.1", "host of the aggregator (parameter server)")
    ps_port: int = knob(29501, "gRPC port of the aggregator; 0 picks a free port", range=(0, 65535))
    worker_ips: tuple[str, ...] = knob(
        ("127.0.0.1:[1]",),
        "executor hosts as 'host:[n_gpu0,n_gpu1,...]': one executor process per slot; on a host without GPUs each "
        "number is a count of CPU executors")
    exp_path: str = knob("", "folder of the code on every host (FedScale's exp_path); empty means this checkout")
    executor_entry: str = knob("core/executor.py", "executor entry point, relative to exp_path")
    aggregator_entry: str = knob("core/aggregator.py", "aggregator entry point, relative to exp_path")
    auth: AuthConfig = field(default_factory=AuthConfig,
                             metadata={"help": "SSH credentials (ssh_user, ssh_private_key, ssh_port)"})
    setup_commands: tuple[str, ...] = knob(
        (), "shell commands run on every host before a process starts; that host's shell expands their $VARs")
    launcher: str = knob("ssh", "how `submit` starts the job: 'ssh' on ps_ip and the worker_ips hosts, or 'slurm' "
                                "as one batch job of as many executor tasks as worker_ips has slots (the slurm_* "
                                "keys, docs/launching.md)", choices=("ssh", "slurm"))
    slurm: SlurmConfig = field(default_factory=SlurmConfig,
                               metadata={"help": "the sbatch options of launcher slurm", "flat": True})


@dataclass(frozen=True)
class JobConfig:
    """The ``job_conf`` entries of a config file."""

    # identity and logs
    job_name: str = knob("demo_job", "name of the job: logs go to <log_path>/<job_name>/<timestamp>/")
    log_path: str = knob("./logs", "root folder of the job's logs")
    task: str = knob("cv", "kind of task", choices=("cv", "speech"))

    # data
    data_set: str = knob("digits", "data set name",
                         choices=("digits", "cifar10", "fashion_mnist", "femnist", "google_speech", "synthetic"))
    data_dir: str = knob("", "folder of the raw data set; empty means ./data/<data_set>")
    data_map_file: str = knob("", "FedScale client_data_mapping CSV (femnist); empty means the data set's default")
    num_classes: int = knob(0, "number of classes; 0 takes the data set's own", range=(0, None))
    total_clients: int = knob(0, "number of simulated clients (partitions other than the real mapping); 0 means "
                                 "all of the data set's clients, decided once the data set is opened: the real "
                                 "mapping's clients, or num_participants clients for a generated partition (as "
                                 "FedScale, REFL and Halor do)", range=(0, None))
    partitioning: int = knob(-1, "partition scheme: -1 IID, 0 real client mapping, 1 non-IID uniform, 2 Zipf, "
                                 "3 balanced, 8 Dirichlet label shares over used_samples per client (Halor's), "
                                 "9 each label split over the clients by Dirichlet shares",
                             choices=(-1, 0, 1, 2, 3, 8, 9))
    used_samples: int = knob(0, "samples per client of Halor's Dirichlet partition (partitioning 8); 0: the "
                                "training set split evenly over the clients; -1: batch_size + 1 samples per client "
                                "and len(train) // (batch_size + 1) clients for any generated partition, whatever "
                                "total_clients says (REFL's rule)", range=(-1, None))
    filter_class: int = knob(0, "REFL: number of classes removed at random from each client (partitionings 1, 2, "
                                "3, 8 and 9; 0 removes none)", range=(0, None))
    filter_class_ratio: float = knob(0.0, "REFL: share of classes each client keeps, the others removed at random "
                                          "(round(classes * (1 - ratio)) removed; 0 or 1 keeps all; filter_class "
                                          "wins when both are set)", range=(0.0, 1.0))
    dirichlet_alpha: float = knob(0.5, "concentration of the Dirichlet partition (smaller is more skewed)",
                                  range=(1e-6, None))
    zipf_param: float = knob(1.95, "exponent of the Zipf partition", range=(1.0 + 1e-9, None))
    label_groups: int = knob(1, "planted groups of clients whose label maps differ (client id mod label_groups); "
                                "group g's labels, in training and in its clients' test view, are shifted by "
                                "g * (num_classes // label_groups) modulo num_classes; 1: no shift",
                             range=(1, None))
    filter_less: int = knob(0, "drop clients with fewer training samples than this; with Halor on, selection also "
                               "leaves out clients whose resampled size is below it (Halor's guard)",
                            range=(0, None))
    filter_more: int = knob(0, "drop clients with more training samples than this; 0 keeps all", range=(0, None))
    sample_seed: int = knob(233, "seed of every random choice of the job (partition, selection, shuffling)")

    # model and training
    model: str = knob("digits_cnn", "model name from the model registry")
    rounds: int = knob(50, "number of federated rounds", range=(1, None))
    num_participants: int = knob(10, "clients selected per round", range=(1, None))
    sample_mode: str = knob("random", "client selection strategy", choices=("random", "oort"))
    avail_priority: int = knob(0, "REFL's availability priority with sample_mode random: 1 or 2 pick the least "
                                  "available online clients first (by their traces' online share); 0 off",
                               choices=(0, 1, 2))
    overcommitment: float = knob(1.3, "select this many times num_participants, so that stragglers and dropouts "
                                      "still leave enough (with traces)", range=(1.0, None))
    local_steps: int = knob(20, "local SGD iterations per selected client per round", range=(1, None))
    batch_size: int = knob(10, "local training batch size", range=(1, None))
    test_bsz: int = knob(128, "evaluation batch size", range=(1, None))
    learning_rate: float = knob(0.05, "client learning rate", range=(0.0, None))
    min_learning_rate: float = knob(5e-5, "floor of the decayed learning rate", range=(0.0, None))
    decay_factor: float = knob(0.98, "learning rate multiplier applied every decay_round rounds", range=(0.0, 1.0))
    decay_round: int = knob(10, "rounds between learning-rate decays", range=(1, None))
    momentum: float = knob(0.9, "SGD momentum of local training", range=(0.0, 1.0))
    weight_decay: float = knob(5e-4, "SGD weight decay of local training", range=(0.0, None))

    # aggregation
    gradient_policy: str = knob("fedavg", "aggregation strategy",
                                choices=("fedavg", "fed-prox", "fed-yogi", "fed-adam"))
    weighted_avg: bool = knob(True, "weight client models by their sample counts (False: Halor's plain mean)")
    feddc: int = knob(0, "FedDC (local drift decoupling and correction, docs/aggregation.md): 1 on, on top of "
                         "gradient_policy, 0 off", choices=(0, 1))
    feddc_alpha: float = knob(0.01, "FedDC: alpha of the penalty (alpha/2)||theta + h_i - w||^2 tying the local "
                                    "model to the global one through the client's drift", range=(0.0, None))
    proxy_mu: float = knob(0.1, "FedProx proximal coefficient mu (fed-prox only)", range=(0.0, None))
    yogi_eta: float = knob(3e-3, "server learning rate of FedYogi / FedAdam", range=(0.0, None))
    yogi_tau: float = knob(1e-8, "adaptivity epsilon of FedYogi / FedAdam", range=(0.0, None))
    yogi_beta: float = knob(0.9, "first-moment decay of FedYogi / FedAdam", range=(0.0, 1.0))
    yogi_beta2: float = knob(0.99, "second-moment decay of FedYogi / FedAdam", range=(0.0, 1.0))

    # the virtual clock: device and availability traces, who completes a round
    device_conf_file: str = knob("", "FedScale client_device_capacity trace (pickle or JSON); empty: no virtual "
                                     "clock, every selected client completes")
    device_avail_file: str = knob("", "FedScale client_behave_trace availability trace (pickle or JSON); empty: "
                                      "always online")
    random_behv: int = knob(0, "how availability traces map to clients: -1 always online, 0 by client id, 1 a "
                               "random trace, 2 the least available 10%", choices=(-1, 0, 1, 2))
    scale_sys: float = knob(1.0, "slow-down factor of the fastest scale_sys_percent of the devices", range=(0.0, None))
    scale_sys_percent: float = knob(0.0, "share of the devices, fastest first, whose costs scale_sys multiplies",
                                    range=(0.0, 1.0))
    exp_type: int = knob(2, "who completes a round (REFL's codes): 0 those within the deadline, ending early once "
                            "target_ratio of the selected finished; 1 those within the deadline; 2 the first "
                            "num_participants finishers", choices=(0, 1, 2))
    deadline: float = knob(0.0, "round deadline in simulated seconds (exp_type 0 and 1); 0 or less: the moving "
                                "average of the previous rounds' durations")
    target_ratio: float = knob(1.0, "share of the selected clients after which a round ends (exp_type 0)",
                               range=(1e-9, 1.0))
    dropout_ratio: float = knob(0.0, "chance that a selected client drops out of a round", range=(0.0, 0.999))
    model_cost_scale: float = knob(1.0, "compute times of the device trace are multiplied by this: the job's model "
                                        "cost relative to the model the trace was measured with", range=(1e-9, None))
    # Oort (sample_mode oort), FedScale's defaults
    exploration_factor: float = knob(0.9, "Oort: share of each round given to unexplored clients at first",
                                     range=(0.0, 1.0))
    exploration_decay: float = knob(0.98, "Oort: per-round decay of the exploration share", range=(0.0, 1.0))
    exploration_min: float = knob(0.3, "Oort: floor of the exploration share", range=(0.0, 1.0))
    exploration_alpha: float = knob(0.3, "Oort: exploration alpha (kept for compatibility)", range=(0.0, None))
    round_threshold: float = knob(30.0, "Oort: percentile of client durations taken as the preferred round length",
                                  range=(0.0, 100.0))
    round_penalty: float = knob(2.0, "Oort: exponent of the penalty on clients slower than the preferred duration",
                                range=(0.0, None))
    pacer_step: int = knob(20, "Oort: rounds between pacer decisions", range=(1, None))
    pacer_delta: float = knob(5.0, "Oort: step of the pacer on the preferred-duration percentile", range=(0.0, None))
    blacklist_rounds: int = knob(-1, "Oort: selections after which a client is blacklisted; -1 never")
    blacklist_max_len: float = knob(0.3, "Oort: largest blacklisted share of the clients", range=(0.0, 1.0))
    clip_bound: float = knob(0.9, "Oort: quantile at which utilities are clipped", range=(0.0, 1.0))
    cut_off_util: float = knob(0.05, "Oort: exploitation keeps clients within this share of the K-th best utility",
                               range=(0.0, None))
    sample_window: float = knob(5.0, "Oort: rounds of history in the utility's staleness window", range=(0.0, None))

    # evaluation, devices, checkpoints
    eval_interval: int = knob(5, "evaluate the global model every this many rounds (and after the last)",
                              range=(1, None))
    use_cuda: bool = knob(False, "train on a GPU when one is present")
    save_checkpoint: bool = knob(True, "save the global model (safetensors) at every evaluation")
    tensorboard: bool = knob(True, "write TensorBoard event files to <run folder>/tensorboard")
    use_wandb: bool = knob(False, "log the run to Weights & Biases (WANDB_MODE=offline writes it locally); the "
                                  "API key comes from WANDB_API_KEY or wandb login, never from this file")
    wandb_project: str = knob("", "WandB project; empty means <data_set>_<model>")
    wandb_entity: str = knob("", "WandB entity (user or team); empty means the account's default")
    wandb_tags: tuple[str, ...] = knob((), "WandB tags of the run")
    executor_threads: int = knob(0, "CPU threads per executor (0 means 1). On a CPU the executor trains that many "
                                    "clients at once, one thread each, so results stay identical whatever the "
                                    "threads and executors; on a GPU, or for models with dropout, they are torch's "
                                    "threads for one client at a time", range=(0, None))

    # runtime: executors, failures, the wire
    register_timeout: float = knob(120.0, "seconds the aggregator waits for its executors to register before it "
                                          "gives up with an error", range=(1.0, None))
    executor_timeout: float = knob(60.0, "seconds without a call from an executor after which it is declared dead",
                                   range=(1.0, None))
    quorum: float = knob(0.5, "share of a round's selected clients that must report (clients that failed do not "
                              "count; the virtual clock's stragglers and dropouts do) for the round to be "
                              "committed; a round short of it is retried with fresh participants. 0 is refused: it "
                              "would commit a round in which every client failed", range=(0.0, 1.0))
    round_retries: int = knob(2, "times a round short of its quorum is run again with fresh participants before the "
                                 "job stops with the failing clients and their first error", range=(0, None))
    executor_restarts: int = knob(0, "times a dead executor forked by `start` is started again (per slot)",
                                  range=(0, None))
    reconnect_timeout: float = knob(60.0, "seconds an executor keeps trying to reach an aggregator it lost before it "
                                          "gives up; within them it reconnects and carries on", range=(0.0, None))
    straggler_balancing: bool = knob(False, "with device traces: clients predicted to miss the round's deadline "
                                            "train fewer local steps (at least min_local_steps) so that they finish "
                                            "in time")
    min_local_steps: int = knob(1, "straggler_balancing: the fewest local steps a shortened client trains",
                                range=(1, None))
    dead_executor_clients: str = knob("reassign", "what happens to a dead executor's unfinished clients: handed to "
                                                  "the other executors, or counted as dropped",
                                      choices=("reassign", "drop"))
    message_chunk_mb: float = knob(1.0, "gRPC messages larger than this many MiB travel in chunks of this size",
                                   range=(0.01, 1024.0))
    shared_memory: bool = knob(True, "executors on the aggregator's host pass models and updates as files in "
                                     "/dev/shm instead of streaming them over gRPC (remote executors always stream)")
    plugins: tuple[str, ...] = knob((), "plug-ins the job runs beyond the built-in features, each named by its "
                                        "factory as 'package.module:name' (docs/architecture.md)")
    tls_cert_file: str = knob("", "PEM certificate of the aggregator; set with tls_key_file to serve gRPC over TLS")
    tls_key_file: str = knob("", "PEM private key of the aggregator's certificate")
    tls_ca_file: str = knob("", "PEM certificate executors trust for the aggregator (default: tls_cert_file)")

    # the keys plug-ins declare in their own settings classes (fedscale_halor/settings.py), validated alike
    plugin_settings: PluginSettings = field(default_factory=PluginSettings, metadata={"plugin_settings": True})

    def value_of(self, key: str) -> object:
        """The value of a job key, the core's or a plug-in's (sweeps and run names name keys of either)."""
        if key != "plugin_settings" and key in {item.name for item in fields(self)}:
            return getattr(self, key)
        for name, value in self.plugin_settings.values():
            if name == key:
                return value
        raise KeyError(f"job_conf has no key {key!r} (neither the core nor this job's plug-ins declare it)")


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole config file: deployment, job, and the keys read but not yet supported."""

    deployment: DeploymentConfig
    job: JobConfig
    source: Path | None = None
    unsupported_keys: tuple[str, ...] = ()
