"""Server bootstrap shared by the four services.

``create_server`` gives a ``grpc.aio`` server with the standard health service, server
reflection, a request id in ``contextvars``, service-to-service authentication (a shared
token, or users, runners and services told apart: :mod:`alethia.rpc.auth`) and the error mapping of :mod:`alethia.rpc.status`. Tests start it
on port 0 and read the bound port back; ``serve`` runs it until SIGTERM/SIGINT and then
shuts down gracefully.
"""

from __future__ import annotations

import asyncio
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
from alethia.rpc.auth import ANONYMOUS, Authenticator, Caller, authorize, set_caller
from alethia.rpc.metadata import AUTH_HEADER, REQUEST_ID_HEADER, request_id
from alethia.rpc.status import internal_status, to_status

log = logging.getLogger(__name__)

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


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every call (see :mod:`alethia.rpc.auth`) and binds the caller.

    Unknown credentials are refused with UNAUTHENTICATED before the servicer runs; a caller
    of the wrong kind (a user on RunnerService, a runner elsewhere) with PERMISSION_DENIED.
    Health and reflection stay open so probes and grpcurl work without credentials.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method or ""
        if method.startswith(_OPEN_PREFIXES):
            return await continuation(handler_call_details)
        md = dict(handler_call_details.invocation_metadata or ())
        refusal: AlethiaError | None = None
        caller = ANONYMOUS
        try:
            caller = self._auth.authenticate(str(md.get(AUTH_HEADER, "")))
            authorize(caller, method, self._auth.separate_runners)
        except AlethiaError as exc:
            refusal = exc
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if refusal is not None:
            return _denying(handler, refusal)
        return _with_caller(handler, caller)


def _denying(handler: grpc.RpcMethodHandler, refusal: AlethiaError) -> grpc.RpcMethodHandler:
    async def deny_unary(req: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort_with_status(to_status(refusal))

    async def deny_stream(req: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort_with_status(to_status(refusal))
        yield  # pragma: no cover - makes this an async generator

    # The refusal has the method's own shape, so the client sees the status, not a protocol error.
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            deny_stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            deny_stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            deny_unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        deny_unary,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _with_caller(handler: grpc.RpcMethodHandler, caller: Caller) -> grpc.RpcMethodHandler:
    # The caller is bound inside the RPC's own task, where the servicer runs.
    if handler.unary_unary:
        behavior = handler.unary_unary

        async def unary(req: Any, context: grpc.aio.ServicerContext) -> Any:
            set_caller(caller)
            return await behavior(req, context)

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        stream_behavior = handler.unary_stream

        async def stream(req: Any, context: grpc.aio.ServicerContext) -> Any:
            set_caller(caller)
            async for item in stream_behavior(req, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary:
        client_stream = handler.stream_unary

        async def stream_in(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            set_caller(caller)
            return await client_stream(requests, context)

        return grpc.stream_unary_rpc_method_handler(
            stream_in,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream:
        bidi = handler.stream_stream

        async def both(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            set_caller(caller)
            async for item in bidi(requests, context):
                yield item

        return grpc.stream_stream_rpc_method_handler(
            both,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


# Reflection v1 and v1alpha carry the same messages (only the package differs), so the
# v1alpha servicer answers both: grpcurl and newer clients ask for v1 first.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def _enable_reflection(names: Sequence[str], server: grpc.aio.Server) -> None:
    from grpc_reflection.v1alpha import reflection_pb2
    from grpc_reflection.v1alpha._async import ReflectionServicer

    all_names = [*names, reflection.SERVICE_NAME, REFLECTION_V1]
    servicer = ReflectionServicer(all_names)
    for service in (reflection.SERVICE_NAME, REFLECTION_V1):
        handler = grpc.method_handlers_generic_handler(
            service,
            {
                "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                    servicer.ServerReflectionInfo,
                    request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                    response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))


async def create_server(
    registrars: Iterable[Registrar],
    service_names: Sequence[str],
    address: str = "127.0.0.1:0",
    auth_token: str | None = None,
    authenticator: Authenticator | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Build and start a server; returns ``(server, bound_port, health_servicer)``.

    ``service_names`` are the full names (``alethia.specs.v1.SpecService``) reported as
    SERVING by the health service and listed by reflection (v1 and v1alpha). Credentials:
    ``authenticator`` (users, runners, services), or just the shared ``auth_token``.
    """
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if authenticator is None and auth_token:
        authenticator = Authenticator(service_token=auth_token)
    if authenticator is not None and authenticator.enabled:
        interceptors.append(AuthInterceptor(authenticator))
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
    _enable_reflection([*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name], server)
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
