"""What ``start --resume`` may change in a run's config, and the record the run folder keeps of what it changed.

A resumed run continues the run folder's checkpoint, so its results are only one experiment's if every key that
shapes training keeps the value the run started with. The run's own resolved config (``config.yml``) is compared
with the resumed command's: keys on ``HARMLESS_KEYS`` (rounds, cadences, logs, where processes run, timeouts) may
differ and are logged; any other difference refuses the resume unless it is forced. Each change that goes ahead
keeps the folder's config before it as ``config.before-resume-<n>.yml`` and appends to ``config_changes.log``.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.config.serialize import config_to_dict, dump_config
from fedscale_halor.launch.errors import LaunchError

CONFIG_NAME = "config.yml"
CHANGES_LOG_NAME = "config_changes.log"

# An allow-list, not a deny-list: a key added later changes training until it is reviewed and listed here.
# Each of these leaves the model, the selection and the virtual clock of every round the same (executor counts and
# threads included: the trained clients are the same whatever the executors, see executor_threads' help).
HARMLESS_KEYS: frozenset[str] = frozenset({
    # how long the run goes on, how often it is evaluated and saved (neither changes what a round trains)
    "rounds", "eval_interval", "test_bsz", "save_checkpoint",
    # where the logs go and who else sees them
    "job_name", "log_path", "tensorboard", "use_wandb", "wandb_project", "wandb_entity", "wandb_tags",
    "signal_rounds",
    # where and how the processes run, and the wire between them
    "ps_ip", "ps_port", "worker_ips", "exp_path", "setup_commands", "auth.ssh_user", "auth.ssh_private_key",
    "auth.ssh_port", "executor_threads", "executor_restarts", "message_chunk_mb", "shared_memory",
    "tls_cert_file", "tls_key_file", "tls_ca_file", "launcher", "slurm_partition", "slurm_account", "slurm_time",
    "slurm_gpus_per_executor", "slurm_executors_per_node", "slurm_cpus_per_executor", "slurm_extra_directives",
    # patience with processes and messages
    "register_timeout", "executor_timeout", "reconnect_timeout", "halor_timeout",
})
# Not listed although they look like deployment: aggregator_entry (naming FedScale's async aggregator switches
# async_mode on) and executor_entry (the program that trains, under `submit`).

_ABSENT = object()  # a key one config has and the other lacks (e.g. a plug-in's, after `plugins` changed)


@dataclass(frozen=True)
class ConfigChange:
    """One key whose value differs between the run's config and the resumed command's."""

    key: str
    old: object
    new: object
    harmless: bool

    def describe(self) -> str:
        return f"{self.key} ({_show(self.old)} -> {_show(self.new)})"


@dataclass(frozen=True)
class ConfigComparison:
    changes: tuple[ConfigChange, ...]

    @property
    def training(self) -> tuple[ConfigChange, ...]:
        """The changes that alter what is trained: these refuse a resume that is not forced."""
        return tuple(change for change in self.changes if not change.harmless)

    @property
    def harmless(self) -> tuple[ConfigChange, ...]:
        return tuple(change for change in self.changes if change.harmless)


class ConfigMismatchError(LaunchError):
    """A resume refused: the run folder's config differs in keys that change what is trained."""

    def __init__(self, run_dir: Path, comparison: ConfigComparison) -> None:
        self.run_dir = run_dir
        self.comparison = comparison
        listed = ", ".join(change.describe() for change in comparison.training)
        super().__init__(f"cannot resume {run_dir}: its {CONFIG_NAME} differs in keys that change what is trained: "
                         f"{listed}; pass --force-config to resume anyway")


def compare_configs(saved: Mapping[str, object], resolved: Mapping[str, object]) -> ConfigComparison:
    """The keys whose values differ between two configs in ``config.yml``'s layout (``config_to_dict``, as YAML
    reads it back), in the order of ``resolved``'s keys, then the keys only ``saved`` has."""
    old, new = dict(_flat_keys(saved)), dict(_flat_keys(resolved))
    changes = [ConfigChange(key, old.get(key, _ABSENT), new.get(key, _ABSENT), key in HARMLESS_KEYS)
               for key in (*new, *(key for key in old if key not in new))
               if old.get(key, _ABSENT) != new.get(key, _ABSENT)]
    return ConfigComparison(tuple(changes))


def comparable_form(cfg: ExperimentConfig) -> dict[str, object]:
    """``cfg`` as its ``config.yml`` reads back: tuples are lists, numbers are what YAML makes of them."""
    loaded: dict[str, object] = yaml.safe_load(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return loaded


def write_run_config(cfg: ExperimentConfig, run_dir: Path, *, resume: bool = False,
                     force_config: bool = False) -> tuple[Path, ConfigComparison]:
    """Write the run's ``config.yml``; on ``resume`` first compare it with the one the folder holds, refuse a change
    of training keys unless ``force_config``, and keep the folder's config and a record of any change that goes
    ahead. Returns the config's path and the comparison (empty when not resuming), for ``log_config_changes``
    once the run's log is attached."""
    path = run_dir / CONFIG_NAME
    comparison = ConfigComparison(())
    if resume:
        comparison = _compare_with_saved(cfg, path, run_dir, force_config)
        if comparison.changes:
            _record_changes(path, run_dir, comparison, forced=force_config)
    return dump_config(cfg, path), comparison


def log_config_changes(comparison: ConfigComparison, log: logging.Logger) -> None:
    for change in comparison.harmless:
        log.info("resume: %s changed from %s to %s (does not change what is trained)", change.key,
                 _show(change.old), _show(change.new))
    for change in comparison.training:
        log.warning("resume with --force-config: %s changed from %s to %s; the rounds before and after the resume "
                    "ran different configs (%s)", change.key, _show(change.old), _show(change.new),
                    CHANGES_LOG_NAME)


def _compare_with_saved(cfg: ExperimentConfig, path: Path, run_dir: Path, force_config: bool) -> ConfigComparison:
    saved = _read_saved(path, run_dir, force_config)
    if saved is None:  # unreadable or missing, and forced: every key counts as changed from nothing known
        saved = {}
    comparison = compare_configs(saved, comparable_form(cfg))
    if comparison.training and not force_config:
        raise ConfigMismatchError(run_dir, comparison)
    return comparison


def _read_saved(path: Path, run_dir: Path, force_config: bool) -> dict[str, object] | None:
    problem = None
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problem = f"it has no {CONFIG_NAME} to compare the config with"
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        problem = f"its {CONFIG_NAME} cannot be read ({error})"
    else:
        if isinstance(loaded, dict):
            return loaded
        problem = f"its {CONFIG_NAME} is not a config mapping"
    if force_config:
        return None
    raise LaunchError(f"cannot resume {run_dir}: {problem}; pass --force-config to resume with this config anyway")


def _record_changes(path: Path, run_dir: Path, comparison: ConfigComparison, *, forced: bool) -> None:
    number = next(n for n in itertools.count(1) if not (run_dir / f"config.before-resume-{n}.yml").exists())
    kept = run_dir / f"config.before-resume-{number}.yml"
    if path.is_file():
        shutil.copy2(path, kept)  # a copy, not a move: a crash before the new config is written keeps config.yml
    lines = [f"{time.strftime('%Y-%m-%d %H:%M:%S')} resume {number}"
             f"{' with --force-config' if forced else ''}: {CONFIG_NAME} before it kept as "
             f"{kept.name if path.is_file() else '(none: there was no readable config)'}"]
    lines += [f"  {change.describe()}: {'harmless' if change.harmless else 'changes what is trained'}"
              for change in comparison.changes]
    with (run_dir / CHANGES_LOG_NAME).open("a", encoding="utf-8") as record:
        record.write("\n".join(lines) + "\n")


def _flat_keys(config: Mapping[str, object]) -> Iterator[tuple[str, object]]:
    # config.yml's layout: deployment keys at the top, auth as a mapping, job_conf as a list of one-key mappings
    for name, value in config.items():
        if name == "job_conf" and isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict):
                    yield from entry.items()
        elif isinstance(value, dict):
            yield from ((f"{name}.{key}", item) for key, item in value.items())
        else:
            yield name, value


def _show(value: object) -> str:
    if value is _ABSENT:
        return "(not set)"
    return repr(value) if isinstance(value, str) else str(value)
