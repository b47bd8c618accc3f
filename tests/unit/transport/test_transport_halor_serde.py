"""Halor's pre-round messages survive the wire form unchanged; a malformed one is refused with a clear error."""

import pytest

from fedscale_halor.halor.ring import MaskRequest
from fedscale_halor.halor.session import MaskedUpload, RevealedMask, RingSeat
from fedscale_halor.transport import serde
from fedscale_halor.transport.messages import (
    ClientTrain,
    Completion,
    Event,
    HalorKeys,
    LabelStats,
    MaskedHistograms,
    PublicKeys,
    RevealedMasks,
    RevealMasks,
)
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.types import ResampleTarget, TrainTask

_TASK = TrainTask(round=3, client_id=8, model_version=2, learning_rate=0.1, local_steps=5, batch_size=10, seed=77)


@pytest.mark.parametrize("event", [
    HalorKeys(3, (1, 5, 2**40)),
    LabelStats(3, (RingSeat(3, 5, 1, 4, b"p" * 32, b"s" * 32, 64, 62), RingSeat(3, 6, 2, 4, b"q" * 32, b"r" * 32,
                                                                                   64, 62))),
    RevealMasks(3, (MaskRequest(5, 0), MaskRequest(9, 3))),
    ClientTrain(3, 2, (_TASK,), ResampleTarget((0.25, 0.5, 0.25), "over")),
    ClientTrain(3, 2, (_TASK,)),
], ids=["keys", "label_stats", "reveal", "train_resampled", "train_plain"])
def test_halor_events_round_trip(event: Event) -> None:
    assert serde.event_from_bytes(serde.event_to_bytes(event)) == event


@pytest.mark.parametrize("completion", [
    PublicKeys(3, ((1, b"k" * 32), (2, b"j" * 32)), declined=(4,)),
    MaskedHistograms(3, (MaskedUpload(3, 1, (2**64 - 1, 0, 5)),), declined=(9,)),
    RevealedMasks(3, (RevealedMask(3, 1, 2, (1, 2**63)),)),
], ids=["keys", "uploads", "masks"])
def test_halor_answers_round_trip(completion: Completion) -> None:
    assert serde.completion_from_bytes(serde.completion_to_bytes(completion)) == completion


def test_words_are_decoded_as_python_ints() -> None:
    # the session checks word types; numpy or protobuf containers must not reach it
    decoded = serde.completion_from_bytes(serde.completion_to_bytes(
        MaskedHistograms(3, (MaskedUpload(3, 1, (7, 8)),))))

    assert isinstance(decoded, MaskedHistograms)
    assert type(decoded.uploads[0].words) is tuple
    assert all(type(word) is int for word in decoded.uploads[0].words)


def test_a_truncated_upload_is_refused_as_malformed() -> None:
    message = pb.Completion(masked_histograms=pb.MaskedHistograms(round=1, uploads=[
        pb.MaskedUpload(round=1, client_id=2, words=[1, 2, 3])])).SerializeToString()

    with pytest.raises(serde.MalformedMessageError, match="Completion cannot be parsed"):
        serde.completion_from_proto(serde._parse(pb.Completion, message[:-2], 1 << 20))
