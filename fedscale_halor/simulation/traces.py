"""Device-capacity and availability traces in FedScale's on-disk formats.

``client_device_capacity``: ``{client_key: {"computation": ms per sample, "communication": kbps}}``. The computation
figure is a model's inference latency per sample on the device; the virtual clock triples it for a training step.
Extra keys (later FedScale files add ``dl_kbps`` / ``ul_kbps``) are ignored.

``client_behave_trace``: ``{client_key: {"duration", "active", "inactive", "finish_time", "model"}}``, times in
seconds. ``active[i]`` is when the device becomes available and ``inactive[i]`` when it stops; the pattern repeats
with period ``finish_time`` (FedScale's ``is_active`` takes ``cur_time % finish_time``). ``duration`` is the total
online time in one period (the sum of ``inactive[i] - active[i]`` in FedScale's files); it is kept, not used by the
clock. ``model`` (the phone model) is ignored.

Semantics implemented (stateless, unlike FedScale's ``is_active``, which advances one session per call and so can
lag behind a clock that jumps over several sessions): a client is online at ``t`` when ``t % finish_time`` falls in
some ``[active[i], inactive[i])``. FedScale's test is closed at both ends; the difference is a set of instants.
``active`` may be one longer than ``inactive``: that last session lasts to the end of the period. Sessions that
touch, including the last one of a period and a first one starting at 0, are one continuous stretch online.

Client keys are kept as the file gives them: ints, 1-based in FedScale's files. JSON object keys are strings, so
decimal strings are read as ints. The returned dicts keep the file's order.

Files are read by content: JSON if the first non-blank byte is ``{`` or ``[``, otherwise pickle through an unpickler
that refuses every global, so only builtin containers, numbers and strings load and nothing in a file can run code.
A file that cannot be used raises TraceError, an InputFileError: the command line shows its message, which names the
file, the client at fault where there is one, and the config key whose value it is.
"""

from __future__ import annotations

import bisect
import io
import itertools
import json
import math
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from fedscale_halor.errors import InputFileError

Entry = TypeVar("Entry")

CAPACITY_KEYS = ("computation", "communication")
BEHAVIOR_KEYS = ("duration", "active", "inactive", "finish_time")
_WRITE_ONE = "`fedscale-halor traces <folder>` writes a synthetic one"
CAPACITY_REMEDY = ("device_conf_file must name FedScale's client_device_capacity: a pickle or JSON map from client id "
                   f"to 'computation' and 'communication'; {_WRITE_ONE}")
BEHAVIOR_REMEDY = ("device_avail_file must name FedScale's client_behave_trace: a pickle or JSON map from client id to "
                   f"'duration', 'active', 'inactive' and 'finish_time'; {_WRITE_ONE}")


class TraceError(InputFileError):
    """A trace file that cannot be used; the message names the file and, where one is at fault, the client key."""


def _positive_finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return float(value)


def _finite_times(name: str, values: Any) -> tuple[float, ...]:
    if not isinstance(values, list | tuple):
        raise ValueError(f"{name!r} must be a list of times, got {type(values).__name__}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{name!r} must hold finite numbers, found {value!r}")
    return tuple(float(value) for value in values)


@dataclass(frozen=True)
class DeviceCapacity:
    """One device's speed: a model's inference latency per sample, and its network bandwidth."""

    compute_ms_per_sample: float
    bandwidth_kbps: float

    def __post_init__(self) -> None:
        compute = _positive_finite("compute_ms_per_sample ('computation')", self.compute_ms_per_sample)
        bandwidth = _positive_finite("bandwidth_kbps ('communication')", self.bandwidth_kbps)
        object.__setattr__(self, "compute_ms_per_sample", compute)
        object.__setattr__(self, "bandwidth_kbps", bandwidth)


@dataclass(frozen=True)
class Availability:
    """When a device is online: sessions ``[active[i], inactive[i])`` repeating with period ``finish_time``."""

    active: tuple[float, ...]
    inactive: tuple[float, ...]
    duration: float
    finish_time: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "active", _finite_times("active", self.active))
        object.__setattr__(self, "inactive", _finite_times("inactive", self.inactive))
        period = _positive_finite("'finish_time'", self.finish_time)
        if isinstance(self.duration, bool) or not isinstance(self.duration, int | float):
            raise ValueError(f"'duration' must be a number, got {type(self.duration).__name__}")
        if not math.isfinite(self.duration) or self.duration < 0:
            raise ValueError(f"'duration' must be finite and not negative, got {self.duration}")
        object.__setattr__(self, "duration", float(self.duration))
        object.__setattr__(self, "finish_time", period)
        if not self.active:
            raise ValueError("'active' is empty: a trace needs at least one online session")
        if len(self.active) - len(self.inactive) not in (0, 1):
            raise ValueError(f"'active' has {len(self.active)} times and 'inactive' {len(self.inactive)}: "
                             f"they must be as long, or 'active' one longer (a session open to the period's end)")
        interleaved = [time for pair in zip(self.active, self.inactive, strict=False) for time in pair]
        interleaved += self.active[len(self.inactive):]
        for earlier, later in itertools.pairwise(interleaved):
            if later < earlier:
                raise ValueError(f"'active' and 'inactive' must alternate in time order; {later} comes after "
                                 f"{earlier}")
        if interleaved[0] < 0 or interleaved[-1] > period:
            raise ValueError(f"session times must lie within [0, finish_time={period}], found "
                             f"{interleaved[0]} .. {interleaved[-1]}")

    @cached_property
    def _stretches(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Starts and ends of the online stretches in one period: empty sessions dropped, touching ones merged."""
        ends_given = self.inactive + (float(self.finish_time),) * (len(self.active) - len(self.inactive))
        starts: list[float] = []
        ends: list[float] = []
        for start, end in zip(self.active, ends_given, strict=True):
            if end <= start:
                continue
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        return tuple(starts), tuple(ends)

    @property
    def online_fraction(self) -> float:
        """Share of a period spent online, from the sessions (not from ``duration``)."""
        starts, ends = self._stretches
        return sum(end - start for start, end in zip(starts, ends, strict=True)) / float(self.finish_time)

    def _stretch_at(self, t: float) -> tuple[int, float]:
        if not math.isfinite(t):
            raise ValueError(f"time must be finite, got {t}")
        phase = t % float(self.finish_time)
        starts, ends = self._stretches
        index = bisect.bisect_right(starts, phase) - 1
        if index >= 0 and phase < ends[index]:
            return index, phase
        return -1, phase

    def is_online(self, t: float) -> bool:
        """Whether the device is online at virtual time ``t`` (seconds)."""
        return self._stretch_at(t)[0] >= 0

    def online_until(self, t: float) -> float:
        """Seconds from ``t`` that the device stays online without a break: 0 if offline, ``inf`` if never off."""
        index, phase = self._stretch_at(t)
        if index < 0:
            return 0.0
        starts, ends = self._stretches
        period = float(self.finish_time)
        remaining = ends[index] - phase
        wraps = ends[index] >= period and starts[0] <= 0.0
        if not wraps:
            return remaining
        if len(starts) == 1:
            return math.inf
        # The stretch runs into the next period's first one; merged stretches never wrap twice.
        return remaining + ends[0]


def capacity_to_fedscale(capacity: DeviceCapacity) -> dict[str, float]:
    """The entry of ``client_device_capacity`` for one device."""
    return {"computation": capacity.compute_ms_per_sample, "communication": capacity.bandwidth_kbps}


def availability_to_fedscale(availability: Availability, model: str = "unknown") -> dict[str, Any]:
    """The entry of ``client_behave_trace`` for one device; whole seconds are written as ints, as FedScale does."""
    return {
        "duration": _plain_number(availability.duration),
        "inactive": [_plain_number(time) for time in availability.inactive],
        "finish_time": _plain_number(availability.finish_time),
        "active": [_plain_number(time) for time in availability.active],
        "model": model,
    }


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


class _PlainUnpickler(pickle.Unpickler):
    """Loads builtin containers, numbers and strings only: every global (class, function) is refused."""

    def __init__(self, data: bytes, source: Path, remedy: str) -> None:
        super().__init__(io.BytesIO(data))
        self._source = source
        self._remedy = remedy

    def find_class(self, module: str, name: str) -> Any:
        # Raised before the global is looked up, so nothing the pickle names is imported, let alone called.
        raise TraceError(self._source, f"refused to load the global {module}.{name}: trace files may hold only "
                                       "dicts, lists, numbers and strings", self._remedy)


def load_plain_data(path: Path | str, remedy: str = "") -> Any:
    """The content of a trace file (JSON or restricted pickle, told apart by content); ``remedy`` ends the message
    of a TraceError."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as error:
        raise TraceError(source, f"cannot read the trace file ({error.strerror or error})", remedy) from None
    # A pickle never starts with "{" or "[" (its dict and list opcodes are "}" and "]").
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise TraceError(source, f"not valid JSON ({error})", remedy) from None
    try:
        return _PlainUnpickler(data, source, remedy).load()
    except TraceError:
        raise
    except Exception as error:
        # A damaged pickle surfaces as almost any exception type (EOFError, KeyError from the memo, ...).
        raise TraceError(source, f"neither JSON nor a readable pickle ({type(error).__name__}: {error})",
                         remedy) from None


def _client_key(source: Path, raw_key: object, remedy: str) -> int:
    if isinstance(raw_key, int) and not isinstance(raw_key, bool):
        return raw_key
    if isinstance(raw_key, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", raw_key):
        return int(raw_key)
    raise TraceError(source, f"client key {raw_key!r} is not an integer", remedy)


def _parse_entries(path: Path | str, parse_entry: Callable[[Any], Entry], remedy: str) -> dict[int, Entry]:
    source = Path(path)
    raw = load_plain_data(source, remedy)
    if not isinstance(raw, dict) or not raw:
        found = f"an empty {type(raw).__name__}" if isinstance(raw, dict) else f"a {type(raw).__name__}"
        raise TraceError(source, f"expected a mapping from client id to entry, found {found}", remedy)
    entries: dict[int, Entry] = {}
    for raw_key, value in raw.items():
        key = _client_key(source, raw_key, remedy)
        if key in entries:
            raise TraceError(source, f"client {key} appears twice (key {raw_key!r})", remedy)
        try:
            entries[key] = parse_entry(value)
        except ValueError as error:
            raise TraceError(source, f"client {raw_key!r}: {error}", remedy) from None
    return entries


def _required(value: object, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"the entry must be a mapping, got {type(value).__name__}")
    missing = [key for key in keys if key not in value]
    if missing:
        raise ValueError(f"missing key(s) {', '.join(repr(key) for key in missing)}")
    return value


def _capacity_entry(value: object) -> DeviceCapacity:
    entry = _required(value, CAPACITY_KEYS)
    return DeviceCapacity(compute_ms_per_sample=entry["computation"], bandwidth_kbps=entry["communication"])


def _behavior_entry(value: object) -> Availability:
    entry = _required(value, BEHAVIOR_KEYS)
    return Availability(active=entry["active"], inactive=entry["inactive"], duration=entry["duration"],
                        finish_time=entry["finish_time"])


# `start` reads a trace to check it before it launches anything and again to build the clock; a FedScale-sized
# trace takes seconds to parse, so the parsed entries (frozen values) are kept for a file whose size and mtime
# have not changed
_PARSED: dict[tuple[str, str, int, int], dict[int, Any]] = {}
_PARSED_LIMIT = 4


def _parse_entries_once(path: Path | str, parse_entry: Callable[[Any], Entry], remedy: str) -> dict[int, Entry]:
    source = Path(path)
    try:
        status = source.stat()
    except OSError:
        return _parse_entries(source, parse_entry, remedy)  # its error message comes from the read
    key = (parse_entry.__name__, str(source.resolve()), status.st_size, status.st_mtime_ns)
    if key not in _PARSED:
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = _parse_entries(source, parse_entry, remedy)
    return dict(_PARSED[key])


def read_device_capacity(path: Path | str) -> dict[int, DeviceCapacity]:
    """FedScale's ``client_device_capacity`` (pickle or JSON), every entry checked; raises ``TraceError``."""
    return _parse_entries_once(path, _capacity_entry, CAPACITY_REMEDY)


def read_behavior_trace(path: Path | str) -> dict[int, Availability]:
    """FedScale's ``client_behave_trace`` (pickle or JSON), every entry checked; raises ``TraceError``."""
    return _parse_entries_once(path, _behavior_entry, BEHAVIOR_REMEDY)
