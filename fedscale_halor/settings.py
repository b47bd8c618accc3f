"""Settings as frozen dataclasses whose fields are job-file keys (``knob``), and the settings a job's plug-ins own.

The core's keys are ``config.schema.JobConfig``'s fields. A plug-in declares its own keys the same way, in a frozen
dataclass of its own package (its ``PluginFactory.settings``); the config layer validates them by that schema, as it
validates the core's, without importing the plug-in, and the job carries them in ``JobConfig.plugin_settings``. Job
files stay flat, as FedScale's are: a plug-in's keys sit in ``job_conf`` beside the core's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

Section = TypeVar("Section")


def knob(default: Any, help: str, *, choices: tuple[Any, ...] | None = None,
         range: tuple[float | None, float | None] | None = None) -> Any:
    """A settings field: a job-file key with its documentation and its allowed values."""
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = choices
    if range is not None:
        metadata["range"] = range
    if isinstance(default, (list, dict)):
        raise TypeError("config defaults must be immutable; use a tuple")
    return field(default=default, metadata=metadata)


def implied_keys(section: type, deployment: object) -> Mapping[str, object]:
    """Keys a section sets from the deployment when the job file does not set them (its ``implied_by``)."""
    rule = getattr(section, "implied_by", None)
    return {} if rule is None else rule(deployment)


@dataclass(frozen=True)
class PluginSettings:
    """The settings of a job's plug-ins: one instance per settings class, each validated by its schema."""

    sections: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        kinds = [type(section) for section in self.sections]
        for section in self.sections:
            if not (dataclasses.is_dataclass(section) and type(section).__dataclass_params__.frozen):  # type: ignore[attr-defined]
                raise TypeError(f"plug-in settings must be frozen dataclass instances, got {section!r}")
        if len(set(kinds)) != len(kinds):
            raise TypeError(f"plug-in settings hold one instance per class, got {[kind.__name__ for kind in kinds]}")

    def get(self, kind: type[Section]) -> Section:
        """The job's instance of ``kind``; its defaults when the job was built without it."""
        for section in self.sections:
            if type(section) is kind:
                return section  # type: ignore[no-any-return]
        return kind()

    def replaced(self, section: object) -> PluginSettings:
        """These settings with ``section`` in place of (or beside) the instance of its class."""
        kept = tuple(existing for existing in self.sections if type(existing) is not type(section))
        return PluginSettings((*kept, section))

    def values(self) -> Iterator[tuple[str, object]]:
        """Every key of every section with its value, in declaration order."""
        for section in self.sections:
            for item in dataclasses.fields(section):
                yield item.name, getattr(section, item.name)
