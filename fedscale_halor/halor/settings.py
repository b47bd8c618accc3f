"""The Halor a job runs, derived in one place from its config (docs/halor.md, "data_regulation").

``halor: True`` runs Halor with the job's halor_* keys. ``data_regulation: 1``, the switch in Halor's own job files,
runs it with Halor's choices: the exact distribution over every client (unless ``halor_distribution`` names
``window``), the ``under`` rule, and the guard on resampled sizes. The aggregator builds its Halor step from these
choices and sends the resampling rule with every task and size question, so its executors resample exactly as it
decided, whatever their own copy of the config says. ``job_noise`` is the noise of ``halor_noise``, which the
aggregator and every executor derive alike from the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.halor.privacy import NoiseSettings

AUTO = "auto"


@dataclass(frozen=True)
class HalorChoices:
    distribution: str  # window: the last rounds' sampled clients; all: every client, once, before round 1
    resample: str  # under | over | off
    history: int  # rounds of sums in the window
    group_size: int  # distribution all: clients per ring
    mask_bits: int
    timeout_s: float
    guard_floor: int  # selection leaves out clients whose resampled size is below this; 0: no guard
    switched_on_by: str  # the key that turned Halor on, for the log

    def summary(self) -> str:
        """One line for the aggregator log."""
        distribution = {"all": "exact distribution over all clients, in groups of "
                               f"{self.group_size}"}.get(self.distribution, f"{self.history}-round window")
        guard = f"at filter_less={self.guard_floor}" if self.guard_floor else "off"
        return f"{distribution}; {self.resample} resampling; guard {guard}"


def halor_choices(job: JobConfig) -> HalorChoices | None:
    """What Halor the job runs; None when it runs none."""
    regulated = job.data_regulation == 1
    if not (job.halor or regulated):
        return None
    if regulated and job.halor_resample != "under":
        raise ConfigError(f"data_regulation 1 is Halor's own data regulation, whose rule is under; "
                          f"halor_resample {job.halor_resample} goes with halor: True and data_regulation 0")
    distribution = job.halor_distribution
    if distribution == AUTO:
        distribution = "all" if regulated else "window"
    return HalorChoices(
        distribution=distribution, resample=job.halor_resample, history=job.halor_history,
        group_size=job.halor_group_size, mask_bits=job.halor_mask_bits, timeout_s=job.halor_timeout,
        # as Halor's client manager: used_samples < 0 (clients of batch_size + 1 samples) filters no client
        guard_floor=job.filter_less if job.used_samples >= 0 else 0,
        switched_on_by="data_regulation: 1" if regulated else "halor: True",
    )


def job_noise(job: JobConfig) -> NoiseSettings | None:
    """Halor's noise for a job (halor_noise), derived alike by the aggregator and by every executor; None without.

    The budget halor_epsilon covers the job's rounds for a client that contributes to every one of them, the worst
    any selector can do. The exact distribution (halor_distribution all) reveals each group's sum once, before round
    1, and is not combined with noise.
    """
    choices = halor_choices(job)
    if choices is None or not job.halor_noise:
        return None
    if choices.distribution != "window":
        raise ConfigError("halor_noise adds noise to the sums of halor_distribution window; the exact distribution "
                          f"(halor_distribution {job.halor_distribution}) reveals each group's sum once, before "
                          "round 1, and runs without it (docs/halor.md)")
    return NoiseSettings.for_target(job.halor_epsilon, job.halor_delta, job.rounds)
