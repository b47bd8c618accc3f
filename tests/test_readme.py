"""The README's commands stay true: the quick start is exactly two commands, and CI runs the second."""

import dataclasses
import re
from pathlib import Path

from fedscale_halor.config.schema import DeploymentConfig, JobConfig
from fedscale_halor.launch.plugins import settings_sections

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _code_blocks(section: str) -> list[str]:
    body = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", body, flags=re.S)


def test_quick_start_is_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    (block,) = _code_blocks("Quick start")
    commands = [line for line in block.splitlines() if line.strip()]

    assert commands == ["bash run_exps.sh digits", "bash run_tests.sh"]
    assert "bash run_tests.sh" in (ROOT / ".ci" / "run").read_text()


def test_every_script_and_file_the_readme_names_exists() -> None:
    for script in set(re.findall(r"bash ([\w./-]+\.sh)", README)):
        assert (ROOT / script).is_file(), script
    for config in set(re.findall(r"(benchmark/configs/\w+/conf\.yml)", README)):
        assert (ROOT / config).is_file(), config
    for link in set(re.findall(r"\]\(([\w./-]+)\)", README)):
        assert (ROOT / link).exists(), link


def test_every_key_the_readme_overrides_is_a_config_key() -> None:
    plugin_keys = {field.name for section in settings_sections(()) for field in dataclasses.fields(section)}
    known = set(JobConfig.__dataclass_fields__) | set(DeploymentConfig.__dataclass_fields__) | plugin_keys
    for key in re.findall(r"--set (\w+)=", README):
        assert key in known, key
