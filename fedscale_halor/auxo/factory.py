"""Auxo's job-file keys and its plug-in factory: ``auxo: True`` switches it on; the other keys are Auxo's, with the
defaults of its published config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fedscale_halor.auxo.plugin import AuxoCohorts
from fedscale_halor.auxo.settings import AuxoSettings
from fedscale_halor.auxo.signal_log import SIGNALS_FOLDER
from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.plugin.cohorts import CohortPlugin
from fedscale_halor.plugin.factory import PluginFactory, ServerSide
from fedscale_halor.plugin.round import RoundPlugin
from fedscale_halor.settings import knob


@dataclass(frozen=True)
class AuxoKeys:
    auxo: bool = knob(False, "Auxo: clients form cohorts, each with its own model, learned from their updates; also "
                             "on when exp_path is FedScale's examples/auxo")
    split_round: tuple[int, ...] = knob((50, 100), "Auxo: a cohort's clustering rounds at which it splits in two")
    exploredecay: float = knob(0.99, "Auxo: explorerate is multiplied by this at every cohort choice",
                               range=(1e-9, 1.0))
    explorerate: float = knob(0.01, "Auxo: chance that a client is sent to a random cohort", range=(0.0, 1.0))
    start_round: int = knob(0, "Auxo: the first round whose updates are clustered", range=(0, None))
    metric: str = knob("cosine", "Auxo: the clustering metric (k-means on normalised updates)", choices=("cosine",))
    signal_rounds: tuple[int, ...] = knob((), "Auxo: global rounds at whose end the clients' signals are saved in "
                                              "the run folder's auxo_signals/, which fedscale-halor plot --signals "
                                              "draws; empty: none")
    reduction: bool = knob(False, "Auxo: reduce the updates by t-SNE first (off in Auxo's config; not offered)",
                           choices=(False,))

    @staticmethod
    def implied_by(deployment: object) -> Mapping[str, object]:
        """FedScale's Auxo job file chooses Auxo by its experiment folder: ``auxo`` follows from it."""
        folder = str(getattr(deployment, "exp_path", "")).replace("\\", "/").rstrip("/")
        return {"auxo": True} if folder.endswith("examples/auxo") else {}

    def settings(self) -> AuxoSettings:
        try:
            return AuxoSettings(split_round=self.split_round,
                                exploredecay=self.exploredecay, explorerate=self.explorerate, metric=self.metric,
                                start_round=self.start_round, signal_rounds=self.signal_rounds)
        except ValueError as error:
            raise ConfigError(f"job_conf: Auxo: {error}") from None


class AuxoFactory(PluginFactory):
    name = "auxo"
    settings = AuxoKeys
    # these keep per-round state of one model (late updates, a pre-round window) that cohorts do not share yet
    excludes = ("stale_updates", "async", "halor")

    def enabled(self, job: JobConfig) -> bool:
        return job.plugin_settings.get(AuxoKeys).auxo

    def switched_on_by(self, job: JobConfig) -> str:
        return "auxo: True"

    def round_plugin(self, job: JobConfig, server: ServerSide) -> RoundPlugin | None:
        return None

    def cohort_plugin(self, job: JobConfig, server: ServerSide) -> CohortPlugin:
        settings = job.plugin_settings.get(AuxoKeys).settings()
        if settings.signal_rounds and server.run_dir is None:
            raise ConfigError("job_conf: Auxo: signal_rounds saves signals in the run folder, and this job has none")
        return AuxoCohorts(server.client_ids, settings, num_participants=job.num_participants, seed=job.sample_seed,
                           signals_folder=None if server.run_dir is None else server.run_dir / SIGNALS_FOLDER)
