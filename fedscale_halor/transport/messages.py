"""What the aggregator and its executors say to each other, as plain frozen dataclasses.

Transports convert these to and from their wire format (the gRPC transport in its serde module); orchestration code
never sees a wire type.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedscale_halor.halor.ring import MaskRequest
from fedscale_halor.halor.session import MaskedUpload, RevealedMask, RingSeat
from fedscale_halor.types import EvalResult, ResampleTarget, TrainResult, TrainTask, Weights


@dataclass(frozen=True)
class ExecutorInfo:
    executor_id: str
    host: str
    device: str


@dataclass(frozen=True)
class RegisterReply:
    accepted: bool
    reason: str = ""


# Events: the aggregator's answer to an executor's poll.
@dataclass(frozen=True)
class UpdateModel:
    version: int
    weights: Weights


@dataclass(frozen=True)
class ClientTrain:
    round: int
    model_version: int
    tasks: tuple[TrainTask, ...]
    resample: ResampleTarget | None = None  # Halor: resample each client toward this before training


# Halor's step (docs/halor.md): exchanges, each about some clients (the round's sampled clients, or every client
# for the exact distribution before round 1).
@dataclass(frozen=True)
class HalorKeys:
    """Send the public keys of these clients (the aggregator caches them across rounds)."""

    round: int
    client_ids: tuple[int, ...]


@dataclass(frozen=True)
class LabelStats:
    """Mask these clients' label histograms for their seats in the round's ring and upload them."""

    round: int
    seats: tuple[RingSeat, ...]


@dataclass(frozen=True)
class RevealMasks:
    """Dropout recovery: reveal these link masks (each asked of a client this executor uploaded for)."""

    round: int
    requests: tuple[MaskRequest, ...]


@dataclass(frozen=True)
class ModelTest:
    round: int
    model_version: int
    shard_index: int
    shard_count: int


@dataclass(frozen=True)
class Idle:
    """Nothing to do yet; poll again after ``wait_s``."""

    wait_s: float


@dataclass(frozen=True)
class Shutdown:
    reason: str


@dataclass(frozen=True)
class HalorSizes:
    """Halor's guard: how many samples each of these clients keeps when it resamples toward ``target``."""

    round: int
    target: ResampleTarget
    client_ids: tuple[int, ...]


HalorQuestion = HalorKeys | LabelStats | RevealMasks | HalorSizes

Event = UpdateModel | ClientTrain | ModelTest | Idle | Shutdown | HalorQuestion


# Completions: what an executor reports.
@dataclass(frozen=True)
class ClientUpdate:
    result: TrainResult


@dataclass(frozen=True)
class ClientFailure:
    """A client whose training raised; the aggregator counts it as dropped instead of waiting for it."""

    round: int
    client_id: int
    error: str


@dataclass(frozen=True)
class EvalOutcome:
    round: int
    model_version: int
    shard_index: int
    result: EvalResult


@dataclass(frozen=True)
class Heartbeat:
    """Sent while an executor is busy, so a long local training is not mistaken for a dead executor."""


@dataclass(frozen=True)
class PublicKeys:
    round: int
    keys: tuple[tuple[int, bytes], ...]  # (client id, 32-byte X25519 public key)
    declined: tuple[int, ...] = ()

    def by_client(self) -> dict[int, bytes]:
        return dict(self.keys)


@dataclass(frozen=True)
class MaskedHistograms:
    round: int
    uploads: tuple[MaskedUpload, ...]
    declined: tuple[int, ...] = ()  # clients that could not upload (logged on the executor)

    def by_client(self) -> dict[int, MaskedUpload]:
        return {upload.client_id: upload for upload in self.uploads}


@dataclass(frozen=True)
class RevealedMasks:
    round: int
    masks: tuple[RevealedMask, ...]
    declined: tuple[int, ...] = ()  # clients that refused (e.g. asked for a second mask in the round)

    def by_client(self) -> dict[int, RevealedMask]:
        return {mask.client_id: mask for mask in self.masks}


@dataclass(frozen=True)
class ResampledSizes:
    round: int
    sizes: tuple[tuple[int, int], ...]  # (client id, samples it keeps after resampling)
    declined: tuple[int, ...] = ()  # clients the executor cannot answer for (logged on the executor)

    def by_client(self) -> dict[int, int]:
        return dict(self.sizes)


HalorAnswer = PublicKeys | MaskedHistograms | RevealedMasks | ResampledSizes

Completion = ClientUpdate | ClientFailure | EvalOutcome | Heartbeat | HalorAnswer
