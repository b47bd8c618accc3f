"""Which plug-ins a job runs: the built-in features, and the factories its ``plugins`` key names.

The aggregator's work board and every executor get the same payload registry (the codecs of the job's plug-ins'
messages); the round loop gets the plug-ins' aggregator sides, in this order; each executor their executor sides.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from fedscale_halor.asyncfl.plugin import AsyncFactory
from fedscale_halor.auxo.factory import AuxoFactory
from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.executor.plugin import ExecutorPlugin
from fedscale_halor.halor.factory import HalorPluginFactory
from fedscale_halor.plugin.cohorts import CohortPlugin, OneCohort
from fedscale_halor.plugin.factory import ExecutorSide, PluginFactory, ServerSide
from fedscale_halor.plugin.payloads import PayloadRegistry
from fedscale_halor.plugin.round import RoundPlugin
from fedscale_halor.server.planning import RoundPlanner
from fedscale_halor.server.stale import StaleUpdatesFactory

BUILT_IN: tuple[PluginFactory, ...] = (HalorPluginFactory(), StaleUpdatesFactory(), AsyncFactory(), AuxoFactory())


def job_factories(job: JobConfig) -> tuple[PluginFactory, ...]:
    """The built-in features the job switches on, then the factories its ``plugins`` key names, in its order."""
    factories = (*(factory for factory in BUILT_IN if factory.enabled(job)),
                 *(load_factory(spec) for spec in job.plugins))
    _check_exclusions(job, factories)
    return factories


def settings_sections(plugin_specs: Sequence[str]) -> tuple[type, ...]:
    """The settings classes whose keys a job may set: the built-in features', then those of the factories
    ``plugin_specs`` (the job's ``plugins`` key) names; the config loader validates the job's keys by them."""
    factories = (*BUILT_IN, *(load_factory(spec) for spec in plugin_specs))
    sections: list[type] = []
    for factory in factories:
        if factory.settings is not None and factory.settings not in sections:
            sections.append(factory.settings)
    return tuple(sections)


def _check_exclusions(job: JobConfig, factories: Sequence[PluginFactory]) -> None:
    names = {factory.name: factory for factory in factories}
    for factory in factories:
        for other in (names[name] for name in factory.excludes if name in names):
            raise ConfigError(f"job_conf: {factory.switched_on_by(job)} and {other.switched_on_by(job)} do not run "
                              f"together: the {factory.name} plug-in does not run beside the {other.name} plug-in "
                              f"(docs/architecture.md); turn one of them off")


def run_name_parts(job: JobConfig) -> tuple[str, ...]:
    """What the built-in features (on or off) and the job's own plug-ins add to its WandB run name."""
    factories = (*BUILT_IN, *(load_factory(spec) for spec in job.plugins))
    return tuple(part for factory in factories if (part := factory.run_name_part(job)) is not None)


def load_factory(spec: str) -> PluginFactory:
    """The factory ``package.module:name`` names: a PluginFactory, or a class of one to instantiate."""
    module_name, _, attribute = spec.partition(":")
    where = f"job_conf.plugins: {spec!r}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"{where}: cannot import {module_name} ({error}); install the package that provides it "
                          "on the aggregator's and every executor's host") from None
    found = getattr(module, attribute, None)
    if isinstance(found, type) and issubclass(found, PluginFactory):
        found = found()
    if not isinstance(found, PluginFactory):
        raise ConfigError(f"{where}: {module_name} has no PluginFactory named {attribute}")
    return found


def payload_registry(job: JobConfig) -> PayloadRegistry:
    return PayloadRegistry(codec for factory in job_factories(job) for codec in factory.codecs())


def round_plugins(job: JobConfig, server: ServerSide) -> tuple[RoundPlugin, ...]:
    built = (factory.round_plugin(job, server) for factory in job_factories(job))
    return tuple(plugin for plugin in built if plugin is not None)


def executor_plugins(job: JobConfig, executor: ExecutorSide) -> tuple[ExecutorPlugin, ...]:
    built = (factory.executor_plugin(job, executor) for factory in job_factories(job))
    return tuple(plugin for plugin in built if plugin is not None)


def planner_of(plugins: tuple[RoundPlugin, ...], default: RoundPlanner) -> RoundPlanner:
    """The round's planner: the one a plug-in puts in place of ``default``, or ``default``."""
    replacing = [(plugin, planner) for plugin in plugins if (planner := plugin.planner(default)) is not None]
    if len(replacing) > 1:
        names = " and ".join(type(plugin).__name__ for plugin, _ in replacing)
        raise ConfigError(f"job_conf: {names} each replace the round's planner; a job runs at most one of them")
    return replacing[0][1] if replacing else default


def cohort_plugin(job: JobConfig, server: ServerSide) -> CohortPlugin:
    """How the job's clients form cohorts: the one plug-in of the job that forms them, or one cohort."""
    built = [(factory, plugin) for factory in job_factories(job)
             if (plugin := factory.cohort_plugin(job, server)) is not None]
    if len(built) > 1:
        names = " and ".join(factory.name for factory, _ in built)
        raise ConfigError(f"job_conf: {names} each form cohorts; a job runs at most one of them")
    return built[0][1] if built else OneCohort()
