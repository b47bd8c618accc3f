"""One question-and-answer step with the executors about some clients, as a pre-round protocol needs (Halor's).

Each question concerns one client (send its public key, mask its histogram for this seat, reveal this mask). An
undirected question goes to whichever executor asks, in shares like training tasks; a routed one goes only to the
executor named for its client, because the answer needs state that executor holds (the client's masks of the round).
The work board owns an Exchange while it runs and calls it under its lock; the Exchange itself is not thread-safe.
Questions and answers are a plug-in's payloads; the board wraps and unwraps them with the job's payload registry.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# (round, questions) -> the payload that asks them
MakeQuestion = Callable[[int, tuple[Any, ...]], object]


class Answer(Protocol):
    """What an executor sends back: an entry per client it answers for, and the clients it declines."""

    @property
    def round(self) -> int: ...

    @property
    def declined(self) -> tuple[int, ...]: ...

    def by_client(self) -> Mapping[int, Any]: ...


@dataclass(frozen=True)
class ExchangeOutcome:
    answers: dict[int, Any]  # client id -> its answer
    answered_by: dict[int, str]  # client id -> the executor that answered for it
    declined: tuple[int, ...]  # clients whose executor declined, or died holding a question it alone could answer
    unanswered: tuple[int, ...]  # clients without an answer when the step's time ran out


class Exchange:
    def __init__(self, answer_type: type, round_index: int, questions: Mapping[int, Any],
                 make_event: MakeQuestion, route: Mapping[int, str] | None = None) -> None:
        """``route``: client id -> the only executor that may answer for it; clients not in it go to any executor."""
        self.answer_type = answer_type
        self.round = round_index
        self._questions = dict(questions)
        self._make_event = make_event
        route = route or {}
        self._routed = {client: route[client] for client in self._questions if client in route}
        self._pending: deque[int] = deque(client for client in self._questions if client not in self._routed)
        self._directed: dict[str, list[int]] = {}
        for client, executor_id in self._routed.items():
            self._directed.setdefault(executor_id, []).append(client)
        self._held: dict[str, set[int]] = {}
        self._answers: dict[int, Any] = {}
        self._answered_by: dict[int, str] = {}
        self._declined: set[int] = set()

    @property
    def is_settled(self) -> bool:
        return len(self._answers) + len(self._declined) == len(self._questions)

    def take(self, executor_id: str, live_executors: int) -> object | None:
        """The next questions for ``executor_id``: all routed to it, else its share of the undirected ones."""
        clients = self._directed.pop(executor_id, [])
        if not clients and self._pending:
            share = math.ceil(len(self._pending) / max(1, live_executors))
            clients = [self._pending.popleft() for _ in range(share)]
        if not clients:
            return None
        self._held.setdefault(executor_id, set()).update(clients)
        return self._make_event(self.round, tuple(self._questions[client] for client in clients))

    def expects(self, answer: object) -> bool:
        return isinstance(answer, self.answer_type) and getattr(answer, "round", None) == self.round

    def accept(self, executor_id: str, answer: Answer) -> list[int]:
        """Records the answers to questions this executor holds; returns the clients it had not been asked about."""
        held = self._held.get(executor_id, set())
        strays: list[int] = []
        for client, value in answer.by_client().items():
            if client in held:
                held.discard(client)
                self._answers[client] = value
                self._answered_by[client] = executor_id
            else:
                strays.append(client)
        for client in answer.declined:
            if client in held:
                held.discard(client)
                self._declined.add(client)
            else:
                strays.append(client)
        return strays

    def executor_died(self, executor_id: str) -> None:
        """Its undirected questions go back to the queue; the ones only it could answer never will be."""
        held = self._held.pop(executor_id, set())
        for client in sorted(held):
            if client in self._routed:
                self._declined.add(client)
            else:
                self._pending.append(client)
        self._declined.update(self._directed.pop(executor_id, []))

    def outcome(self) -> ExchangeOutcome:
        settled = set(self._answers) | self._declined
        return ExchangeOutcome(
            answers=dict(self._answers),
            answered_by=dict(self._answered_by),
            declined=tuple(sorted(self._declined)),
            unanswered=tuple(sorted(set(self._questions) - settled)),
        )
