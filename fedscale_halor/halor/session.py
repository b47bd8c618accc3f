"""Halor's pre-round step (docs/halor.md, "One round") as two transport-agnostic state machines that a runtime
drives over messages.

ServerMaskingRound is the aggregator's side of one round, ClientMaskingSession a client's side across rounds. The
runtime only carries their messages: RingSeat (server → client), MaskedUpload (client → server), MaskRequest
(server → client, from close_uploads) and RevealedMask (client → server); RoundSum is the outcome.

Every message is plain data: ints, 32-byte keys and tuples of ints. A vector travels as ``words``, one Python int
in [0, 2^bits) per class (numpy integers are accepted on receipt and stored as ints); a serializer may pack it as
little-endian uint64 bytes or a repeated uint64 field.

A seat carries only the client's position, the ring size and its two neighbours' public keys, so a round costs O(K)
on the wire rather than sending every client the whole ring.

The server never sees a histogram in the clear and never forms one: it only adds masked uploads and revealed masks,
and the first clear value it holds is the sum over at least three contributors. ring.py derives the dropout
correction and states the trust assumptions.

With noise (docs/halor.md, "Privacy over a whole run"), each client adds its share of Skellam noise to its histogram
before masking and uploads the signed result as words mod 2^bits; the server, told the sums are signed, lifts the
unmasked sum to centered integers: Σ h_i + Σ z_i exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fedscale_halor.halor.noise import share_variance, skellam_noise
from fedscale_halor.halor.ring import (
    MINIMUM_RING_SIZE,
    HalorProtocolError,
    MaskRequest,
    NotEnoughSurvivorsError,
    RecoveryPlan,
    plan_recovery,
    ring_order,
)
from fedscale_halor.halor.secret_sharing import (
    KEY_BYTES,
    ClientRingSide,
    encode_signed,
    lift_signed,
    noise_seed,
    simulated_client_keys,
    unmask,
)

__all__ = [
    "ClientMaskingSession",
    "HalorSessionError",
    "LateUploadError",
    "MaskRequest",
    "MaskedUpload",
    "RevealedMask",
    "RingSeat",
    "RoundSum",
    "ServerMaskingRound",
]


class HalorSessionError(HalorProtocolError, ValueError):
    """A message the session refuses; the runtime logs it and goes on with the round."""


class LateUploadError(HalorSessionError):
    """An upload after close_uploads: the recovery plan is fixed, so the upload is discarded, never summed."""


@dataclass(frozen=True)
class RingSeat:
    """What one client needs to mask its histogram in one round."""

    round_index: int
    client_id: int
    position: int
    ring_size: int
    predecessor_public: bytes
    successor_public: bytes
    bits: int
    num_classes: int


@dataclass(frozen=True)
class MaskedUpload:
    round_index: int
    client_id: int
    words: tuple[int, ...]


@dataclass(frozen=True)
class RevealedMask:
    round_index: int
    client_id: int
    link_index: int
    words: tuple[int, ...]


@dataclass(frozen=True)
class RoundSum:
    """The round's histogram sum over ``contributors`` (mod 2^bits; for a signed round, the centered lift, which may
    be negative), or None and the ``reason`` there is none."""

    round_index: int
    histogram_sum: tuple[int, ...] | None
    contributors: tuple[int, ...]
    reason: str = ""


class ServerMaskingRound:
    """The aggregator's side of one round: seat the ring, collect uploads, ask for recovery masks, sum.

    Steps: seats() → accept_upload()* → close_uploads() → accept_reveal()* → result(). The recovery plan is made
    once, at close_uploads; if a requested reveal never comes, abandon() ends the round without a sum, since
    re-planning after masks were revealed could unmask a client (ring.py). ``signed``: the uploads carry noise, so
    the sum is lifted to signed integers in [-2^(bits-1), 2^(bits-1)).
    """

    def __init__(
        self,
        round_index: int,
        client_ids: Sequence[int],
        public_keys: Mapping[int, bytes],
        num_classes: int,
        bits: int,
        signed: bool = False,
    ) -> None:
        ids = tuple(client_ids)
        if len(set(ids)) != len(ids):
            raise HalorSessionError(f"round {round_index}: sampled client ids must be distinct, got {list(ids)}")
        if num_classes < 1:
            raise HalorSessionError(f"num_classes must be at least 1, got {num_classes}")
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 64:
            raise HalorSessionError(f"bits must be an int in [1, 64], got {bits!r}")
        self.round_index = round_index
        self.num_classes = num_classes
        self.bits = bits
        self.signed = signed
        self._uploads: dict[int, tuple[int, ...]] = {}
        self._late: list[int] = []
        self._closed = False
        self._plan: RecoveryPlan | None = None
        self._requested: dict[int, int] = {}  # link index → client asked for its mask
        self._revealed: dict[int, tuple[int, ...]] = {}
        self._outcome: RoundSum | None = None
        self._public_keys: dict[int, bytes] = {}
        self.ring: tuple[int, ...] = ()
        if len(ids) < MINIMUM_RING_SIZE:
            # The round is over before it starts: nobody is seated, so no client masks or reveals anything.
            self._outcome = RoundSum(
                round_index,
                None,
                (),
                f"round {round_index} sampled {len(ids)} client(s); a ring needs at least {MINIMUM_RING_SIZE} to "
                "hide each histogram, the round keeps the previous distribution",
            )
            return
        self.ring = ring_order(round_index, ids)
        for client in self.ring:
            key = public_keys.get(client)
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise HalorSessionError(f"client {client} has no {KEY_BYTES}-byte public key")
        self._public_keys = {client: public_keys[client] for client in self.ring}

    def seats(self) -> dict[int, RingSeat]:
        size = len(self.ring)
        return {
            client: RingSeat(
                round_index=self.round_index,
                client_id=client,
                position=position,
                ring_size=size,
                predecessor_public=self._public_keys[self.ring[(position - 1) % size]],
                successor_public=self._public_keys[self.ring[(position + 1) % size]],
                bits=self.bits,
                num_classes=self.num_classes,
            )
            for position, client in enumerate(self.ring)
        }

    @property
    def is_over(self) -> bool:
        """True once result() can be called."""
        return self._outcome is not None

    @property
    def late_uploads(self) -> tuple[int, ...]:
        """Clients whose uploads came after close_uploads and were discarded, for the runtime to report."""
        return tuple(self._late)

    @property
    def outstanding_requests(self) -> tuple[MaskRequest, ...]:
        return tuple(
            MaskRequest(client, link) for link, client in sorted(self._requested.items()) if link not in self._revealed
        )

    def accept_upload(self, upload: MaskedUpload) -> None:
        client = upload.client_id
        self._check_round(upload.round_index, f"upload of client {client}")
        if client not in self.ring:
            raise HalorSessionError(f"round {self.round_index}: upload from client {client}, who is not in the ring")
        if client in self._uploads:
            raise HalorSessionError(f"round {self.round_index}: client {client} already uploaded")
        if self._closed:
            self._late.append(client)
            raise LateUploadError(f"round {self.round_index}: upload of client {client} came after uploads closed")
        self._uploads[client] = self._checked_words(upload.words, f"upload of client {client}")

    def close_uploads(self) -> tuple[MaskRequest, ...]:
        """Fix the recovery plan over the uploads received and return the masks to ask for."""
        if self._closed:
            raise HalorSessionError(f"round {self.round_index}: uploads are already closed")
        self._closed = True
        if self._outcome is not None:
            return ()
        try:
            self._plan = plan_recovery(self.ring, self._uploads)
        except NotEnoughSurvivorsError as error:
            self._outcome = RoundSum(self.round_index, None, (), f"round {self.round_index}: {error}")
            return ()
        requests = self._plan.requests
        self._requested = {request.link_index: request.client_id for request in requests}
        self._finish_if_complete()
        return requests

    def accept_reveal(self, revealed: RevealedMask) -> None:
        client, link = revealed.client_id, revealed.link_index
        self._check_round(revealed.round_index, f"mask of link {link} from client {client}")
        if self._outcome is not None:
            raise HalorSessionError(f"round {self.round_index} is over; mask of link {link} from client {client}")
        if self._requested.get(link) != client:
            raise HalorSessionError(
                f"round {self.round_index}: the mask of link {link} was not requested of client {client}"
            )
        if link in self._revealed:
            raise HalorSessionError(f"round {self.round_index}: client {client} already revealed link {link}")
        self._revealed[link] = self._checked_words(revealed.words, f"mask of link {link} from client {client}")
        self._finish_if_complete()

    def abandon(self, reason: str) -> None:
        """End the round without a sum, e.g. when a requested reveal never came."""
        if self._outcome is not None:
            raise HalorSessionError(f"round {self.round_index} is already over")
        self._closed = True
        self._outcome = RoundSum(self.round_index, None, (), reason)

    def result(self) -> RoundSum:
        if self._outcome is None:
            if not self._closed:
                raise HalorSessionError(f"round {self.round_index}: uploads are still open")
            raise HalorSessionError(f"round {self.round_index}: waiting for masks {list(self.outstanding_requests)}")
        return self._outcome

    def _finish_if_complete(self) -> None:
        if self._plan is None or len(self._revealed) < len(self._requested):
            return
        total = unmask(
            {client: np.array(words, dtype=np.uint64) for client, words in self._uploads.items()},
            self.ring,
            {link: np.array(words, dtype=np.uint64) for link, words in self._revealed.items()},
            self.bits,
        )
        if self.signed:
            total = lift_signed(total, self.bits)
        self._outcome = RoundSum(self.round_index, tuple(int(word) for word in total), self._plan.contributors)

    def _check_round(self, round_index: int, what: str) -> None:
        if round_index != self.round_index:
            raise HalorSessionError(f"{what} is for round {round_index}, this is round {self.round_index}")

    def _checked_words(self, words: Sequence[int], what: str) -> tuple[int, ...]:
        if len(words) != self.num_classes:
            raise HalorSessionError(
                f"round {self.round_index}: {what} has {len(words)} words, expected {self.num_classes}"
            )
        limit = 1 << self.bits
        for word in words:
            # A deserializer may hand over numpy integers; bools and floats are malformed, not words.
            if isinstance(word, bool) or not isinstance(word, (int, np.integer)) or not 0 <= word < limit:
                raise HalorSessionError(
                    f"round {self.round_index}: {what} holds {word!r}, not a word in [0, 2^{self.bits})"
                )
        return tuple(int(word) for word in words)


class ClientMaskingSession:
    """One client's side across rounds: mask its histogram for a seat and reveal at most one mask per round.

    A client uploads once per round: two uploads under the same masks would give away the difference of the two
    histograms. Only the ``retained_rounds`` most recent rounds are kept; older rounds are refused outright, not
    forgotten and redone, for the same reason.

    ``noise_variance`` > 0: the Skellam variance per class of a full ring's sum (privacy.NoiseSettings.variance);
    in a ring of K the client adds variance/K to each class, drawn from a seed only its private key gives
    (secret_sharing.noise_seed), and uploads the signed noisy histogram.
    """

    def __init__(self, job_seed: int, client_id: int, retained_rounds: int = 2, noise_variance: float = 0.0) -> None:
        if retained_rounds < 1:
            raise ValueError(f"retained_rounds must be at least 1, got {retained_rounds}")
        if not noise_variance >= 0.0 or not np.isfinite(noise_variance):
            raise ValueError(f"noise_variance must be finite and >= 0, got {noise_variance}")
        self.client_id = client_id
        self.noise_variance = float(noise_variance)
        self._keys = simulated_client_keys(job_seed, client_id)
        self._retained_rounds = retained_rounds
        self._sides: dict[int, ClientRingSide] = {}
        self._forgotten_through: int | None = None

    @property
    def public_key(self) -> bytes:
        return self._keys.public_key

    def upload(self, seat: RingSeat, histogram: Sequence[int] | np.ndarray) -> MaskedUpload:
        round_index = seat.round_index
        if seat.client_id != self.client_id:
            raise HalorSessionError(f"client {self.client_id} was given the seat of client {seat.client_id}")
        if round_index in self._sides or (
            self._forgotten_through is not None and round_index <= self._forgotten_through
        ):
            raise HalorSessionError(f"client {self.client_id} already uploaded in round {round_index}")
        counts = np.asarray(histogram)
        if counts.shape != (seat.num_classes,):
            raise HalorSessionError(
                f"client {self.client_id}: histogram has shape {counts.shape}, the seat asks for {seat.num_classes} "
                "classes"
            )
        side = ClientRingSide(
            self._keys, round_index, seat.position, seat.ring_size, seat.predecessor_public, seat.successor_public
        )
        masked = side.masked_histogram(self._noisy_words(seat, counts) if self.noise_variance else counts, seat.bits)
        # Kept only once masking succeeded, so a refused histogram can be corrected and sent again.
        self._sides[round_index] = side
        self._forget_old_rounds()
        return MaskedUpload(round_index, self.client_id, tuple(int(word) for word in masked))

    def _noisy_words(self, seat: RingSeat, counts: np.ndarray) -> np.ndarray:
        """h + z as signed words mod 2^bits, z this client's Skellam share of the round's noise."""
        if counts.dtype.kind not in "iu" or int(counts.min()) < 0:
            raise ValueError(f"client {self.client_id}: a histogram holds non-negative integer counts")
        share = share_variance(self.noise_variance, seat.ring_size)
        noise = skellam_noise(noise_seed(self._keys, seat.round_index), share, seat.num_classes)
        try:
            return encode_signed(counts.astype(np.int64) + noise, seat.bits)
        except ValueError as error:
            raise HalorSessionError(f"client {self.client_id}: the noisy histogram does not fit {seat.bits}-bit "
                                    f"signed words: {error}") from error

    def reveal(self, round_index: int, link_index: int) -> RevealedMask:
        """The mask of one of this client's links in a round it uploaded in; the side refuses a second reveal."""
        side = self._sides.get(round_index)
        if side is None:
            raise HalorSessionError(f"client {self.client_id} holds no upload of round {round_index}")
        mask = side.reveal_mask(link_index)
        return RevealedMask(round_index, self.client_id, link_index, tuple(int(word) for word in mask))

    def _forget_old_rounds(self) -> None:
        while len(self._sides) > self._retained_rounds:
            oldest = min(self._sides)
            del self._sides[oldest]
            if self._forgotten_through is None or oldest > self._forgotten_through:
                self._forgotten_through = oldest
