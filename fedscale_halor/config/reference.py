"""The configuration reference (docs/configuration.md), rendered from the schema so it cannot drift from it.

Regenerate with ``python -m fedscale_halor.config.reference > docs/configuration.md``.
"""

from __future__ import annotations

from fedscale_halor.config.known_keys import (
    FEDSCALE_UNSUPPORTED_KEYS,
    HALOR_UNSUPPORTED_KEYS,
    KEY_ALIASES,
    PATH_KEYS,
    REDACTED,
    REFL_UNSUPPORTED_KEYS,
    SECRET_KEY_MARKERS,
    VALUE_ALIASES,
)
from fedscale_halor.config.schema import AuthConfig, DeploymentConfig, JobConfig
from fedscale_halor.config.validation import FieldSpec, describe_expected, field_specs
from fedscale_halor.config.variables import HOME_VARIABLES

REGENERATE_COMMAND = "python -m fedscale_halor.config.reference > docs/configuration.md"

_TYPE_NAMES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "strings": "list of strings"}

_INTRODUCTION = """\
Job files use FedScale's YAML layout (REFL and Halor files use the same one): deployment keys at the top level,
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


def render_config_reference() -> str:
    """The whole reference page as Markdown."""
    parts = [
        "# Configuration reference",
        f"<!-- Generated from fedscale_halor/config/schema.py by `{REGENERATE_COMMAND}`; do not edit by hand. -->",
        _INTRODUCTION,
        "## How values are read",
        _reading_rules(),
        "## Top-level keys (deployment)",
        _table(field_specs(DeploymentConfig), prefix=""),
        "## `auth`",
        _table(field_specs(AuthConfig), prefix="auth."),
        "## `job_conf` keys",
        _table(field_specs(JobConfig), prefix=""),
        "## Other accepted spellings",
        _aliases(),
        "## Recognized keys that are not supported yet",
        _unsupported(),
    ]
    return "\n\n".join(parts) + "\n"


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
        "Checks across keys: `num_participants` <= `total_clients` (unless `partitioning` is 0, where the clients "
        "come from the data), and `min_learning_rate` <= `learning_rate`.",
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
    for key, spellings in VALUE_ALIASES.items():
        grouped: dict[str, list[str]] = {}
        for spelling, canonical in spellings.items():
            grouped.setdefault(canonical, []).append("null" if spelling is None else f"`{spelling}`")
        described = "; ".join(f"{', '.join(names)} mean `{canonical}`" for canonical, names in grouped.items())
        lines.append(f"- `{key}` values (case-insensitive): {described}.")
    return "\n".join(lines)


def _unsupported() -> str:
    intro = ("These keys are accepted so that FedScale, REFL and Halor job files load unchanged, but they have no "
             "effect yet: the loader records them in `ExperimentConfig.unsupported_keys` and logs one warning "
             "listing them by name.")
    sections = [intro]
    for origin, keys in (("FedScale", FEDSCALE_UNSUPPORTED_KEYS), ("REFL", REFL_UNSUPPORTED_KEYS),
                         ("Halor", HALOR_UNSUPPORTED_KEYS)):
        sections.append(f"### {origin}\n\n" + ", ".join(f"`{key}`" for key in sorted(keys)))
    return "\n\n".join(sections)


if __name__ == "__main__":
    print(render_config_reference(), end="")
