"""An executor's gRPC channel to the aggregator: the ``Transport`` that real deployments use.

The service's errors come back as the exceptions the in-memory transport would raise (AuthenticationError, KeyError,
MalformedMessageError). An aggregator that cannot be reached raises a ``ConnectionError`` subclass, so an executor
can tell "the job is over or the aggregator died" from a bug and exit cleanly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from fedscale_halor.transport import serde
from fedscale_halor.transport.base import AggregatorGoneError, AuthenticationError, Transport
from fedscale_halor.transport.framing import Buffer, parts_size
from fedscale_halor.transport.grpc_wire import TOKEN_METADATA_KEY, client_options
from fedscale_halor.transport.messages import Completion, Event, ExecutorInfo, RegisterReply
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.transport.proto import aggregator_pb2_grpc as pb_grpc
from fedscale_halor.transport.receive_buffers import ReceiveBuffers
from fedscale_halor.transport.shared_memory import SHARED_MIN_BYTES, SharedFolder
from fedscale_halor.transport.tls import ClientTls

_log = logging.getLogger("fedscale_halor.transport")

_Result = TypeVar("_Result")

_FIRST_RETRY_DELAY_S = 0.05
_MAX_RETRY_DELAY_S = 1.0
# a server that stops cancels the calls it is serving; to the executor that is the same as a server that went away
_TRANSIENT_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


class AggregatorUnreachableError(ConnectionError):
    """No aggregator answered at the address within the connect timeout."""


class RemoteCallError(RuntimeError):
    """The aggregator answered a call with an error other than the ones that have their own exception."""


def _raise_as_protocol_error(error: grpc.RpcError, call_name: str) -> None:
    """Turn a status the server maps from a service exception back into that exception."""
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.UNAUTHENTICATED:
        raise AuthenticationError(details) from None
    if code == grpc.StatusCode.NOT_FOUND:
        raise KeyError(details) from None
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        raise serde.MessageTooLargeError(f"{call_name} refused by the aggregator: {details}") from None
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        raise serde.MalformedMessageError(f"{call_name} refused by the aggregator: {details}") from None


class GrpcTransport(Transport):
    """``register`` waits (up to ``connect_timeout_s``) for an aggregator that is not up yet; once it has been
    reached, calls retry transient failures for ``reconnect_window_s`` before raising ``AggregatorGoneError``."""

    def __init__(self, address: str, token: str, *, chunk_bytes: int, tls: ClientTls | None = None,
                 connect_timeout_s: float = 60.0, reconnect_window_s: float = 10.0,
                 max_message_bytes: int = serde.DEFAULT_MAX_MESSAGE_BYTES, shared_memory: bool = True) -> None:
        """With ``shared_memory``, payloads go through the aggregator's shared folder when this process can see it
        (the aggregator's host); otherwise, and always for remote executors, they stream over gRPC."""
        options = client_options(chunk_bytes, reconnect_backoff_max_ms=int(_MAX_RETRY_DELAY_S * 1000))
        if tls is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, tls.credentials(), options=options + tls.channel_options())
        self._stub = pb_grpc.AggregatorStub(self._channel)
        self._address = address
        self._metadata = ((TOKEN_METADATA_KEY, token),)
        self._chunk_bytes = chunk_bytes
        self._connect_timeout_s = connect_timeout_s
        self._reconnect_window_s = reconnect_window_s
        self._max_message_bytes = max_message_bytes
        self._reached = False
        self._use_shared_memory = shared_memory
        self._shared: SharedFolder | None = None
        self._receive_buffers = ReceiveBuffers()

    def register(self, info: ExecutorInfo) -> RegisterReply:
        request = serde.info_to_proto(info)
        reply = self._call("Register", lambda: self._stub.Register(request, metadata=self._metadata))
        if self._use_shared_memory:
            if self._shared is not None:  # registering again (a restarted aggregator has a new folder)
                self._shared.detach()
            self._shared = SharedFolder.attach(reply.shared_folder, reply.shared_nonce)
            if self._shared is not None:
                _log.info("executor %s passes payloads through %s (on the aggregator's host)", info.executor_id,
                          self._shared.path)
        return serde.register_reply_from_proto(reply)

    def next_event(self, executor_id: str) -> Event:
        def receive() -> Buffer:
            request = pb.EventRequest(executor_id=executor_id, shared_memory=self._shared is not None)
            chunks = self._stub.NextEvent(request, metadata=self._metadata)
            try:
                return serde.join_chunks(chunks, self._max_message_bytes, self._shared, self._receive_buffers).data
            except serde.MalformedMessageError:
                chunks.cancel()  # the rest of an oversized or broken stream need not arrive
                raise

        return serde.event_from_bytes(self._call("NextEvent", receive), self._max_message_bytes)

    def submit(self, executor_id: str, completion: Completion) -> None:
        payload = serde.completion_to_parts(completion, self._max_message_bytes)
        if self._shared is not None and parts_size(payload) >= SHARED_MIN_BYTES:
            with self._shared.sending(payload, executor_id) as (name, size):
                self._call("Submit", lambda: self._stub.Submit(
                    iter([serde.shared_file_chunk(name, size, executor_id)]), metadata=self._metadata))
            return
        self._call("Submit", lambda: self._stub.Submit(
            serde.chunk_messages(payload, self._chunk_bytes, executor_id), metadata=self._metadata))

    def close(self) -> None:
        if self._shared is not None:
            self._shared.detach()
        self._channel.close()

    def _call(self, call_name: str, attempt: Callable[[], _Result]) -> _Result:
        """Run ``attempt``, retrying while the aggregator is unavailable: until the connect timeout if it was never
        reached, within the reconnect window if it was."""
        failing_since: float | None = None
        delay_s = _FIRST_RETRY_DELAY_S
        while True:
            try:
                result = attempt()
            except grpc.RpcError as error:
                _raise_as_protocol_error(error, call_name)
                if error.code() not in _TRANSIENT_CODES:
                    raise RemoteCallError(f"{call_name} to the aggregator at {self._address} failed: "
                                          f"{error.code().name}: {error.details()}") from None
                window_s = self._reconnect_window_s if self._reached else self._connect_timeout_s
                if failing_since is None:
                    failing_since = time.monotonic()
                    # a misconfigured address or certificate would otherwise wait out the whole window in silence
                    _log.info("%s: the aggregator at %s does not answer (%s); retrying for up to %g s", call_name,
                              self._address, error.details(), window_s)
                waited_s = time.monotonic() - failing_since
                if waited_s >= window_s:
                    raise self._unavailable_error(call_name, waited_s, error.details() or "") from None
                time.sleep(min(delay_s, window_s - waited_s))
                delay_s = min(delay_s * 2, _MAX_RETRY_DELAY_S)
            else:
                self._reached = True
                return result

    def _unavailable_error(self, call_name: str, waited_s: float, details: str) -> ConnectionError:
        if self._reached:
            return AggregatorGoneError(f"{call_name}: the aggregator at {self._address} stopped answering "
                                       f"(retried for {waited_s:.1f} s; last error: {details})")
        return AggregatorUnreachableError(f"{call_name}: no aggregator answered at {self._address} within "
                                          f"{self._connect_timeout_s:g} s (last error: {details})")
