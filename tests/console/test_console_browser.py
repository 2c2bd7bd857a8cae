"""The Console in headless Chromium against a real ``alethia up``, as a platform engineer uses it.

Sign in with the local admin's token -> a Spec with a bad CIDR refused, the error next to
the CIDR input -> fixed and created -> its diagram -> plan, followed live to the end ->
deploy of that plan, with outputs, post-apply steps and artifact digests -> a second plan,
the Spec edited, that plan's deploy refused naming the changed field, re-plan offered ->
an edit that lost the race to someone else's save, explained. The steps share one browser
tab and one stack, each needing what the one before left, so they run in order inside one
test (test order cannot matter).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.console.conftest import Console, low_contrast, shot, unlabelled_inputs

ROOT = Path(__file__).resolve().parents[2]
BAD_CIDR, GOOD_CIDR = "10.30.0.1/16", "10.30.0.0/16"
state: dict[str, Any] = {}


def _spec_ids(console: Console) -> list[str]:
    status, body = console.rest("GET", "/api/specs")
    assert status == 200, body
    return [s["id"] for s in body["specs"]]


def _wait_job_done(page: Any) -> dict[str, str]:
    """Wait until the job page has followed its job to the end; what the page saw."""
    page.wait_for_selector("main[data-job-done=true]", timeout=90_000)
    return dict(page.eval_on_selector("main", "m => ({...m.dataset})"))


def _sign_in_with_the_local_token(page: Any, console: Console) -> None:
    status, identity = console.rest(
        "POST",
        "/api/identities",
        {
            "name": "team-web",
            "provider": "aws",
            "account_id": "123456789012",
            "credentials_ref": "env:AWS_PROFILE",
        },
    )
    assert status == 200, identity
    state["identity"] = identity["id"]
    # Another team's Spec, so the list has something to filter.
    example = yaml.safe_load((ROOT / "examples" / "aws.yaml").read_text())
    example["cloud_identity_id"] = identity["id"]
    status, other = console.rest("POST", "/api/specs", example)
    assert status == 200, other
    state["other"] = other["id"]

    page.goto(console.url + "/")
    token = page.get_by_label("Your access token (JWT)")
    token.fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    assert "not a JWT" in page.locator("#token-error").inner_text()
    shot(page, "signin")

    # A well-formed token the gateway does not accept (signed by no key it knows): refused
    # with the gateway's reason, and not kept.
    forged = ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
        for part in ({"alg": "ES256", "kid": "nope"}, {"sub": "mallory", "alethia_zones": ["*"]})
    )
    token.fill(forged + ".c2lnbmF0dXJl")
    page.get_by_role("button", name="Sign in").click()
    page.locator("#token-error", has_text="Refused by the gateway").wait_for()
    assert page.evaluate("sessionStorage.length") == 0

    token.fill(console.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("table.specs tbody tr")
    assert "Signed in as admin" in page.locator("#who").inner_text()
    rows = page.locator("table.specs tbody tr")
    assert rows.count() == 1
    assert "zone-acme/payments-prod-us-east-1" in rows.first.inner_text()
    # The keyboard alone: on a fresh load the first Tab reaches the skip link, which moves focus
    # to the content (as each page change does).
    page.reload()
    rows.first.wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert unlabelled_inputs(page) == [] and low_contrast(page) == []


def _bad_cidr_shown_next_to_the_field_then_fixed(page: Any, console: Console) -> None:
    before = _spec_ids(console)
    page.get_by_role("link", name="New Spec").first.click()
    page.wait_for_selector("form.spec-form")
    page.get_by_label("Zone", exact=True).fill("zone-web")
    page.get_by_label("Project").fill("shop")
    page.get_by_label("Environment").fill("prod")
    page.get_by_label("Region").fill("us-east-1")
    page.get_by_label("Cloud identity").select_option(state["identity"])
    page.get_by_label("CIDR block").fill(BAD_CIDR)
    page.get_by_label("Kubernetes version").fill("1.34")
    page.get_by_label("Instance types (one per line)").fill("m6i.large")
    page.get_by_label("Nodes: minimum").fill("1")
    page.get_by_label("Nodes: maximum").fill("3")
    page.get_by_label("Nodes: desired").fill("2")
    cluster_settings = page.locator('[data-path="cluster.provider_config"] textarea')
    cluster_settings.fill('{"api_authorized_cidrs": ["0.0.0.0/0"]}')
    page.get_by_role("button", name="Add database").click()
    assert page.evaluate("document.activeElement.name") == "databases[0].name"  # focus follows
    db = page.locator('[data-path="databases[0]"]')
    db.get_by_label("Name").fill("orders")
    db.get_by_label("Engine", exact=True).fill("oracle-ish")
    db.get_by_label("Engine version").fill("16.4")
    db.get_by_label("Instance class").fill("db.t4g.medium")
    db.get_by_label("Storage (GB)").fill("20")
    page.get_by_role("button", name="Create Spec").click()

    error = page.locator('[data-path="network.cidr_block"] .field-error')
    error.wait_for()
    assert "host bits must be zero" in error.inner_text()  # the spec service's own words
    cidr = page.get_by_label("CIDR block")
    assert cidr.get_attribute("aria-invalid") == "true"
    assert error.get_attribute("id") in (cidr.get_attribute("aria-describedby") or "").split()
    summary = page.locator(".error-summary")
    assert "network.cidr_block" in summary.inner_text()
    # The list item's error is next to that item's input (the field path's index).
    engine_error = page.locator('[data-path="databases[0].engine"] .field-error')
    assert "must be one of" in engine_error.inner_text()
    assert db.get_by_label("Engine", exact=True).get_attribute("aria-invalid") == "true"
    # A path inside a JSON settings box: shown at that box, naming the key inside it.
    settings_error = page.locator('[data-path="cluster.provider_config"] .field-error')
    assert "api_authorized_cidrs[0]: 0.0.0.0/0 would open the cluster API" in settings_error.inner_text()
    assert cluster_settings.get_attribute("aria-invalid") == "true"
    # Only those three are wrong: no other input is marked.
    assert page.locator("[aria-invalid=true]").count() == 3, summary.inner_text()
    assert _spec_ids(console) == before, "a refused Spec wrote nothing"
    assert unlabelled_inputs(page) == []
    assert low_contrast(page) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # The summary links to the input: following it with the keyboard puts the caret there.
    summary.get_by_role("link", name="network.cidr_block").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.name") == "network.cidr_block"
    shot(page, "spec-form-error")

    cidr.fill(GOOD_CIDR)
    db.get_by_label("Engine", exact=True).fill("postgres")
    cluster_settings.fill('{"api_authorized_cidrs": ["203.0.113.0/24"]}')
    # Valid, but the workspace is another Spec's: refused naming the field that collides.
    page.get_by_label("Zone", exact=True).fill("zone-acme")
    page.get_by_label("Project").fill("payments")
    page.get_by_role("button", name="Create Spec").click()
    taken = page.locator('[data-path="project_name"] .field-error')
    taken.first.wait_for()
    said = "\n".join(taken.all_inner_texts())
    # Both names the project makes are taken (the workspace, the account's resource prefix),
    # each said next to the project input, naming the Spec that owns it.
    assert taken.count() == 2 and "workspace zone-acme/payments-prod-us-east-1" in said, said
    assert said.count(state["other"]) == 2, said
    assert page.locator("[aria-invalid=true]").count() == 1
    assert _spec_ids(console) == before
    page.get_by_label("Zone", exact=True).fill("zone-web")
    page.get_by_label("Project").fill("shop")
    page.get_by_role("button", name="Create Spec").click()
    page.wait_for_selector("svg.diagram")
    assert page.locator("h1").inner_text() == "zone-web/shop-prod-us-east-1"
    state["spec"] = page.url.rsplit("/", 1)[-1]
    assert state["spec"] in _spec_ids(console)
    # The diagram, drawn from the snapshot: the new network, the cluster, the database.
    picture = page.locator("svg.diagram")
    text = picture.text_content() or ""
    assert f"Network {GOOD_CIDR} (new)" in text
    assert "EKS Kubernetes 1.34" in text and "orders" in text and "postgres 16.4" in text
    shot(page, "spec")


def _plan_followed_live_then_deploy_with_outputs(page: Any, console: Console) -> None:
    page.get_by_role("button", name="Plan").click()
    page.wait_for_url(re.compile(r"#/jobs/"))
    plan_id = page.url.rsplit("/", 1)[-1]
    seen = _wait_job_done(page)
    # The page consumed the event stream: the job running, Terraform's log lines, the end.
    assert "RUNNING" in seen["statuses"].split(",") and seen["statuses"].endswith("SUCCEEDED"), seen
    assert int(seen["logEvents"]) > 0, seen
    status, plan = console.rest("GET", f"/api/jobs/{plan_id}")
    assert status == 200 and plan["status"] == "SUCCEEDED", plan
    resources = plan["changes"]["resources"]
    assert resources and int(plan["changes"]["add"]) > 0
    changes = page.locator("section[aria-labelledby=changes-h] tbody tr")
    assert changes.count() == len(resources)
    assert {changes.nth(i).locator("th").inner_text() for i in range(changes.count())} == {
        r["address"] for r in resources
    }
    cost = page.locator("section[aria-labelledby=cost-h] p").last.inner_text()
    assert cost.endswith("per month (Infracost estimate)") or cost.startswith(
        f"No estimate ({plan['cost']['status']}): "
    )
    assert page.locator("#live-h + .live-status").inner_text().startswith("SUCCEEDED")
    state["plan"] = plan_id
    shot(page, "job-plan")

    page.get_by_role("button", name="Deploy this plan").click()
    page.wait_for_url(re.compile(r"#/jobs/(?!" + plan_id + ")"))
    deploy_id = page.url.rsplit("/", 1)[-1]
    seen = _wait_job_done(page)
    assert seen["statuses"].endswith("SUCCEEDED"), seen
    status, deploy = console.rest("GET", f"/api/jobs/{deploy_id}")
    assert deploy["type"] == "DEPLOY" and deploy["plan_job_id"] == plan_id and deploy["status"] == "SUCCEEDED"
    live = page.locator(".live-status").inner_text()
    total = len(resources)
    assert f"{total} of {total} resources done" in live, live
    outputs = page.locator("section[aria-labelledby=outputs-h] tbody tr")
    assert outputs.count() == len(deploy["outputs"]) > 0
    names = {outputs.nth(i).locator("th").inner_text() for i in range(outputs.count())}
    assert names == {o["name"] for o in deploy["outputs"]} and "cluster_name" in names
    for o in deploy["outputs"]:
        if o["sensitive"]:
            row = page.locator("section[aria-labelledby=outputs-h] tbody tr", has_text=o["name"])
            assert "(sensitive: hidden)" in row.inner_text()
    steps = page.locator("section[aria-labelledby=steps-h] tbody tr")
    assert steps.count() == len(deploy["post_apply_steps"]) > 0
    digests = page.locator("section[aria-labelledby=artifacts-h] code.digest").all_inner_texts()
    assert sorted(digests) == sorted(a["sha256"] for a in deploy["artifacts"])
    assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests)
    assert page.locator("section[aria-labelledby=cost-h] p").last.inner_text() == cost  # the plan's
    assert low_contrast(page) == []
    # Laptop-sized: long values (a CA certificate output, digests) wrap; no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "job-deploy")


def _stale_deploy_refused_with_the_changed_field(page: Any, console: Console) -> None:
    page.goto(f"{console.url}/#/specs/{state['spec']}")
    page.get_by_role("button", name="Plan").click()
    page.wait_for_url(re.compile(r"#/jobs/(?!" + state["plan"] + ")"))
    plan2 = page.url.rsplit("/", 1)[-1]
    assert _wait_job_done(page)["statuses"].endswith("SUCCEEDED")

    page.goto(f"{console.url}/#/specs/{state['spec']}/edit")
    page.get_by_label("Nodes: maximum").fill("5")
    page.get_by_role("button", name="Save revision 2").click()
    page.wait_for_selector("svg.diagram")

    page.goto(f"{console.url}/#/jobs/{plan2}")
    _wait_job_done(page)
    page.get_by_role("button", name="Deploy this plan").click()
    notice = page.locator(".notice")
    notice.get_by_role("heading", name="Deploy refused").wait_for()
    assert notice.locator(".changed-fields").inner_text().split() == ["cluster.node_max_size"]
    status, jobs = console.rest("GET", f"/api/jobs?spec_id={state['spec']}")
    assert [j["type"] for j in jobs["jobs"]].count("DEPLOY") == 1, "the refused deploy queued nothing"
    shot(page, "deploy-refused")

    notice.get_by_role("button", name="Re-plan").click()
    page.wait_for_url(re.compile(r"#/jobs/(?!" + plan2 + ")"))
    replan = page.url.rsplit("/", 1)[-1]
    status, job = console.rest("GET", f"/api/jobs/{replan}")
    assert status == 200 and job["type"] == "PLAN" and int(job["spec_revision"]) == 2


def _specs_list_filters_and_revision_conflict_explained(page: Any, console: Console) -> None:
    page.goto(f"{console.url}/#/specs")
    rows = page.locator("table.specs tbody tr")
    rows.first.wait_for()
    assert rows.count() == 2
    page.get_by_label("Zone").select_option("zone-web")
    assert rows.count() == 1 and "zone-web/shop-prod-us-east-1" in rows.first.inner_text()
    assert "SUCCEEDED" in rows.first.inner_text()  # the last deploy
    page.get_by_label("Zone").select_option("")
    page.get_by_label("Search").fill("payments")
    assert rows.count() == 1 and "payments" in rows.first.inner_text()
    page.get_by_label("Search").fill("")
    shot(page, "specs")

    page.get_by_role("link", name="Jobs", exact=True).click()
    # The Specs table has rows too: wait for the Jobs page itself (heading and table come in one render).
    page.get_by_role("heading", name="Jobs", level=1).wait_for()
    jobs = page.locator("main table tbody tr")
    jobs.first.wait_for()
    status, body = console.rest("GET", "/api/jobs")
    assert jobs.count() == len(body["jobs"]) >= 4
    page.get_by_label("Type").select_option("DEPLOY")
    assert jobs.count() == 1 and "SUCCEEDED" in jobs.first.inner_text()
    page.get_by_label("Type").select_option("")
    shot(page, "jobs")
    page.goto(f"{console.url}/#/specs")
    rows.first.wait_for()

    # The same identity as the API: a user of zone-web alone sees zone-web's Spec only.
    carol = subprocess.run(
        [sys.executable, "-m", "alethia.gateway.issuer", str(Path(console.token_file).parent / "gateway"),
         "--subject", "carol@example.com", "--zones", "zone-web"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout.strip()  # fmt: skip
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Your access token (JWT)").fill(carol)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#who", has_text="carol@example.com").wait_for()
    rows.first.wait_for()
    assert rows.count() == 1 and "zone-web/shop-prod-us-east-1" in rows.first.inner_text()
    page.goto(f"{console.url}/#/specs/{state['other']}")
    page.locator("h1", has_text="Not found").wait_for()  # zone-acme's Spec does not exist for carol
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Your access token (JWT)").fill(console.token)
    page.get_by_role("button", name="Sign in").click()
    rows.first.wait_for()

    # The example Spec's picture: every kind of component, DNS and the repository above.
    page.get_by_role("link", name="zone-acme/payments-prod-us-east-1").click()
    picture = page.locator("svg.diagram")
    picture.wait_for()
    text = picture.text_content() or ""
    for name in ("payments.acme.example.com", "ledger", "sessions", "idempotency-keys", "payment-events",
                 "ledger-updates", "payments-exports", "stripe-api-key"):  # fmt: skip
        assert name in text, name
    shot(page, "spec-diagram")

    # Someone else saves revision 3 while this tab edits revision 2.
    page.goto(f"{console.url}/#/specs/{state['spec']}/edit")
    page.get_by_label("Nodes: desired").fill("3")
    status, current = console.rest("GET", f"/api/specs/{state['spec']}")
    current["cluster"]["node_min_size"] = 2
    status, saved = console.rest(
        "PUT", f"/api/specs/{state['spec']}?expected_revision={current['revision']}", current
    )
    assert status == 200 and int(saved["revision"]) == 3, saved
    page.get_by_role("button", name="Save revision 3").click()
    conflict = page.locator(".conflict")
    conflict.get_by_role("heading", name="Someone else saved this Spec first").wait_for()
    text = conflict.inner_text()
    theirs = conflict.locator("h3:text('Their changes') + ul").inner_text().split()
    mine = conflict.locator("h3:text('Your changes') + ul").inner_text().split()
    assert (theirs, mine) == (["cluster.node_min_size"], ["cluster.node_desired_size"]), text
    shot(page, "revision-conflict")
    conflict.get_by_role("button", name="Save my version over revision 3").click()
    page.wait_for_selector("svg.diagram")
    status, final = console.rest("GET", f"/api/specs/{state['spec']}")
    assert int(final["revision"]) == 4
    # The whole form was saved: its desired size, and the minimum it held (theirs undone, as said).
    assert final["cluster"]["node_desired_size"] == 3 and final["cluster"]["node_min_size"] == 1


def test_a_platform_engineer_in_the_console(page: Any, console: Console) -> None:
    """The journey, step by step (see the module docstring)."""
    state.clear()
    _sign_in_with_the_local_token(page, console)
    _bad_cidr_shown_next_to_the_field_then_fixed(page, console)
    _plan_followed_live_then_deploy_with_outputs(page, console)
    _stale_deploy_refused_with_the_changed_field(page, console)
    _specs_list_filters_and_revision_conflict_explained(page, console)
