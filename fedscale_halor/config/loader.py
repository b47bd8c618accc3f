"""Reading FedScale-format job files (and ``--set key=value`` overrides) into an ExperimentConfig.

The file layout is FedScale's: deployment keys at the top level, ``auth`` as a mapping, and ``job_conf`` as a list
of one-key mappings (``- rounds: 10``). Keys FedScale puts inside ``job_conf`` although they describe the
deployment (``ps_port``, ...) are routed to DeploymentConfig.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path

import yaml

from fedscale_halor.config.errors import ConfigError, config_error
from fedscale_halor.config.key_schema import AUTH, AUTH_KEY, DEPLOYMENT, JOB, JOB_CONF_KEY, SLURM, KeySchema
from fedscale_halor.config.known_keys import (
    FALLBACK_ALIASES,
    FOLDER_ALIASES,
    FOREIGN_KEYS,
    KEY_ALIASES,
    PATH_KEYS,
    SHELL_TEXT_KEYS,
)
from fedscale_halor.config.schema import AuthConfig, DeploymentConfig, ExperimentConfig, JobConfig, SlurmConfig
from fedscale_halor.config.validation import (
    FieldSpec,
    check_foreign_value,
    check_job_consistency,
    coerce_field,
    field_specs,
    show_value,
    unknown_key_message,
)
from fedscale_halor.config.variables import environment_with_defaults, expand_user, expand_variables
from fedscale_halor.settings import PluginSettings, implied_keys

_LOGGER = logging.getLogger(__name__)

_FOREIGN = "foreign"
_PLUGINS_KEY = "plugins"

# The plug-ins' settings classes (fedscale_halor/settings.py) whose keys a job may set, or how to find them from the
# job's ``plugins`` key. The config layer imports no feature: launch/ passes them in (launch/jobfile.py).
SectionSource = Sequence[type] | Callable[[tuple[str, ...]], Sequence[type]]


@dataclasses.dataclass(frozen=True)
class _RawValue:
    """A value as read from the file, before expansion and typing, with where it was found."""

    section: str
    name: str
    value: object
    key_path: str


def load_config(path: str | Path, overrides: Mapping[str, object] | None = None, *, sections: SectionSource = (),
                environ: Mapping[str, str] | None = None) -> ExperimentConfig:
    """Load and validate a job file; ``overrides`` (``key -> value``) are applied last, with the same checks.

    ``sections`` are the plug-ins' settings classes whose keys the file may set (besides the core's);
    ``environ`` replaces the process environment for ``$VAR`` expansion (tests use it).
    """
    source = Path(path).expanduser()
    return config_from_mapping(read_yaml_mapping(source), source, overrides, sections=sections, environ=environ)


def read_yaml_mapping(path: Path) -> Mapping[str, object]:
    """The top-level mapping of a YAML file; any reading or parsing problem is a ConfigError naming the file."""
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{label}: cannot read the config file ({error})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as error:
        raise ConfigError(f"{label}: {_yaml_problem(error)}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{label}: invalid YAML: {error}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: expected a mapping of config keys at the top level, got {_kind_of(data)}")
    return data


def _yaml_problem(error: yaml.MarkedYAMLError) -> str:
    """Where the parser gave up and, when that is another line, where the construct it was reading began: an
    unclosed bracket or quote is reported on the line after it, but it is the opening line that needs the fix."""
    problem, context = error.problem_mark, error.context_mark
    line = f"line {problem.line + 1}: " if problem is not None else ""
    started = ""
    if error.context and context is not None and (problem is None or context.line != problem.line):
        started = f" ({error.context} that starts on line {context.line + 1})"
    return f"{line}invalid YAML: {error.problem or error}{started}"


def config_from_mapping(data: Mapping[str, object], source: Path | None,
                        overrides: Mapping[str, object] | None = None, *, sections: SectionSource = (),
                        environ: Mapping[str, str] | None = None) -> ExperimentConfig:
    """Validate an already parsed job file; ``source`` names it in error messages and in the result."""
    label = source_label(source)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: expected a mapping of config keys at the top level, got {_kind_of(data)}")
    variables = environment_with_defaults(environ)
    schema = KeySchema.of(_sections_for(sections, lambda: _declared_plugins(data, variables, label)))
    collected = _collect_raw_values(data, label, schema)
    typed: dict[str, dict[str, object]] = {section: {} for section in (DEPLOYMENT, AUTH, SLURM, JOB)}
    for raw in collected.values.values():
        spec = schema.specs[raw.section][raw.name]
        typed[raw.section][raw.name] = _resolve(spec, raw.value, variables, label, raw.key_path)
    deployment = DeploymentConfig(**typed[DEPLOYMENT], auth=AuthConfig(**typed[AUTH]),  # type: ignore[arg-type]
                                  slurm=SlurmConfig(**typed[SLURM]))  # type: ignore[arg-type]
    for section in schema.sections:
        for name, value in implied_keys(section, deployment).items():
            typed[JOB].setdefault(name, value)
    job = schema.job(typed[JOB], PluginSettings())
    check_job_consistency(job, label)
    ignored = list(collected.ignored)
    for raw in collected.foreign:
        _check_foreign(raw, job, variables, label)
        if raw.name not in ignored:
            ignored.append(raw.name)
    config = ExperimentConfig(deployment=deployment, job=job, source=source, unsupported_keys=tuple(ignored))
    if overrides:  # the overrides may name plug-ins of their own, whose keys they set too
        schema = KeySchema.of(_sections_for(sections, lambda: _overridden_plugins(config, overrides, variables,
                                                                                  label)))
        config = _apply_overrides(config, overrides, variables, schema)
    _warn_unsupported(config.unsupported_keys, label)
    return config


def with_overrides(cfg: ExperimentConfig, overrides: Mapping[str, object], *, sections: SectionSource = (),
                   environ: Mapping[str, str] | None = None) -> ExperimentConfig:
    """``cfg`` with ``key -> value`` overrides applied (values may be strings, as typed on a command line).

    Keys are JobConfig or DeploymentConfig keys, or keys of the plug-ins' ``sections``, optionally written
    ``job_conf.<key>`` or ``auth.<key>``.
    """
    variables = environment_with_defaults(environ)
    label = source_label(cfg.source)
    schema = KeySchema.of(_sections_for(sections, lambda: _overridden_plugins(cfg, overrides, variables, label)))
    updated = _apply_overrides(cfg, overrides, variables, schema)
    added = [key for key in updated.unsupported_keys if key not in cfg.unsupported_keys]
    _warn_unsupported(added, label)
    return updated


def source_label(source: Path | None) -> str:
    return str(source) if source is not None else "<config mapping>"


def _sections_for(sections: SectionSource, plugins: Callable[[], tuple[str, ...]]) -> Sequence[type]:
    return sections(plugins()) if callable(sections) else sections


def _declared_plugins(data: Mapping[str, object], variables: Mapping[str, str], label: str) -> tuple[str, ...]:
    """The file's ``plugins`` (whose factories may declare keys of their own), checked as the key is."""
    items = _job_conf_items(data.get(JOB_CONF_KEY), label)
    key_path = f"{JOB_CONF_KEY}.{_PLUGINS_KEY}"
    values = [value for key, value in items if key == _PLUGINS_KEY]
    if not values:
        return ()
    return _resolve(field_specs(JobConfig)[_PLUGINS_KEY], values[-1], variables, label, key_path)  # type: ignore[return-value]


def _overridden_plugins(cfg: ExperimentConfig, overrides: Mapping[str, object], variables: Mapping[str, str],
                        label: str) -> tuple[str, ...]:
    for key, value in overrides.items():
        if str(key).strip().rsplit(".", 1)[-1] == _PLUGINS_KEY:
            spec = field_specs(JobConfig)[_PLUGINS_KEY]
            return _resolve(spec, _split_list_text(spec, value), variables, label,  # type: ignore[return-value]
                            f"override {key}")
    return cfg.job.plugins


@dataclasses.dataclass
class _Collected:
    """A file's values routed by kind: schema values, other systems' keys, and keys read or ignored by name."""

    values: dict[tuple[str, str], _RawValue] = dataclasses.field(default_factory=dict)
    foreign: list[_RawValue] = dataclasses.field(default_factory=list)
    fallbacks: list[_RawValue] = dataclasses.field(default_factory=list)
    ignored: list[str] = dataclasses.field(default_factory=list)


def _collect_raw_values(data: Mapping[str, object], label: str, schema: KeySchema) -> _Collected:
    """Every value of the file, routed to its section; other systems' keys are kept apart for their checks."""
    collected = _Collected()
    job_conf_items: list[tuple[str, object]] = []
    for key, value in data.items():
        if str(key) == JOB_CONF_KEY:
            job_conf_items = _job_conf_items(value, label)
        else:
            _route(str(key), value, str(key), False, label, collected, schema)
    for key, value in job_conf_items:
        _route(key, value, f"{JOB_CONF_KEY}.{key}", True, label, collected, schema)
    for raw in collected.fallbacks:
        if (JOB, raw.name) in collected.values:
            collected.ignored.append(raw.key_path.rsplit(".", 1)[-1])  # the file sets the key it stands in for
        else:
            _add(raw, label, collected.values)
    return collected


def _job_conf_items(value: object, label: str) -> list[tuple[str, object]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [(str(key), item) for key, item in value.items()]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise config_error(label, JOB_CONF_KEY,
                           f"expected a list of one-key mappings such as '- rounds: 10', got {_kind_of(value)}")
    items: list[tuple[str, object]] = []
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise config_error(label, f"{JOB_CONF_KEY}[{index}]",
                               f"expected a one-key mapping such as '- rounds: 10', got {show_value(entry)}")
        items.extend((str(key), item) for key, item in entry.items())
    return items


def _route(key: str, value: object, key_path: str, in_job_conf: bool, label: str, collected: _Collected,
           schema: KeySchema) -> None:
    specs = schema.specs
    name = KEY_ALIASES.get(key, key)
    if key in FOLDER_ALIASES:
        if value is None:
            return  # upstream's default: no mapping folder
        name, value = FOLDER_ALIASES[key][0], _in_folder(value, FOLDER_ALIASES[key][1])
    if key in FALLBACK_ALIASES:
        collected.fallbacks.append(_RawValue(JOB, FALLBACK_ALIASES[key], value, key_path))
    elif name == AUTH_KEY:
        _route_auth(value, key_path, label, collected.values)
    elif name in specs[DEPLOYMENT]:
        _add(_RawValue(DEPLOYMENT, name, value, key_path), label, collected.values)
    elif name in specs[SLURM]:
        _add(_RawValue(SLURM, name, value, key_path), label, collected.values)
    elif name in specs[JOB]:
        if not in_job_conf:
            raise config_error(label, key_path, f"a job key at the top level; move it into the {JOB_CONF_KEY} list")
        _add(_RawValue(JOB, name, value, key_path), label, collected.values)
    elif key in FOREIGN_KEYS:
        collected.foreign.append(_RawValue(_FOREIGN, key, value, key_path))
    else:
        raise config_error(label, key_path, unknown_key_message(key, schema.known_keys()))


def _in_folder(folder: object, file_name: str) -> object:
    """``<folder>/<file_name>`` for a folder written as text; anything else is left for the typing to refuse."""
    if isinstance(folder, str) and folder.strip():
        return f"{folder.rstrip().rstrip('/')}/{file_name}"
    return folder


def _route_auth(value: object, key_path: str, label: str, collected: dict[tuple[str, str], _RawValue]) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise config_error(label, key_path,
                           f"expected a mapping with ssh_user and ssh_private_key, got {show_value(value)}")
    auth_specs = field_specs(AuthConfig)
    for sub_key, sub_value in value.items():
        sub_path = f"{key_path}.{sub_key}"
        if str(sub_key) not in auth_specs:
            raise config_error(label, sub_path, unknown_key_message(str(sub_key), auth_specs))
        _add(_RawValue(AUTH, str(sub_key), sub_value, sub_path), label, collected)


def _add(raw: _RawValue, label: str, collected: dict[tuple[str, str], _RawValue]) -> None:
    previous = collected.get((raw.section, raw.name))
    if previous is not None and previous.value != raw.value:
        raise config_error(label, raw.key_path,
                           f"given again with a different value ({show_value(raw.value)}; "
                           f"{previous.key_path} is {show_value(previous.value)}); keep only one")
    collected[(raw.section, raw.name)] = raw


def _resolve(spec: FieldSpec, value: object, variables: Mapping[str, str], label: str, key_path: str) -> object:
    """Expansion, then typing and validation, of one value."""
    if spec.name not in SHELL_TEXT_KEYS:
        value = _expand_strings(value, variables, label, key_path)
    if spec.name in PATH_KEYS and isinstance(value, str):
        value = expand_user(value)
    return coerce_field(spec, value, label, key_path)


def _check_foreign(raw: _RawValue, job: JobConfig, variables: Mapping[str, str], label: str) -> None:
    """Refuse another system's training key unless its value leaves training unchanged (machinery: no check)."""
    spec = FOREIGN_KEYS[raw.name]
    if spec.is_training_key:
        value = _expand_strings(raw.value, variables, label, raw.key_path)
        check_foreign_value(spec, value, job, label, raw.key_path)


def _expand_strings(value: object, variables: Mapping[str, str], label: str, key_path: str) -> object:
    if isinstance(value, str):
        return expand_variables(value, variables, label, key_path)
    if isinstance(value, (list, tuple)):
        return [_expand_strings(item, variables, label, f"{key_path}[{index}]") for index, item in enumerate(value)]
    return value


def _apply_overrides(cfg: ExperimentConfig, overrides: Mapping[str, object],
                     variables: Mapping[str, str], schema: KeySchema) -> ExperimentConfig:
    label = source_label(cfg.source)
    specs = schema.specs
    changes: dict[str, dict[str, object]] = {DEPLOYMENT: {}, AUTH: {}, SLURM: {}, JOB: {}}
    unsupported = list(cfg.unsupported_keys)
    foreign: list[_RawValue] = []
    for key, value in overrides.items():
        section, name, shown, file_name = _override_target(str(key), label, schema)
        if section is None:
            if name in FOREIGN_KEYS:
                foreign.append(_RawValue(_FOREIGN, name, value, f"override {name}"))
            if name not in unsupported:
                unsupported.append(name)
            continue
        if file_name is not None:
            value = _in_folder(value, file_name)
        spec = specs[section][name]
        changes[section][name] = _resolve(spec, _split_list_text(spec, value), variables, label, f"override {shown}")
    auth = dataclasses.replace(cfg.deployment.auth, **changes[AUTH])  # type: ignore[arg-type]
    slurm = dataclasses.replace(cfg.deployment.slurm, **changes[SLURM])  # type: ignore[arg-type]
    deployment = dataclasses.replace(cfg.deployment, auth=auth, slurm=slurm,  # type: ignore[arg-type]
                                     **changes[DEPLOYMENT])
    job = schema.job(changes[JOB], cfg.job.plugin_settings, core=cfg.job)
    check_job_consistency(job, label)
    for raw in foreign:
        _check_foreign(raw, job, variables, label)
    return dataclasses.replace(cfg, deployment=deployment, job=job, unsupported_keys=tuple(unsupported))


def _override_target(key: str, label: str, schema: KeySchema) -> tuple[str | None, str, str, str | None]:
    """(section, field name, name shown in messages, file of a folder alias) of an override key; section None:
    another system's key."""
    specs = schema.specs
    name = key.strip()
    allowed: Iterable[str] = (JOB, DEPLOYMENT, SLURM, AUTH)
    prefixes: tuple[tuple[str, tuple[str, ...]], ...] = (
        (f"{JOB_CONF_KEY}.", (JOB,)), ("job.", (JOB,)), (f"{AUTH_KEY}.", (AUTH,)), ("deployment.", (DEPLOYMENT, SLURM)))
    for prefix, sections in prefixes:
        if name.startswith(prefix):
            name, allowed = name[len(prefix):], sections
            break
    if name in FALLBACK_ALIASES:
        return None, name, name, None  # an override always has the key it stands in for: num_participants
    file_name = None
    if name in FOLDER_ALIASES:
        name, file_name = FOLDER_ALIASES[name]
    name = KEY_ALIASES.get(name, name)
    for section in allowed:
        if name in specs[section]:
            shown = {JOB: f"{JOB_CONF_KEY}.{name}", AUTH: f"{AUTH_KEY}.{name}", DEPLOYMENT: name, SLURM: name}[section]
            return section, name, shown, file_name
    if name in FOREIGN_KEYS:
        return None, name, name, None
    raise config_error(label, f"override {key}", unknown_key_message(name, schema.known_keys()))


def _split_list_text(spec: FieldSpec, value: object) -> object:
    # On a command line a list is one string; ';' separates items because worker_ips entries contain commas.
    if spec.kind == "strings" and isinstance(value, str):
        return [item.strip() for item in value.split(";") if item.strip()]
    return value


def _warn_unsupported(keys: Sequence[str], label: str) -> None:
    if keys:
        _LOGGER.warning("%s: ignoring keys that FedScale, REFL, Halor or Oort define but this platform does not "
                        "support (machinery, or training keys at the value that leaves training unchanged): %s",
                        label, ", ".join(keys))


def _kind_of(value: object) -> str:
    if value is None:
        return "an empty document"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if not isinstance(key, Hashable):
                continue  # SafeLoader itself reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found the key {key!r} twice",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
