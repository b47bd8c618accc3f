"""Refuses a call with a missing or wrong job token before a byte of its request is read.

The service checks the token too, but only once the servicer has the whole request: a Submit stream is joined
first, so a caller without the token could make the aggregator buffer up to the message limit (2 GiB) per call.
gRPC runs interceptors as a call's headers arrive, and the token travels in those headers.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import grpc

from fedscale_halor.transport.grpc_wire import TOKEN_METADATA_KEY

_log = logging.getLogger("fedscale_halor.transport")

REFUSAL_DETAILS = "missing or wrong job token"


def presented_token(details: grpc.HandlerCallDetails) -> bytes | None:
    """The token in a call's metadata as bytes, None when it carries none."""
    for key, value in details.invocation_metadata or ():
        if key == TOKEN_METADATA_KEY:
            return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
    return None


class TokenInterceptor(grpc.ServerInterceptor):
    """Lets through the calls that present ``token``; answers every other one UNAUTHENTICATED and logs it."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("a job token is required")
        self._token = token.encode("utf-8")

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
                          details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        presented = presented_token(details)
        # compare_digest on bytes: its time depends on the lengths only, never on how much of the token matched
        if presented is not None and hmac.compare_digest(presented, self._token):
            return continuation(details)
        handler = continuation(details)
        if handler is None:  # an unknown method stays UNIMPLEMENTED: that tells nothing about the token
            return None
        return _refusal(details.method, "no job token" if presented is None else "a wrong job token")


def _refusal(method: str, what: str) -> grpc.RpcMethodHandler:
    name = method.rpartition("/")[2] or method

    def refuse(_requests: object, context: grpc.ServicerContext) -> None:
        # the peer is known only from the call's context, not from the handler call details
        _log.warning("refused a %s call from %s: it presented %s", name, context.peer(), what)
        context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL_DETAILS)

    # a request-streaming handler whatever the method's kind: gRPC reads a unary request whole before it calls the
    # handler, while a request iterator nobody pulls reads nothing (the wire form is the same for both kinds)
    return grpc.stream_unary_rpc_method_handler(refuse)
