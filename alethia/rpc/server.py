"""Server bootstrap shared by the four services.

``create_server`` gives a ``grpc.aio`` server with the standard health service, server
reflection, a request id in ``contextvars``, service-to-service authentication (a shared
token, when configured) and the error mapping of :mod:`alethia.rpc.status`. Tests start it
on port 0 and read the bound port back; ``serve`` runs it until SIGTERM/SIGINT and then
shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from alethia.errors import AlethiaError, InvalidArgument, Unavailable
from alethia.rpc.status import internal_status, to_status

log = logging.getLogger(__name__)

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

AUTH_HEADER = "authorization"
REQUEST_ID_HEADER = "x-request-id"
# Health and reflection stay open so load balancers and grpcurl work without the token.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Registrar = Callable[[grpc.aio.Server], None]


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    if isinstance(exc, AlethiaError):
        await context.abort_with_status(to_status(exc))
    from alethia.database import is_connection_lost  # here: the mapper has no database

    if is_connection_lost(exc):
        # Transient: the pool reconnects; callers retry UNAVAILABLE (INTERNAL means a bug).
        log.warning(
            "database connection lost in RPC (request id %s): %s", request_id.get(), type(exc).__name__
        )
        await context.abort_with_status(to_status(Unavailable("database connection lost; retry the call")))
    log.exception("unhandled error in RPC (request id %s)", request_id.get())
    await context.abort_with_status(internal_status())


class _Undecodable:
    """Stands in for a request whose bytes did not parse, so the handler can refuse it cleanly."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    # grpc answers a deserializer exception with UNKNOWN and the parser's text; bad bytes
    # (corrupt, or nested past the parser's depth limit) are the caller's fault instead.
    if deserialize is None:
        return None

    def wrapped(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:
            return _Undecodable(exc)

    return wrapped


def _undecodable() -> InvalidArgument:
    return InvalidArgument(
        [], "request is not a valid protobuf message for this method (corrupt or nested too deeply)"
    )


def _wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(req: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(req, _Undecodable):
            await _abort(context, _undecodable())
        try:
            return await behavior(req, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, exc)

    return wrapper


def _wrap_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(req: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(req, _Undecodable):
            await _abort(context, _undecodable())
        try:
            async for item in behavior(req, context):
                yield item
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, exc)

    return wrapper


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns domain errors into statuses and sets the request id for logs."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        md = dict(handler_call_details.invocation_metadata or ())
        request_id.set(str(md.get(REQUEST_ID_HEADER) or uuid.uuid4().hex))
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary),
                request_deserializer=_safe_deserializer(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream),
                request_deserializer=_safe_deserializer(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls that do not carry ``authorization: Bearer <token>`` (constant-time check)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method or ""
        if method.startswith(_OPEN_PREFIXES):
            return await continuation(handler_call_details)
        md = dict(handler_call_details.invocation_metadata or ())
        given = str(md.get(AUTH_HEADER, "")).encode()
        if hmac.compare_digest(given, self._expected):
            return await continuation(handler_call_details)

        async def deny_unary(req: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid service credentials")

        async def deny_stream(req: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid service credentials")
            yield  # pragma: no cover - makes this an async generator

        handler = await continuation(handler_call_details)
        if handler is not None and handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                deny_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            deny_unary,
            request_deserializer=handler.request_deserializer if handler else None,
            response_serializer=handler.response_serializer if handler else None,
        )


async def create_server(
    registrars: Iterable[Registrar],
    service_names: Sequence[str],
    address: str = "127.0.0.1:0",
    auth_token: str | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Build and start a server; returns ``(server, bound_port, health_servicer)``.

    ``service_names`` are the full names (``alethia.specs.v1.SpecService``) reported as
    SERVING by the health service and listed by reflection.
    """
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if auth_token:
        interceptors.append(TokenAuthInterceptor(auth_token))
    interceptors.append(ErrorInterceptor())
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", 32 * 1024 * 1024),
            ("grpc.max_send_message_length", 32 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    for register in registrars:
        register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind gRPC server to {address}")
    await server.start()
    for name in [*service_names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer


async def serve(
    server: grpc.aio.Server,
    health_servicer: health.aio.HealthServicer,
    grace_seconds: float = 10.0,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT, then report NOT_SERVING and stop within ``grace_seconds``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(server.wait_for_termination())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    await health_servicer.enter_graceful_shutdown()
    if on_shutdown is not None:
        await on_shutdown()
    await server.stop(grace_seconds)
    waiter.cancel()
    stopper.cancel()


@dataclass
class RunningService:
    """A started service: what tests and ``__main__`` need to reach and stop it."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    host: str = "127.0.0.1"
    # Closers run after the server stops (engines, NATS connections, background tasks).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        for close in reversed(self.closers):
            await close()
