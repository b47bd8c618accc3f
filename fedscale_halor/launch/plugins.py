"""Which plug-ins a job runs: the built-in features, and the factories its ``plugins`` key names.

The aggregator's work board and every executor get the same payload registry (the codecs of the job's plug-ins'
messages); the round loop gets the plug-ins' aggregator sides, in this order; each executor their executor sides.
"""

from __future__ import annotations

import importlib

from fedscale_halor.asyncfl.plugin import AsyncFactory
from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.executor.plugin import ExecutorPlugin
from fedscale_halor.halor.factory import HalorPluginFactory
from fedscale_halor.plugin.factory import ExecutorSide, PluginFactory, ServerSide
from fedscale_halor.plugin.payloads import PayloadRegistry
from fedscale_halor.plugin.round import RoundPlugin
from fedscale_halor.server.planning import RoundPlanner
from fedscale_halor.server.stale import StaleUpdatesFactory

BUILT_IN: tuple[PluginFactory, ...] = (HalorPluginFactory(), StaleUpdatesFactory(), AsyncFactory())


def job_factories(job: JobConfig) -> tuple[PluginFactory, ...]:
    """The built-in features the job switches on, then the factories its ``plugins`` key names, in its order."""
    return (*(factory for factory in BUILT_IN if factory.enabled(job)), *(load_factory(spec) for spec in job.plugins))


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
