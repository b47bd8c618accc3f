"""docs/configuration.md is the rendered schema reference and lists every key."""

from __future__ import annotations

from fedscale_halor.config.known_keys import RECOGNIZED_UNSUPPORTED_KEYS
from fedscale_halor.config.reference import REGENERATE_COMMAND
from fedscale_halor.config.schema import AuthConfig, DeploymentConfig, JobConfig
from fedscale_halor.config.validation import field_specs
from fedscale_halor.config.variables import repository_root
from fedscale_halor.launch.config_reference import built_in_reference
from fedscale_halor.launch.plugins import settings_sections


def test_committed_reference_is_up_to_date() -> None:
    # Prepare
    committed = (repository_root() / "docs" / "configuration.md").read_text(encoding="utf-8")

    # Execute
    rendered = built_in_reference()

    # Assert
    assert committed == rendered, f"docs/configuration.md is stale; regenerate it with: {REGENERATE_COMMAND}"


def test_reference_documents_every_key_with_type_default_and_meaning() -> None:
    # Execute
    text = built_in_reference()

    # Assert
    classes = (("", DeploymentConfig), ("auth.", AuthConfig), ("", JobConfig),
               *(("", section) for section in settings_sections(())))
    for prefix, config_class in classes:
        for spec in field_specs(config_class).values():
            if spec.kind == "section":
                continue
            rows = [line for line in text.splitlines() if line.startswith(f"| `{prefix}{spec.name}` |")]
            assert len(rows) == 1, spec.name
            assert len(rows[0].split(" | ")) == 5, spec.name
    assert "| `rounds` | integer | `50` | an integer >= 1 | number of federated rounds |" in text


def test_reference_lists_every_recognized_unsupported_key() -> None:
    # Execute
    text = built_in_reference()

    # Assert
    section = text.split("## Keys of other systems without a field here", 1)[1]
    assert all(f"`{key}`" in section for key in RECOGNIZED_UNSUPPORTED_KEYS)
