"""The raw Terraform baseline: the commands a person would type, in a directory of their own.

The same template directory, the same ``terraform.tfvars.json``, the same Terraform binary
and the same S3 backend (``-backend-config`` pairs and credentials through the
environment, exactly as the runner passes them), with only ``-input=false`` added so
nothing waits for a terminal. Terraform runs with the runner's default Go garbage-collector
settings too (``go_runtime_env``): the ratios measure the pipeline around Terraform, not
how Go's collector is tuned.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from services.executor.terraform import go_runtime_env, resolve_binary, terraform_env
from services.executor.workspace import S3Backend, backend_config, backend_env

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = REPO_ROOT / "templates"


class RawTerraformError(RuntimeError):
    """A baseline Terraform command failed."""


@dataclass
class RawTerraform:
    """Runs ``terraform init/plan/show/apply`` by hand against the benchmark's S3 store."""

    work_root: Path
    s3_endpoint: str
    access_key: str = "alethia"
    secret_key: str = "alethia-local-secret"
    bucket: str = "alethia-state"
    template_set: str = "sandbox"

    def __post_init__(self) -> None:
        self.binary = resolve_binary(os.environ.get("ALETHIA_TERRAFORM_PATH", ""))
        self.backend = S3Backend(
            bucket=self.bucket,
            endpoint=self.s3_endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
        )
        self.plugin_cache = self.work_root / "plugin-cache"
        self.plugin_cache.mkdir(parents=True, exist_ok=True)
        self.env = terraform_env(
            os.environ,
            {**backend_env(self.backend), "TF_PLUGIN_CACHE_DIR": str(self.plugin_cache), **go_runtime_env()},
        )

    def directory(self, template: str, tfvars_json: str) -> Path:
        """A fresh copy of the template plus the tfvars (what the runner prepares too)."""
        wd = Path(tempfile.mkdtemp(prefix="raw-", dir=self.work_root))
        shutil.copytree(TEMPLATES / self.template_set / template, wd, dirs_exist_ok=True)
        (wd / "terraform.tfvars.json").write_text(tfvars_json)
        return wd

    async def _tf(self, wd: Path, *args: str) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            *self.binary.command,
            *args,
            cwd=wd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RawTerraformError(f"terraform {args[0]} exited {proc.returncode}: {err.decode()[-2000:]}")
        return out

    async def init(self, wd: Path, key: str) -> None:
        await self._tf(
            wd, "init", "-input=false", *(f"-backend-config={kv}" for kv in backend_config(self.backend, key))
        )

    async def plan_show(self, wd: Path) -> bytes:
        await self._tf(wd, "plan", "-input=false", "-out=plan.tfplan")
        return await self._tf(wd, "show", "-json", "plan.tfplan")

    async def apply(self, wd: Path) -> None:
        await self._tf(wd, "apply", "-input=false", "plan.tfplan")

    async def plan_cycle(self, template: str, tfvars_json: str, key: str) -> float:
        """Seconds for ``init && plan -out && show -json`` in a fresh directory."""
        wd = self.directory(template, tfvars_json)
        try:
            t0 = time.perf_counter()
            await self.init(wd, key)
            await self.plan_show(wd)
            return time.perf_counter() - t0
        finally:
            shutil.rmtree(wd, ignore_errors=True)

    async def apply_cycle(self, template: str, tfvars_json: str, key: str) -> float:
        """Init and plan (untimed), then seconds for ``apply plan.tfplan``."""
        wd = self.directory(template, tfvars_json)
        try:
            await self.init(wd, key)
            await self.plan_show(wd)
            t0 = time.perf_counter()
            await self.apply(wd)
            return time.perf_counter() - t0
        finally:
            shutil.rmtree(wd, ignore_errors=True)

    async def output(self, wd: Path) -> bytes:
        return await self._tf(wd, "output", "-json")

    async def apply_fresh_cycle(self, template: str, tfvars_json: str, key: str) -> float:
        """A plan made in one directory (untimed), then seconds for ``init && apply plan.tfplan
        && output -json`` in a fresh copy: a stored plan applied where nothing is initialised."""
        planned = self.directory(template, tfvars_json)
        wd = self.directory(template, tfvars_json)
        try:
            await self.init(planned, key)
            await self.plan_show(planned)
            shutil.copyfile(planned / "plan.tfplan", wd / "plan.tfplan")
            t0 = time.perf_counter()
            await self.init(wd, key)
            await self.apply(wd)
            await self.output(wd)
            return time.perf_counter() - t0
        finally:
            shutil.rmtree(planned, ignore_errors=True)
            shutil.rmtree(wd, ignore_errors=True)

    async def version(self) -> str:
        import json

        wd = Path(tempfile.mkdtemp(dir=self.work_root))
        try:
            return str(json.loads(await self._tf(wd, "version", "-json"))["terraform_version"])
        finally:
            shutil.rmtree(wd, ignore_errors=True)
