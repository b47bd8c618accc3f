"""An example cohort plug-in (plugin/cohorts.py): after round ``parity_split_round`` the job's one cohort splits in
two, the even client ids staying in cohort 0 and the odd ones forming cohort 1, which starts from cohort 0's model;
each then gets half of the participants. It shows the cohort hooks without any learning of its own, which Auxo's
plug-in adds (a split where the clients' updates say, and clients that move between cohorts).
Run it with ``plugins: ["fedscale_halor.plugin.examples.parity_cohorts:ParityCohortsFactory"]`` in a job file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.plugin.cohorts import CohortLayout, CohortPlugin
from fedscale_halor.plugin.factory import PluginFactory, ServerSide
from fedscale_halor.plugin.round import RoundPlugin
from fedscale_halor.settings import knob
from fedscale_halor.types import TrainResult

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass(frozen=True)
class ParityCohortsSettings:
    parity_split_round: int = knob(2, "parity_cohorts: the round after which cohort 0 splits by client-id parity",
                                   range=(1, None))


class ParityCohorts(CohortPlugin):
    def __init__(self, split_round: int) -> None:
        self._split_round = split_round

    def after_cohort_round(self, round_index: int, cohort: int, members: Sequence[Sequence[int]],
                           results: Sequence[TrainResult]) -> CohortLayout | None:
        if round_index != self._split_round or cohort != 0 or len(members) != 1:
            return None
        even = tuple(client for client in members[0] if client % 2 == 0)
        odd = tuple(client for client in members[0] if client % 2 == 1)
        _log.info("round %d: parity cohorts: %d even clients stay, %d odd ones form cohort 1", round_index,
                  len(even), len(odd))
        return CohortLayout(members=(even, odd), parents={1: 0})


class ParityCohortsFactory(PluginFactory):
    name = "parity_cohorts"
    settings = ParityCohortsSettings
    # these keep per-round state of one model (late updates, a pre-round window) that cohorts do not share yet
    excludes = ("stale_updates", "async", "halor")

    def round_plugin(self, job: JobConfig, server: ServerSide) -> RoundPlugin | None:
        return None

    def cohort_plugin(self, job: JobConfig, server: ServerSide) -> CohortPlugin:
        return ParityCohorts(job.plugin_settings.get(ParityCohortsSettings).parity_split_round)
