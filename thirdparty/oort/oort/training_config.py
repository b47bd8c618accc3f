"""Oort's training-selector knobs, with FedScale's defaults and their validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class TrainingSelectorConfig:
    """Oort's knobs, with FedScale's defaults."""

    exploration_factor: float = 0.9
    exploration_decay: float = 0.98
    exploration_min: float = 0.3
    # Accepted for compatibility with FedScale's arguments; Oort's scoring does not use it.
    exploration_alpha: float = 0.3
    round_threshold: float = 30.0
    round_penalty: float = 2.0
    pacer_step: int = 20
    pacer_delta: float = 5.0
    blacklist_rounds: int = -1
    blacklist_max_len: float = 0.3
    clip_bound: float = 0.9
    cut_off_util: float = 0.05
    sample_window: float = 5.0
    sample_seed: int = 233

    def __post_init__(self) -> None:
        for name in ("exploration_factor", "exploration_decay", "exploration_min", "blacklist_max_len", "clip_bound"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"oort: {name} must lie in [0, 1], got {value}")
        if self.round_threshold < 0:
            raise ValueError(f"oort: round_threshold is a percentile of durations (>= 0), got {self.round_threshold}")
        if self.pacer_step < 1:
            raise ValueError(f"oort: pacer_step must be at least 1 round, got {self.pacer_step}")
        if self.pacer_delta < 0 or self.round_penalty < 0 or self.cut_off_util < 0:
            raise ValueError("oort: pacer_delta, round_penalty and cut_off_util must not be negative")
        if self.sample_window < 1.0:
            raise ValueError(f"oort: sample_window must be at least 1.0, got {self.sample_window}")
        if self.blacklist_rounds < -1:
            raise ValueError(f"oort: blacklist_rounds is -1 (off) or a count of rounds, got {self.blacklist_rounds}")

    @classmethod
    def from_args(cls, args: object | None) -> TrainingSelectorConfig:
        """Read every knob from an attribute bag (argparse Namespace) or a mapping; missing knobs keep defaults."""
        values: dict[str, Any] = {}
        for knob in fields(cls):
            default = knob.default
            raw = args.get(knob.name, default) if isinstance(args, Mapping) else getattr(args, knob.name, default)
            values[knob.name] = type(default)(raw) if raw is not None else default
        return cls(**values)
