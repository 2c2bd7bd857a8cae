"""The gateway of a real ``alethia up``: where it is, its credentials, and a plan followed live.

The CLI (gRPC straight to the services, with the local admin's token) creates a Spec and
plans it with the stack's real runner and Terraform; the gateway then shows the same job to
the same user, streams its events (Terraform's log lines included) to the end, and a user
of another zone, minted with ``python -m alethia.gateway.issuer``, sees none of it.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ROOT, UpStack, clean_env


def _get(url: str, token: str) -> tuple[int, str, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_gateway_of_alethia_up(up_stack: UpStack) -> None:
    info: dict[str, Any] = json.loads((up_stack.data_dir / "stack.json").read_text())
    gateway, token_file = info["gateway"], Path(info["gateway_token_file"])
    assert gateway.startswith("http://127.0.0.1:")
    assert _mode(token_file) == 0o600 and _mode(up_stack.data_dir / "gateway") == 0o700
    assert _mode(up_stack.data_dir / "gateway" / "issuer-key.pem") == 0o600
    assert _mode(up_stack.data_dir / "runner-token") == 0o600
    token = token_file.read_text().strip()

    identity = up_stack.ok(
        "identity", "create", "--provider", "aws", "--account-id", "123456789012", "--name", "gw-team"
    )
    spec = up_stack.ok(
        "spec", "create", "-f", str(ROOT / "examples" / "aws.yaml"), "--identity", identity["id"]
    )
    plan = up_stack.ok("plan", spec["id"], "--wait")
    assert plan["status"] == "SUCCEEDED"

    status, _, body = _get(f"{gateway}/api/jobs?spec_id={spec['id']}", token)
    assert status == 200
    (job,) = json.loads(body)["jobs"]
    assert job["id"] == plan["id"] and job["requested_by"] == "admin"  # the CLI's verified user

    status, ctype, text = _get(f"{gateway}/api/jobs/{plan['id']}/events", token)
    assert status == 200 and ctype.startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    types = [e["type"] for e in events]
    assert types[0] == "queued" and types[-1] == "succeeded" and "log" in types and "planned" in types

    # A user of another zone, signed by the stack's own issuer key.
    other = subprocess.run(
        [sys.executable, "-m", "alethia.gateway.issuer", str(up_stack.data_dir / "gateway"),
         "--subject", "carol@example.com", "--zones", "zone-elsewhere"],
        capture_output=True, text=True, check=True, env=clean_env(), cwd=ROOT,
    ).stdout.strip()  # fmt: skip
    status, _, body = _get(f"{gateway}/api/specs", other)
    assert status == 200 and json.loads(body)["specs"] == []
    assert _get(f"{gateway}/api/jobs/{plan['id']}", other)[0] == 404
    # The runner's credential is not a user's.
    runner = (up_stack.data_dir / "runner-token").read_text().strip()
    assert _get(f"{gateway}/api/specs", runner)[0] == 401
