from __future__ import annotations

import math
from collections import Counter

import pytest

from fedscale_halor.simulation.client_profiles import ClientProfile, assign_traces, key_picker
from fedscale_halor.simulation.traces import Availability, DeviceCapacity


def capacities_keyed(keys: list[int]) -> dict[int, DeviceCapacity]:
    """Each entry's compute speed is its key plus 1000, so an assignment shows which entry a client got."""
    return {key: DeviceCapacity(compute_ms_per_sample=1000.0 + key, bandwidth_kbps=1000.0) for key in keys}


def capacities_with_compute(compute_ms: list[float]) -> dict[int, DeviceCapacity]:
    return {key: DeviceCapacity(compute_ms_per_sample=ms, bandwidth_kbps=1000.0) for key, ms in enumerate(compute_ms)}


def session_of(online_s: float, period: float = 100.0) -> Availability:
    """Online for the first ``online_s`` seconds of each period."""
    return Availability(active=(0.0,), inactive=(online_s,), duration=online_s, finish_time=period)


def assigned_compute(profiles: dict[int, ClientProfile]) -> dict[int, float]:
    return {client: profile.capacity.compute_ms_per_sample for client, profile in profiles.items()}


def assigned_keys(profiles: dict[int, ClientProfile]) -> dict[int, int]:
    return {client: round(profile.capacity.compute_ms_per_sample - 1000) for client, profile in profiles.items()}


def test_one_based_capacity_keys_match_client_ids_and_wrap_modulo() -> None:
    profiles = assign_traces(range(8), capacities_keyed([1, 2, 3]), None, random_behv=-1, seed=0)

    assert assigned_keys(profiles) == {0: 3, 1: 1, 2: 2, 3: 3, 4: 1, 5: 2, 6: 3, 7: 1}


def test_zero_based_capacity_keys_are_client_id_modulo_count() -> None:
    profiles = assign_traces([0, 4, 5, 9], capacities_keyed([0, 1, 2]), None, random_behv=-1, seed=0)

    assert assigned_keys(profiles) == {0: 0, 4: 1, 5: 2, 9: 0}


def test_scattered_keys_are_taken_by_position_in_file_order() -> None:
    pick = key_picker([432802, 17, 5])

    assert [pick(client) for client in range(5)] == [432802, 17, 5, 432802, 17]


def test_minus_one_means_always_online() -> None:
    behaviors = {1: session_of(10.0)}

    profile = assign_traces([3], capacities_keyed([1]), behaviors, random_behv=-1, seed=0)[3]

    assert profile.availability is None
    assert profile.is_online(55.0) and profile.online_until(55.0) == math.inf


def test_zero_gives_the_trace_of_the_same_client_id() -> None:
    behaviors = {key: session_of(10.0 * key) for key in (1, 2, 3, 4)}

    profiles = assign_traces([1, 2, 3, 4, 5, 0], capacities_keyed([1]), behaviors, random_behv=0, seed=0)

    assert {client: profile.availability for client, profile in profiles.items()} == {
        0: behaviors[4], 1: behaviors[1], 2: behaviors[2], 3: behaviors[3], 4: behaviors[4], 5: behaviors[1]}
    assert profiles[2].is_online(15.0) and not profiles[1].is_online(15.0)


def test_without_a_behavior_trace_everyone_is_online() -> None:
    profiles = assign_traces(range(3), capacities_keyed([1]), None, random_behv=0, seed=0)

    assert all(profile.availability is None for profile in profiles.values())


def test_one_draws_a_seeded_random_trace_per_client() -> None:
    behaviors = {key: session_of(float(key)) for key in range(1, 5)}
    clients = list(range(400))

    first = assign_traces(clients, capacities_keyed([1]), behaviors, random_behv=1, seed=7)
    reordered = assign_traces(reversed(clients), capacities_keyed([1]), behaviors, random_behv=1, seed=7)
    other_seed = assign_traces(clients, capacities_keyed([1]), behaviors, random_behv=1, seed=8)

    usage = Counter(profile.availability.duration for profile in first.values())
    assert first == reordered
    assert first != other_seed
    assert set(usage) == {1.0, 2.0, 3.0, 4.0}
    assert min(usage.values()) > 60


def test_two_draws_from_the_least_available_tenth() -> None:
    # Online fraction of trace k is k / 100: traces 1 and 2 are the least available 10% of 20.
    behaviors = {key: session_of(float(key)) for key in range(20, 0, -1)}

    profiles = assign_traces(range(200), capacities_keyed([1]), behaviors, random_behv=2, seed=3)

    usage = Counter(profile.availability.duration for profile in profiles.values())
    assert set(usage) == {1.0, 2.0}


def test_two_with_fewer_than_ten_traces_takes_the_least_available_one() -> None:
    behaviors = {1: session_of(50.0), 2: session_of(5.0), 3: session_of(90.0)}

    profiles = assign_traces(range(10), capacities_keyed([1]), behaviors, random_behv=2, seed=3)

    assert {profile.availability for profile in profiles.values()} == {behaviors[2]}


def test_scale_sys_scales_the_fastest_clients_as_halor_counts_them() -> None:
    capacities = capacities_with_compute([50, 10, 90, 30, 20, 100, 60, 70, 80, 40])

    profiles = assign_traces(range(10), capacities, None, random_behv=-1, seed=0, scale_sys=2.0,
                             scale_sys_percent=0.2)

    # floor(10 × 0.2) + 1 = 3 clients: the three with the lowest ms per sample (10, 20, 30).
    assert assigned_compute(profiles) == {0: 50, 1: 20, 2: 90, 3: 60, 4: 40, 5: 100, 6: 60, 7: 70, 8: 80, 9: 40}
    assert profiles[1].capacity.bandwidth_kbps == 500.0
    assert profiles[9].capacity.bandwidth_kbps == 1000.0


def test_scale_sys_ranks_by_the_given_round_time() -> None:
    capacities = {key: DeviceCapacity(10.0, 100.0 * key) for key in (1, 2, 3, 4)}

    profiles = assign_traces([1, 2, 3, 4], capacities, None, random_behv=-1, seed=0, scale_sys=0.5,
                             scale_sys_percent=0.25, round_time=lambda capacity: 1e6 / capacity.bandwidth_kbps)

    scaled = {client for client, profile in profiles.items() if profile.capacity.compute_ms_per_sample == 5.0}
    assert scaled == {3, 4}
    assert profiles[4].capacity.bandwidth_kbps == 800.0


@pytest.mark.parametrize(("percent", "expected_scaled"), [(0.0, 0), (0.05, 1), (1.0, 10)])
def test_scale_sys_percent_bounds(percent: float, expected_scaled: int) -> None:
    capacities = capacities_with_compute([float(ms) for ms in range(1, 11)])

    profiles = assign_traces(range(10), capacities, None, random_behv=-1, seed=0, scale_sys=3.0,
                             scale_sys_percent=percent)

    scaled = [client for client, profile in profiles.items() if profile.capacity.compute_ms_per_sample != client + 1]
    assert len(scaled) == expected_scaled


@pytest.mark.parametrize(("options", "names"), [
    ({"random_behv": 3}, "random_behv"),
    ({"random_behv": True}, "random_behv"),
    ({"random_behv": -1, "scale_sys_percent": 1.5}, "scale_sys_percent"),
    ({"random_behv": -1, "scale_sys_percent": 0.1, "scale_sys": 0.0}, "scale_sys"),
])
def test_bad_options_are_refused(options: dict, names: str) -> None:
    with pytest.raises(ValueError, match=names):
        assign_traces([1], capacities_keyed([1]), None, seed=0, **options)


def test_empty_traces_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        assign_traces([1], {}, None, random_behv=-1, seed=0)
    with pytest.raises(ValueError, match="behaviour"):
        assign_traces([1], capacities_keyed([1]), {}, random_behv=1, seed=0)
