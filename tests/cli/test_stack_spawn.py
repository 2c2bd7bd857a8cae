"""How ``alethia up`` starts its children: parent-death signal without Python in a forked child."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from alethia.stack.infra import ManagedProcess

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")


def test_children_start_cleanly_while_grpc_threads_are_busy(tmp_path: Path) -> None:
    """With a ``preexec_fn`` some 2% of such children crashed in gRPC's poller before exec."""
    server = grpc.server(futures.ThreadPoolExecutor(4))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop = threading.Event()

    def health_checks() -> None:  # what the supervisor does while it starts services
        while not stop.is_set():
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                try:
                    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                except grpc.RpcError:
                    pass

    checker = threading.Thread(target=health_checks)
    checker.start()
    codes: list[int] = []
    try:
        for i in range(150):
            proc = ManagedProcess(["true"], tmp_path / f"{i % 4}.log", die_with_parent=True)
            proc.start()
            assert proc.proc is not None
            codes.append(proc.proc.wait(30))
    finally:
        stop.set()
        checker.join()
        server.stop(None)
    assert [c for c in codes if c != 0] == []


def test_the_child_gets_sigterm_when_its_starter_is_killed(tmp_path: Path) -> None:
    starter = (
        "import sys; from pathlib import Path; from alethia.stack.infra import ManagedProcess\n"
        "p = ManagedProcess(['sleep', '300'], Path(sys.argv[1]), die_with_parent=True); p.start()\n"
        "print(p.pid, flush=True); import time; time.sleep(300)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", starter, str(tmp_path / "sleep.log")], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    deadline = time.monotonic() + 10
    while not child.cmdline()[0].endswith("sleep"):  # the wrapper execs the program in place
        assert time.monotonic() < deadline, child.cmdline()
        time.sleep(0.02)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    gone, _ = psutil.wait_procs([child], timeout=10)
    assert gone == [child]  # not our child: its exit code is the dead starter's to collect


def test_a_missing_program_fails_in_the_caller() -> None:
    from alethia.stack.infra import die_with_parent_argv

    with pytest.raises(FileNotFoundError):
        die_with_parent_argv(["no-such-program-here"])
    assert die_with_parent_argv(["true", "x"])[-2:] == [shutil.which("true"), "x"]
