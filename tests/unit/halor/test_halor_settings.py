"""What Halor a job runs: halor: True with its own keys, or data_regulation: 1 with Halor's choices."""

import pytest

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.halor.settings import halor_choices
from fedscale_halor.launch.jobfile import job_with


def test_no_halor_unless_a_key_turns_it_on() -> None:
    assert halor_choices(job_with()) is None


def test_halor_true_keeps_the_window_and_its_own_rule() -> None:
    choices = halor_choices(job_with(halor=True, halor_resample="over", filter_less=11, halor_history=3))

    assert choices is not None
    assert (choices.distribution, choices.resample, choices.history) == ("window", "over", 3)
    assert choices.guard_floor == 11  # the guard is Halor's, whichever key turned Halor on
    assert choices.switched_on_by == "halor: True"


def test_data_regulation_turns_on_the_exact_distribution_under_and_the_guard() -> None:
    choices = halor_choices(job_with(data_regulation=1, filter_less=17, halor_group_size=50))

    assert choices is not None
    assert (choices.distribution, choices.resample, choices.guard_floor) == ("all", "under", 17)
    assert choices.group_size == 50
    assert choices.switched_on_by == "data_regulation: 1"
    assert choices.summary() == ("exact distribution over all clients, in groups of 50; under resampling; "
                                 "guard at filter_less=17")


def test_data_regulation_keeps_a_distribution_the_file_names() -> None:
    choices = halor_choices(job_with(data_regulation=1, halor_distribution="window"))

    assert choices is not None and choices.distribution == "window"


def test_a_negative_used_samples_turns_the_guard_off_as_in_halor() -> None:
    choices = halor_choices(job_with(data_regulation=1, filter_less=17, used_samples=-1))

    assert choices is not None and choices.guard_floor == 0


@pytest.mark.parametrize("mode", ["over", "off"])
def test_data_regulation_with_another_rule_is_refused(mode: str) -> None:
    with pytest.raises(ConfigError, match=f"data_regulation 1 is Halor's own data regulation, whose rule is under; "
                                          f"halor_resample {mode}"):
        halor_choices(job_with(data_regulation=1, halor_resample=mode))
