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
from fedscale_halor.settings import knob

AUTO = "auto"


@dataclass(frozen=True)
class HalorConfig:
    """Halor's job-file keys (its plug-in's settings)."""

    halor: bool = knob(False, "run Halor's pre-round step: the sampled clients share their label histograms by "
                              "ring masking (the aggregator learns only their sum) and resample toward the global "
                              "distribution before training")
    halor_history: int = knob(5, "rounds of histogram sums in the global distribution (Halor's his_beta)",
                              range=(1, None))
    halor_resample: str = knob("under", "how a selected client resamples toward the global distribution: keep the "
                                        "pivot class whole and cut the others (under), draw its own size with "
                                        "replacement (over), or not at all (off)", choices=("under", "over", "off"))
    halor_mask_bits: int = knob(32, "masks and masked histograms are words modulo 2^bits; every histogram sum must "
                                    "stay below 2^bits", range=(8, 64))
    halor_timeout: float = knob(30.0, "seconds the aggregator waits for masked histograms (and again for recovery "
                                      "masks) before it treats the missing clients as dropped", range=(0.1, None))
    halor_distribution: str = knob("auto", "what the global distribution is: the sums of the last halor_history "
                                           "rounds' sampled clients (window), or the exact distribution over every "
                                           "client, from one run of the protocol in groups before round 1 (all); "
                                           "auto: all under data_regulation 1, window otherwise",
                                   choices=("auto", "window", "all"))
    halor_group_size: int = knob(100, "halor_distribution all: clients per ring of the one-shot protocol",
                                 range=(3, None))
    # distributed noise over many rounds
    halor_noise: bool = knob(False, "halor_distribution window: each ring member adds Skellam noise to its label "
                                    "histogram before masking, so that the sums the aggregator learns over the whole "
                                    "run stay (halor_epsilon, halor_delta)-differentially private for any one "
                                    "sample's label (docs/halor.md); off, the sums are exact")
    halor_epsilon: float = knob(8.0, "halor_noise: the ε over the job's rounds of a client that contributes to every "
                                     "one of them; the noise follows from it at start", range=(0.01, None))
    halor_delta: float = knob(1e-5, "halor_noise: the δ of halor_epsilon and of the ε the aggregator logs",
                              range=(1e-12, 0.1))
    data_regulation: int = knob(0, "Halor's data regulation: 1 turns Halor on with its own choices (the exact "
                                   "label distribution over all clients unless halor_distribution says otherwise, "
                                   "under resampling, the guard on resampled sizes); 0 leaves it to halor",
                                choices=(0, 1))


def halor_config(job: JobConfig) -> HalorConfig:
    return job.plugin_settings.get(HalorConfig)


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
    keys = halor_config(job)
    regulated = keys.data_regulation == 1
    if not (keys.halor or regulated):
        return None
    if regulated and keys.halor_resample != "under":
        raise ConfigError(f"data_regulation 1 is Halor's own data regulation, whose rule is under; "
                          f"halor_resample {keys.halor_resample} goes with halor: True and data_regulation 0")
    distribution = keys.halor_distribution
    if distribution == AUTO:
        distribution = "all" if regulated else "window"
    return HalorChoices(
        distribution=distribution, resample=keys.halor_resample, history=keys.halor_history,
        group_size=keys.halor_group_size, mask_bits=keys.halor_mask_bits, timeout_s=keys.halor_timeout,
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
    keys = halor_config(job)
    if choices is None or not keys.halor_noise:
        return None
    if choices.distribution != "window":
        raise ConfigError("halor_noise adds noise to the sums of halor_distribution window; the exact distribution "
                          f"(halor_distribution {keys.halor_distribution}) reveals each group's sum once, before "
                          "round 1, and runs without it (docs/halor.md)")
    return NoiseSettings.for_target(keys.halor_epsilon, keys.halor_delta, job.rounds)
