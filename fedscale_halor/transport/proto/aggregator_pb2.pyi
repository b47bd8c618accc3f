from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutorInfo(_message.Message):
    __slots__ = ("executor_id", "host", "device")
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    executor_id: str
    host: str
    device: str
    def __init__(self, executor_id: _Optional[str] = ..., host: _Optional[str] = ..., device: _Optional[str] = ...) -> None: ...

class RegisterReply(_message.Message):
    __slots__ = ("accepted", "reason", "shared_folder", "shared_nonce")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SHARED_FOLDER_FIELD_NUMBER: _ClassVar[int]
    SHARED_NONCE_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    reason: str
    shared_folder: str
    shared_nonce: str
    def __init__(self, accepted: _Optional[bool] = ..., reason: _Optional[str] = ..., shared_folder: _Optional[str] = ..., shared_nonce: _Optional[str] = ...) -> None: ...

class EventRequest(_message.Message):
    __slots__ = ("executor_id", "shared_memory")
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    SHARED_MEMORY_FIELD_NUMBER: _ClassVar[int]
    executor_id: str
    shared_memory: bool
    def __init__(self, executor_id: _Optional[str] = ..., shared_memory: _Optional[bool] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("data", "total_bytes", "executor_id", "shared_file")
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    SHARED_FILE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_bytes: int
    executor_id: str
    shared_file: str
    def __init__(self, data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ..., executor_id: _Optional[str] = ..., shared_file: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Tensors(_message.Message):
    __slots__ = ("names", "blob_index")
    NAMES_FIELD_NUMBER: _ClassVar[int]
    BLOB_INDEX_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    blob_index: int
    def __init__(self, names: _Optional[_Iterable[str]] = ..., blob_index: _Optional[int] = ...) -> None: ...

class TrainTask(_message.Message):
    __slots__ = ("round", "client_id", "model_version", "learning_rate", "local_steps", "batch_size", "seed", "client_state")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CLIENT_STATE_FIELD_NUMBER: _ClassVar[int]
    round: int
    client_id: int
    model_version: int
    learning_rate: float
    local_steps: int
    batch_size: int
    seed: int
    client_state: Tensors
    def __init__(self, round: _Optional[int] = ..., client_id: _Optional[int] = ..., model_version: _Optional[int] = ..., learning_rate: _Optional[float] = ..., local_steps: _Optional[int] = ..., batch_size: _Optional[int] = ..., seed: _Optional[int] = ..., client_state: _Optional[_Union[Tensors, _Mapping]] = ...) -> None: ...

class TrainResult(_message.Message):
    __slots__ = ("client_id", "round", "model_version", "weights", "num_samples", "num_steps", "loss_mean", "loss_square_mean", "wall_time_s", "client_state")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    NUM_STEPS_FIELD_NUMBER: _ClassVar[int]
    LOSS_MEAN_FIELD_NUMBER: _ClassVar[int]
    LOSS_SQUARE_MEAN_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_S_FIELD_NUMBER: _ClassVar[int]
    CLIENT_STATE_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    round: int
    model_version: int
    weights: Tensors
    num_samples: int
    num_steps: int
    loss_mean: float
    loss_square_mean: float
    wall_time_s: float
    client_state: Tensors
    def __init__(self, client_id: _Optional[int] = ..., round: _Optional[int] = ..., model_version: _Optional[int] = ..., weights: _Optional[_Union[Tensors, _Mapping]] = ..., num_samples: _Optional[int] = ..., num_steps: _Optional[int] = ..., loss_mean: _Optional[float] = ..., loss_square_mean: _Optional[float] = ..., wall_time_s: _Optional[float] = ..., client_state: _Optional[_Union[Tensors, _Mapping]] = ...) -> None: ...

class EvalResult(_message.Message):
    __slots__ = ("num_samples", "loss_sum", "top1_correct", "top5_correct")
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    LOSS_SUM_FIELD_NUMBER: _ClassVar[int]
    TOP1_CORRECT_FIELD_NUMBER: _ClassVar[int]
    TOP5_CORRECT_FIELD_NUMBER: _ClassVar[int]
    num_samples: int
    loss_sum: float
    top1_correct: int
    top5_correct: int
    def __init__(self, num_samples: _Optional[int] = ..., loss_sum: _Optional[float] = ..., top1_correct: _Optional[int] = ..., top5_correct: _Optional[int] = ...) -> None: ...

class UpdateModel(_message.Message):
    __slots__ = ("version", "weights")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    version: int
    weights: Tensors
    def __init__(self, version: _Optional[int] = ..., weights: _Optional[_Union[Tensors, _Mapping]] = ...) -> None: ...

class ClientTrain(_message.Message):
    __slots__ = ("round", "model_version", "tasks", "resample")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    RESAMPLE_FIELD_NUMBER: _ClassVar[int]
    round: int
    model_version: int
    tasks: _containers.RepeatedCompositeFieldContainer[TrainTask]
    resample: ResampleTarget
    def __init__(self, round: _Optional[int] = ..., model_version: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[TrainTask, _Mapping]]] = ..., resample: _Optional[_Union[ResampleTarget, _Mapping]] = ...) -> None: ...

class ResampleTarget(_message.Message):
    __slots__ = ("distribution", "mode")
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    distribution: _containers.RepeatedScalarFieldContainer[float]
    mode: str
    def __init__(self, distribution: _Optional[_Iterable[float]] = ..., mode: _Optional[str] = ...) -> None: ...

class RingSeat(_message.Message):
    __slots__ = ("round", "client_id", "position", "ring_size", "predecessor_public", "successor_public", "bits", "num_classes")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    RING_SIZE_FIELD_NUMBER: _ClassVar[int]
    PREDECESSOR_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    round: int
    client_id: int
    position: int
    ring_size: int
    predecessor_public: bytes
    successor_public: bytes
    bits: int
    num_classes: int
    def __init__(self, round: _Optional[int] = ..., client_id: _Optional[int] = ..., position: _Optional[int] = ..., ring_size: _Optional[int] = ..., predecessor_public: _Optional[bytes] = ..., successor_public: _Optional[bytes] = ..., bits: _Optional[int] = ..., num_classes: _Optional[int] = ...) -> None: ...

class HalorKeys(_message.Message):
    __slots__ = ("round", "client_ids")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IDS_FIELD_NUMBER: _ClassVar[int]
    round: int
    client_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, round: _Optional[int] = ..., client_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class LabelStats(_message.Message):
    __slots__ = ("round", "seats")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    round: int
    seats: _containers.RepeatedCompositeFieldContainer[RingSeat]
    def __init__(self, round: _Optional[int] = ..., seats: _Optional[_Iterable[_Union[RingSeat, _Mapping]]] = ...) -> None: ...

class MaskRequest(_message.Message):
    __slots__ = ("client_id", "link_index")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    LINK_INDEX_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    link_index: int
    def __init__(self, client_id: _Optional[int] = ..., link_index: _Optional[int] = ...) -> None: ...

class RevealMasks(_message.Message):
    __slots__ = ("round", "requests")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    round: int
    requests: _containers.RepeatedCompositeFieldContainer[MaskRequest]
    def __init__(self, round: _Optional[int] = ..., requests: _Optional[_Iterable[_Union[MaskRequest, _Mapping]]] = ...) -> None: ...

class HalorSizes(_message.Message):
    __slots__ = ("round", "target", "client_ids")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IDS_FIELD_NUMBER: _ClassVar[int]
    round: int
    target: ResampleTarget
    client_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, round: _Optional[int] = ..., target: _Optional[_Union[ResampleTarget, _Mapping]] = ..., client_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ModelTest(_message.Message):
    __slots__ = ("round", "model_version", "shard_index", "shard_count")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    round: int
    model_version: int
    shard_index: int
    shard_count: int
    def __init__(self, round: _Optional[int] = ..., model_version: _Optional[int] = ..., shard_index: _Optional[int] = ..., shard_count: _Optional[int] = ...) -> None: ...

class Idle(_message.Message):
    __slots__ = ("wait_s",)
    WAIT_S_FIELD_NUMBER: _ClassVar[int]
    wait_s: float
    def __init__(self, wait_s: _Optional[float] = ...) -> None: ...

class Shutdown(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("update_model", "client_train", "model_test", "idle", "shutdown", "halor_keys", "label_stats", "reveal_masks", "halor_sizes")
    UPDATE_MODEL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TRAIN_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEST_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    HALOR_KEYS_FIELD_NUMBER: _ClassVar[int]
    LABEL_STATS_FIELD_NUMBER: _ClassVar[int]
    REVEAL_MASKS_FIELD_NUMBER: _ClassVar[int]
    HALOR_SIZES_FIELD_NUMBER: _ClassVar[int]
    update_model: UpdateModel
    client_train: ClientTrain
    model_test: ModelTest
    idle: Idle
    shutdown: Shutdown
    halor_keys: HalorKeys
    label_stats: LabelStats
    reveal_masks: RevealMasks
    halor_sizes: HalorSizes
    def __init__(self, update_model: _Optional[_Union[UpdateModel, _Mapping]] = ..., client_train: _Optional[_Union[ClientTrain, _Mapping]] = ..., model_test: _Optional[_Union[ModelTest, _Mapping]] = ..., idle: _Optional[_Union[Idle, _Mapping]] = ..., shutdown: _Optional[_Union[Shutdown, _Mapping]] = ..., halor_keys: _Optional[_Union[HalorKeys, _Mapping]] = ..., label_stats: _Optional[_Union[LabelStats, _Mapping]] = ..., reveal_masks: _Optional[_Union[RevealMasks, _Mapping]] = ..., halor_sizes: _Optional[_Union[HalorSizes, _Mapping]] = ...) -> None: ...

class ClientUpdate(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: TrainResult
    def __init__(self, result: _Optional[_Union[TrainResult, _Mapping]] = ...) -> None: ...

class ClientFailure(_message.Message):
    __slots__ = ("round", "client_id", "error")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    round: int
    client_id: int
    error: str
    def __init__(self, round: _Optional[int] = ..., client_id: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class EvalOutcome(_message.Message):
    __slots__ = ("round", "model_version", "shard_index", "result")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    round: int
    model_version: int
    shard_index: int
    result: EvalResult
    def __init__(self, round: _Optional[int] = ..., model_version: _Optional[int] = ..., shard_index: _Optional[int] = ..., result: _Optional[_Union[EvalResult, _Mapping]] = ...) -> None: ...

class Completion(_message.Message):
    __slots__ = ("client_update", "client_failure", "eval_outcome", "heartbeat", "public_keys", "masked_histograms", "revealed_masks", "resampled_sizes")
    CLIENT_UPDATE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FAILURE_FIELD_NUMBER: _ClassVar[int]
    EVAL_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEYS_FIELD_NUMBER: _ClassVar[int]
    MASKED_HISTOGRAMS_FIELD_NUMBER: _ClassVar[int]
    REVEALED_MASKS_FIELD_NUMBER: _ClassVar[int]
    RESAMPLED_SIZES_FIELD_NUMBER: _ClassVar[int]
    client_update: ClientUpdate
    client_failure: ClientFailure
    eval_outcome: EvalOutcome
    heartbeat: Heartbeat
    public_keys: PublicKeys
    masked_histograms: MaskedHistograms
    revealed_masks: RevealedMasks
    resampled_sizes: ResampledSizes
    def __init__(self, client_update: _Optional[_Union[ClientUpdate, _Mapping]] = ..., client_failure: _Optional[_Union[ClientFailure, _Mapping]] = ..., eval_outcome: _Optional[_Union[EvalOutcome, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., public_keys: _Optional[_Union[PublicKeys, _Mapping]] = ..., masked_histograms: _Optional[_Union[MaskedHistograms, _Mapping]] = ..., revealed_masks: _Optional[_Union[RevealedMasks, _Mapping]] = ..., resampled_sizes: _Optional[_Union[ResampledSizes, _Mapping]] = ...) -> None: ...

class ClientKey(_message.Message):
    __slots__ = ("client_id", "public_key")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    public_key: bytes
    def __init__(self, client_id: _Optional[int] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class PublicKeys(_message.Message):
    __slots__ = ("round", "keys", "declined")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    DECLINED_FIELD_NUMBER: _ClassVar[int]
    round: int
    keys: _containers.RepeatedCompositeFieldContainer[ClientKey]
    declined: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, round: _Optional[int] = ..., keys: _Optional[_Iterable[_Union[ClientKey, _Mapping]]] = ..., declined: _Optional[_Iterable[int]] = ...) -> None: ...

class MaskedUpload(_message.Message):
    __slots__ = ("round", "client_id", "words")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    round: int
    client_id: int
    words: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, round: _Optional[int] = ..., client_id: _Optional[int] = ..., words: _Optional[_Iterable[int]] = ...) -> None: ...

class MaskedHistograms(_message.Message):
    __slots__ = ("round", "uploads", "declined")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    UPLOADS_FIELD_NUMBER: _ClassVar[int]
    DECLINED_FIELD_NUMBER: _ClassVar[int]
    round: int
    uploads: _containers.RepeatedCompositeFieldContainer[MaskedUpload]
    declined: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, round: _Optional[int] = ..., uploads: _Optional[_Iterable[_Union[MaskedUpload, _Mapping]]] = ..., declined: _Optional[_Iterable[int]] = ...) -> None: ...

class RevealedMask(_message.Message):
    __slots__ = ("round", "client_id", "link_index", "words")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    LINK_INDEX_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    round: int
    client_id: int
    link_index: int
    words: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, round: _Optional[int] = ..., client_id: _Optional[int] = ..., link_index: _Optional[int] = ..., words: _Optional[_Iterable[int]] = ...) -> None: ...

class RevealedMasks(_message.Message):
    __slots__ = ("round", "masks", "declined")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    DECLINED_FIELD_NUMBER: _ClassVar[int]
    round: int
    masks: _containers.RepeatedCompositeFieldContainer[RevealedMask]
    declined: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, round: _Optional[int] = ..., masks: _Optional[_Iterable[_Union[RevealedMask, _Mapping]]] = ..., declined: _Optional[_Iterable[int]] = ...) -> None: ...

class ClientSize(_message.Message):
    __slots__ = ("client_id", "size")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    size: int
    def __init__(self, client_id: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class ResampledSizes(_message.Message):
    __slots__ = ("round", "sizes", "declined")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    DECLINED_FIELD_NUMBER: _ClassVar[int]
    round: int
    sizes: _containers.RepeatedCompositeFieldContainer[ClientSize]
    declined: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, round: _Optional[int] = ..., sizes: _Optional[_Iterable[_Union[ClientSize, _Mapping]]] = ..., declined: _Optional[_Iterable[int]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
