"""When a round may be committed: enough of its selected clients reported, failures not counting.

The virtual clock's stragglers and dropouts are part of the simulation and count as reporting; a failure is a
client whose training raised or whose executor died with its task. A round short of the quorum is run again with
fresh participants (the failed clients left out) up to ``round_retries`` times, then the job stops.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fedscale_halor.server.errors import JobFailedError
from fedscale_halor.transport.messages import ClientFailure

_log = logging.getLogger("fedscale_halor.aggregator")

# failing clients named in a message before the rest are counted
_NAMED_CLIENTS = 20


class RoundFailedError(JobFailedError):
    """A round stayed short of its quorum after every retry."""


@dataclass(frozen=True)
class QuorumPolicy:
    quorum: float = 0.5
    round_retries: int = 2

    def met(self, selected: int, failures: Sequence[ClientFailure]) -> bool:
        return selected - len(failures) >= self.quorum * selected

    def note_short(self, round_index: int, attempt: int, selected: int, failures: Sequence[ClientFailure]) -> None:
        """Log an attempt short of the quorum, before it is retried."""
        _log.warning("round %d, attempt %d: %d of %d selected clients failed (quorum %g); the round is not committed "
                     "and runs again with fresh participants; first error (client %d): %s", round_index, attempt,
                     len(failures), selected, self.quorum, failures[0].client_id, failures[0].error)

    def failure(self, round_index: int, attempts: Sequence[tuple[int, Sequence[ClientFailure]]]) -> RoundFailedError:
        """The error that stops the job after the last attempt; ``attempts`` holds each attempt's selected count
        and failures."""
        failing = sorted({failure.client_id for _, failures in attempts for failure in failures})
        first = attempts[0][1][0]
        named = ", ".join(str(client) for client in failing[:_NAMED_CLIENTS])
        if len(failing) > _NAMED_CLIENTS:
            named += f" and {len(failing) - _NAMED_CLIENTS} more"
        selected, last = attempts[-1]
        return RoundFailedError(
            f"round {round_index}: {len(attempts)} attempts (round_retries {self.round_retries}) stayed under the "
            f"quorum of {self.quorum:g}, the last with {selected - len(last)} of {selected} selected clients "
            f"reporting; failing clients: {named}; first error (client {first.client_id}): {first.error}")
