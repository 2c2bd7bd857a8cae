"""Issue 11 point 7: two ``alethia up`` started at the same moment both come up, on ports of their own.

Both try the default ports 50051-50054 first (no ``--free-ports``), as two users (or a user
and CI) on one machine would. Every port each stack listens on, its services' and
SeaweedFS's internal ones included, is distinct from the other's, and each stack answers
the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import UpStack

pytestmark = pytest.mark.slow


def _listening(pid: int) -> set[int]:
    """Every TCP port the processes of a stack (the supervisor's children) listen on."""
    ports: set[int] = set()
    for child in psutil.Process(pid).children(recursive=True):
        try:
            conns = child.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        ports |= {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}
    return ports


def test_two_stacks_started_at_once_both_come_up(tmp_path: Path) -> None:
    stacks = [UpStack(tmp_path / f"s{i}" / "data") for i in range(2)]
    for s in stacks:
        s.data_dir.parent.mkdir(parents=True)
    try:
        for s in stacks:
            s.launch(free_ports=False)
        for s in stacks:
            s.wait_running(timeout=180)
        infos = [json.loads((s.data_dir / "stack.json").read_text()) for s in stacks]
        addresses = [set(i["services"].values()) | {i["nats_url"], i["s3_endpoint"]} for i in infos]
        assert not addresses[0] & addresses[1], addresses
        listening = [_listening(s.proc.pid) for s in stacks if s.proc]
        # NATS, SeaweedFS (S3 + its internal ports) and the four services: all apart.
        assert all(len(ports) >= 12 for ports in listening), listening
        assert not listening[0] & listening[1]
        for s in stacks:
            assert s.ok(
                "identity", "create", "--provider", "aws", "--account-id", "123456789012", "--name", "t"
            )
    finally:
        codes = [s.stop() for s in stacks if s.proc is not None and s.proc.poll() is None]
    assert codes == [0, 0]
