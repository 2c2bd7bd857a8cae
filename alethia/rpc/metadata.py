"""The call metadata both sides of a channel agree on: header names and the request id.

Kept apart from :mod:`alethia.rpc.server` so that a client (the CLI above all) does not
import the server's auth, health and reflection machinery to send a token.
"""

from __future__ import annotations

import contextvars

# The request id of the call being served (server) or made (client), for logs and propagation.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

AUTH_HEADER = "authorization"
REQUEST_ID_HEADER = "x-request-id"
