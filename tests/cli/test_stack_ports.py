"""``alethia up`` picks every port so that stacks starting together cannot collide.

Reservations are held across processes (two reservers never hand out one port); a part
whose port was taken anyway starts again on new ports; a part that cannot start names
its log. The two-stacks-at-once run is in ``tests/reliability/test_up_concurrent.py``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from alethia.stack.infra import NatsServer, SeaweedS3
from alethia.stack.ports import PortReservations, bindable
from alethia.stack.supervisor import Stack, StackConfig, StackStartError
from tests.e2e.conftest import ROOT, clean_env

HOLDER = """
import json, sys
from pathlib import Path
from alethia.stack.ports import PortReservations
r = PortReservations(lock_dir=Path(sys.argv[1]))
ports = [r.reserve(int(sys.argv[2])) for _ in range(25)]
print(json.dumps(ports), flush=True)
sys.stdin.read()  # hold them until the test lets go
"""


def test_two_processes_never_reserve_the_same_port(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(lock_dir), "50051"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=clean_env(),
            text=True,
        )
        for _ in range(2)
    ]
    try:
        held = [json.loads(p.stdout.readline()) for p in procs if p.stdout]  # type: ignore[union-attr]
    finally:
        for p in procs:
            p.communicate("", timeout=30)
    assert len(held) == 2 and all(len(set(h)) == 25 for h in held)
    assert not set(held[0]) & set(held[1])
    # Once released (the holders exited), the ports can be taken again.
    mine = PortReservations(lock_dir=lock_dir)
    assert mine.reserve(held[0][1]) == held[0][1]
    mine.release_all()


def test_a_port_in_use_is_never_handed_out(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = PortReservations(lock_dir=tmp_path)
        got = r.reserve(port)
        assert got != port and bindable("127.0.0.1", got)
        assert r.held == [got]
        r.release_all()
        assert r.held == []


class _Trap(PortReservations):
    """Hands out, once, a port a foreign process already listens on: the race window, made certain."""

    def __init__(self, trap: int, lock_dir: Path) -> None:
        super().__init__(lock_dir=lock_dir)
        self.trap = trap

    def reserve(self, preferred: int = 0, attempts: int = 500) -> int:
        if self.trap:
            port, self.trap = self.trap, 0
            return port
        return super().reserve(0, attempts)


def test_a_service_whose_port_was_taken_starts_again_elsewhere(
    tmp_path: Path, nats_server: NatsServer, s3_server: SeaweedS3
) -> None:
    said: list[str] = []
    env = clean_env(ALETHIA_NATS_URL=nats_server.url, ALETHIA_S3_ENDPOINT=s3_server.endpoint)
    stack = Stack(StackConfig(data_dir=tmp_path / "data", env=env, start_timeout=90), say=said.append)
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        trapped = foreign.getsockname()[1]
        stack.ports = _Trap(trapped, tmp_path / "locks")
        try:
            info = stack.start()
            assert info.status == "running"
            assert info.services["specs"] != f"127.0.0.1:{trapped}"
            assert any("specs could not bind its port" in m for m in said), said
        finally:
            stack.stop()
    assert stack.ports.held == []


def test_nats_that_cannot_start_names_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALETHIA_NATS_SERVER_BIN", "/bin/false")  # exits at once, as a crash would
    stack = Stack(StackConfig(data_dir=tmp_path / "data", env=clean_env(), start_timeout=30))
    with pytest.raises(StackStartError) as info:
        stack.start()
    assert "nats-server could not start" in str(info.value)
    assert str(tmp_path / "data" / "nats" / "nats-server.log") in str(info.value)
    assert stack.ports.held == []


def test_a_gateway_that_cannot_start_names_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nats_server: NatsServer, s3_server: SeaweedS3
) -> None:
    monkeypatch.setenv("ALETHIA_ENVOY_BIN", "/bin/false")
    env = clean_env(ALETHIA_NATS_URL=nats_server.url, ALETHIA_S3_ENDPOINT=s3_server.endpoint)
    stack = Stack(StackConfig(data_dir=tmp_path / "data", env=env, start_timeout=60))
    with pytest.raises(StackStartError) as info:
        stack.start()
    assert "the gateway (Envoy) could not start" in str(info.value)
    assert str(tmp_path / "data") in str(info.value) and "envoy.log" in str(info.value)
    assert stack.services and all(not s.process.running() for s in stack.services.values())  # all stopped
    assert stack.ports.held == []


def test_free_port_is_below_the_kernels_ephemeral_range_and_bindable() -> None:
    # A port chosen before it is bound must not be one an outgoing connection can take
    # meanwhile (a full run once lost the snapshot service's port that way).
    from alethia.stack.infra import _ephemeral_low, free_port

    low = _ephemeral_low()
    ports = {free_port() for _ in range(20)}
    assert all(10000 <= p < low for p in ports), sorted(ports)
    for port in list(ports)[:5]:
        assert bindable("127.0.0.1", port)
