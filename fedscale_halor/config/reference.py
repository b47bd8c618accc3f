"""The configuration reference (docs/configuration.md), rendered from the schema so it cannot drift from it.

Regenerate with ``python -m fedscale_halor.launch.config_reference > docs/configuration.md``: the page lists the
plug-ins' keys too, and only launch/ knows the plug-ins.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedscale_halor.config.known_keys import (
    FALLBACK_ALIASES,
    FOLDER_ALIASES,
    FOREIGN_KEYS,
    KEY_ALIASES,
    NUMBER_ALIASES,
    PATH_KEYS,
    REDACTED,
    SECRET_KEY_MARKERS,
    SYSTEMS,
    VALUE_ALIASES,
    ForeignKey,
    keys_of,
)
from fedscale_halor.config.schema import AuthConfig, DeploymentConfig, JobConfig, SlurmConfig
from fedscale_halor.config.validation import SAFA_TAG_PREFIX, FieldSpec, describe_expected, field_specs, show_neutral
from fedscale_halor.config.variables import HOME_VARIABLES

REGENERATE_COMMAND = "python -m fedscale_halor.launch.config_reference > docs/configuration.md"

_TYPE_NAMES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "strings": "list of strings",
               "integers": "list of integers"}

_INTRODUCTION = """\
Job files use FedScale's YAML layout (REFL, Halor and Oort files use the same one): deployment keys at the top level,
`auth` as a mapping, and the job's keys in `job_conf`, a list of one-key mappings.

```yaml
ps_ip: 127.0.0.1
worker_ips:
    - 127.0.0.1:[1]            # host:[executors on GPU 0, GPU 1, ...]
exp_path: $FEDSCALE_HALOR_HOME
auth:
    ssh_user: ""
    ssh_private_key: ~/.ssh/id_rsa
setup_commands: []
job_conf:
    - job_name: digits
    - data_set: digits
    - rounds: 60
```

Shipped job files live in `benchmark/configs/<dataset>/conf.yml`."""


def render_config_reference(plugins: Sequence[tuple[str, type]] = ()) -> str:
    """The whole reference page as Markdown; ``plugins`` are (plug-in name, settings class) pairs, whose keys get a
    table each."""
    parts = [
        "# Configuration reference",
        f"<!-- Generated from fedscale_halor/config/schema.py and the plug-ins' settings by `{REGENERATE_COMMAND}`; "
        "do not edit by hand. -->",
        _INTRODUCTION,
        "## How values are read",
        _reading_rules(),
        "## Top-level keys (deployment)",
        _table(field_specs(DeploymentConfig), prefix=""),
        "## `auth`",
        _table(field_specs(AuthConfig), prefix="auth."),
        "## Slurm keys (top level, read by `launcher: slurm`; docs/launching.md)",
        _table(field_specs(SlurmConfig), prefix=""),
        "## `job_conf` keys",
        _table(field_specs(JobConfig), prefix=""),
        *_plugin_tables(plugins),
        "## Other accepted spellings",
        _aliases(),
        "## Keys of other systems without a field here",
        _foreign_keys(),
    ]
    return "\n\n".join(parts) + "\n"


def _plugin_tables(plugins: Sequence[tuple[str, type]]) -> list[str]:
    if not plugins:
        return []
    parts = ["## `job_conf` keys of the built-in plug-ins",
             "Each plug-in declares its keys in its own settings class; they sit in `job_conf` beside the keys above "
             "and are read by the same rules."]
    for name, section in plugins:
        parts += [f"### {name} (`{section.__module__}.{section.__qualname__}`)",
                  _table(field_specs(section), prefix="")]
    return parts


def _reading_rules() -> str:
    homes = " and ".join(f"`{name}`" for name in HOME_VARIABLES)
    paths = ", ".join(f"`{key}`" for key in sorted(PATH_KEYS))
    secrets = ", ".join(f"`{marker}`" for marker in SECRET_KEY_MARKERS)
    rules = [
        "`$VAR` and `${VAR}` in any string value (also inside lists) are replaced from the environment; an unset "
        "variable is an error naming the file, the key and the variable.",
        f"{homes} default to the root of this checkout when they are not set, so FedScale's own files and the "
        "shipped ones load as they are.",
        "`setup_commands` are shell text: their variables are left for the shell of the host that runs them.",
        f"A leading `~` is expanded in {paths}.",
        "Booleans may be YAML booleans, FedScale's strings (`\"True\"`, `\"False\"`) or `0`/`1`. Integers are "
        "accepted for numbers; quoted numbers (`\"10\"`, `\"0.5\"`, `3e-3`) are converted; anything else is an "
        "error.",
        "Deployment keys written inside `job_conf` (FedScale sometimes puts `ps_port` there) are read as "
        "deployment keys.",
        "An unknown key is an error that suggests the closest known key. A key given twice with different values "
        "is an error.",
        "Overrides (`fedscale-halor ... --set key=value`, `run_exps.sh`) may name any job or deployment key, "
        "optionally as `job_conf.<key>` or `auth.<key>`; they are checked like file values. In an override, list "
        "items are separated by `;`.",
        "A list given as one text is a one-item list; an empty text (an empty variable, `wandb_tags: $TAGS`) is an "
        "empty list.",
        "Checks across keys: `num_participants` <= `total_clients` (unless `partitioning` is 0, where the clients "
        "come from the data, or `total_clients` is 0, all of the data set's clients, which the data package checks "
        "once it has opened the data set), and `min_learning_rate` <= `learning_rate`.",
        f"`wandb_tags` starting with `{SAFA_TAG_PREFIX}` are refused: REFL's and Halor's aggregators run SAFA's round "
        "(every online client selected) for them, which this platform does not.",
        f"When a config is saved with a run's logs, values of keys whose names contain {secrets} are written as "
        f"`{REDACTED}`.",
    ]
    return "\n".join(f"- {rule}" for rule in rules)


def _table(specs: dict[str, FieldSpec], prefix: str) -> str:
    rows = ["| key | type | default | accepts | meaning |", "|---|---|---|---|---|"]
    for spec in specs.values():
        if spec.kind == "section":
            continue  # nested sections have their own table
        cells = (f"`{prefix}{spec.name}`", _TYPE_NAMES[spec.kind], _default_text(spec.default),
                 describe_expected(spec), spec.help)
        rows.append("| " + " | ".join(_escape(cell) for cell in cells) + " |")
    return "\n".join(rows)


def _default_text(value: object) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value == "":
        return '`""`'
    if isinstance(value, tuple):
        return "`[" + ", ".join(repr(item) for item in value) + "]`"
    return f"`{value!r}`" if isinstance(value, float) else f"`{value}`"


def _escape(cell: str) -> str:
    # "<log_path>" in a help text would otherwise be read as an HTML tag and vanish from the rendered page.
    return cell.replace("|", "\\|").replace("<", "\\<").replace("\n", " ")


def _aliases() -> str:
    lines = [f"- `{alias}` is read as `{name}`." for alias, name in KEY_ALIASES.items()]
    lines += [f"- `{alias}: <folder>` is read as `{name}: <folder>/{file_name}`."
              for alias, (name, file_name) in FOLDER_ALIASES.items()]
    lines += [f"- `{alias}` is read as `{name}` when the file does not set `{name}` (or one of its spellings); "
              f"otherwise it is ignored." for alias, name in FALLBACK_ALIASES.items()]
    for key, spellings in VALUE_ALIASES.items():
        grouped: dict[str, list[str]] = {}
        for spelling, canonical in spellings.items():
            grouped.setdefault(canonical, []).append("null" if spelling is None else f"`{spelling}`")
        described = "; ".join(f"{', '.join(names)} mean{'s' if len(names) == 1 else ''} `{canonical}`"
                              for canonical, names in grouped.items())
        lines.append(f"- `{key}` values (case-insensitive): {described}.")
    for key, numbers in NUMBER_ALIASES.items():
        described = "; ".join(f"`{number:g}` means `{meant:g}`" for number, meant in numbers.items())
        lines.append(f"- `{key}` numbers: {described} (REFL's and Halor's 0: no target, the round waits for all "
                     "its participants).")
    lines.append("- `worker_ips` entries written as Oort writes them, `host:n` (n processes on the host), are read "
                 "as `host:[n]`.")
    return "\n".join(lines)


def _foreign_keys() -> str:
    intro = ("Keys that FedScale, REFL, Halor or Oort define and that have no field here. *Machinery* keys only "
             "tune how those systems run: they are accepted whatever their value. *Training* keys change what "
             "those systems train or measure and are not implemented here: they are accepted only at the values "
             "that leave training unchanged (or while the job makes the system ignore them), and any other value is "
             "an error naming the system. Accepted keys are recorded in `ExperimentConfig.unsupported_keys` and "
             "named in one warning; their values are not kept.")
    sections = [intro]
    for system in SYSTEMS:
        rows = ["| key | kind | loads with | meaning |", "|---|---|---|---|"]
        for key in keys_of(system):
            spec = FOREIGN_KEYS[key]
            kind = "training" if spec.is_training_key else "machinery"
            rows.append("| " + " | ".join(_escape(cell) for cell in (f"`{key}`", kind, _loads_with(spec),
                                                                       spec.meaning)) + " |")
        sections.append(f"### {system}\n\n" + "\n".join(rows))
    return "\n\n".join(sections)


def _loads_with(spec: ForeignKey) -> str:
    if spec.neutral is None:
        return "any value"
    values = " or ".join(f"`{show_neutral(value)}`" for value in spec.neutral)
    if spec.only_when is None:
        return values
    field_name, active = spec.only_when
    return f"{values}; any value unless `{field_name}` is {' or '.join(str(v) for v in active)}"

