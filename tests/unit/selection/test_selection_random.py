from fedscale_halor.selection.random_selector import RandomSelector


def test_same_seed_and_round_give_the_same_participants() -> None:
    clients = list(range(100))

    first = RandomSelector(233).select(4, clients, 10)
    again = RandomSelector(233).select(4, list(reversed(clients)), 10)

    assert first == again
    assert len(first) == len(set(first)) == 10
    assert set(first) <= set(clients)


def test_rounds_and_seeds_change_the_draw() -> None:
    clients = list(range(100))
    selector = RandomSelector(233)

    draws = {tuple(selector.select(r, clients, 10)) for r in range(1, 6)}
    other_seed = RandomSelector(1).select(1, clients, 10)

    assert len(draws) == 5
    assert tuple(other_seed) != tuple(selector.select(1, clients, 10))


def test_asking_for_more_than_feasible_returns_everyone() -> None:
    assert RandomSelector(0).select(1, [5, 3, 9], 10) == [3, 5, 9]


def test_every_client_is_reached_over_many_rounds() -> None:
    selector = RandomSelector(7)
    seen = {c for r in range(1, 200) for c in selector.select(r, range(50), 5)}
    assert seen == set(range(50))


def test_a_clients_statistical_utility_is_samples_times_root_mean_squared_loss() -> None:
    from fedscale_halor.selection.base import ClientOutcome

    assert ClientOutcome(3, num_samples=100, loss_square_mean=4.0, duration_s=1.0).statistical_utility == 200.0
