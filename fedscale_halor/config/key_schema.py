"""The keys a job file may set: the core's (by section) and those of the plug-ins' settings classes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.known_keys import FALLBACK_ALIASES, FOLDER_ALIASES, FOREIGN_KEYS, KEY_ALIASES
from fedscale_halor.config.schema import AuthConfig, DeploymentConfig, JobConfig, SlurmConfig
from fedscale_halor.config.validation import FieldSpec, field_specs
from fedscale_halor.settings import PluginSettings

DEPLOYMENT, AUTH, SLURM, JOB = "deployment", "auth", "slurm", "job"
AUTH_KEY = "auth"
JOB_CONF_KEY = "job_conf"


@dataclasses.dataclass(frozen=True)
class KeySchema:
    """The keys a file may set: the core's, by section, and the plug-ins' (job keys, each owned by its class)."""

    specs: Mapping[str, Mapping[str, FieldSpec]]
    owners: Mapping[str, type]  # a plug-in's job key -> its settings class
    sections: tuple[type, ...]

    @classmethod
    def of(cls, sections: Sequence[type]) -> KeySchema:
        deployment = {name: spec for name, spec in field_specs(DeploymentConfig).items() if spec.kind != "section"}
        job = dict(field_specs(JobConfig))
        owners: dict[str, type] = {}
        for section in sections:
            for name, spec in field_specs(section).items():
                if name in job or name in deployment or name in field_specs(SlurmConfig):
                    owner = owners[name].__name__ if name in owners else "the core"
                    raise ConfigError(f"plug-in settings {section.__name__} declare the key {name!r}, which {owner} "
                                      "already declares; a key has one owner")
                job[name] = spec
                owners[name] = section
        return cls({DEPLOYMENT: deployment, AUTH: field_specs(AuthConfig), SLURM: field_specs(SlurmConfig), JOB: job},
                   owners, tuple(sections))

    def job(self, values: Mapping[str, object], base: PluginSettings, core: JobConfig | None = None) -> JobConfig:
        """A JobConfig of ``values`` over ``core`` (or the defaults); plug-in keys go to their sections, which
        start from ``base``'s instances."""
        core_values = {name: value for name, value in values.items() if name not in self.owners}
        settings = base
        for section in self.sections:
            own = {name: value for name, value in values.items() if self.owners.get(name) is section}
            settings = settings.replaced(dataclasses.replace(base.get(section), **own))
        if core is None:
            return JobConfig(**core_values, plugin_settings=settings)  # type: ignore[arg-type]
        return dataclasses.replace(core, plugin_settings=settings, **core_values)  # type: ignore[arg-type]

    def known_keys(self) -> list[str]:
        return [*self.specs[DEPLOYMENT], *self.specs[SLURM], AUTH_KEY, JOB_CONF_KEY, *self.specs[AUTH],
                *self.specs[JOB],
                *KEY_ALIASES, *FOLDER_ALIASES, *FALLBACK_ALIASES, *FOREIGN_KEYS]
