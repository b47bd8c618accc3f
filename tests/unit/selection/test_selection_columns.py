"""The selection seam over columns and numpy ids: register_columns (the default and the overrides), numpy feasible
ids sorted or not, the vectorized unknown-client check and availability ranking."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from fedscale_halor.selection import availability_selector
from fedscale_halor.selection.availability_selector import AvailabilityPrioritySelector
from fedscale_halor.selection.base import ClientIds, ClientInfo, ClientSelector
from fedscale_halor.selection.oort_selector import OortSelector, OortSettings
from fedscale_halor.selection.random_selector import RandomSelector


class Recording(ClientSelector):
    def __init__(self) -> None:
        self.registered: dict[int, ClientInfo] = {}

    def register(self, clients: Mapping[int, ClientInfo]) -> None:
        self.registered.update(clients)

    def select(self, round_index: int, feasible: ClientIds, count: int) -> list[int]:
        return []


def test_the_default_register_columns_builds_the_mapping_for_register() -> None:
    selector = Recording()

    selector.register_columns(np.array([4, 2]), np.array([10, 20]), np.array([1.5, 0.0]), np.array([0.3, 1.0]))
    selector.register_columns(np.array([7]), np.array([5]))

    assert selector.registered == {4: ClientInfo(10, 1.5, 0.3), 2: ClientInfo(20, 0.0, 1.0), 7: ClientInfo(5, 0.0, 1.0)}
    assert all(type(c) is int and type(i.num_samples) is int for c, i in selector.registered.items())


def test_register_columns_refuses_columns_of_different_lengths_or_fractional_sample_counts() -> None:
    with pytest.raises(ValueError, match="as many"):
        Recording().register_columns(np.array([1, 2]), np.array([10]))
    with pytest.raises(TypeError, match="num_samples must be integers"):
        Recording().register_columns(np.array([1]), np.array([2.5]))
    with pytest.raises(TypeError, match="client ids must be integers"):
        Recording().register_columns(np.array([1.0]), np.array([2]))


def _infos(ids: list[int]) -> dict[int, ClientInfo]:
    return {c: ClientInfo(num_samples=50 + 17 * (c % 9), expected_duration_s=1.0 + c % 4) for c in ids}


def test_oort_registered_from_columns_holds_what_it_holds_from_a_mapping() -> None:
    ids = [30, 10, 20, 40]
    infos = _infos(ids)
    from_mapping, from_columns = OortSelector(OortSettings()), OortSelector(OortSettings())
    from_mapping.register(infos)
    from_columns.register_columns(np.array(ids), np.array([infos[c].num_samples for c in ids]),
                                  np.array([infos[c].expected_duration_s for c in ids]))

    assert [from_columns.client_record(c) for c in ids] == [from_mapping.client_record(c) for c in ids]


def test_oort_accepts_numpy_feasible_ids_unsorted_with_repeats_and_names_unknown_ones() -> None:
    ids = list(range(5, 500, 5))
    selector, reference = OortSelector(OortSettings(seed=9)), OortSelector(OortSettings(seed=9))
    selector.register(_infos(ids))
    reference.register(_infos(ids))
    rng = np.random.default_rng(2)
    for round_index in range(1, 6):
        feasible = rng.permutation(ids)[:70]
        picked = selector.select(round_index, np.concatenate([feasible, feasible[:9]]), 8)

        assert picked == reference.select(round_index, sorted(feasible.tolist()), 8)
        assert picked == sorted(picked) and all(type(c) is int for c in picked)
    with pytest.raises(ValueError, match=r"feasible clients \[3, 501\] were never registered \(2 in all\)"):
        selector.select(6, np.array([501, 5, 3, 10]), 2)


def test_oort_with_clients_0_to_n_checks_unknown_ids_at_both_ends() -> None:
    selector = OortSelector(OortSettings())
    selector.register(_infos(list(range(100))))

    with pytest.raises(ValueError, match=r"\[-1, 100\]"):
        selector.select(1, np.array([100, 3, -1]), 2)
    assert selector.select(1, np.arange(100)[::-1], 100) == list(range(100))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint32])
def test_random_selection_from_numpy_ids_matches_selection_from_lists(dtype: type) -> None:
    rng = np.random.default_rng(4)
    for round_index in range(1, 6):
        feasible = rng.choice(10_000, size=3000, replace=False)
        as_list = RandomSelector(8).select(round_index, feasible.tolist(), 25)

        assert RandomSelector(8).select(round_index, feasible.astype(dtype), 25) == as_list
        assert RandomSelector(8).select(round_index, np.sort(feasible), 25) == as_list
        assert all(type(c) is int for c in as_list)


def test_availability_registered_from_columns_keeps_the_latest_fraction_of_each_client() -> None:
    selector = AvailabilityPrioritySelector(1)
    selector.register({1: ClientInfo(10, online_fraction=0.5), 2: ClientInfo(10, online_fraction=0.9)})

    selector.register_columns(np.array([2, 3, 3]), np.array([1, 1, 1]), online_fraction=np.array([0.1, 0.7, 0.2]))

    assert [selector.online_fraction(c) for c in (1, 2, 3, 4)] == [0.5, 0.1, 0.2, 1.0]
    assert selector.select(1, np.array([4, 3, 2, 1]), 2) == [2, 3]


@pytest.mark.parametrize("with_nan", [False, True])
def test_the_lowest_fractions_are_the_head_of_the_full_lexicographic_order(with_nan: bool) -> None:
    rng = np.random.default_rng(5)
    for count in (1, 7, 50, 199):
        fractions = np.round(rng.random(200), 1)
        fractions[:5] = [0.0, -0.0, 0.0, -0.0, 0.0]
        if with_nan:
            fractions[rng.integers(0, 200, size=30)] = np.nan
        tie_break = rng.permutation(200)

        chosen = availability_selector._lowest(fractions, tie_break, count)

        assert sorted(chosen.tolist()) == sorted(np.lexsort((tie_break, fractions))[:count].tolist())
