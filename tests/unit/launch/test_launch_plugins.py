"""launch/ knows which plug-ins a job runs: their settings classes reach the loader, their exclusions are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedscale_halor.asyncfl.settings import AsyncConfig
from fedscale_halor.auxo.factory import AuxoKeys
from fedscale_halor.config import ConfigError, dump_config
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.halor.settings import HalorConfig
from fedscale_halor.launch.jobfile import job_with, load_config, with_overrides
from fedscale_halor.launch.plugins import job_factories, settings_sections
from fedscale_halor.plugin.examples.median_cap import MedianCapSettings
from fedscale_halor.plugin.factory import PluginFactory, ServerSide
from fedscale_halor.plugin.round import RoundPlugin
from fedscale_halor.server.stale import StaleConfig

MEDIAN_CAP = "fedscale_halor.plugin.examples.median_cap:MedianCapFactory"


class SoloFactory(PluginFactory):
    """A fake feature that refuses to run beside the stale-updates plug-in."""

    name = "solo"
    excludes = ("stale_updates",)

    def round_plugin(self, job: JobConfig, server: ServerSide) -> RoundPlugin | None:
        return None


class QuietFactory(PluginFactory):
    name = "quiet"

    def round_plugin(self, job: JobConfig, server: ServerSide) -> RoundPlugin | None:
        return None


def write_job(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "conf.yml"
    path.write_text("job_conf:\n" + "".join(f"  - {entry}\n" for entry in entries), encoding="utf-8")
    return path


def test_built_in_sections_then_those_of_the_named_factories() -> None:
    assert settings_sections(()) == (HalorConfig, StaleConfig, AsyncConfig, AuxoKeys)
    assert settings_sections((MEDIAN_CAP,)) == (HalorConfig, StaleConfig, AsyncConfig, AuxoKeys, MedianCapSettings)


def test_a_third_party_plugin_key_loads_from_the_file_and_from_an_override(tmp_path: Path) -> None:
    # Prepare
    path = write_job(tmp_path, f"plugins: ['{MEDIAN_CAP}']", "median_cap_timeout: 5")

    # Execute
    cfg = load_config(path, environ={})
    overridden = with_overrides(cfg, {"median_cap_timeout": "2.5"}, environ={})

    # Assert
    assert cfg.job.plugin_settings.get(MedianCapSettings) == MedianCapSettings(median_cap_timeout=5.0)
    assert overridden.job.value_of("median_cap_timeout") == 2.5


def test_a_third_party_plugin_key_is_checked_by_its_range(tmp_path: Path) -> None:
    path = write_job(tmp_path, f"plugins: ['{MEDIAN_CAP}']", "median_cap_timeout: 0.01")
    with pytest.raises(ConfigError, match=rf"{path}: job_conf\.median_cap_timeout: expected a number >= 0\.1"):
        load_config(path, environ={})


def test_a_plugin_key_without_its_plugin_is_an_unknown_key(tmp_path: Path) -> None:
    path = write_job(tmp_path, "median_cap_timeout: 5")
    with pytest.raises(ConfigError, match=rf"{path}: job_conf\.median_cap_timeout: unknown key"):
        load_config(path, environ={})


def test_plugin_keys_survive_the_resolved_config_written_with_a_run(tmp_path: Path) -> None:
    # Prepare
    path = write_job(tmp_path, f"plugins: ['{MEDIAN_CAP}']", "median_cap_timeout: 7", "halor: 1",
                     "halor_resample: over", "stale_update: 2", "stale_factor: 0.5")
    original = load_config(path, environ={})

    # Execute
    reloaded = load_config(dump_config(original, tmp_path / "run" / "config.yml"), environ={})

    # Assert
    assert reloaded.job == original.job
    assert reloaded.job.value_of("median_cap_timeout") == 7.0
    assert reloaded.job.plugin_settings.get(HalorConfig).halor_resample == "over"
    assert reloaded.job.plugin_settings.get(StaleConfig) == StaleConfig(stale_update=2, stale_factor=0.5)


def test_factories_that_exclude_each_other_are_refused_naming_both() -> None:
    # Prepare
    job = job_with(plugins=(f"{__name__}:SoloFactory",), stale_update=1, device_conf_file="device.json")

    # Execute / Assert
    with pytest.raises(ConfigError, match=r"job_conf: solo and stale_update do not run together: the solo plug-in "
                                          r"does not run beside the stale_updates plug-in"):
        job_factories(job)


def test_an_exclusion_of_a_plugin_the_job_does_not_run_is_no_refusal() -> None:
    job = job_with(plugins=(f"{__name__}:SoloFactory", f"{__name__}:QuietFactory"))
    assert [factory.name for factory in job_factories(job)] == ["solo", "quiet"]
