"""Job configuration: the schema, the FedScale-format loader, validation, serialization and the key reference."""

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.known_keys import RECOGNIZED_UNSUPPORTED_KEYS
from fedscale_halor.config.loader import config_from_mapping, load_config, with_overrides
from fedscale_halor.config.schema import AuthConfig, DeploymentConfig, ExperimentConfig, JobConfig
from fedscale_halor.config.serialize import config_to_dict, dump_config

__all__ = [
    "RECOGNIZED_UNSUPPORTED_KEYS",
    "AuthConfig",
    "ConfigError",
    "DeploymentConfig",
    "ExperimentConfig",
    "JobConfig",
    "config_from_mapping",
    "config_to_dict",
    "dump_config",
    "load_config",
    "with_overrides",
]
