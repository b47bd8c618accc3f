"""A scripted run of Oort's training selector whose every choice is kept in a fixture, so that any rewrite of the
selector can be held to choosing exactly the same clients, round for round.

The scenario covers what the choices depend on: rewards and durations with many ties and some zeros, a varying
feasible subset (sometimes with unregistered ids, sometimes none given), feedback with failed clients, duration
updates, clients registered after the first rounds, the pacer moving (``pacer_step`` 5), a blacklist with a
non-default straggler exponent and clip bound, an exploitation cut-off above 1 (which leaves rounds to the random
top-up), and three kinds of client ids: 0..n-1, sparse integers registered out of order, and strings.

Regenerate the fixture only on a deliberate change of Oort's choices:

    .venv/bin/python -m tests.unit.thirdparty.oort_choices_scenario
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Hashable
from pathlib import Path
from typing import Any

import numpy as np
import oort

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "oort_training_choices.json"

CLIENTS = 10_000
LATE_CLIENTS = 500
ROUNDS = 40
COUNT = 100

CONFIGS: dict[str, dict[str, Any]] = {
    "pacer": {"pacer_step": 5, "sample_seed": 11},
    "blacklist": {"pacer_step": 5, "blacklist_rounds": 2, "blacklist_max_len": 0.01, "round_penalty": 1.7,
                  "clip_bound": 0.7, "round_threshold": 20.0, "sample_seed": 12},
    "cut_off": {"pacer_step": 5, "cut_off_util": 1.5, "sample_window": 2.0, "exploration_min": 0.1,
                "round_penalty": 3.0, "sample_seed": 13},
}

# (trace name, config name, id scheme)
TRACES: tuple[tuple[str, str, str], ...] = (
    ("pacer", "pacer", "identity"),
    ("blacklist", "blacklist", "identity"),
    ("cut_off", "cut_off", "identity"),
    ("blacklist_sparse_ids", "blacklist", "sparse"),
    ("pacer_string_ids", "pacer", "string"),
)

# How a round's feasible set is handed over; "scripted" varies the Python collection type round by round.
FeasibleForm = Callable[[list[Hashable], str], Collection[Hashable] | None]


def client_ids(scheme: str, count: int) -> list[Hashable]:
    """Registration order of the scenario's clients: ``count`` ids of the given scheme."""
    if scheme == "identity":
        return list(range(count))
    if scheme == "sparse":
        rng = np.random.default_rng(5)
        return [int(c) for c in rng.choice(10 * count, size=count, replace=False)]
    if scheme == "string":
        return [f"client-{c}" for c in range(count)]
    raise ValueError(f"unknown id scheme {scheme!r}")


def registration(seed: int, count: int) -> tuple[list[float], list[float]]:
    """Rewards (sample counts, many equal, some zero) and durations (half-second steps, ties, some zero)."""
    rng = np.random.default_rng(seed)
    rewards = (rng.integers(0, 40, size=count) * 25).astype(np.float64)
    durations = np.round(rng.lognormal(1.5, 0.8, size=count) * 2) / 2
    durations[rng.random(count) < 0.01] = 0.0
    return rewards.tolist(), durations.tolist()


def scripted_feasible(ids: list[Hashable], kind: str) -> Collection[Hashable] | None:
    return None if kind == "none" else {"list": list, "set": set, "tuple": tuple}[kind](ids)


def numpy_feasible(ids: list[Hashable], kind: str) -> Collection[Hashable] | None:
    """Integer ids as a numpy int64 array (others as scripted): the same set of clients."""
    if kind == "none" or not all(isinstance(c, int) for c in ids):
        return scripted_feasible(ids, kind)
    return np.asarray(ids, dtype=np.int64)


def _round_feasible(rng: np.random.Generator, ids: list[Hashable], registered: int, round_index: int,
                    selector: oort.TrainingSelector, trained: list[Hashable]) -> tuple[list[Hashable], str]:
    """The round's feasible ids and their form: mostly a large random subset (every third round with ids not
    registered yet); some rounds fewer than asked, some mostly clients that trained (left short after
    exploitation, the round is topped up at random), some mostly blacklisted clients (topped up with those)."""
    kinds = ("list", "set", "tuple", "list", "none")
    kind = kinds[round_index % len(kinds)]
    if round_index % 13 == 0:
        return [ids[int(c)] for c in rng.choice(registered, size=COUNT // 2, replace=False)], "list"
    if round_index % 11 == 0:
        veterans = [trained[int(i)] for i in rng.choice(len(trained), size=150, replace=False)]
        return veterans + [ids[int(c)] for c in rng.choice(registered, size=10, replace=False)], "set"
    if round_index % 17 == 0:
        blacklisted = sorted(selector.blacklist, key=repr)
        return blacklisted + [ids[int(c)] for c in rng.choice(registered, size=COUNT // 2, replace=False)], "list"
    share = 0.5 + 0.4 * rng.random()
    rows = np.flatnonzero(rng.random(registered) < share)
    feasible = [ids[int(r)] for r in rng.permutation(rows)]
    if round_index % 3 == 0:
        feasible += ids[registered : registered + 50]  # not registered yet: must be ignored
    return feasible, kind


def _digest(values: dict[Hashable, float]) -> str:
    text = ";".join(f"{client!r}={score.hex()}" for client, score in values.items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _metrics_digest(selector: oort.TrainingSelector) -> str:
    text = ";".join(
        f"{client!r}:{m['reward'].hex()}:{m['duration'].hex()}:{m['time_stamp']}:{m['count']}:{m['status']}"
        for client, m in selector.get_all_metrics().items()
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_trace(config: str, scheme: str, feasible_form: FeasibleForm = scripted_feasible,
              register: Callable[[oort.TrainingSelector, list[Hashable], list[float], list[float]], None]
              | None = None) -> dict[str, Any]:
    """Drive a fresh selector through the scenario; every round's choices as positions in registration order."""
    register = register or register_one_by_one
    selector = oort.create_training_selector(CONFIGS[config])
    ids = client_ids(scheme, CLIENTS + LATE_CLIENTS)
    position = {client: index for index, client in enumerate(ids)}
    rewards, durations = registration(3, CLIENTS + LATE_CLIENTS)
    register(selector, ids[:CLIENTS], rewards[:CLIENTS], durations[:CLIENTS])
    registered = CLIENTS
    rng = np.random.default_rng(17)
    rounds = []
    trained: list[Hashable] = []
    trained_set: set[Hashable] = set()
    for round_index in range(1, ROUNDS + 1):
        if round_index == 20:
            register(selector, ids[CLIENTS:], rewards[CLIENTS:], durations[CLIENTS:])
            registered = len(ids)
        feasible, kind = _round_feasible(rng, ids, registered, round_index, selector, trained)
        picked = selector.select_participant(COUNT, feasible_clients=feasible_form(feasible, kind))
        trained += [client for client in picked if client not in trained_set]
        trained_set.update(picked)
        rounds.append({
            "picked": [position[c] for c in picked],
            "threshold": selector.round_threshold,
            "preferred": selector.preferred_duration,
            "exploration": selector.exploration,
            "blacklist": sorted(position[c] for c in selector.blacklist),
            "scores": _digest(selector.last_scores),
        })
        for client in picked:
            reward = 0.0 if rng.random() < 0.05 else float(np.round(rng.gamma(2.0, 50.0), 2))
            selector.update_client_util(client, {
                "reward": reward,
                "duration": float(np.round(rng.lognormal(1.5, 0.8) * 2) / 2),
                "time_stamp": round_index,
                "status": bool(rng.random() > 0.1),
            })
        for row in rng.choice(registered, size=20, replace=False):
            selector.update_duration(ids[int(row)], float(np.round(rng.lognormal(1.5, 0.8) * 2) / 2))
    return {
        "rounds": rounds,
        "median_reward": selector.get_median_reward(),
        "mean_reward": selector.get_mean_reward(),
        "unexplored": len(selector.unexplored),
        "metrics": _metrics_digest(selector),
    }


def register_one_by_one(selector: oort.TrainingSelector, ids: list[Hashable], rewards: list[float],
                        durations: list[float]) -> None:
    for client, reward, duration in zip(ids, rewards, durations, strict=True):
        selector.register_client(client, {"reward": reward, "duration": duration})


def register_in_bulk(selector: oort.TrainingSelector, ids: list[Hashable], rewards: list[float],
                     durations: list[float]) -> None:
    """The same clients through ``register_clients``, integer ids as a numpy array."""
    columns: Any = np.asarray(ids, dtype=np.int64) if all(isinstance(c, int) for c in ids) else ids
    selector.register_clients(columns, np.asarray(rewards), np.asarray(durations))


def run_all(**options: Any) -> dict[str, Any]:
    return {name: run_trace(config, scheme, **options) for name, config, scheme in TRACES}


def write_fixture() -> None:
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    traces = run_all()
    # One line per round keeps the file small and its diffs readable.
    lines = ["{"]
    for trace_index, (name, trace) in enumerate(traces.items()):
        lines.append(f"{json.dumps(name)}: {{\"rounds\": [")
        rounds = trace["rounds"]
        lines += [json.dumps(r, separators=(",", ":")) + ("," if i < len(rounds) - 1 else "")
                  for i, r in enumerate(rounds)]
        rest = {key: value for key, value in trace.items() if key != "rounds"}
        tail = json.dumps(rest, separators=(",", ":"))[1:-1]
        lines.append(f"], {tail}}}" + ("," if trace_index < len(traces) - 1 else ""))
    lines.append("}")
    FIXTURE.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write_fixture()
