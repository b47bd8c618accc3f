"""A plug-in's job-file keys: declared by its own frozen settings class, validated by that schema, kept apart from
the core's keys. These tests hand the loader fake settings classes, as launch/ hands it the real ones."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedscale_halor.config import ConfigError, config_to_dict
from fedscale_halor.config.loader import config_from_mapping, load_config, with_overrides
from fedscale_halor.settings import PluginSettings, knob


@dataclass(frozen=True)
class BufferSettings:
    buffer_size: int = knob(4, "updates folded at once", range=(1, None))
    buffer_policy: str = knob("fifo", "which updates leave first", choices=("fifo", "lifo"))


@dataclass(frozen=True)
class NoiseSettings:
    noise_scale: float = knob(0.5, "noise standard deviation", range=(0.0, None))


@dataclass(frozen=True)
class ClashingSettings:
    rounds: int = knob(3, "a key the core already owns")


@dataclass(frozen=True)
class BufferImpliedByEndpoint:
    buffer_size: int = knob(4, "updates folded at once", range=(1, None))

    @staticmethod
    def implied_by(deployment: object) -> dict[str, object]:
        return {"buffer_size": 9} if getattr(deployment, "ps_port", None) == 30000 else {}


SECTIONS = (BufferSettings, NoiseSettings)


def test_plugin_keys_are_typed_and_carried_per_section() -> None:
    # Prepare
    data = {"job_conf": [{"rounds": 5}, {"buffer_size": "8"}, {"noise_scale": 0.25}]}

    # Execute
    job = config_from_mapping(data, Path("conf.yml"), sections=SECTIONS, environ={}).job

    # Assert
    assert job.rounds == 5
    assert job.plugin_settings.get(BufferSettings) == BufferSettings(buffer_size=8, buffer_policy="fifo")
    assert job.plugin_settings.get(NoiseSettings) == NoiseSettings(noise_scale=0.25)
    assert (job.value_of("buffer_size"), job.value_of("noise_scale"), job.value_of("rounds")) == (8, 0.25, 5)


def test_plugin_key_out_of_its_range_names_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"conf\.yml: job_conf\.buffer_size: expected an integer >= 1, got 0"):
        config_from_mapping({"job_conf": [{"buffer_size": 0}]}, Path("conf.yml"), sections=SECTIONS, environ={})


def test_plugin_key_outside_its_choices_lists_them() -> None:
    with pytest.raises(ConfigError, match=r"job_conf\.buffer_policy: .*fifo.*lifo"):
        config_from_mapping({"job_conf": [{"buffer_policy": "random"}]}, Path("conf.yml"), sections=SECTIONS,
                            environ={})


def test_plugin_key_is_unknown_when_its_plugin_is_not_given() -> None:
    with pytest.raises(ConfigError, match=r"conf\.yml: job_conf\.buffer_size: unknown key"):
        config_from_mapping({"job_conf": [{"buffer_size": 8}]}, Path("conf.yml"), environ={})


def test_misspelt_plugin_key_is_answered_with_the_plugin_key() -> None:
    with pytest.raises(ConfigError, match=r"buffer_sise.*did you mean 'buffer_size'"):
        config_from_mapping({"job_conf": [{"buffer_sise": 8}]}, Path("conf.yml"), sections=SECTIONS, environ={})


def test_a_plugin_may_not_declare_a_core_key() -> None:
    with pytest.raises(ConfigError, match=r"ClashingSettings declare the key 'rounds', which the core already"):
        config_from_mapping({"job_conf": []}, None, sections=(ClashingSettings,), environ={})


def test_two_plugins_may_not_declare_one_key() -> None:
    with pytest.raises(ConfigError, match=r"BufferImpliedByEndpoint declare the key 'buffer_size', which "
                                          r"BufferSettings already declares"):
        config_from_mapping({"job_conf": []}, None, sections=(BufferSettings, BufferImpliedByEndpoint), environ={})


def test_override_sets_a_plugin_key_and_keeps_the_others_of_its_section() -> None:
    # Prepare
    cfg = config_from_mapping({"job_conf": [{"buffer_policy": "lifo"}]}, None, sections=SECTIONS, environ={})

    # Execute
    updated = with_overrides(cfg, {"job_conf.buffer_size": "6"}, sections=SECTIONS, environ={})

    # Assert
    assert updated.job.plugin_settings.get(BufferSettings) == BufferSettings(buffer_size=6, buffer_policy="lifo")
    with pytest.raises(ConfigError, match=r"override job_conf\.buffer_size: expected an integer >= 1, got -2"):
        with_overrides(cfg, {"buffer_size": -2}, sections=SECTIONS, environ={})


def test_sections_may_depend_on_the_files_plugins_key(tmp_path: Path) -> None:
    # Prepare: the loader asks for the sections of the plug-ins the file names, as launch/ looks factories up
    asked: list[tuple[str, ...]] = []

    def sections_of(plugins: tuple[str, ...]) -> tuple[type, ...]:
        asked.append(plugins)
        return (NoiseSettings,) if "noise:Factory" in plugins else ()

    path = tmp_path / "conf.yml"
    path.write_text("job_conf:\n  - plugins: ['noise:Factory']\n  - noise_scale: 2.0\n", encoding="utf-8")

    # Execute
    job = load_config(path, sections=sections_of, environ={}).job

    # Assert
    assert asked == [("noise:Factory",)]
    assert job.plugin_settings.get(NoiseSettings).noise_scale == 2.0


def test_a_section_sets_keys_implied_by_the_deployment_unless_the_file_sets_them() -> None:
    implied = config_from_mapping({"ps_port": 30000, "job_conf": []}, None, sections=(BufferImpliedByEndpoint,),
                                  environ={}).job
    explicit = config_from_mapping({"ps_port": 30000, "job_conf": [{"buffer_size": 2}]}, None,
                                   sections=(BufferImpliedByEndpoint,), environ={}).job
    assert implied.value_of("buffer_size") == 9
    assert explicit.value_of("buffer_size") == 2


def test_plugin_keys_are_written_flat_after_the_core_keys() -> None:
    cfg = config_from_mapping({"job_conf": [{"noise_scale": 1.5}]}, None, sections=SECTIONS, environ={})
    keys = [next(iter(entry)) for entry in config_to_dict(cfg)["job_conf"]]
    assert keys[-3:] == ["buffer_size", "buffer_policy", "noise_scale"]
    assert {"noise_scale": 1.5} in config_to_dict(cfg)["job_conf"]


def test_plugin_settings_give_defaults_for_an_absent_section_and_refuse_mutable_ones() -> None:
    settings = PluginSettings((NoiseSettings(noise_scale=3.0),))
    assert settings.get(BufferSettings) == BufferSettings()
    assert settings.replaced(NoiseSettings(noise_scale=1.0)).get(NoiseSettings).noise_scale == 1.0
    assert list(settings.values()) == [("noise_scale", 3.0)]

    @dataclass
    class Mutable:
        value: int = 1

    with pytest.raises(TypeError, match="frozen dataclass"):
        PluginSettings((Mutable(),))
    with pytest.raises(TypeError, match="one instance per class"):
        PluginSettings((NoiseSettings(), NoiseSettings()))


def test_config_package_imports_no_feature_package() -> None:
    # The config layer validates plug-in keys by schema alone; only launch/ knows which features exist.
    config_dir = Path(__file__).resolve().parents[3] / "fedscale_halor" / "config"
    allowed = ("fedscale_halor.config", "fedscale_halor.settings")
    imported: dict[str, str] = {}
    for module in sorted(config_dir.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                if name.startswith("fedscale_halor") and not name.startswith(allowed):
                    imported[f"{module.name}: {name}"] = name
    assert imported == {}
