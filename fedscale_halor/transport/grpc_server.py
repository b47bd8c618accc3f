"""The aggregator's gRPC endpoint: carries executors' calls to an ``AggregatorService``.

Given the job's token, the server refuses a call that lacks it with UNAUTHENTICATED, and logs the refusal, before
it reads a byte of the request (``auth_interceptor``); the service checks the token again. A Submit stream is
refused with RESOURCE_EXHAUSTED as soon as it announces or carries more than ``max_message_bytes``, unread beyond.

Errors the service raises reach the executor as gRPC status codes (a refused token as UNAUTHENTICATED, an unknown
executor as NOT_FOUND, an undecodable payload as INVALID_ARGUMENT), which ``GrpcTransport`` turns back into the same
exceptions, so orchestration code sees one behaviour whatever the transport.

Requests arrive as raw bytes and are parsed here, not by gRPC: gRPC answers a request it cannot deserialize with
INTERNAL and a traceback in the log, while a sender of garbage should hear INVALID_ARGUMENT and why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError

from fedscale_halor.transport import framing, serde
from fedscale_halor.transport.auth_interceptor import TokenInterceptor
from fedscale_halor.transport.base import AggregatorService, AuthenticationError
from fedscale_halor.transport.grpc_wire import SERVICE_NAME, TOKEN_METADATA_KEY, server_options
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.transport.receive_buffers import ReceiveBuffers
from fedscale_halor.transport.shared_memory import SHARED_MIN_BYTES, SharedFolder
from fedscale_halor.transport.tls import ServerTls

_log = logging.getLogger("fedscale_halor.transport")

_Result = TypeVar("_Result")

# gRPC refuses trailers over 8 KiB on the client side and the call then fails with a confusing RESOURCE_EXHAUSTED;
# a message that echoes a huge executor id must not turn a clear refusal into that
_DETAILS_LIMIT = 1000


def _token(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == TOKEN_METADATA_KEY:
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return ""


def _details(error: Exception) -> str:
    # str(KeyError) wraps the message in quotes; the executor should see the message itself
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return text if len(text) <= _DETAILS_LIMIT else text[:_DETAILS_LIMIT] + "..."


def _abort_with(context: grpc.ServicerContext, call_name: str, error: Exception) -> NoReturn:
    if not context.is_active():  # the executor hung up mid-call (e.g. it was killed): nobody is left to answer
        _log.info("an executor hung up during a %s call (%s)", call_name, type(error).__name__)
        context.abort(grpc.StatusCode.CANCELLED, "the executor hung up")
    details = _details(error)
    if isinstance(error, AuthenticationError):
        code = grpc.StatusCode.UNAUTHENTICATED
    elif isinstance(error, KeyError):
        code = grpc.StatusCode.NOT_FOUND
    elif isinstance(error, serde.MessageTooLargeError):
        code = grpc.StatusCode.RESOURCE_EXHAUSTED
    elif isinstance(error, serde.MalformedMessageError):
        code = grpc.StatusCode.INVALID_ARGUMENT
    else:
        _log.exception("aggregator service failed while answering a %s call", call_name)
        context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {details}")
    # the service logs its own refusals (a wrong token, an unknown executor); input it never saw is logged here
    level = logging.WARNING if isinstance(error, serde.MalformedMessageError) else logging.DEBUG
    _log.log(level, "refused a %s call from %s: %s: %s", call_name, context.peer(), code.name, details)
    context.abort(code, details)


def _answer(context: grpc.ServicerContext, call_name: str, call: Callable[[], _Result]) -> _Result:
    try:
        return call()
    except Exception as error:  # every failure must reach the executor as a status, not as a dropped stream
        _abort_with(context, call_name, error)


def _parse(message_type: Any, data: bytes) -> Any:
    try:
        return message_type.FromString(data)
    except DecodeError as error:
        raise serde.MalformedMessageError(f"the {message_type.DESCRIPTOR.name} request cannot be parsed "
                                          f"({len(data)} bytes): {error}") from None


@dataclass(frozen=True)
class Traffic:
    """Payload bytes through the server since it started (chunk envelopes and gRPC framing not counted)."""

    bytes_to_executors: int = 0
    bytes_from_executors: int = 0


class _AggregatorServicer:
    def __init__(self, service: AggregatorService, chunk_bytes: int, max_message_bytes: int) -> None:
        self._service = service
        self._chunk_bytes = chunk_bytes
        self._max_message_bytes = max_message_bytes
        self._traffic_lock = threading.Lock()
        self.traffic = Traffic()
        self.shared: SharedFolder | None = None
        self._receive_buffers = ReceiveBuffers()
        self._attendance_lock = threading.Lock()
        self._attending: set[threading.Event] = set()
        self._stopping = False

    def _count(self, sent: int = 0, received: int = 0) -> None:
        with self._traffic_lock:
            self.traffic = Traffic(self.traffic.bytes_to_executors + sent, self.traffic.bytes_from_executors + received)

    def Register(self, request: bytes, context: grpc.ServicerContext) -> pb.RegisterReply:  # noqa: N802
        token = _token(context)

        def register() -> pb.RegisterReply:
            reply = self._service.register(token, serde.info_from_proto(_parse(pb.ExecutorInfo, request)))
            message = serde.register_reply_to_proto(reply)
            if reply.accepted and self.shared is not None:
                message.shared_folder, message.shared_nonce = str(self.shared.path), self.shared.nonce
            return message

        return _answer(context, "Register", register)

    def NextEvent(self, request: bytes, context: grpc.ServicerContext) -> Iterator[pb.Chunk]:  # noqa: N802
        token = _token(context)

        def next_event() -> tuple[pb.EventRequest, tuple[framing.Buffer, ...]]:
            message = _parse(pb.EventRequest, request)
            event = self._service.next_event(token, message.executor_id)
            return message, serde.event_to_parts(event, self._max_message_bytes)

        message, payload = _answer(context, "NextEvent", next_event)
        self._count(sent=framing.parts_size(payload))
        if message.shared_memory and self.shared is not None and framing.parts_size(payload) >= SHARED_MIN_BYTES:
            name, size = self.shared.write(payload, "aggregator")
            yield serde.shared_file_chunk(name, size)
            return
        yield from serde.chunk_messages(payload, self._chunk_bytes)

    def Submit(self, request_iterator: Iterator[bytes], context: grpc.ServicerContext) -> pb.Ack:  # noqa: N802
        token = _token(context)

        def receive_and_submit() -> None:
            chunks = (_parse(pb.Chunk, raw) for raw in request_iterator)
            joined = serde.join_chunks(chunks, self._max_message_bytes, self.shared, self._receive_buffers)
            self._count(received=len(joined.data))
            completion = serde.completion_from_bytes(joined.data, self._max_message_bytes)
            self._service.submit(token, joined.executor_id, completion)

        _answer(context, "Submit", receive_and_submit)
        return pb.Ack()

    def Attend(self, request: bytes, context: grpc.ServicerContext) -> Iterator[pb.Ack]:  # noqa: N802
        """Held, with nothing sent, until the executor or the network ends it (a hang-up, reported to the service)
        or the server stops (not a hang-up). Each attending executor holds one worker thread."""
        token = _token(context)

        def attend() -> str:
            message = _parse(pb.EventRequest, request)
            self._service.attend(token, message.executor_id)
            return message.executor_id

        executor_id = _answer(context, "Attend", attend)
        ended = threading.Event()
        with self._attendance_lock:
            if self._stopping:
                return
            self._attending.add(ended)
        try:
            if context.add_callback(ended.set):  # False: the call is already over
                ended.wait()
        finally:
            with self._attendance_lock:
                self._attending.discard(ended)
                stopping = self._stopping
        if not stopping:
            _log.info("executor %s hung up (%s)", executor_id, context.peer())
            self._service.hung_up(executor_id)
        yield from ()

    def end_attendance(self) -> None:
        """Release every held Attend call, as the server stops, without reporting hang-ups."""
        with self._attendance_lock:
            self._stopping = True
            for ended in self._attending:
                ended.set()

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """The methods with no request deserializer: each parses its own bytes (see the module's docstring)."""
        return {
            "Register": grpc.unary_unary_rpc_method_handler(
                self.Register, response_serializer=pb.RegisterReply.SerializeToString),
            "NextEvent": grpc.unary_stream_rpc_method_handler(
                self.NextEvent, response_serializer=pb.Chunk.SerializeToString),
            "Submit": grpc.stream_unary_rpc_method_handler(
                self.Submit, response_serializer=pb.Ack.SerializeToString),
            "Attend": grpc.unary_stream_rpc_method_handler(
                self.Attend, response_serializer=pb.Ack.SerializeToString),
        }


class GrpcAggregatorServer:
    """Serves ``service`` on ``host:port`` until stopped; use as a context manager or call start() / stop()."""

    def __init__(self, service: AggregatorService, host: str, port: int, *, chunk_bytes: int,
                 tls: ServerTls | None = None, max_workers: int = 32,
                 max_message_bytes: int = serde.DEFAULT_MAX_MESSAGE_BYTES,
                 shared_memory_parent: str | None = None,
                 interceptors: Sequence[grpc.ServerInterceptor] = (), token: str | None = None) -> None:
        """``shared_memory_parent`` (e.g. /dev/shm) lets executors on this host pass payloads as files there;
        ``interceptors`` see every call before the service does; ``token``, the job's, refuses calls without it
        before any interceptor or the service sees them, and before their request is read."""
        if chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        if max_workers < 2:
            # executors hold a worker each for their attendance and one for up to a long poll; one worker would
            # serialize them all
            raise ValueError(f"max_workers must be at least 2, got {max_workers}")
        self._servicer = _AggregatorServicer(service, chunk_bytes, max_message_bytes)
        self._address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
        self._chunk_bytes = chunk_bytes
        self._tls = tls
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        self._port: int | None = None
        self._shared_memory_parent = shared_memory_parent
        token_check = (TokenInterceptor(token),) if token is not None else ()
        self._interceptors = (*token_check, *interceptors)  # the first runs first: nothing sees a refused call

    @property
    def traffic(self) -> Traffic:
        return self._servicer.traffic

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the gRPC server has not been started")
        return self._port

    def start(self) -> int:
        """Bind and serve; returns the bound port (the free one picked when port 0 was asked for)."""
        if self._server is not None:
            raise RuntimeError(f"the gRPC server on {self._address} is already started")
        server = grpc.server(ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="grpc-aggregator"),
                             options=server_options(self._chunk_bytes), interceptors=self._interceptors)
        handlers = self._servicer.handlers()
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
        server.add_registered_method_handlers(SERVICE_NAME, handlers)
        try:
            if self._tls is None:
                port = server.add_insecure_port(self._address)
            else:
                port = server.add_secure_port(self._address, self._tls.credentials())
        except RuntimeError as error:  # recent grpc raises instead of returning port 0
            raise OSError(f"cannot bind the aggregator's gRPC server to {self._address}: {error}") from error
        if port == 0:
            raise OSError(f"cannot bind the aggregator's gRPC server to {self._address} (address in use?)")
        if self._shared_memory_parent is not None:
            self._servicer.shared = SharedFolder.create(self._shared_memory_parent)
            if self._servicer.shared is None:
                _log.info("no writable %s: executors on this host stream payloads over gRPC",
                          self._shared_memory_parent)
        server.start()
        self._server, self._port = server, port
        _log.info("aggregator gRPC server listening on %s port %d (%s)", self._address.rpartition(":")[0], port,
                  "TLS" if self._tls is not None else "plain TCP")
        return port

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop accepting calls and end running ones after ``grace_s``; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            self._servicer.end_attendance()  # held calls would otherwise last the whole grace period
            server.stop(grace_s).wait()
        shared, self._servicer.shared = self._servicer.shared, None
        if shared is not None:
            shared.remove()

    def __enter__(self) -> GrpcAggregatorServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
