"""Faults a reliability test injects: a TCP link to cut, a Postgres to crash, logs to scan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from pathlib import Path

from alethia.stack.infra import free_port


class LogCapture(logging.Handler):
    """Every log record of this process, formatted with its traceback (for secret scans)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted still must not break the service
            self.lines.append(repr(record.__dict__))

    def __enter__(self) -> LogCapture:
        root = logging.getLogger()
        self._old_level = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._old_level)


class Link:
    """A TCP proxy to ``target`` that a test can cut: S3 (or anything) becoming unreachable.

    While down, every new connection is accepted and reset at once (what a dead backend
    behind a load balancer looks like) and counted in ``refused``; open connections are cut.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.is_up = True
        self.refused = 0
        self.accepted = 0
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Link:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def down(self) -> None:
        self.is_up = False
        for w in list(self._open):
            w.transport.abort()
        self._open.clear()

    def up(self) -> None:
        self.is_up = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_up:
            self.refused += 1
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if not self.is_up:
                        break
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort() if not self.is_up else dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open -= {writer, up_writer}

    async def close(self) -> None:
        self.down()
        if self._server is not None:
            self._server.close()


class PrivatePostgres:
    """A Postgres server of the test's own (initdb'd under /tmp), so it can be crashed and restarted.

    The shared server at 127.0.0.1:5432 is never touched. Runs as the ``postgres`` user
    (Postgres refuses root); ``crash()`` is ``pg_ctl stop -m immediate``: every backend dies
    at once with no shutdown checkpoint, and the next start runs crash recovery.
    """

    BIN = Path("/usr/lib/postgresql/15/bin")

    def __init__(self) -> None:
        import pwd
        import shutil as _shutil
        import tempfile

        bindir = Path(_shutil.which("pg_ctl") or self.BIN / "pg_ctl").resolve().parent
        self.bin = bindir
        self.user = pwd.getpwnam("postgres")
        self.root = Path(tempfile.mkdtemp(prefix="alethia-pg-"))
        os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.starts = 0

    def _run(self, *argv: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv],
            check=True,
            capture_output=True,
            cwd=str(self.root),
        )

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8")  # fmt: skip
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "-t", "60",
                  "-l", str(self.root / "server.log"), "start")  # fmt: skip
        self.starts += 1
        return self

    def crash(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def stop(self) -> None:
        import shutil as _shutil

        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        _shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        self._run(str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-c", f'CREATE DATABASE "{name}"')  # fmt: skip
        return self.url(name)
