"""Halor's chained (ring) masking: privacy of a single upload, exact sums with dropouts, keys, seeds and reveals."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest

from fedscale_halor.halor.secret_sharing import (
    ClientRingSide,
    HalorProtocolError,
    MaskAlreadyRevealedError,
    NotALinkEndError,
    NotEnoughSurvivorsError,
    RingTooSmallError,
    apply_ring_masks,
    link_mask,
    link_seed,
    plan_recovery,
    recovery_requests,
    ring_order,
    simulated_client_keys,
    sum_masked,
    unmask,
)

JOB_SEED = 233


def _sides(ring: Sequence[int], round_index: int, job_seed: int = JOB_SEED) -> dict[int, ClientRingSide]:
    keys = {client: simulated_client_keys(job_seed, client) for client in ring}
    public_keys = {client: key.public_key for client, key in keys.items()}
    return {client: ClientRingSide.for_ring(keys[client], round_index, ring, client, public_keys) for client in ring}


def _run_round(
    ring: Sequence[int], histograms: dict[int, np.ndarray], survivors: Sequence[int], round_index: int, bits: int
) -> np.ndarray:
    sides = _sides(ring, round_index)
    masked = {client: sides[client].masked_histogram(histograms[client], bits) for client in survivors}
    revealed = {
        link: sides[client].reveal_mask(link) for client, link in recovery_requests(ring, survivors=list(masked))
    }
    return unmask(masked, ring, revealed, bits)


def test_the_servers_view_depends_only_on_the_sum_of_the_inputs() -> None:
    # Prepare: every mask triple of K = 3 links over one class mod 8, enumerated directly.
    bits, modulus = 3, 8
    masks = np.array(list(itertools.product(range(modulus), repeat=3)), dtype=np.uint64)
    views_by_sum: dict[int, list[np.ndarray]] = {}

    # Execute: the sorted multiset of server views (y_0, y_1, y_2) for each input triple.
    for inputs in itertools.product(range(modulus), repeat=3):
        views = [
            apply_ring_masks(np.full(len(masks), inputs[i], dtype=np.uint64), masks[:, (i - 1) % 3], masks[:, i], bits)
            for i in range(3)
        ]
        encoded = np.sort(views[0] * modulus**2 + views[1] * modulus + views[2])
        views_by_sum.setdefault(sum(inputs) % modulus, []).append(encoded)

    # Assert: equal sums give equal multisets: every view with that sum, each from `modulus` mask triples.
    for total, multisets in views_by_sum.items():
        views_with_this_sum = [
            a * modulus**2 + b * modulus + c
            for a, b, c in itertools.product(range(modulus), repeat=3)
            if (a + b + c) % modulus == total
        ]
        expected = np.sort(np.repeat(views_with_this_sum, modulus)).astype(np.uint64)
        assert len(multisets) == modulus**2
        for multiset in multisets:
            np.testing.assert_array_equal(multiset, expected)


DROPOUT_PATTERNS_OF_TEN = {
    "none": [],
    "one": [4],
    "consecutive run": [2, 3, 4],
    "two runs": [1, 2, 6, 7],
    "wrap-around": [8, 9, 0, 1],
    "exactly three survivors": [3, 4, 5, 6, 7, 8, 9],
    "three survivors around the end": [1, 2, 3, 4, 5, 6, 7],
}


@pytest.mark.parametrize("num_classes", [10, 35])
@pytest.mark.parametrize("pattern", sorted(DROPOUT_PATTERNS_OF_TEN))
@pytest.mark.parametrize("bits", [32, 12])
def test_the_unmasked_sum_is_exact_with_and_without_dropouts_for_ten_clients(
    num_classes: int, pattern: str, bits: int
) -> None:
    # Prepare
    ring = ring_order(5, [11 * client + 3 for client in range(10)])
    rng = np.random.default_rng([num_classes, bits, sorted(DROPOUT_PATTERNS_OF_TEN).index(pattern)])
    histograms = {client: rng.integers(0, 2 ** min(bits, 20) // 10, size=num_classes) for client in ring}
    dropped = {ring[position] for position in DROPOUT_PATTERNS_OF_TEN[pattern]}
    survivors = [client for client in ring if client not in dropped]

    # Execute
    total = _run_round(ring, histograms, survivors, round_index=5, bits=bits)

    # Assert
    expected = sum(histograms[client] for client in survivors) % 2**bits
    np.testing.assert_array_equal(total, expected)


@pytest.mark.parametrize("num_classes", [10, 35])
@pytest.mark.parametrize("bits", [32, 4])
def test_three_clients_sum_exactly_and_need_every_upload(num_classes: int, bits: int) -> None:
    # Prepare
    ring = ring_order(2, [7, 1, 40])
    rng = np.random.default_rng([num_classes, bits])
    histograms = {client: rng.integers(0, 2**bits, size=num_classes) for client in ring}

    sides = _sides(ring, 2)

    # Execute
    total = _run_round(ring, histograms, ring, round_index=2, bits=bits)
    plain_sum = sum_masked(
        {client: sides[client].masked_histogram(histograms[client], bits) for client in ring}, ring, bits
    )

    # Assert
    np.testing.assert_array_equal(total, sum(histograms.values()) % 2**bits)
    np.testing.assert_array_equal(plain_sum, total)
    with pytest.raises(NotEnoughSurvivorsError):
        _run_round(ring, histograms, ring[:2], round_index=2, bits=bits)


@pytest.mark.parametrize(
    ("dropped_positions", "lone_positions"), [([1, 3], [2]), ([0, 2, 3, 5], [1, 4]), ([9, 1, 2], [0])]
)
def test_a_survivor_between_two_dropped_neighbours_is_discarded_and_asked_nothing(
    dropped_positions: list[int], lone_positions: list[int]
) -> None:
    # Prepare
    ring = ring_order(9, range(10))
    rng = np.random.default_rng(len(dropped_positions))
    histograms = {client: rng.integers(0, 1000, size=10) for client in ring}
    survivors = [client for position, client in enumerate(ring) if position not in dropped_positions]

    # Execute
    plan = plan_recovery(ring, survivors)
    total = _run_round(ring, histograms, survivors, round_index=9, bits=32)

    # Assert: the lone survivor's masks stay secret, so its upload cannot enter the sum.
    assert plan.discarded == tuple(ring[position] for position in lone_positions)
    assert not set(plan.discarded) & {request.client_id for request in plan.requests}
    assert len({request.client_id for request in plan.requests}) == len(plan.requests)
    np.testing.assert_array_equal(total, sum(histograms[client] for client in plan.contributors))


@pytest.mark.parametrize("survivor_positions", [[0, 1], [4], [], [0, 3, 6], [0, 4, 5], [2, 5, 7, 9]])
def test_fewer_than_three_unmaskable_uploads_are_refused_before_any_reveal(survivor_positions: list[int]) -> None:
    ring = ring_order(1, range(10))
    survivors = [ring[position] for position in survivor_positions]

    with pytest.raises(NotEnoughSurvivorsError, match="previous distribution"):
        recovery_requests(ring, survivors)
    with pytest.raises(NotEnoughSurvivorsError):
        unmask({client: np.zeros(3, dtype=np.uint64) for client in survivors}, ring, {}, bits=32)


def test_recovery_asks_each_runs_outer_neighbours_for_the_links_into_the_run() -> None:
    ring = tuple(range(100, 110))

    assert recovery_requests(ring, ring) == []
    assert recovery_requests(ring, [c for c in ring if c != 104]) == [(103, 3), (105, 4)]
    assert recovery_requests(ring, [c for c in ring if c not in (102, 103, 104)]) == [(101, 1), (105, 4)]
    assert recovery_requests(ring, [c for c in ring if c not in (109, 100, 101)]) == [(102, 1), (108, 8)]
    assert recovery_requests(ring, [c for c in ring if c not in (101, 105, 106)]) == [
        (100, 0),
        (102, 1),
        (104, 4),
        (107, 6),
    ]


def test_both_ends_of_a_link_derive_the_same_seed_which_changes_with_round_and_link() -> None:
    # Prepare
    left, right = simulated_client_keys(JOB_SEED, 3), simulated_client_keys(JOB_SEED, 8)

    # Execute
    seed = link_seed(left, right.public_key, round_index=4, link_index=2)

    # Assert
    assert len(seed) == 32
    assert seed == link_seed(right, left.public_key, round_index=4, link_index=2)
    assert seed != link_seed(left, right.public_key, round_index=5, link_index=2)
    assert seed != link_seed(left, right.public_key, round_index=4, link_index=3)
    assert (
        link_mask(seed, 10, 32).tolist()
        != link_mask(link_seed(left, right.public_key, round_index=5, link_index=2), 10, 32).tolist()
    )


def test_simulated_keys_are_reproducible_and_differ_by_job_seed_and_client() -> None:
    keys = simulated_client_keys(JOB_SEED, 3)

    assert len(keys.public_key) == 32
    assert keys == simulated_client_keys(JOB_SEED, 3)
    assert keys.public_key != simulated_client_keys(JOB_SEED + 1, 3).public_key
    assert keys.public_key != simulated_client_keys(JOB_SEED, 4).public_key


def test_masks_are_words_below_the_modulus_and_differ_across_rounds() -> None:
    # Prepare
    ring = ring_order(0, range(5))

    # Execute
    first = _sides(ring, 0)[ring[0]].masked_histogram(np.zeros(35, dtype=np.int64), 7)
    second = _sides(ring, 1)[ring[0]].masked_histogram(np.zeros(35, dtype=np.int64), 7)

    # Assert
    assert first.dtype == np.uint64 and int(first.max()) < 2**7
    assert first.tolist() != second.tolist()
    assert int(link_mask(bytes(range(32)), 1000, 64).max()) >= 2**63
    assert int(link_mask(bytes(range(32)), 1000, 1).max()) == 1


def test_a_client_reveals_one_mask_per_round_and_only_of_its_own_links() -> None:
    # Prepare
    ring = ring_order(3, range(6))
    side = _sides(ring, 3)[ring[2]]
    side.masked_histogram(np.arange(10), 32)

    # Execute / Assert
    with pytest.raises(NotALinkEndError):
        side.reveal_mask(4)
    side.reveal_mask(1)
    with pytest.raises(MaskAlreadyRevealedError):
        side.reveal_mask(2)
    with pytest.raises(MaskAlreadyRevealedError):
        side.reveal_mask(1)


def test_the_revealed_mask_is_the_one_the_neighbour_used() -> None:
    ring = ring_order(3, range(6))
    sides = _sides(ring, 3)
    for side in sides.values():
        side.masked_histogram(np.zeros(8, dtype=np.int64), 16)

    assert sides[ring[2]].reveal_mask(2).tolist() == sides[ring[3]].reveal_mask(2).tolist()


def test_ring_order_is_a_deterministic_permutation_that_changes_with_the_round() -> None:
    clients = list(range(20, 60))

    order = ring_order(7, clients)

    assert sorted(order) == clients
    assert order == ring_order(7, list(reversed(clients)))
    assert order != ring_order(8, clients)
    assert order != tuple(clients)


@pytest.mark.parametrize("clients", [[5], [5, 6]])
def test_rings_of_one_or_two_clients_are_refused(clients: list[int]) -> None:
    keys = simulated_client_keys(JOB_SEED, 5)

    with pytest.raises(RingTooSmallError, match="at least 3"):
        ring_order(0, clients)
    with pytest.raises(RingTooSmallError):
        ClientRingSide(keys, 0, 0, len(clients), keys.public_key, keys.public_key)
    with pytest.raises(RingTooSmallError):
        recovery_requests(clients, clients)


def test_no_masked_histogram_equals_its_clients_histogram() -> None:
    rng = np.random.default_rng(17)
    for round_index in range(40):
        ring = ring_order(round_index, rng.choice(1000, size=int(rng.integers(3, 12)), replace=False).tolist())
        sides = _sides(ring, round_index)
        for client in ring:
            histogram = rng.integers(0, 50, size=10)

            masked = sides[client].masked_histogram(histogram, 32)

            assert not np.any(masked == histogram)


def test_invalid_histograms_and_widths_are_refused() -> None:
    ring = ring_order(0, range(3))
    side = _sides(ring, 0)[ring[0]]

    with pytest.raises(ValueError, match=r"\[0, 2\^4\)"):
        side.masked_histogram(np.array([1, 16]), 4)
    with pytest.raises(ValueError, match=r"\[0, 2\^32\)"):
        side.masked_histogram(np.array([1, -1]), 32)
    with pytest.raises(TypeError, match="integers"):
        side.masked_histogram(np.array([1.5, 2.0]), 32)
    with pytest.raises(ValueError, match="bits"):
        side.masked_histogram(np.array([1, 2]), 65)
    with pytest.raises(HalorProtocolError, match="only after"):
        _sides(ring, 0)[ring[1]].reveal_mask(1)
