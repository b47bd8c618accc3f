"""Scripted runs of the selectors behind the ClientSelector seam (Oort's adapter with durations known and unknown,
uniform random, availability priority) over 10,000 clients, whose every choice is kept in a fixture so that faster
code can be held to choosing exactly the same clients.

Feasible sets vary round by round: large random subsets handed over sorted, shuffled or with repeats, some rounds
with fewer clients than asked; the availability scenario also names clients it never registered.

Regenerate the fixture only on a deliberate change of the choices:

    .venv/bin/python -m tests.unit.selection.selector_choices_scenario
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedscale_halor.selection.availability_selector import AvailabilityPrioritySelector
from fedscale_halor.selection.base import ClientInfo, ClientOutcome, ClientSelector
from fedscale_halor.selection.oort_selector import OortSelector, OortSettings
from fedscale_halor.selection.random_selector import RandomSelector

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "selector_choices.json"

CLIENTS = 10_000
ROUNDS = 30
COUNT = 100

# How a round's feasible ids are handed over: "scripted" as lists in the order the scenario makes them.
FeasibleForm = Callable[[list[int]], "Sequence[int] | np.ndarray"]


def scripted_feasible(ids: list[int]) -> Sequence[int] | np.ndarray:
    return ids


def numpy_feasible(ids: list[int]) -> Sequence[int] | np.ndarray:
    return np.asarray(ids, dtype=np.int64)


def client_infos(seed: int, durations_known: bool, count: int = CLIENTS) -> dict[int, ClientInfo]:
    """Sample counts with ties (some above one round's work), durations in half seconds, online fractions in
    tenths (many ties)."""
    rng = np.random.default_rng(seed)
    samples = rng.integers(1, 400, size=count)
    durations = np.round(rng.lognormal(1.5, 0.8, size=count) * 2) / 2 if durations_known else np.zeros(count)
    online = np.round(rng.random(count), 1)
    return {
        client: ClientInfo(num_samples=int(samples[client]), expected_duration_s=float(durations[client]),
                           online_fraction=float(online[client]))
        for client in range(count)
    }


def register_mapping(selector: ClientSelector, infos: dict[int, ClientInfo]) -> None:
    selector.register(infos)


def register_columns(selector: ClientSelector, infos: dict[int, ClientInfo]) -> None:
    """The same clients through ``register_columns``, in reverse id order (registration must not depend on it)."""
    ids = np.asarray(list(infos), dtype=np.int64)[::-1]
    selector.register_columns(
        ids,
        np.asarray([infos[c].num_samples for c in ids.tolist()], dtype=np.int64),
        np.asarray([infos[c].expected_duration_s for c in ids.tolist()]),
        np.asarray([infos[c].online_fraction for c in ids.tolist()]),
    )


def round_feasible(rng: np.random.Generator, round_index: int, registered: int = CLIENTS,
                   unregistered: int = 0) -> list[int]:
    """A large random subset, sorted, shuffled or with repeats by round; every ninth round fewer than asked."""
    if round_index % 9 == 0:
        return sorted(int(c) for c in rng.choice(registered, size=COUNT - 10, replace=False))
    rows = np.flatnonzero(rng.random(registered + unregistered) < 0.5 + 0.4 * rng.random())
    form = round_index % 3
    if form == 0:
        return rows.tolist()
    if form == 1:
        return rng.permutation(rows).tolist()
    repeated = np.concatenate([rows, rng.choice(rows, size=len(rows) // 10)])
    return rng.permutation(repeated).tolist()


def _outcomes(rng: np.random.Generator, picked: list[int], durations_known: bool) -> list[ClientOutcome]:
    return [
        ClientOutcome(
            client_id=client,
            num_samples=int(rng.integers(1, 200)),
            loss_square_mean=float(np.round(rng.gamma(2.0, 0.5), 3)),
            duration_s=float(np.round(rng.lognormal(1.5, 0.8) * 2) / 2) if durations_known else float(rng.random()),
            completed=bool(rng.random() > 0.15),
        )
        for client in picked
    ]


def run_oort(durations_known: bool, feasible_form: FeasibleForm = scripted_feasible,
             register: Callable[[ClientSelector, dict[int, ClientInfo]], None] = register_mapping) -> list[list[int]]:
    selector = OortSelector(OortSettings(seed=21, pacer_step=5, local_steps=10, batch_size=20))
    register(selector, client_infos(4, durations_known))
    rng = np.random.default_rng(31)
    rounds = []
    for round_index in range(1, ROUNDS + 1):
        picked = selector.select(round_index, feasible_form(round_feasible(rng, round_index)), COUNT)
        selector.feedback(round_index, _outcomes(rng, picked, durations_known))
        rounds.append(picked)
    return rounds


def run_random(feasible_form: FeasibleForm = scripted_feasible) -> list[list[int]]:
    selector = RandomSelector(41)
    rng = np.random.default_rng(51)
    return [selector.select(r, feasible_form(round_feasible(rng, r)), COUNT) for r in range(1, ROUNDS + 1)]


def run_availability(feasible_form: FeasibleForm = scripted_feasible,
                     register: Callable[[ClientSelector, dict[int, ClientInfo]], None] = register_mapping
                     ) -> list[list[int]]:
    selector = AvailabilityPrioritySelector(61)
    register(selector, client_infos(6, durations_known=False))
    rng = np.random.default_rng(71)
    # Clients beyond the registered ones are feasible too: they count as always online.
    return [selector.select(r, feasible_form(round_feasible(rng, r, unregistered=500)), COUNT)
            for r in range(1, ROUNDS + 1)]


def run_all(**options: Any) -> dict[str, list[list[int]]]:
    register = options.pop("register", register_mapping)
    return {
        "oort_durations_known": run_oort(True, register=register, **options),
        "oort_durations_unknown": run_oort(False, register=register, **options),
        "random": run_random(**options),
        "availability": run_availability(register=register, **options),
    }


def write_fixture() -> None:
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    traces = run_all()
    lines = ["{"]
    for index, (name, rounds) in enumerate(traces.items()):
        body = ",\n".join(json.dumps(r, separators=(",", ":")) for r in rounds)
        lines.append(f"{json.dumps(name)}: [\n{body}\n]" + ("," if index < len(traces) - 1 else ""))
    lines.append("}")
    FIXTURE.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write_fixture()
