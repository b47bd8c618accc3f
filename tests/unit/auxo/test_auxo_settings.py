from __future__ import annotations

import pytest

from fedscale_halor.auxo.settings import AuxoSettings
from fedscale_halor.auxo.shares import cohort_participants, known_client_count, train_ratio


def test_defaults_are_auxos_published_config() -> None:
    # Execute
    settings = AuxoSettings()
    # Assert: Auxo's published config, register_gradient's grad_ratio, QTable's base_reward, the 5-client guard
    assert settings.split_round == (50, 100)
    assert (settings.exploredecay, settings.explorerate) == (0.99, 0.01)
    assert (settings.metric, settings.start_round) == ("cosine", 0)
    assert (settings.grad_ratio, settings.base_reward, settings.min_clients) == (2, 5.0, 5)


def test_split_round_from_a_yaml_list_becomes_a_tuple() -> None:
    assert AuxoSettings(split_round=[3, 7]).split_round == (3, 7)  # type: ignore[arg-type]


def test_signal_rounds_from_a_yaml_list_becomes_a_tuple_and_is_empty_by_default() -> None:
    assert AuxoSettings(signal_rounds=[5, 1]).signal_rounds == (5, 1)  # type: ignore[arg-type]
    assert AuxoSettings().signal_rounds == ()


@pytest.mark.parametrize(("key", "value"), [
    ("split_round", ()),
    ("split_round", (0,)),
    ("split_round", (5, 3)),
    ("split_round", (2, 2)),
    ("exploredecay", 0.0),
    ("exploredecay", 1.5),
    ("explorerate", -0.1),
    ("start_round", -1),
    ("grad_ratio", 0),
    ("base_reward", 0.0),
    ("min_clients", 3),
    ("signal_rounds", (0,)),
    ("signal_rounds", (True,)),
])
def test_a_bad_value_is_refused_naming_its_key(key: str, value: object) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match=key):
        AuxoSettings(**{key: value})  # type: ignore[arg-type]


def test_the_kl_metric_is_refused_as_unsupported() -> None:
    with pytest.raises(ValueError, match=r"metric 'kl' is not supported"):
        AuxoSettings(metric="kl")


def test_clustering_skips_the_first_round_and_rounds_before_start_round() -> None:
    # Prepare
    settings = AuxoSettings(start_round=4)
    # Execute / Assert
    assert [settings.clustering_due(r) for r in range(1, 6)] == [False, False, False, True, True]
    assert not AuxoSettings().clustering_due(1)
    assert AuxoSettings().clustering_due(2)


def test_each_cohort_gets_an_equal_share_of_at_least_one() -> None:
    assert cohort_participants(20, 1) == 20
    assert cohort_participants(20, 3) == 6
    assert cohort_participants(2, 4) == 1
    with pytest.raises(ValueError, match="cohort_count"):
        cohort_participants(20, 0)


def test_job_wide_numbers_follow_getdatainfo() -> None:
    assert known_client_count(1000) == 50
    assert known_client_count(39) == 1
    assert train_ratio(10, 40) == 0.25
