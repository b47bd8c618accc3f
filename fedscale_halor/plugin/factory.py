"""How a job gets its plug-ins: one ``PluginFactory`` per feature builds the feature's parts from the job.

A factory owns its feature's settings (its ``settings`` class of job-file keys, validated by the config layer; more
checks when the aggregator builds its side), its messages (the payload codecs it registers) and its hooks: a
``RoundPlugin`` on the aggregator, an ``ExecutorPlugin`` on each executor, a ``CohortPlugin`` where the feature
forms cohorts. Built-in features are listed in ``launch/plugins.py``; a job runs more with its ``plugins`` key, each
entry naming a factory as ``package.module:name`` (docs/architecture.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.executor.plugin import ExecutorPlugin
from fedscale_halor.plugin.cohorts import CohortPlugin
from fedscale_halor.plugin.payloads import PayloadCodec
from fedscale_halor.plugin.round import RoundPlugin
from fedscale_halor.server.board import WorkBoard


@dataclass(frozen=True)
class ServerSide:
    """What a plug-in's aggregator side may use."""

    board: WorkBoard
    client_ids: Sequence[int]
    client_sizes: Mapping[int, int]  # training samples per client
    num_classes: int
    # the run's folder, where a plug-in may leave files of its own beside the logs; None: a job without one
    run_dir: Path | None = None


@dataclass(frozen=True)
class ExecutorSide:
    """What a plug-in's executor side may use."""

    executor_id: str
    dataset: FederatedDataset


class PluginFactory(ABC):
    #: a short name for logs and errors
    name: str
    #: the feature's job-file keys: a frozen dataclass of ``fedscale_halor.settings.knob`` fields, which the config
    #: layer validates and the job carries (``job.plugin_settings.get(settings)``); None: the feature has no keys
    settings: ClassVar[type | None] = None
    #: the names of the factories this feature cannot run beside
    excludes: ClassVar[tuple[str, ...]] = ()

    def enabled(self, job: JobConfig) -> bool:
        """Whether the job runs this feature; a factory named in ``plugins`` always runs."""
        return True

    def switched_on_by(self, job: JobConfig) -> str:
        """The key that turns this feature on, as a refusal names it."""
        return self.name

    def run_name_part(self, job: JobConfig) -> str | None:
        """What this feature adds to the job's WandB run name, on or off (None: nothing)."""
        return None

    def codecs(self) -> Sequence[PayloadCodec[Any]]:
        """The codecs of every message this feature sends, events, answers and task hints alike."""
        return ()

    @abstractmethod
    def round_plugin(self, job: JobConfig, server: ServerSide) -> RoundPlugin | None:
        """The feature's aggregator side; raises ``ConfigError`` for settings it cannot run with."""

    def executor_plugin(self, job: JobConfig, executor: ExecutorSide) -> ExecutorPlugin | None:
        return None

    def cohort_plugin(self, job: JobConfig, server: ServerSide) -> CohortPlugin | None:
        """How the feature forms cohorts (plugin/cohorts.py); at most one feature of a job does."""
        return None
