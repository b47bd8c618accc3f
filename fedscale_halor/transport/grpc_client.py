"""An executor's gRPC channel to the aggregator: the ``Transport`` that real deployments use.

The service's errors come back as the exceptions the in-memory transport would raise (AuthenticationError, KeyError,
MalformedMessageError). Transient failures are retried by gRPC's own retry policy (grpc_wire.py says which calls
it covers). A call that still fails means the aggregator is lost: the transport waits for the channel to connect
again (with gRPC's reconnect backoff, through a probe call that waits for it), logging once when it loses the
aggregator and once when it is back, and makes the call again; an aggregator that stays away for the whole window
raises a ``ConnectionError`` subclass, so an executor can tell "the aggregator is gone" from a bug and exit cleanly.

Whether the aggregator that comes back is the one that was lost is for the executor to find out: a restarted one
does not know the executor and refuses its calls with NOT_FOUND (KeyError here), and the executor registers again.
Until a call shows that the aggregator knows this executor, payloads are streamed, not passed through the shared
folder: a restarted aggregator has a new one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from fedscale_halor.transport import serde
from fedscale_halor.transport.base import AggregatorGoneError, AuthenticationError, Transport
from fedscale_halor.transport.framing import Buffer, parts_size
from fedscale_halor.transport.grpc_wire import SERVICE_NAME, TOKEN_METADATA_KEY, client_options
from fedscale_halor.transport.messages import Completion, Event, ExecutorInfo, RegisterReply
from fedscale_halor.transport.proto import aggregator_pb2 as pb
from fedscale_halor.transport.proto import aggregator_pb2_grpc as pb_grpc
from fedscale_halor.transport.receive_buffers import ReceiveBuffers
from fedscale_halor.transport.shared_memory import SHARED_MIN_BYTES, SharedFolder
from fedscale_halor.transport.tls import ClientTls

_log = logging.getLogger("fedscale_halor.transport")

_Result = TypeVar("_Result")

_MAX_RECONNECT_BACKOFF_MS = 1000
_PROBE_METHOD = f"/{SERVICE_NAME}/Probe"  # deliberately served by no one (see _answers_within)
# A call that fails while the channel still looks connected (a server that is stopping, or one that sheds calls) is
# made again after this pause at least, not in a tight loop.
_PAUSE_BEFORE_WAITING_S = 0.1
# a server that stops cancels the calls it is serving; to the executor that is the same as a server that went away
_LOST_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
# a broken or refused attendance is opened again after this pause (a refused one: until the executor has registered)
_ATTEND_AGAIN_AFTER_S = 0.2


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


class _Link:
    """Whether the aggregator is lost, shared by the executor's threads so that a loss is logged once, when the
    first call notices it, and its end once, when the first call gets through again."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._lock = threading.Lock()
        self._lost_since: float | None = None
        self._was_reached = False

    def lost(self, call_name: str, details: str, window_s: float, reached: bool) -> float:
        """Note a failed call; returns when the loss started."""
        with self._lock:
            if self._lost_since is None:
                self._lost_since, self._was_reached = time.monotonic(), reached
                if reached:
                    _log.warning("%s: lost the aggregator at %s (%s); reconnecting for up to %g s", call_name,
                                 self._address, details, window_s)
                else:
                    # a misconfigured address or certificate would otherwise wait out the whole window in silence
                    _log.info("%s: no aggregator answers at %s yet (%s); waiting for up to %g s", call_name,
                              self._address, details, window_s)
            return self._lost_since

    def back(self) -> bool:
        """Note a call that got through; True when it ended a loss."""
        with self._lock:
            if self._lost_since is None:
                return False
            _log.info("the aggregator at %s answers%s (after %.1f s)", self._address,
                      " again" if self._was_reached else "", time.monotonic() - self._lost_since)
            self._lost_since = None
            return True


class GrpcTransport(Transport):
    """``register`` waits (up to ``connect_timeout_s``) for an aggregator that is not up yet; once it has been
    reached, an aggregator that stops answering is waited for ``reconnect_window_s`` (the job's reconnect_timeout)
    before calls raise ``AggregatorGoneError``."""

    def __init__(self, address: str, token: str, *, chunk_bytes: int, tls: ClientTls | None = None,
                 connect_timeout_s: float = 60.0, reconnect_window_s: float = 60.0,
                 max_message_bytes: int = serde.DEFAULT_MAX_MESSAGE_BYTES, shared_memory: bool = True) -> None:
        """With ``shared_memory``, payloads go through the aggregator's shared folder when this process can see it
        (the aggregator's host); otherwise, and always for remote executors, they stream over gRPC."""
        options = client_options(chunk_bytes, reconnect_backoff_max_ms=_MAX_RECONNECT_BACKOFF_MS)
        if tls is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, tls.credentials(), options=options + tls.channel_options())
        self._stub = pb_grpc.AggregatorStub(self._channel)
        self._probe = self._channel.unary_unary(_PROBE_METHOD)  # raw bytes both ways: nothing to parse
        self._address = address
        self._metadata = ((TOKEN_METADATA_KEY, token),)
        self._chunk_bytes = chunk_bytes
        self._connect_timeout_s = connect_timeout_s
        self._reconnect_window_s = reconnect_window_s
        self._max_message_bytes = max_message_bytes
        self._reached = False
        self._link = _Link(address)
        self._use_shared_memory = shared_memory
        self._shared: SharedFolder | None = None
        self._shared_confirmed = True  # False from a loss until the aggregator shows it still knows this executor
        self._receive_buffers = ReceiveBuffers()
        self._closing = threading.Event()
        self._attendance: grpc.Call | None = None
        self._attendance_lock = threading.Lock()
        self._attendant: threading.Thread | None = None

    def register(self, info: ExecutorInfo) -> RegisterReply:
        request = serde.info_to_proto(info)
        reply = self._call("Register", lambda: self._stub.Register(request, metadata=self._metadata))
        if self._use_shared_memory:
            if self._shared is not None:  # registering again (a restarted aggregator has a new folder)
                self._shared.detach()
            self._shared = SharedFolder.attach(reply.shared_folder, reply.shared_nonce)
            self._shared_confirmed = True
            if self._shared is not None:
                _log.info("executor %s passes payloads through %s (on the aggregator's host)", info.executor_id,
                          self._shared.path)
        answer = serde.register_reply_from_proto(reply)
        if answer.accepted and self._attendant is None:
            self._attendant = threading.Thread(target=self._attend, args=(info.executor_id,), daemon=True,
                                               name=f"{info.executor_id}-attendance")
            self._attendant.start()
        return answer

    def _attend(self, executor_id: str) -> None:
        """Hold an Attend call open for as long as this transport is open, opening it again whenever it ends, so
        the aggregator learns at once when this process or its connection is gone."""
        request = pb.EventRequest(executor_id=executor_id)
        while not self._closing.is_set():
            with self._attendance_lock:
                if self._closing.is_set():
                    return
                call = self._stub.Attend(request, metadata=self._metadata, wait_for_ready=True)
                self._attendance = call
            try:
                for _ in call:
                    pass
            except grpc.RpcError as error:
                if not self._closing.is_set():
                    _log.debug("executor %s: attendance ended: %s %s", executor_id, error.code().name,
                               error.details())
            self._closing.wait(_ATTEND_AGAIN_AFTER_S)

    def next_event(self, executor_id: str) -> Event:
        def receive() -> Buffer:
            shared = self._usable_shared()
            request = pb.EventRequest(executor_id=executor_id, shared_memory=shared is not None)
            chunks = self._stub.NextEvent(request, metadata=self._metadata)
            try:
                return serde.join_chunks(chunks, self._max_message_bytes, shared, self._receive_buffers).data
            except serde.MalformedMessageError:
                chunks.cancel()  # the rest of an oversized or broken stream need not arrive
                raise

        data = self._call("NextEvent", receive)
        self._shared_confirmed = True  # the aggregator answered this executor's poll: it knows it
        return serde.event_from_bytes(data, self._max_message_bytes)

    def submit(self, executor_id: str, completion: Completion) -> None:
        payload = serde.completion_to_parts(completion, self._max_message_bytes)

        def send() -> None:  # decided again at each attempt: a reconnection may have stopped the shared folder
            shared = self._usable_shared()
            if shared is not None and parts_size(payload) >= SHARED_MIN_BYTES:
                with shared.sending(payload, executor_id) as (name, size):
                    self._stub.Submit(iter([serde.shared_file_chunk(name, size, executor_id)]),
                                      metadata=self._metadata)
                return
            self._stub.Submit(serde.chunk_messages(payload, self._chunk_bytes, executor_id), metadata=self._metadata)

        self._call("Submit", send)
        self._shared_confirmed = True

    def close(self) -> None:
        with self._attendance_lock:
            self._closing.set()
            if self._attendance is not None:
                self._attendance.cancel()
        if self._attendant is not None:
            self._attendant.join(timeout=5.0)
        if self._shared is not None:
            self._shared.detach()
        self._channel.close()

    def _usable_shared(self) -> SharedFolder | None:
        return self._shared if self._shared_confirmed else None

    def _call(self, call_name: str, attempt: Callable[[], _Result]) -> _Result:
        """Run ``attempt`` (which gRPC retries by its policy); while the aggregator is lost, wait for it and run
        ``attempt`` again: until the connect timeout if it was never reached, within the reconnect window if it
        was."""
        while True:
            try:
                result = attempt()
            except grpc.RpcError as error:
                _raise_as_protocol_error(error, call_name)
                if error.code() not in _LOST_CODES:
                    raise RemoteCallError(f"{call_name} to the aggregator at {self._address} failed: "
                                          f"{error.code().name}: {error.details()}") from None
                self._wait_for_aggregator(call_name, error.details() or "")
            else:
                self._reached = True
                self._link.back()
                return result

    def _wait_for_aggregator(self, call_name: str, details: str) -> None:
        """Return once the channel is connected again; raise once the window since the loss began has passed."""
        window_s = self._reconnect_window_s if self._reached else self._connect_timeout_s
        lost_since = self._link.lost(call_name, details, window_s, self._reached)
        self._shared_confirmed = False
        deadline = lost_since + window_s
        while time.monotonic() < deadline:
            time.sleep(min(_PAUSE_BEFORE_WAITING_S, max(0.0, deadline - time.monotonic())))
            if self._answers_within(deadline - time.monotonic()):
                return
        raise self._unavailable_error(call_name, time.monotonic() - lost_since, details) from None

    def _answers_within(self, timeout_s: float) -> bool:
        """Whether a server answers at the address within ``timeout_s``. The probe waits for the channel to connect
        (with gRPC's reconnect backoff) and names a method no server has, so any server answers it at once, with
        UNIMPLEMENTED, and nothing reaches the service."""
        if timeout_s <= 0:
            return False
        try:
            self._probe(b"", timeout=timeout_s, wait_for_ready=True)
        except grpc.RpcError as error:
            # UNAVAILABLE: a server was reached but is going away (or the connection broke); not an answer
            return error.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
        return True

    def _unavailable_error(self, call_name: str, waited_s: float, details: str) -> ConnectionError:
        if self._reached:
            return AggregatorGoneError(f"{call_name}: the aggregator at {self._address} stopped answering "
                                       f"(waited {waited_s:.1f} s for it, reconnect_timeout "
                                       f"{self._reconnect_window_s:g} s; last error: {details})")
        return AggregatorUnreachableError(f"{call_name}: no aggregator answered at {self._address} within "
                                          f"{self._connect_timeout_s:g} s (last error: {details})")
