"""A deploy followed live while Terraform is still applying, then cancelled from the Console.

Its own ``alethia up`` whose sandbox apply sleeps (``TF_VAR_sandbox_delay_seconds``, passed
through to Terraform): the job page shows the resource in flight while the job is still
RUNNING (the page is live, not a replay of a finished job), and Cancel stops it. The
sandbox's quick resources were created before the cancel, so the job ends FAILED saying
how many ("not a clean cancel", issue 11: never plain CANCELLED once something was applied),
as the API says too. A second stack and Terraform's interrupt make it ~25 s:
it runs in ``make reliability`` (and ``make console-screenshots``), not in ``make test``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.console.conftest import Console, shot
from tests.e2e.conftest import UpStack
from tests.fixtures.specs import minimal_spec_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def up_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpStack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TF_VAR_sandbox_delay_seconds", "300")
        stack = UpStack(tmp_path_factory.mktemp("alethia-up-slow") / "data")
        stack.start()
    yield stack
    if stack.proc is not None and stack.proc.poll() is None:
        stack.stop()


def _wait_status(console: Console, job_id: str, statuses: set[str], within: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status, job = console.rest("GET", f"/api/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not in {statuses} after {within}s: {job['status']}")


def test_deploy_followed_live_then_cancelled(page: Any, console: Console) -> None:
    status, identity = console.rest(
        "POST",
        "/api/identities",
        {
            "name": "slow",
            "provider": "aws",
            "account_id": "123456789012",
            "credentials_ref": "env:AWS_PROFILE",
        },
    )
    assert status == 200, identity
    status, spec = console.rest(
        "POST", "/api/specs", minimal_spec_dict("aws", cloud_identity_id=identity["id"], project_name="slow")
    )
    assert status == 200, spec
    status, plan = console.rest("POST", "/api/jobs", {"spec_id": spec["id"], "type": "PLAN"})
    assert status == 200, plan
    _wait_status(console, plan["id"], {"SUCCEEDED"})

    page.goto(console.url + "/")
    page.get_by_label("Your access token (JWT)").fill(console.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("table.specs")
    page.goto(f"{console.url}/#/jobs/{plan['id']}")
    page.get_by_role("button", name="Deploy this plan").click()
    page.wait_for_url(re.compile(r"#/jobs/(?!" + plan["id"] + ")"))
    deploy_id = page.url.rsplit("/", 1)[-1]

    # Terraform is inside the sleeping resource: the page shows it in flight, the job runs.
    page.locator(".inflight li", has_text="terraform_data.sandbox_delay").wait_for(timeout=60_000)
    live = page.locator(".live-status").inner_text()
    assert live.startswith("RUNNING: terraform apply;"), live
    assert re.search(r"[1-9]\d* in progress", live), live
    assert _wait_status(console, deploy_id, {"RUNNING", "SUCCEEDED"})["status"] == "RUNNING"
    shot(page, "job-live")

    page.get_by_role("button", name="Cancel deploy").click()
    page.wait_for_selector("main[data-job-done=true]", timeout=90_000)
    statuses = page.eval_on_selector("main", "m => m.dataset.statuses").split(",")
    assert statuses[-1] == "FAILED", statuses
    assert page.locator("h1 .badge").inner_text() == "FAILED"
    status, job = console.rest("GET", f"/api/jobs/{deploy_id}")
    assert job["status"] == "FAILED" and job["cancel_requested"] is True, job
    assert "not a clean cancel" in job["error"] and job["resources_applied"] > 0, job
    assert not page.get_by_role("button", name="Cancel deploy").is_visible()
