"""Job working directories and the plugin-cache init lock."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alethia.errors import AlethiaError, FailedPrecondition
from services.executor.settings import REPO_ROOT
from services.executor.workspace import TFVARS_FILE, PluginCache, template_dir, working_directory

TEMPLATES = REPO_ROOT / "templates"


async def test_working_directory_is_a_standalone_copy_and_is_removed(tmp_path: Path) -> None:
    source = template_dir(TEMPLATES, "sandbox", "aws")
    assert (source / "variables.tf").is_symlink()  # what the copy must resolve
    async with working_directory(tmp_path, "job-x", source, '{"project_name": "p"}') as wd:
        copied = wd / "variables.tf"
        assert copied.is_file() and not copied.is_symlink()
        assert copied.read_text() == (source / "variables.tf").read_text()
        assert json.loads((wd / TFVARS_FILE).read_text()) == {"project_name": "p"}
        assert {p.name for p in source.iterdir()} <= {p.name for p in wd.iterdir()}
    assert not wd.exists()
    with pytest.raises(ValueError):
        async with working_directory(tmp_path, "job-y", source, "{not json"):
            pass
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


def test_template_dir_refuses_unknown_and_escaping_names() -> None:
    with pytest.raises(FailedPrecondition, match="does not exist"):
        template_dir(TEMPLATES, "sandbox", "oracle")
    with pytest.raises(FailedPrecondition, match="invalid template"):
        template_dir(TEMPLATES, "sandbox", "../spec")


async def test_plugin_cache_inits_are_serialized_within_and_across_processes(tmp_path: Path) -> None:
    cache = PluginCache(tmp_path / "cache")
    assert cache.env() == {"TF_PLUGIN_CACHE_DIR": str(tmp_path / "cache")}
    order: list[str] = []

    async def init(name: str) -> None:
        async with cache.lock():
            order.append(f"{name}+")
            await asyncio.sleep(0.2)
            order.append(f"{name}-")

    await asyncio.gather(init("a"), init("b"))
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])

    # Another runner process holds the lock for a second: we wait for it.
    holder = subprocess.Popen(  # noqa: ASYNC220 - a plain child, waited for in a thread
        [sys.executable, "-c", (
            "import fcntl, sys, time\n"
            f"f = open({str(tmp_path / 'cache' / '.alethia-init.lock')!r}, 'a+')\n"
            "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(1.0)\n"
        )],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert holder.stdout is not None
    assert (await asyncio.to_thread(holder.stdout.readline)).strip() == b"held"
    started = time.monotonic()
    async with cache.lock():
        waited = time.monotonic() - started
    await asyncio.to_thread(holder.wait)
    assert waited > 0.5


async def test_artifact_store_retries_then_fails_clearly() -> None:
    from alethia.crypto import KeyRing
    from alethia.errors import Unavailable
    from services.executor.artifacts import ArtifactStore

    store = ArtifactStore(
        "alethia-artifacts",
        endpoint="http://127.0.0.1:1",
        attempts=2,
        backoff_seconds=0.01,
        keyring=KeyRing.generate(),
    )
    with pytest.raises(Unavailable, match=r"upload jobs/j/plan.json: object storage failed after 2 attempts"):
        await store.put("j", "plan.json", b"{}")


async def test_runner_refuses_to_start_misconfigured(tmp_path: Path) -> None:
    from services.executor.app import start
    from services.executor.settings import ExecutorSettings

    with pytest.raises(ValueError, match="not 'from=to'"):
        await start(ExecutorSettings(git_url_rewrite="https://git.example.com/", work_dir=str(tmp_path)))
    # Artifacts are always encrypted: no key ring, no runner (the message names the setting).
    with pytest.raises(AlethiaError, match="ALETHIA_ARTIFACT_KEY is not set"):
        await start(ExecutorSettings(work_dir=str(tmp_path)))
    (tmp_path / "bad.json").write_text('{"current": "k", "keys": {"k": "c2hvcnQ="}}')
    with pytest.raises(AlethiaError, match="needs 32") as info:
        await start(ExecutorSettings(work_dir=str(tmp_path), artifact_key=f"file:{tmp_path / 'bad.json'}"))
    assert "c2hvcnQ" not in str(info.value)
    with pytest.raises(FailedPrecondition, match="no template set"):
        await start(ExecutorSettings(templates_dir=tmp_path, work_dir=str(tmp_path)))
    from services.executor.terraform import TerraformError

    with pytest.raises(TerraformError, match="not an executable"):
        await start(ExecutorSettings(terraform_path=str(tmp_path / "nope"), work_dir=str(tmp_path)))


def test_plugin_cache_lock_is_skipped_only_when_init_can_write_nothing(tmp_path: Path) -> None:
    from services.executor.workspace import configuration_fingerprint

    cache = PluginCache(tmp_path / "cache")
    wd = tmp_path / "wd"
    (wd / ".terraform" / "providers" / "registry.terraform.io" / "hashicorp" / "aws" / "5.1.0").mkdir(
        parents=True
    )
    (wd / "main.tf").write_text("terraform {}\n")
    fp = configuration_fingerprint(wd, "1.11.4")
    assert fp != configuration_fingerprint(wd, "1.12.0")
    (wd / "terraform.tfvars.json").write_text("{}")  # variables do not choose providers
    assert fp == configuration_fingerprint(wd, "1.11.4")
    assert not cache.ready(fp)  # never initialised: locked
    cache.record(fp, tmp_path / "nothing", pinned=False)
    assert cache.ready(fp)  # no provider at all: nothing to write
    # Providers without a lock file in the template: Terraform may fetch a newer release.
    (
        wd
        / ".terraform"
        / "providers"
        / "registry.terraform.io"
        / "hashicorp"
        / "aws"
        / "5.1.0"
        / "linux_amd64"
    ).mkdir()
    cache.record(fp, wd, pinned=False)
    assert not cache.ready(fp)
    # Pinned: ready while every package is in the cache.
    cache.record(fp, wd, pinned=True)
    assert not cache.ready(fp)
    (cache.directory / "registry.terraform.io/hashicorp/aws/5.1.0/linux_amd64").mkdir(parents=True)
    assert cache.ready(fp)
    (cache.directory / "registry.terraform.io/hashicorp/aws/5.1.0/linux_amd64").rmdir()
    assert not cache.ready(fp)
