"""Synthetic device-capacity and availability traces with realistic spreads, in FedScale's layout.

For tests and the embedded job, which have no real trace files. Keys run 1..num_clients, 1-based like FedScale's
files. Every draw comes from a NumPy Generator seeded by ``(seed, purpose)`` (``fedscale_halor.seeding``), so the
same seed gives the same traces, and the capacity and behaviour files are not correlated through a shared stream.

Device capacity (independent per device, as FedScale joins two independent sources):

- compute, ms per sample: log-normal, median ``COMPUTE_MEDIAN_MS`` = 120, ln-sigma ``COMPUTE_SIGMA`` = 0.8, clipped
  to [5, 5000]. The 5th-95th percentile ratio is exp(2 · 1.645 · 0.8) ≈ 14 and the 1st-99th ≈ 41: one to two
  orders of magnitude between slow and fast phones, the spread of FedScale's AI-Benchmark-derived figures.
- bandwidth, kbps: log-normal, median ``BANDWIDTH_MEDIAN_KBPS`` = 5000, ln-sigma ``BANDWIDTH_SIGMA`` = 1.0, clipped
  to [64, 500 000]. The 5th-95th percentiles are ≈ 960 and ≈ 26 000 kbps, a MobiPerf-like mix of poor cellular and
  good Wi-Fi links.

Availability (one period of ``horizon_s`` seconds, default six days like FedScale's traces, repeated by the clock):

- each device alternates online and offline sessions; both lengths are log-normal (heavy right tail), ln-sigma
  ``SESSION_SIGMA`` = 1.0, at least ``MIN_SESSION_S`` = 60 s;
- per device medians: online ``ONLINE_MEDIAN_S`` = 2 h and offline ``OFFLINE_MEDIAN_S`` = 4 h, each multiplied by
  its own exp(``DEVICE_SIGMA`` · N(0, 1)), ``DEVICE_SIGMA`` = 0.7, so some devices are rarely online and some
  mostly. The typical device is online a third of the time; across devices the 10th and 90th percentiles of the
  online fraction are about 0.1 and 0.67 (FedScale's sample device: 0.41, eight sessions in six days);
- the trace starts in the middle of each device's life, not at a common wake-up: with probability online median /
  (online + offline median) the device is online at time 0, for a uniform share of a drawn session; otherwise its
  first session starts at a random point of a first offline gap, no later than ``horizon_s - 60``, so every
  device has at least one session; the last session is cut at ``horizon_s``; times are whole seconds;
- ``duration`` is the total online time, as in FedScale's files.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fedscale_halor.seeding import numpy_rng
from fedscale_halor.simulation.traces import (
    Availability,
    DeviceCapacity,
    availability_to_fedscale,
    capacity_to_fedscale,
)

COMPUTE_MEDIAN_MS = 120.0
COMPUTE_SIGMA = 0.8
COMPUTE_RANGE_MS = (5.0, 5000.0)
BANDWIDTH_MEDIAN_KBPS = 5000.0
BANDWIDTH_SIGMA = 1.0
BANDWIDTH_RANGE_KBPS = (64.0, 500_000.0)

FEDSCALE_TRACE_PERIOD_S = 6 * 24 * 3600.0
ONLINE_MEDIAN_S = 2 * 3600.0
OFFLINE_MEDIAN_S = 4 * 3600.0
SESSION_SIGMA = 1.0
DEVICE_SIGMA = 0.7
MIN_SESSION_S = 60.0

CAPACITY_FILE = "client_device_capacity"
BEHAVIOR_FILE = "client_behave_trace"
TRACE_FORMATS = ("pickle", "json")
SYNTHETIC_MODEL = "synthetic"


def _check_count(num_clients: int) -> None:
    if num_clients < 1:
        raise ValueError(f"num_clients must be at least 1, got {num_clients}")


def generate_device_capacity(num_clients: int, seed: int) -> dict[int, DeviceCapacity]:
    """Compute speed and bandwidth for devices 1..num_clients (distributions in the module docstring)."""
    _check_count(num_clients)
    rng = numpy_rng(seed, 0, "synthetic device capacity")
    compute = np.clip(rng.lognormal(math.log(COMPUTE_MEDIAN_MS), COMPUTE_SIGMA, num_clients), *COMPUTE_RANGE_MS)
    bandwidth = np.clip(rng.lognormal(math.log(BANDWIDTH_MEDIAN_KBPS), BANDWIDTH_SIGMA, num_clients),
                        *BANDWIDTH_RANGE_KBPS)
    # Rounded like the published figures: whole ms per sample, kbps to three decimals.
    return {key: DeviceCapacity(float(np.round(ms)), float(np.round(kbps, 3)))
            for key, ms, kbps in zip(range(1, num_clients + 1), compute, bandwidth, strict=True)}


def _device_sessions(rng: np.random.Generator, online_median_s: float, offline_median_s: float,
                     horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
    first_gap = float(rng.lognormal(math.log(offline_median_s), SESSION_SIGMA))
    start = rng.uniform() * min(first_gap, horizon_s - MIN_SESSION_S)
    expected_cycles = horizon_s / (online_median_s + offline_median_s)
    batch = int(2 * expected_cycles) + 4
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    if rng.uniform() < online_median_s / (online_median_s + offline_median_s):
        # online when the trace starts: the rest of a session, then a gap (a stationary start, no common wake-up)
        session = max(MIN_SESSION_S, rng.uniform() * float(rng.lognormal(math.log(online_median_s), SESSION_SIGMA)))
        first_end = min(session, horizon_s)
        starts.append(np.array([0.0]))
        ends.append(np.array([first_end]))
        start = first_end + max(MIN_SESSION_S, first_gap)
    while start < horizon_s - MIN_SESSION_S:
        online = np.maximum(rng.lognormal(math.log(online_median_s), SESSION_SIGMA, batch), MIN_SESSION_S)
        offline = np.maximum(rng.lognormal(math.log(offline_median_s), SESSION_SIGMA, batch), MIN_SESSION_S)
        batch_starts = start + np.concatenate(([0.0], np.cumsum(online + offline)[:-1]))
        keep = batch_starts < horizon_s - MIN_SESSION_S
        starts.append(batch_starts[keep])
        ends.append(np.minimum(batch_starts[keep] + online[keep], horizon_s))
        start = float(batch_starts[-1] + online[-1] + offline[-1])
    # Whole seconds; gaps of at least MIN_SESSION_S keep rounded sessions in order.
    return np.round(np.concatenate(starts)), np.round(np.concatenate(ends))


def generate_behavior_trace(num_clients: int, seed: int,
                            horizon_s: float = FEDSCALE_TRACE_PERIOD_S) -> dict[int, Availability]:
    """Online/offline sessions for devices 1..num_clients over a period of ``horizon_s`` seconds."""
    _check_count(num_clients)
    if not math.isfinite(horizon_s) or horizon_s < 2 * MIN_SESSION_S:
        raise ValueError(f"horizon_s must be finite and at least {2 * MIN_SESSION_S:g} s, got {horizon_s}")
    rng = numpy_rng(seed, 0, "synthetic availability")
    online_medians = ONLINE_MEDIAN_S * np.exp(DEVICE_SIGMA * rng.standard_normal(num_clients))
    offline_medians = OFFLINE_MEDIAN_S * np.exp(DEVICE_SIGMA * rng.standard_normal(num_clients))
    traces: dict[int, Availability] = {}
    for key, online_median, offline_median in zip(range(1, num_clients + 1), online_medians, offline_medians,
                                                  strict=True):
        active, inactive = _device_sessions(rng, float(online_median), float(offline_median), float(horizon_s))
        traces[key] = Availability(active=tuple(active.tolist()), inactive=tuple(inactive.tolist()),
                                   duration=float(np.sum(inactive - active)), finish_time=float(horizon_s))
    return traces


def _write_atomically(path: Path, payload: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_traces(folder: Path | str, capacities: Mapping[int, DeviceCapacity],
                 behaviors: Mapping[int, Availability], *,
                 formats: Sequence[str] = ("pickle",)) -> tuple[Path, ...]:
    """Write both traces as plain dicts in FedScale's layout; returns the paths written.

    Pickle files carry FedScale's names (``client_device_capacity``, ``client_behave_trace``); JSON files the same
    names with ``.json``, their keys as decimal strings.
    """
    unknown = sorted(set(formats) - set(TRACE_FORMATS))
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty selection of {TRACE_FORMATS}, got {tuple(formats)}")
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    layouts = {
        CAPACITY_FILE: {int(key): capacity_to_fedscale(value) for key, value in capacities.items()},
        BEHAVIOR_FILE: {int(key): availability_to_fedscale(value, SYNTHETIC_MODEL) for key, value in behaviors.items()},
    }
    written: list[Path] = []
    for name, layout in layouts.items():
        if "pickle" in formats:
            written.append(target / name)
            _write_atomically(written[-1], pickle.dumps(layout, protocol=4))
        if "json" in formats:
            written.append(target / f"{name}.json")
            _write_atomically(written[-1], json.dumps({str(key): value for key, value in layout.items()}).encode())
    return tuple(written)
