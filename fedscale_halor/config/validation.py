"""Turning raw YAML (or override) values into typed field values, and the checks that span several fields.

Every problem is a ConfigError worded ``<file>: <key>: expected <what>, got <value>``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fedscale_halor.config.errors import config_error
from fedscale_halor.config.known_keys import NUMBER_ALIASES, VALUE_ALIASES, ForeignKey
from fedscale_halor.config.schema import JobConfig

_INTEGER_LITERAL = re.compile(r"[+-]?\d+")
_NUMBER_LITERAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})

# Values whose shape a type cannot express; checked per element so the message points at the bad entry.
_FORMATS: Mapping[str, tuple[re.Pattern[str], str]] = {
    "worker_ips": (re.compile(r"[^\s:\[\]]+:\[\s*\d+(?:\s*,\s*\d+)*\s*\]"),
                   "'host:[n0,n1,...]' such as '127.0.0.1:[1]'"),
    "plugins": (re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*"), "'package.module:name'"),
    # one sbatch option per item: a newline or a second '#SBATCH' would smuggle other lines into the batch script
    "slurm_extra_directives": (re.compile(r"--?[A-Za-z][\w-]*(?:[= ][^\n#]*)?"),
                               "an sbatch option such as '--mem=16G' (without '#SBATCH')"),
}
# sbatch --time: minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]], or no limit
_SLURM_TIME = re.compile(r"\d+(?::\d+){0,2}|\d+-\d+(?::\d+){0,2}|(?i:unlimited|infinite)")
# Oort's worker_ips entries are 'host:n', n learner processes on the host (each takes the host's first GPU).
_OORT_WORKER = re.compile(r"\s*(?P<host>[^\s:\[\]]+):(?P<count>\d+)\s*")

# REFL and Halor switch their aggregator to SAFA's round when the WandB tags start with this.
SAFA_TAG_PREFIX = "safa"


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """What a config field accepts, read from the schema's type hints and metadata."""

    name: str
    kind: str  # one of: str, int, float, bool, strings, section
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    value_range: tuple[float | None, float | None] | None = None


_KINDS: Mapping[Any, str] = {str: "str", int: "int", float: "float", bool: "bool", tuple[str, ...]: "strings",
                              tuple[int, ...]: "integers"}


def field_specs(config_class: type) -> dict[str, FieldSpec]:
    """The fields of a schema dataclass, in declaration order."""
    hints = typing.get_type_hints(config_class)
    specs: dict[str, FieldSpec] = {}
    for field in dataclasses.fields(config_class):
        if field.metadata.get("plugin_settings"):
            continue  # the plug-ins' own keys: each class is read by its own field_specs
        hint = hints[field.name]
        kind = "section" if dataclasses.is_dataclass(hint) else _KINDS.get(hint)
        if kind is None:
            raise TypeError(f"{config_class.__name__}.{field.name}: the loader has no rule for type {hint!r}")
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default  # type: ignore[misc]
        specs[field.name] = FieldSpec(
            name=field.name, kind=kind, default=default, help=field.metadata.get("help", ""),
            choices=field.metadata.get("choices"), value_range=field.metadata.get("range"))
    return specs


def describe_expected(spec: FieldSpec) -> str:
    """The accepted values in words, e.g. "an integer >= 1" or "one of 'cv', 'speech'"."""
    if spec.choices is not None:
        return "one of " + ", ".join(repr(choice) for choice in spec.choices)
    base = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
            "strings": "a list of strings", "integers": "a list of integers", "section": "a mapping"}[spec.kind]
    if spec.value_range is None:
        return base
    low, high = spec.value_range
    if low is not None and high is not None:
        return f"{base} in [{low!r}, {high!r}]"
    if low is not None:
        return f"{base} >= {low!r}"
    return f"{base} <= {high!r}"


def show_value(value: object) -> str:
    """A value as the user wrote it (YAML spelling for null and booleans)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


class _MismatchError(Exception):
    """Internal: the value does not fit the field; the caller words the message."""


def coerce_field(spec: FieldSpec, value: object, source_label: str, key_path: str) -> Any:
    """The typed value of ``value`` for the field, or a ConfigError naming the file and key."""
    value = _apply_value_alias(spec.name, value)
    try:
        typed = _coerce_kind(spec, value, source_label, key_path)
    except _MismatchError:
        raise config_error(source_label, key_path,
                           f"expected {describe_expected(spec)}, got {show_value(value)}") from None
    if spec.choices is not None and typed not in spec.choices:
        hint = _did_you_mean(str(typed), (str(choice) for choice in spec.choices))
        raise config_error(source_label, key_path,
                           f"expected {describe_expected(spec)}, got {show_value(value)}{hint}")
    typed = _apply_number_alias(spec.name, typed)
    if spec.value_range is not None and not _in_range(typed, spec.value_range):
        raise config_error(source_label, key_path, f"expected {describe_expected(spec)}, got {show_value(value)}")
    if spec.name == "worker_ips":
        typed = tuple(_oort_worker_entry(item) for item in typed)
    if spec.name in _FORMATS:
        _check_format(spec.name, typed, source_label, key_path)
    if spec.name == "slurm_time" and typed and not _SLURM_TIME.fullmatch(typed.strip()):
        raise config_error(source_label, key_path, "expected a Slurm time limit such as '90' (minutes), "
                                                   f"'02:00:00' or '1-12:00:00', got {show_value(value)}")
    return typed


def _apply_value_alias(name: str, value: object) -> object:
    aliases = VALUE_ALIASES.get(name)
    if aliases is None:
        return value
    if value is None:
        return aliases.get(None, value)
    if isinstance(value, str):
        return aliases.get(value.strip().lower(), value)
    return value


def _apply_number_alias(name: str, typed: Any) -> Any:
    aliases = NUMBER_ALIASES.get(name)
    if aliases is None or isinstance(typed, bool) or not isinstance(typed, (int, float)):
        return typed
    return aliases.get(float(typed), typed)


def _oort_worker_entry(item: str) -> str:
    """Oort's 'host:n' (n processes on the host) in FedScale's layout, 'host:[n]'; other entries as they are."""
    match = _OORT_WORKER.fullmatch(item)
    return f"{match.group('host')}:[{match.group('count')}]" if match else item


def _coerce_kind(spec: FieldSpec, value: object, source_label: str, key_path: str) -> Any:
    if spec.kind == "str":
        return _as_string(value, empty_allowed=spec.default == "")
    if spec.kind == "int":
        return _as_integer(value)
    if spec.kind == "float":
        return _as_float(value)
    if spec.kind == "bool":
        return _as_bool(value)
    if spec.kind == "strings":
        return _as_strings(value, source_label, key_path)
    if spec.kind == "integers":
        return _as_integers(value, source_label, key_path)
    raise _MismatchError


def _as_string(value: object, *, empty_allowed: bool) -> str:
    if isinstance(value, str):
        return value
    # A bare number such as `job_name: 2024` is still plainly a name; null means "unset" where unset is "".
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None and empty_allowed:
        return ""
    raise _MismatchError


def _as_integer(value: object) -> int:
    if isinstance(value, bool):
        raise _MismatchError
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER_LITERAL.fullmatch(value.strip()):
        return int(value.strip())
    number = _as_float(value)
    # FedScale writes large integers in float notation (e.g. 1e15); keep them when they are whole.
    if number.is_integer():
        return int(number)
    raise _MismatchError


def _as_float(value: object) -> float:
    if isinstance(value, bool):
        raise _MismatchError
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and _NUMBER_LITERAL.fullmatch(value.strip()):
        # PyYAML reads exponent literals without a dot (3e-3, as FedScale files write them) as strings.
        number = float(value.strip())
    else:
        raise _MismatchError
    if not math.isfinite(number):
        raise _MismatchError
    return number


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    # FedScale passes booleans as "True"/"False" strings and REFL as 0/1.
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _MismatchError


def _as_integers(value: object, source_label: str, key_path: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, str):  # a command line's "50,100"
        value = [item.strip() for item in value.strip("[]").split(",") if item.strip()]
    if not isinstance(value, Sequence):
        raise _MismatchError
    items: list[int] = []
    for index, item in enumerate(value):
        try:
            items.append(_as_integer(item))
        except _MismatchError:
            raise config_error(source_label, f"{key_path}[{index}]",
                               f"expected an integer, got {show_value(item)}") from None
    return tuple(items)


def _as_strings(value: object, source_label: str, key_path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        # An empty text (often an empty variable, `wandb_tags: $TAGS`) is an empty list.
        return (value,) if value.strip() else ()
    if not isinstance(value, Sequence):
        raise _MismatchError
    items: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise config_error(source_label, f"{key_path}[{index}]", f"expected a string, got {show_value(item)}")
        items.append(item)
    return tuple(items)


def _in_range(value: float, value_range: tuple[float | None, float | None]) -> bool:
    low, high = value_range
    return (low is None or value >= low) and (high is None or value <= high)


def _check_format(name: str, values: tuple[str, ...], source_label: str, key_path: str) -> None:
    pattern, wording = _FORMATS[name]
    for index, item in enumerate(values):
        if not pattern.fullmatch(item.strip()):
            raise config_error(source_label, f"{key_path}[{index}]", f"expected {wording}, got {item!r}")


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(candidates), n=1)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def unknown_key_message(key: str, candidates: Iterable[str]) -> str:
    """The message for a key no schema, alias or known system defines, with the closest known key."""
    return "unknown key" + _did_you_mean(key, candidates)


def check_job_consistency(job: JobConfig, source_label: str) -> None:
    """Checks that involve several job keys (each key alone is already valid)."""
    # With the real client mapping the number of clients comes from the data, not from total_clients; with
    # total_clients 0 (all of the data set's clients) the data package checks once it has opened the data set.
    if job.partitioning != 0 and job.total_clients != 0 and job.num_participants > job.total_clients:
        raise config_error(
            source_label, "job_conf.num_participants",
            f"expected at most total_clients ({job.total_clients}) clients per round, got {job.num_participants}")
    if job.quorum == 0.0:
        # the schema's ranges are closed; 0 would commit a round in which every selected client failed
        raise config_error(source_label, "job_conf.quorum",
                           "expected a number in (0.0, 1.0]: a quorum of 0 commits a round in which every client "
                           "failed, got 0.0")
    if job.min_learning_rate > job.learning_rate:
        raise config_error(
            source_label, "job_conf.min_learning_rate",
            f"expected a number <= learning_rate ({job.learning_rate!r}), got {job.min_learning_rate!r}")
    if job.wandb_tags and job.wandb_tags[0].startswith(SAFA_TAG_PREFIX):
        raise config_error(
            source_label, "job_conf.wandb_tags",
            f"REFL and Halor run SAFA's round (every online client selected, target_ratio of them awaited) when "
            f"the tags start with {SAFA_TAG_PREFIX!r}; this platform does not support that mode (its SAFA is "
            f"stale_update with stale_factor 1): use tags that do not start with {SAFA_TAG_PREFIX!r}, got "
            f"{job.wandb_tags[0]!r}")


def job_value(job: JobConfig, name: str) -> object:
    """The value of a job key, the core's or a plug-in's; None when neither declares it."""
    try:
        return job.value_of(name)
    except KeyError:
        return None


def check_foreign_value(spec: ForeignKey, value: object, job: JobConfig, source_label: str, key_path: str) -> None:
    """Refuse another system's training key unless upstream ignores it for this job or its value is neutral."""
    if spec.neutral is None:
        return
    if spec.only_when is not None:
        field_name, values = spec.only_when
        current = job_value(job, field_name)
        if current is not None and current not in values:  # a key no loaded plug-in declares: no exception
            return
    if any(_same_value(value, neutral) for neutral in spec.neutral):
        return
    neutral_text = " or ".join(show_neutral(neutral) for neutral in spec.neutral)
    condition = ""
    if spec.only_when is not None:
        field_name, values = spec.only_when
        condition = f"; {spec.system} reads it only with {field_name} {' or '.join(str(v) for v in values)}"
    raise config_error(
        source_label, key_path,
        f"a {spec.system} key ({spec.meaning}) that this platform does not support: it loads only with "
        f"{neutral_text}, which leaves training unchanged{condition}; got {show_value(value)}")


def _upstream_form(value: object) -> object:
    """A value as upstream's argument parser reads it: booleans and numeric text as numbers, empty text as null."""
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.lower() in _TRUE_WORDS:
            return 1.0
        if text.lower() in _FALSE_WORDS:
            return 0.0
        if _NUMBER_LITERAL.fullmatch(text):
            return float(text)
        return text
    return value


def _same_value(value: object, neutral: object) -> bool:
    return _upstream_form(value) == _upstream_form(neutral)


def show_neutral(value: object) -> str:
    """A neutral value as upstream files write it (booleans as 0 and 1)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}".replace("e+", "e")
    return str(value)
