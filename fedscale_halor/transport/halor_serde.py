"""Protobuf conversion of Halor's pre-round messages; serde.py dispatches to it for these kinds.

Masked words travel as repeated uint64 (each in [0, 2^bits), bits <= 64); the halor sessions check their range and
count on receipt, so a malformed upload is refused there with the client named.
"""

from __future__ import annotations

from fedscale_halor.halor.ring import MaskRequest
from fedscale_halor.halor.session import MaskedUpload, RevealedMask, RingSeat
from fedscale_halor.transport.messages import (
    HalorAnswer,
    HalorKeys,
    HalorQuestion,
    HalorSizes,
    LabelStats,
    MaskedHistograms,
    PublicKeys,
    ResampledSizes,
    RevealedMasks,
    RevealMasks,
)
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.types import ResampleTarget


def resample_to_proto(target: ResampleTarget | None) -> pb.ResampleTarget | None:
    if target is None:
        return None
    return pb.ResampleTarget(distribution=list(target.distribution), mode=target.mode)


def resample_from_proto(message: pb.ClientTrain) -> ResampleTarget | None:
    if not message.HasField("resample"):
        return None
    return ResampleTarget(tuple(message.resample.distribution), message.resample.mode)


# events -----------------------------------------------------------------------------------------------------------
def _seat_to_proto(seat: RingSeat) -> pb.RingSeat:
    return pb.RingSeat(round=seat.round_index, client_id=seat.client_id, position=seat.position,
                       ring_size=seat.ring_size, predecessor_public=seat.predecessor_public,
                       successor_public=seat.successor_public, bits=seat.bits, num_classes=seat.num_classes)


def _seat_from_proto(message: pb.RingSeat) -> RingSeat:
    return RingSeat(round_index=message.round, client_id=message.client_id, position=message.position,
                    ring_size=message.ring_size, predecessor_public=message.predecessor_public,
                    successor_public=message.successor_public, bits=message.bits, num_classes=message.num_classes)


def halor_event_to_proto(event: HalorQuestion) -> pb.Event:
    if isinstance(event, HalorKeys):
        return pb.Event(halor_keys=pb.HalorKeys(round=event.round, client_ids=list(event.client_ids)))
    if isinstance(event, LabelStats):
        return pb.Event(label_stats=pb.LabelStats(round=event.round, seats=[_seat_to_proto(s) for s in event.seats]))
    if isinstance(event, HalorSizes):
        return pb.Event(halor_sizes=pb.HalorSizes(round=event.round, target=resample_to_proto(event.target),
                                                  client_ids=list(event.client_ids)))
    return pb.Event(reveal_masks=pb.RevealMasks(round=event.round, requests=[
        pb.MaskRequest(client_id=request.client_id, link_index=request.link_index) for request in event.requests]))


def halor_keys_from_proto(message: pb.HalorKeys) -> HalorKeys:
    return HalorKeys(message.round, tuple(message.client_ids))


def label_stats_from_proto(message: pb.LabelStats) -> LabelStats:
    return LabelStats(message.round, tuple(_seat_from_proto(seat) for seat in message.seats))


def reveal_masks_from_proto(message: pb.RevealMasks) -> RevealMasks:
    return RevealMasks(message.round, tuple(MaskRequest(request.client_id, request.link_index)
                                            for request in message.requests))


def halor_sizes_from_proto(message: pb.HalorSizes) -> HalorSizes:
    target = ResampleTarget(tuple(message.target.distribution), message.target.mode)
    return HalorSizes(message.round, target, tuple(message.client_ids))


# completions ------------------------------------------------------------------------------------------------------
def halor_answer_to_proto(answer: HalorAnswer) -> pb.Completion:
    if isinstance(answer, PublicKeys):
        return pb.Completion(public_keys=pb.PublicKeys(
            round=answer.round, declined=list(answer.declined),
            keys=[pb.ClientKey(client_id=client, public_key=key) for client, key in answer.keys]))
    if isinstance(answer, MaskedHistograms):
        return pb.Completion(masked_histograms=pb.MaskedHistograms(
            round=answer.round, declined=list(answer.declined),
            uploads=[pb.MaskedUpload(round=upload.round_index, client_id=upload.client_id, words=list(upload.words))
                     for upload in answer.uploads]))
    if isinstance(answer, ResampledSizes):
        return pb.Completion(resampled_sizes=pb.ResampledSizes(
            round=answer.round, declined=list(answer.declined),
            sizes=[pb.ClientSize(client_id=client, size=size) for client, size in answer.sizes]))
    return pb.Completion(revealed_masks=pb.RevealedMasks(
        round=answer.round, declined=list(answer.declined),
        masks=[pb.RevealedMask(round=mask.round_index, client_id=mask.client_id, link_index=mask.link_index,
                               words=list(mask.words)) for mask in answer.masks]))


def public_keys_from_proto(message: pb.PublicKeys) -> PublicKeys:
    return PublicKeys(message.round, tuple((key.client_id, key.public_key) for key in message.keys),
                      tuple(message.declined))


def masked_histograms_from_proto(message: pb.MaskedHistograms) -> MaskedHistograms:
    return MaskedHistograms(message.round, tuple(MaskedUpload(upload.round, upload.client_id, tuple(upload.words))
                                                 for upload in message.uploads), tuple(message.declined))


def revealed_masks_from_proto(message: pb.RevealedMasks) -> RevealedMasks:
    return RevealedMasks(message.round, tuple(
        RevealedMask(mask.round, mask.client_id, mask.link_index, tuple(mask.words)) for mask in message.masks),
        tuple(message.declined))


def resampled_sizes_from_proto(message: pb.ResampledSizes) -> ResampledSizes:
    return ResampledSizes(message.round, tuple((entry.client_id, entry.size) for entry in message.sizes),
                          tuple(message.declined))
