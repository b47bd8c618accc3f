"""Halor's distributed noise: signed words, Skellam shares, and noisy rounds moved through the real masking sessions
(the unmasked sum is Σh + Σz exactly), plus the global distribution's clipping of noisy totals."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest

from fedscale_halor.halor.distribution import GlobalDistribution
from fedscale_halor.halor.noise import share_variance, skellam_noise
from fedscale_halor.halor.ring import ring_order
from fedscale_halor.halor.secret_sharing import encode_signed, lift_signed, noise_seed, simulated_client_keys
from fedscale_halor.halor.session import ClientMaskingSession, HalorSessionError, RoundSum, ServerMaskingRound

JOB_SEED = 233
ROUND = 7
CLIENT_IDS = (3, 17, 42, 58, 61, 99, 104, 230, 512, 777)  # K = 10
NUM_CLASSES = 6
BITS = 32
VARIANCE = 400.0  # of the round's sum: each of the 10 clients adds 40 per class


# --- signed words --------------------------------------------------------------------------------------------------


def test_signed_values_travel_as_twos_complement_words() -> None:
    words = encode_signed(np.array([-1, -128, 0, 127, 5]), bits=8)

    assert words.tolist() == [255, 128, 0, 127, 5]
    assert lift_signed(words, bits=8).tolist() == [-1, -128, 0, 127, 5]


def test_a_sum_of_words_lifts_to_the_signed_sum() -> None:
    # -100 and -20 are 156 and 236 mod 256; 156 + 236 = 392 = 136 (mod 256), and 136 - 256 = -120
    values = np.array([[-100, 3], [-20, 60]])
    total = (encode_signed(values[0], 8) + encode_signed(values[1], 8)) & np.uint64(255)

    assert total.tolist() == [136, 63]
    assert lift_signed(total, 8).tolist() == [-120, 63]


@pytest.mark.parametrize("bits", [2, 32, 63, 64])
def test_the_lift_inverts_the_encoding_at_both_ends_of_the_range(bits: int) -> None:
    half = 1 << (bits - 1)
    values = np.array([-half, -1, 0, 1, half - 1], dtype=np.int64) if bits < 64 else np.array(
        [np.iinfo(np.int64).min, -1, 0, 1, np.iinfo(np.int64).max], dtype=np.int64)

    np.testing.assert_array_equal(lift_signed(encode_signed(values, bits), bits), values)


@pytest.mark.parametrize("value", [-129, 128])
def test_a_value_outside_the_centered_range_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match="must lie in"):
        encode_signed(np.array([value]), bits=8)


# --- Skellam shares --------------------------------------------------------------------------------------------------


def test_skellam_noise_has_zero_mean_and_the_asked_variance() -> None:
    draws = skellam_noise(bytes(32), 50.0, 200_000)

    assert draws.dtype == np.int64
    assert abs(draws.mean()) < 0.1  # standard error 50 / sqrt(200k) ≈ 0.016
    assert draws.var() == pytest.approx(50.0, rel=0.02)


def test_ten_shares_sum_to_the_variance_of_the_round() -> None:
    shares = [skellam_noise(bytes([client]) * 32, share_variance(VARIANCE, 10), 50_000) for client in range(10)]

    assert np.sum(shares, axis=0).var() == pytest.approx(VARIANCE, rel=0.03)


def test_noise_is_reproducible_from_its_seed_and_zero_without_variance() -> None:
    assert skellam_noise(bytes(32), 5.0, 8).tolist() == skellam_noise(bytes(32), 5.0, 8).tolist()
    assert skellam_noise(bytes(32), 5.0, 8).tolist() != skellam_noise(bytes([1]) * 32, 5.0, 8).tolist()
    assert skellam_noise(bytes(32), 0.0, 3).tolist() == [0, 0, 0]


def test_the_noise_seed_is_fresh_per_round_and_per_client() -> None:
    keys, other = simulated_client_keys(JOB_SEED, 3), simulated_client_keys(JOB_SEED, 17)

    assert noise_seed(keys, ROUND) == noise_seed(simulated_client_keys(JOB_SEED, 3), ROUND)
    assert len({noise_seed(keys, ROUND), noise_seed(keys, ROUND + 1), noise_seed(other, ROUND)}) == 3


# --- noisy rounds through the masking sessions ----------------------------------------------------------------------


def _histograms(seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {client: rng.integers(0, 30, size=NUM_CLASSES, dtype=np.int64) for client in CLIENT_IDS}


def _expected_noise(client: int, ring_size: int, job_seed: int = JOB_SEED) -> np.ndarray:
    """The client's noise, re-derived outside the session from its key and the round."""
    seed = noise_seed(simulated_client_keys(job_seed, client), ROUND)
    return skellam_noise(seed, VARIANCE / ring_size, NUM_CLASSES)


def _noisy_round(histograms: dict[int, np.ndarray], dropped: Iterable[int] = (), job_seed: int = JOB_SEED,
                 variance: float = VARIANCE) -> tuple[RoundSum, dict[int, tuple[int, ...]]]:
    clients = {client: ClientMaskingSession(job_seed, client, noise_variance=variance) for client in CLIENT_IDS}
    server = ServerMaskingRound(ROUND, CLIENT_IDS, {client: session.public_key for client, session in clients.items()},
                                NUM_CLASSES, BITS, signed=True)
    uploads = {client: clients[client].upload(seat, histograms[client]) for client, seat in server.seats().items()}
    for client, upload in uploads.items():
        if client not in set(dropped):
            server.accept_upload(upload)
    for request in server.close_uploads():
        server.accept_reveal(clients[request.client_id].reveal(ROUND, request.link_index))
    return server.result(), {client: upload.words for client, upload in uploads.items()}


def test_the_unmasked_sum_is_the_histograms_plus_every_clients_noise_exactly() -> None:
    histograms = _histograms()

    outcome, _ = _noisy_round(histograms)

    noise = {client: _expected_noise(client, len(CLIENT_IDS)) for client in CLIENT_IDS}
    expected = sum(histograms[client] + noise[client] for client in CLIENT_IDS)
    assert outcome.histogram_sum == tuple(int(count) for count in expected)
    assert any(noise[client].any() for client in CLIENT_IDS)  # the noise is there, and it is not all zero


def test_with_dropouts_the_sum_holds_exactly_the_contributors_noise() -> None:
    histograms = _histograms(seed=1)
    ring = ring_order(ROUND, CLIENT_IDS)
    dropped = {ring[2], ring[3]}

    outcome, _ = _noisy_round(histograms, dropped=dropped)

    assert set(outcome.contributors) == set(CLIENT_IDS) - dropped
    expected = sum(histograms[client] + _expected_noise(client, len(CLIENT_IDS)) for client in outcome.contributors)
    assert outcome.histogram_sum == tuple(int(count) for count in expected)


def test_a_noisy_sum_of_empty_histograms_comes_out_negative_where_the_noise_is() -> None:
    empty = {client: np.zeros(NUM_CLASSES, dtype=np.int64) for client in CLIENT_IDS}

    outcome, _ = _noisy_round(empty)

    expected = sum(_expected_noise(client, len(CLIENT_IDS)) for client in CLIENT_IDS)
    assert outcome.histogram_sum == tuple(int(count) for count in expected)
    assert min(outcome.histogram_sum) < 0  # lifted to signed integers, not left as words near 2^32


def test_noisy_uploads_are_the_same_for_the_same_job_and_differ_for_another_seed() -> None:
    histograms = _histograms()

    first, words = _noisy_round(histograms)
    again, words_again = _noisy_round(histograms)
    other, _ = _noisy_round(histograms, job_seed=JOB_SEED + 1)

    assert words == words_again and first == again
    assert other.histogram_sum != first.histogram_sum  # another job, other keys, other noise (same histograms)


def test_without_noise_the_uploads_are_those_of_the_exact_protocol() -> None:
    histograms = _histograms()
    plain = {client: ClientMaskingSession(JOB_SEED, client) for client in CLIENT_IDS}
    server = ServerMaskingRound(ROUND, CLIENT_IDS, {client: session.public_key for client, session in plain.items()},
                                NUM_CLASSES, BITS)

    uploads = {client: plain[client].upload(seat, histograms[client]).words for client, seat in server.seats().items()}

    _, with_zero_noise = _noisy_round(histograms, variance=0.0)
    assert uploads == with_zero_noise


def test_a_noisy_histogram_that_does_not_fit_the_words_is_declined() -> None:
    sessions = {client: ClientMaskingSession(JOB_SEED, client, noise_variance=1e6) for client in (3, 17, 42)}
    server = ServerMaskingRound(ROUND, tuple(sessions), {client: s.public_key for client, s in sessions.items()},
                                NUM_CLASSES, bits=8, signed=True)

    with pytest.raises(HalorSessionError, match="does not fit 8-bit signed words"):
        sessions[3].upload(server.seats()[3], np.zeros(NUM_CLASSES, dtype=np.int64))


# --- the global distribution over noisy sums ------------------------------------------------------------------------


def test_negative_class_totals_of_the_window_are_clipped_before_normalizing() -> None:
    distribution = GlobalDistribution(num_classes=3, history=2)

    distribution.update(1, np.array([5, -3, 2]), signed=True)
    distribution.update(2, np.array([1, 1, -4]), signed=True)

    # window total [6, -2, -2]: the two negative classes count as zero
    np.testing.assert_allclose(distribution.current(), [1.0, 0.0, 0.0])
    assert distribution.window() == ((1, (5, -3, 2)), (2, (1, 1, -4)))  # the checkpoint keeps the sums unclipped


def test_a_window_that_noise_leaves_without_mass_gives_no_distribution() -> None:
    distribution = GlobalDistribution(num_classes=2, history=2)

    distribution.update(1, np.array([-1, 0]), signed=True)

    assert distribution.current() is None
