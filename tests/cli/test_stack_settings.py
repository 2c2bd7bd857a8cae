"""The embedded stack's wiring, without starting it: environment, lock, token, repositories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from alethia.stack.datadir import DataDir, StackAlreadyRunning, StackLock, lock_held
from alethia.stack.supervisor import Stack, StackConfig, ensure_local_repository, example_repository_urls

ADDRS = {name: f"127.0.0.1:{port}" for name, port in
         (("specs", 1), ("snapshot", 2), ("mapper", 3), ("executor", 4))}  # fmt: skip


def test_service_env_wires_the_stack_and_keeps_user_overrides(tmp_path: Path) -> None:
    user = {
        "PATH": "/usr/bin",
        "ALETHIA_SPECS_DATABASE_URL": "postgresql://db/alethia",
        "ALETHIA_TEMPLATE_SET": "spec",
        "ALETHIA_SPECS_LISTEN": "0.0.0.0:9",  # the stack owns listen addresses
    }
    stack = Stack(StackConfig(tmp_path, env=user))
    env = stack.service_env("specs", ADDRS, "tok")
    assert env["ALETHIA_SPECS_LISTEN"] == "127.0.0.1:1"
    assert env["ALETHIA_SNAPSHOT_ADDR"] == "127.0.0.1:2" and env["ALETHIA_SERVICE_TOKEN"] == "tok"
    assert env["ALETHIA_SPECS_DATABASE_URL"] == "postgresql://db/alethia"
    assert env["ALETHIA_TEMPLATE_SET"] == "spec"
    assert env["PATH"] == "/usr/bin"
    # Defaults: everything under the data directory.
    env = Stack(StackConfig(tmp_path, env={})).service_env("executor", ADDRS, "tok")
    assert env["ALETHIA_SNAPSHOT_DATABASE_URL"] == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'snapshot.db'}"
    assert env["ALETHIA_WORK_DIR"] == str(tmp_path.resolve() / "work")
    assert env["ALETHIA_TEMPLATE_SET"] == "sandbox"
    assert env["ALETHIA_GIT_URL_REWRITE"] == f"https://git.example.com/=file://{tmp_path.resolve() / 'git'}/"
    assert env["ALETHIA_GIT_TOKENS_FILE"] == str(tmp_path.resolve() / "git-tokens.json")
    assert "ALETHIA_GIT_TOKEN" not in env, "no token for hosts other than the local one"


def test_external_servers_come_from_the_environment(tmp_path: Path) -> None:
    stack = Stack(
        StackConfig(tmp_path, env={"ALETHIA_NATS_URL": "nats://n:4222", "ALETHIA_S3_ENDPOINT": "http://s3"})
    )
    env = stack.service_env("executor", ADDRS, "t")
    assert env["ALETHIA_NATS_URL"] == "nats://n:4222" and env["ALETHIA_S3_ENDPOINT"] == "http://s3"


def test_token_is_generated_once_and_private(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.create()
    token = data.service_token()
    assert len(token) >= 32 and data.service_token() == token
    assert data.token_file.stat().st_mode & 0o777 == 0o600
    # An explicit token wins and is not written to disk.
    assert Stack(StackConfig(tmp_path, env={"ALETHIA_SERVICE_TOKEN": "given"})).service_token() == "given"
    assert data.token_file.read_text().strip() == token


def test_second_lock_names_the_holder_and_is_released_by_exit(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.create()
    # Another process holds the lock (as a second terminal's `alethia up` would).
    holder = subprocess.Popen(
        ["python3", "-c", "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR|os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode()); print('held', flush=True); "
         "time.sleep(60)", str(data.lock_file)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        assert lock_held(tmp_path)
        with pytest.raises(StackAlreadyRunning, match=f"already running on .* \\(pid {holder.pid}\\)"):
            StackLock(data.lock_file).acquire()
    finally:
        holder.kill()
        holder.wait()
    assert not lock_held(tmp_path), "the kernel drops the lock with its holder: no stale lock"
    lock = StackLock(data.lock_file)
    lock.acquire()
    assert data.lock_file.read_text().strip() == str(os.getpid())
    lock.release()


def test_local_apps_repository_for_the_demo_host(tmp_path: Path) -> None:
    urls = example_repository_urls()
    assert urls and all(u.startswith("https://git.example.com/") for u in urls)
    repo = ensure_local_repository(tmp_path, urls[0])
    assert repo is not None and (repo / "HEAD").is_file()
    assert ensure_local_repository(tmp_path, urls[0]) == repo  # idempotent
    assert ensure_local_repository(tmp_path, "https://github.com/acme/apps.git") is None
