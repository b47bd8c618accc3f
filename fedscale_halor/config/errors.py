"""The one exception type of configuration problems."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config file or override is unusable; the message names the file, the key and what was expected."""


def config_error(source_label: str, key_path: str, message: str) -> ConfigError:
    """An error worded as ``<file>: <key>: <message>`` so every report reads the same way."""
    return ConfigError(f"{source_label}: {key_path}: {message}")
