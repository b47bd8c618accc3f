"""The aggregator's privacy accounting for Halor's noisy histogram sums (docs/halor.md, "Privacy over a whole run").

Every round whose sum was formed is one release per contributor, with Skellam noise of variance V·n/K per class
(n contributors of a ring of K; fewer contributors carry less noise, and the aggregator knows how many there were).
A client's samples are touched only by the releases it contributed to, so the ledger composes, per client, the
releases of its own rounds; it also composes every release of the run, which bounds any client whatever the
selector does. All of it is arithmetic on what the aggregator already knows: who contributed, and the setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedscale_halor.halor.privacy import NoiseSettings, skellam_zcdp, zcdp_epsilon

_MAX_CONVERSIONS_KEPT = 4096


@dataclass(frozen=True)
class PrivacySpent:
    """The budget after one round's release, at ``delta``."""

    round: int
    contributors: int
    variance: float  # Skellam variance per class that this round's sum carries
    round_epsilon: float  # this release alone
    client_epsilon: float  # the most exposed client, over the releases it contributed to
    client_rounds: int  # how many releases that client contributed to
    run_epsilon: float  # a client that contributed to every release so far: a bound for every client
    delta: float

    def describe(self) -> str:
        return (f"Skellam noise of variance {self.variance:.1f} per class over {self.contributors} contributors; "
                f"ε {self.round_epsilon:.3f} this round; over the run ε {self.client_epsilon:.3f} for the most "
                f"exposed client ({self.client_rounds} rounds), at most {self.run_epsilon:.3f} for any client "
                f"(δ = {self.delta:g})")


@dataclass
class _Composed:
    rho: float = 0.0
    xi: float = 0.0
    releases: int = 0

    def add(self, rho: float, xi: float) -> None:
        self.rho += rho
        self.xi += xi
        self.releases += 1


class PrivacyLedger:
    """Composed (ξ, ρ)-zCDP per client and for the whole run; ε through dp-accounting at the setting's δ."""

    def __init__(self, noise: NoiseSettings) -> None:
        self._noise = noise
        self._clients: dict[int, _Composed] = {}
        self._epsilons: dict[int, float] = {}
        self._run = _Composed()
        self.latest: PrivacySpent | None = None  # after the latest release
        # Clients with the same history share (ρ, ξ) exactly (sums of the same terms), so a round of K contributors
        # costs one conversion per distinct history, not K.
        self._converted: dict[tuple[float, float], float] = {}

    @property
    def noise(self) -> NoiseSettings:
        return self._noise

    def record(self, round_index: int, contributors: Sequence[int], ring_size: int) -> PrivacySpent:
        """Account one round's released sum over ``contributors`` of a ring of ``ring_size`` clients."""
        if not 0 < len(contributors) <= ring_size:
            raise ValueError(f"round {round_index}: {len(contributors)} contributors of a ring of {ring_size}")
        noise = self._noise
        variance = noise.variance * len(contributors) / ring_size
        rho, xi = skellam_zcdp(variance, noise.sensitivity)
        self._run.add(rho, xi)
        for client in contributors:
            composed = self._clients.setdefault(client, _Composed())
            composed.add(rho, xi)
            self._epsilons[client] = self._epsilon(composed)
        exposed = max(self._epsilons, key=lambda client: (self._epsilons[client], -client))
        self.latest = PrivacySpent(
            round=round_index, contributors=len(contributors), variance=variance,
            round_epsilon=zcdp_epsilon(rho, xi, noise.delta),
            client_epsilon=self._epsilons[exposed], client_rounds=self._clients[exposed].releases,
            run_epsilon=self._epsilon(self._run), delta=noise.delta)
        return self.latest

    def client_epsilon(self, client: int) -> float:
        """ε spent so far on ``client``'s samples (0 for a client that never contributed)."""
        return self._epsilons.get(client, 0.0)

    def _epsilon(self, composed: _Composed) -> float:
        key = (composed.rho, composed.xi)
        epsilon = self._converted.get(key)
        if epsilon is None:
            if len(self._converted) >= _MAX_CONVERSIONS_KEPT:
                self._converted.clear()
            epsilon = self._converted[key] = zcdp_epsilon(composed.rho, composed.xi, self._noise.delta)
        return epsilon
