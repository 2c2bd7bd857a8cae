"""Child processes get least privilege: environments built once, holding only what each needs.

The runner's environment is seeded with the service token, the S3 keys, a git token and an
unrelated variable; real Terraform and real git are then started through wrappers that
record the environment they actually received.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
from pathlib import Path

from services.executor.childenv import ChildEnvironments
from services.executor.postapply import push_files
from services.executor.redaction import Redactor
from services.executor.terraform import Terraform, TerraformBinary, resolve_binary
from services.executor.workspace import S3Backend, backend_env

SECRETS = {
    "ALETHIA_SERVICE_TOKEN": "svc-token-childenv-1f2e3d",
    "ALETHIA_S3_SECRET_KEY": "s3-admin-secret-childenv-9a8b",
    "ALETHIA_GIT_TOKEN": "ghp_childenvGitToken0123456789",
    "UNRELATED_DATABASE_PASSWORD": "hunter2-childenv",
    "GIT_SSH_COMMAND": "ssh -o ProxyCommand=evil",
    "TF_CLI_ARGS_apply": "-auto-approve",
}
RUNNER_ENV = {
    "PATH": os.environ["PATH"],
    "HOME": os.environ.get("HOME", "/root"),
    "TF_VAR_sandbox_delay_seconds": "0",
    "AWS_PROFILE": "team-a",
    "INFRACOST_API_KEY": "ico-key",
    **SECRETS,
}
BACKEND = S3Backend(
    bucket="b", endpoint="http://127.0.0.1:1", access_key="scoped-tf", secret_key="scoped-tf-secret"
)


def _children() -> ChildEnvironments:
    return ChildEnvironments.build(RUNNER_ENV, backend_env(BACKEND), {"TF_PLUGIN_CACHE_DIR": "/cache"})


def test_each_child_gets_only_what_it_needs() -> None:
    envs = _children()
    for kind, env in envs.all().items():
        leaked = {k for k, v in env.items() if k in SECRETS or v in SECRETS.values()}
        assert leaked == set(), (kind, leaked)
        assert not any(k.startswith("ALETHIA_") for k in env), kind
        assert env["PATH"] == RUNNER_ENV["PATH"]
    assert (
        envs.terraform["AWS_ACCESS_KEY_ID"] == "scoped-tf"
        and envs.terraform["TF_PLUGIN_CACHE_DIR"] == "/cache"
    )
    assert envs.terraform["TF_VAR_sandbox_delay_seconds"] == "0" and envs.terraform["TF_IN_AUTOMATION"] == "1"
    assert "AWS_ACCESS_KEY_ID" not in envs.kube and envs.kube["AWS_PROFILE"] == "team-a", (
        "exec auth, no S3 key"
    )
    assert "AWS_PROFILE" not in envs.git and "TF_VAR_sandbox_delay_seconds" not in envs.git
    assert envs.infracost["INFRACOST_API_KEY"] == "ico-key" and "AWS_PROFILE" not in envs.infracost
    extra = ChildEnvironments.build(
        {**RUNNER_ENV, "CORP_CA": "x"}, {}, passthrough=["CORP_CA", "ALETHIA_GIT_TOKEN"]
    )
    assert extra.git["CORP_CA"] == "x" and "ALETHIA_GIT_TOKEN" not in extra.git, (
        "never ALETHIA_* even if asked"
    )


def _recording_wrapper(path: Path, real: str, record: Path) -> Path:
    """A shell script that stores its environment (one file per process), then runs ``real``."""
    path.write_text(f'#!/bin/sh\nenv -0 > "{record}/$$.env"\nexec {real} "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _recorded(record: Path) -> list[dict[str, str]]:
    return [
        dict(item.split("=", 1) for item in f.read_text().split("\0") if "=" in item)
        for f in sorted(record.glob("*.env"))
    ]


async def test_real_terraform_and_git_run_without_the_runner_secrets(tmp_path: Path) -> None:
    envs = _children()
    record = tmp_path / "envs"
    record.mkdir()
    real_tf = resolve_binary("", RUNNER_ENV["PATH"])
    tf_wrapper = _recording_wrapper(tmp_path / "terraform", " ".join(real_tf.command), record)
    version = await Terraform(
        tmp_path, TerraformBinary((str(tf_wrapper),), "setting"), env=envs.terraform
    ).version()
    assert version
    bindir = tmp_path / "bin"
    bindir.mkdir()
    real_git = shutil.which("git")
    assert real_git
    _recording_wrapper(bindir / "git", real_git, record)
    bare = tmp_path / "srv" / "apps.git"
    bare.parent.mkdir()
    await asyncio.to_thread(subprocess.run, ["git", "init", "-q", "--bare", str(bare)], check=True)
    git_env = {**envs.git, "PATH": f"{bindir}:{envs.git['PATH']}"}
    token = SECRETS["ALETHIA_GIT_TOKEN"]
    result = await push_files(
        {"a.yaml": "a: 1\n"},
        "https://git.example.com/apps.git",
        "main",
        token,
        [("https://git.example.com/", f"file://{tmp_path / 'srv'}/")],
        "m",
        Redactor([token]),
        base_env=git_env,
    )
    assert "pushed" in result
    seen = _recorded(record)
    assert len(seen) >= 5, "terraform once, git several times"
    for env in seen:
        assert not {k for k, v in env.items() if k in SECRETS or v in SECRETS.values()}
        assert not any(k.startswith("ALETHIA_") for k in env)


def test_go_runtime_settings_reach_terraform_and_win_over_a_passthrough() -> None:
    from services.executor.terraform import go_runtime_env

    assert go_runtime_env() == {"GOGC": "400", "GOMEMLIMIT": "1GiB"}
    assert go_runtime_env("", "") == {}, "empty: Go's own defaults"
    envs = ChildEnvironments.build(
        {**RUNNER_ENV, "GOGC": "50"}, {}, go_runtime_env("off", "512MiB"), passthrough=["GOGC"]
    )
    assert (envs.terraform["GOGC"], envs.terraform["GOMEMLIMIT"]) == ("off", "512MiB")
    assert "GOMEMLIMIT" not in envs.git and envs.git["GOGC"] == "50", "only Terraform's are set"


def test_go_runtime_settings_are_checked_naming_the_setting() -> None:
    import pytest
    from pydantic import ValidationError

    from services.executor.settings import ExecutorSettings

    for field, bad in (("terraform_gogc", "50%"), ("terraform_gogc", "-1"), ("terraform_gomemlimit", "1GB")):
        with pytest.raises(ValidationError) as err:
            ExecutorSettings(**{field: bad})
        assert field in str(err.value)
    ok = ExecutorSettings(terraform_gogc="off", terraform_gomemlimit="")
    assert (ok.terraform_gogc, ok.terraform_gomemlimit) == ("off", "")


async def test_real_terraform_starts_with_the_go_runtime_settings(tmp_path: Path) -> None:
    """Go refuses a malformed ``GOMEMLIMIT`` at start: the defaults are ones it takes."""
    import pytest

    from services.executor.terraform import TerraformError, go_runtime_env

    binary = resolve_binary("", RUNNER_ENV["PATH"])
    env = {**_children().terraform, **go_runtime_env()}
    assert await Terraform(tmp_path, binary, env=env).version()
    with pytest.raises(TerraformError):
        await Terraform(tmp_path, binary, env={**env, "GOMEMLIMIT": "1GB"}).version()
