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
    __slots__ = ("round", "client_id", "model_version", "learning_rate", "local_steps", "batch_size", "seed", "client_state", "summed")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CLIENT_STATE_FIELD_NUMBER: _ClassVar[int]
    SUMMED_FIELD_NUMBER: _ClassVar[int]
    round: int
    client_id: int
    model_version: int
    learning_rate: float
    local_steps: int
    batch_size: int
    seed: int
    client_state: Tensors
    summed: bool
    def __init__(self, round: _Optional[int] = ..., client_id: _Optional[int] = ..., model_version: _Optional[int] = ..., learning_rate: _Optional[float] = ..., local_steps: _Optional[int] = ..., batch_size: _Optional[int] = ..., seed: _Optional[int] = ..., client_state: _Optional[_Union[Tensors, _Mapping]] = ..., summed: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("version", "weights", "cohort")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    version: int
    weights: Tensors
    cohort: int
    def __init__(self, version: _Optional[int] = ..., weights: _Optional[_Union[Tensors, _Mapping]] = ..., cohort: _Optional[int] = ...) -> None: ...

class ClientTrain(_message.Message):
    __slots__ = ("round", "model_version", "tasks", "hints", "cohort", "sum_rule")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    HINTS_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    SUM_RULE_FIELD_NUMBER: _ClassVar[int]
    round: int
    model_version: int
    tasks: _containers.RepeatedCompositeFieldContainer[TrainTask]
    hints: _containers.RepeatedCompositeFieldContainer[Envelope]
    cohort: int
    sum_rule: SumRule
    def __init__(self, round: _Optional[int] = ..., model_version: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[TrainTask, _Mapping]]] = ..., hints: _Optional[_Iterable[_Union[Envelope, _Mapping]]] = ..., cohort: _Optional[int] = ..., sum_rule: _Optional[_Union[SumRule, _Mapping]] = ...) -> None: ...

class SumRule(_message.Message):
    __slots__ = ("weighted",)
    WEIGHTED_FIELD_NUMBER: _ClassVar[int]
    weighted: bool
    def __init__(self, weighted: _Optional[bool] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("kind", "body")
    KIND_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    body: bytes
    def __init__(self, kind: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...

class ModelTest(_message.Message):
    __slots__ = ("round", "model_version", "shard_index", "shard_count", "cohort", "view")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    round: int
    model_version: int
    shard_index: int
    shard_count: int
    cohort: int
    view: int
    def __init__(self, round: _Optional[int] = ..., model_version: _Optional[int] = ..., shard_index: _Optional[int] = ..., shard_count: _Optional[int] = ..., cohort: _Optional[int] = ..., view: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("update_model", "client_train", "model_test", "idle", "shutdown", "plugin")
    UPDATE_MODEL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TRAIN_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEST_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    update_model: UpdateModel
    client_train: ClientTrain
    model_test: ModelTest
    idle: Idle
    shutdown: Shutdown
    plugin: Envelope
    def __init__(self, update_model: _Optional[_Union[UpdateModel, _Mapping]] = ..., client_train: _Optional[_Union[ClientTrain, _Mapping]] = ..., model_test: _Optional[_Union[ModelTest, _Mapping]] = ..., idle: _Optional[_Union[Idle, _Mapping]] = ..., shutdown: _Optional[_Union[Shutdown, _Mapping]] = ..., plugin: _Optional[_Union[Envelope, _Mapping]] = ...) -> None: ...

class ClientUpdate(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: TrainResult
    def __init__(self, result: _Optional[_Union[TrainResult, _Mapping]] = ...) -> None: ...

class PartialUpdate(_message.Message):
    __slots__ = ("round", "model_version", "results", "sums")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUMS_FIELD_NUMBER: _ClassVar[int]
    round: int
    model_version: int
    results: _containers.RepeatedCompositeFieldContainer[TrainResult]
    sums: Tensors
    def __init__(self, round: _Optional[int] = ..., model_version: _Optional[int] = ..., results: _Optional[_Iterable[_Union[TrainResult, _Mapping]]] = ..., sums: _Optional[_Union[Tensors, _Mapping]] = ...) -> None: ...

class ClientFailure(_message.Message):
    __slots__ = ("round", "client_id", "error", "fatal")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FATAL_FIELD_NUMBER: _ClassVar[int]
    round: int
    client_id: int
    error: str
    fatal: bool
    def __init__(self, round: _Optional[int] = ..., client_id: _Optional[int] = ..., error: _Optional[str] = ..., fatal: _Optional[bool] = ...) -> None: ...

class EvalOutcome(_message.Message):
    __slots__ = ("round", "model_version", "shard_index", "result", "view")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    round: int
    model_version: int
    shard_index: int
    result: EvalResult
    view: int
    def __init__(self, round: _Optional[int] = ..., model_version: _Optional[int] = ..., shard_index: _Optional[int] = ..., result: _Optional[_Union[EvalResult, _Mapping]] = ..., view: _Optional[int] = ...) -> None: ...

class EvalFailure(_message.Message):
    __slots__ = ("round", "model_version", "shard_index", "error", "fatal", "view")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FATAL_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    round: int
    model_version: int
    shard_index: int
    error: str
    fatal: bool
    view: int
    def __init__(self, round: _Optional[int] = ..., model_version: _Optional[int] = ..., shard_index: _Optional[int] = ..., error: _Optional[str] = ..., fatal: _Optional[bool] = ..., view: _Optional[int] = ...) -> None: ...

class Completion(_message.Message):
    __slots__ = ("client_update", "client_failure", "eval_outcome", "heartbeat", "plugin", "eval_failure", "partial_update")
    CLIENT_UPDATE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FAILURE_FIELD_NUMBER: _ClassVar[int]
    EVAL_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    EVAL_FAILURE_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_UPDATE_FIELD_NUMBER: _ClassVar[int]
    client_update: ClientUpdate
    client_failure: ClientFailure
    eval_outcome: EvalOutcome
    heartbeat: Heartbeat
    plugin: Envelope
    eval_failure: EvalFailure
    partial_update: PartialUpdate
    def __init__(self, client_update: _Optional[_Union[ClientUpdate, _Mapping]] = ..., client_failure: _Optional[_Union[ClientFailure, _Mapping]] = ..., eval_outcome: _Optional[_Union[EvalOutcome, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., plugin: _Optional[_Union[Envelope, _Mapping]] = ..., eval_failure: _Optional[_Union[EvalFailure, _Mapping]] = ..., partial_update: _Optional[_Union[PartialUpdate, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
