"""Halor's messages between the aggregator's pre-round step and the executors' clients (docs/halor.md), with their
payload codecs: the protocol carries them in its generic envelope.

Questions go to executors, each about some clients (the round's sampled clients, or every client for the exact
distribution before round 1); answers come back, one entry per client or the client declined. The resampling
target travels as a hint on every training task of a round.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedscale_halor.halor.ring import MaskRequest
from fedscale_halor.halor.session import MaskedUpload, RevealedMask, RingSeat
from fedscale_halor.plugin.payloads import DataclassCodec, PayloadCodec
from fedscale_halor.types import ResampleTarget


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
class HalorSizes:
    """Halor's guard: how many samples each of these clients keeps when it resamples toward ``target``."""

    round: int
    target: ResampleTarget
    client_ids: tuple[int, ...]


HalorQuestion = HalorKeys | LabelStats | RevealMasks | HalorSizes


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


HALOR_CODECS: tuple[PayloadCodec[object], ...] = (
    DataclassCodec("halor.keys", HalorKeys),
    DataclassCodec("halor.label_stats", LabelStats),
    DataclassCodec("halor.reveal_masks", RevealMasks),
    DataclassCodec("halor.sizes", HalorSizes),
    DataclassCodec("halor.public_keys", PublicKeys),
    DataclassCodec("halor.masked_histograms", MaskedHistograms),
    DataclassCodec("halor.revealed_masks", RevealedMasks),
    DataclassCodec("halor.resampled_sizes", ResampledSizes),
    DataclassCodec("halor.resample_target", ResampleTarget),
)
