"""Client channels between services: one place that adds the auth token and request id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from alethia.rpc.metadata import AUTH_HEADER, REQUEST_ID_HEADER, request_id


class _Metadata:
    """Adds the bearer token and the request id to a call's metadata."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        md = grpc.aio.Metadata(*(details.metadata or ()))
        if self._token:
            md.add(AUTH_HEADER, f"Bearer {self._token}")
        rid = request_id.get()
        if rid:
            md.add(REQUEST_ID_HEADER, rid)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, md, details.credentials, details.wait_for_ready
        )


class _MetadataInterceptor(_Metadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(self._details(details), request)


class _StreamMetadataInterceptor(_Metadata, grpc.aio.UnaryStreamClientInterceptor):
    """The same metadata on server-streaming calls.

    A separate class on purpose: grpc.aio files each interceptor under ONE call kind
    (an if/elif on its base classes), so one class for both kinds never sees streams.
    """

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(self._details(details), request)


def connect(address: str, auth_token: str | None = None) -> grpc.aio.Channel:
    """An insecure aio channel to ``host:port`` that carries the service token, if any."""
    return grpc.aio.insecure_channel(
        address,
        interceptors=[_MetadataInterceptor(auth_token), _StreamMetadataInterceptor(auth_token)],
        options=[
            ("grpc.max_receive_message_length", 32 * 1024 * 1024),
            ("grpc.max_send_message_length", 32 * 1024 * 1024),
            ("grpc.enable_retries", 1),
            # After an outage, reconnect within seconds of the peer's return: the default
            # backoff grows to two minutes, longer than a runner's lease.
            ("grpc.initial_reconnect_backoff_ms", 500),
            ("grpc.max_reconnect_backoff_ms", 5000),
        ],
    )
