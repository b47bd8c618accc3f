"""The accounting of Halor's noisy sums: the Skellam bound as a zCDP event, ε against dp-accounting and closed forms,
calibration from a target ε, the job's noise setting, and the aggregator's per-client ledger."""

from __future__ import annotations

import math
from pathlib import Path

import dp_accounting
import pytest
from dp_accounting import dp_event

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.halor.privacy import (
    LABEL_CHANGE,
    ORDERS,
    NoiseSettings,
    Sensitivity,
    epsilon_of,
    gaussian_equivalent_event,
    skellam_event,
    skellam_zcdp,
    variance_for_epsilon,
)
from fedscale_halor.halor.privacy_ledger import PrivacyLedger
from fedscale_halor.halor.settings import job_noise
from fedscale_halor.launch.jobfile import load_config

DELTA = 1e-5
ROOT = Path(__file__).resolve().parents[3]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"


# --- one release -------------------------------------------------------------------------------------------------


def test_the_skellam_bound_as_zcdp_parameters_by_hand() -> None:
    # variance 100, a changed label (L1 2, L2² 2): ρ = 2/200 · (1 + 1/100) = 0.0101, ξ = (12 - 2)/(4 · 100²)
    rho, xi = skellam_zcdp(100.0, LABEL_CHANGE)

    assert rho == pytest.approx(0.0101)
    assert xi == pytest.approx(0.00025)


def test_the_zcdp_event_is_theorem_3_5_with_the_first_branch_of_its_min() -> None:
    variance, l1, l2_squared = 37.0, 2.0, 2.0
    rho, xi = skellam_zcdp(variance, Sensitivity(l1, l2_squared))

    for order in (2, 5, 17, 64):
        theorem = order * l2_squared / (2 * variance) + ((2 * order - 1) * l2_squared + 6 * l1) / (4 * variance**2)
        assert xi + rho * order == pytest.approx(theorem)


def test_the_gaussian_of_equal_variance_matches_dp_accounting_and_closed_forms() -> None:
    # 100 rounds of variance 1000, L2² = 2: noise multiplier sqrt(500) each, ρ = 100 · 2/(2 · 1000) = 0.1 in all
    variance, rounds, rho = 1000.0, 100, 0.1

    ours = epsilon_of(gaussian_equivalent_event(variance), DELTA, rounds)

    direct = dp_accounting.rdp.RdpAccountant(orders=list(ORDERS)).compose(
        dp_event.GaussianDpEvent(math.sqrt(500.0)), rounds).get_epsilon(DELTA)
    # the RDP conversion dp-accounting applies, written out: min over α of ρα + log(1 - 1/α) - log(δα)/(α - 1)
    by_hand = min(rho * a + math.log1p(-1 / a) - math.log(DELTA * a) / (a - 1) for a in ORDERS)
    classic = rho + 2 * math.sqrt(rho * math.log(1 / DELTA))  # Bun and Steinke's conversion of ρ-zCDP: 2.2460
    exact = dp_accounting.get_epsilon_gaussian(math.sqrt(500.0 / rounds), DELTA)  # one Gaussian of the same ρ
    assert ours == pytest.approx(direct) == pytest.approx(by_hand)
    assert ours == pytest.approx(1.9162, abs=1e-4)
    assert exact < ours < classic


def test_skellam_costs_a_little_more_than_the_gaussian_and_converges_to_it() -> None:
    ratios = [epsilon_of(skellam_event(variance), DELTA, 10)
              / epsilon_of(gaussian_equivalent_event(variance), DELTA, 10) for variance in (10.0, 100.0, 10_000.0)]

    assert all(ratio > 1 for ratio in ratios)
    assert ratios == sorted(ratios, reverse=True)
    assert ratios[-1] == pytest.approx(1.0, abs=1e-3)


def test_composing_rounds_equals_one_event_of_summed_parameters() -> None:
    rho, xi = skellam_zcdp(80.0)

    assert epsilon_of(skellam_event(80.0), DELTA, count=7) == pytest.approx(
        epsilon_of(dp_event.ZCDpEvent(rho=7 * rho, xi=7 * xi), DELTA))
    assert epsilon_of(skellam_event(80.0), DELTA, count=0) == 0.0


# --- calibration ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "rounds"), [(1.0, 10), (8.0, 150), (3.0, 1000)])
def test_the_calibrated_variance_spends_the_target_and_no_more(target: float, rounds: int) -> None:
    variance = variance_for_epsilon(target, DELTA, rounds)

    assert epsilon_of(skellam_event(variance), DELTA, rounds) <= target
    assert epsilon_of(skellam_event(variance), DELTA, rounds) == pytest.approx(target, abs=1e-3)
    assert epsilon_of(skellam_event(variance * 0.99), DELTA, rounds) > target


def test_more_rounds_need_proportionally_more_noise_and_a_larger_budget_less() -> None:
    base = variance_for_epsilon(4.0, DELTA, 100)

    # at this noise the Skellam surcharge is negligible, and ρ of T rounds is T/μ: twice the rounds, twice μ
    assert variance_for_epsilon(4.0, DELTA, 200) / base == pytest.approx(2.0, rel=0.01)
    assert variance_for_epsilon(8.0, DELTA, 100) < base


def test_the_settings_for_a_target_report_the_cost_of_one_round() -> None:
    noise = NoiseSettings.for_target(8.0, DELTA, 150)

    assert noise.variance == pytest.approx(123.8, abs=0.1)
    assert noise.round_epsilon() == pytest.approx(epsilon_of(skellam_event(noise.variance), DELTA))
    assert noise.magnitude_bound() == math.ceil(32 * math.sqrt(noise.variance)) + 32


@pytest.mark.parametrize("bad", [{"variance": 0.0}, {"variance": math.inf}, {"delta": 0.0}, {"delta": 1.0}])
def test_settings_refuse_meaningless_values(bad: dict[str, float]) -> None:
    values = {"variance": 10.0, "delta": DELTA, "target_epsilon": 1.0, "rounds": 5, **bad}

    with pytest.raises(ValueError):
        NoiseSettings(**values)  # type: ignore[arg-type]


# --- the job's setting ---------------------------------------------------------------------------------------------


def test_the_job_setting_is_off_by_default_and_calibrated_over_the_jobs_rounds() -> None:
    plain = load_config(DIGITS_CONF, overrides={"halor": True, "rounds": 40})
    noisy = load_config(DIGITS_CONF, overrides={"halor": True, "rounds": 40, "halor_noise": True,
                                                "halor_epsilon": 2.0, "halor_delta": 1e-6})

    assert job_noise(plain.job) is None
    noise = job_noise(noisy.job)
    assert noise is not None and (noise.target_epsilon, noise.delta, noise.rounds) == (2.0, 1e-6, 40)
    assert noise.variance == variance_for_epsilon(2.0, 1e-6, 40)


def test_noise_is_refused_with_the_exact_distribution() -> None:
    cfg = load_config(DIGITS_CONF, overrides={"halor": True, "halor_noise": True, "halor_distribution": "all"})

    with pytest.raises(ConfigError, match="halor_noise"):
        job_noise(cfg.job)


# --- the aggregator's ledger ---------------------------------------------------------------------------------------


def test_the_ledger_composes_each_clients_own_rounds_with_the_noise_its_round_carried() -> None:
    noise = NoiseSettings(variance=120.0, delta=DELTA, target_epsilon=1.0, rounds=3)
    ledger = PrivacyLedger(noise)

    ledger.record(1, (1, 2, 3, 4), ring_size=4)  # full ring: variance 120
    ledger.record(2, (1, 2, 5), ring_size=4)  # one dropout: 3/4 of the noise, variance 90
    spent = ledger.record(3, (3, 4, 5, 6), ring_size=4)

    full, short = skellam_zcdp(120.0), skellam_zcdp(90.0)
    assert spent.variance == 120.0 and spent.contributors == 4
    assert spent.round_epsilon == pytest.approx(epsilon_of(skellam_event(120.0), DELTA))
    assert ledger.client_epsilon(1) == pytest.approx(
        epsilon_of(dp_event.ZCDpEvent(rho=full[0] + short[0], xi=full[1] + short[1]), DELTA))
    assert ledger.client_epsilon(3) == pytest.approx(epsilon_of(skellam_event(120.0), DELTA, 2))
    assert ledger.client_epsilon(6) == pytest.approx(spent.round_epsilon)
    assert ledger.client_epsilon(99) == 0.0
    # clients 1, 2 and 5 spent the most: a full round and a short one; client 1 is named (lowest id)
    assert spent.client_epsilon == pytest.approx(ledger.client_epsilon(1)) and spent.client_rounds == 2
    assert spent.run_epsilon == pytest.approx(
        epsilon_of(dp_event.ZCDpEvent(rho=2 * full[0] + short[0], xi=2 * full[1] + short[1]), DELTA))
    assert spent.run_epsilon > spent.client_epsilon
    assert ledger.latest == spent
    assert "over 4 contributors" in spent.describe() and "δ = 1e-05" in spent.describe()


def test_a_client_in_every_full_round_spends_the_target() -> None:
    noise = NoiseSettings.for_target(2.0, DELTA, 5)
    ledger = PrivacyLedger(noise)

    for round_index in range(1, 6):
        spent = ledger.record(round_index, (1, 2, 3), ring_size=3)

    assert spent.client_epsilon == pytest.approx(2.0, abs=1e-3) == pytest.approx(spent.run_epsilon)
    assert spent.client_rounds == 5


def test_the_ledger_refuses_a_round_without_contributors() -> None:
    ledger = PrivacyLedger(NoiseSettings(10.0, DELTA, 1.0, 1))

    with pytest.raises(ValueError, match="contributors"):
        ledger.record(1, (), ring_size=3)
