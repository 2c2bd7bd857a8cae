// A job: live Terraform progress from the event stream, the plan's changes, the cost, outputs
// (sensitive ones hidden), post-apply steps, artifacts with their digests, cancel, and deploy
// from a plan (a refused stale deploy shows the changed fields and offers a re-plan).

import { ApiError, followEvents, get, post } from "./api.js";
import { bytes, add, clear, fill, h, statusBadge, timeEl } from "./dom.js";

export const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "ERRORED"]);
const LOG_KEEP = 200;

// What Terraform's -json lines say about resources: planned, started, done, failed.
export class Progress {
  constructor() {
    this.planned = new Map(); // address -> action
    this.started = new Set();
    this.done = new Set();
    this.failed = new Set();
    this.stage = "";
    this.summary = null; // Terraform's own change_summary {add, change, remove, operation}
    this.lines = [];
    this.events = 0;
    this.status = "";
    this.statuses = []; // each status the stream reported, in order, without repeats
    this.logEvents = 0;
  }

  apply(ev) {
    this.events += 1;
    if (ev.status && ev.status !== "JOB_STATUS_UNSPECIFIED") {
      this.status = ev.status;
      if (this.statuses[this.statuses.length - 1] !== ev.status) this.statuses.push(ev.status);
    }
    if (ev.type === "log") this.logEvents += 1;
    const log = ev.log;
    if (ev.type === "log" && log) {
      if (log.stage) this.stage = log.stage;
      let msg = {};
      try {
        msg = log.json ? JSON.parse(log.json) : {};
      } catch {
        msg = {};
      }
      const addr = msg.hook?.resource?.addr || msg.change?.resource?.addr;
      if (log.type === "planned_change" && addr) this.planned.set(addr, msg.change.action);
      else if (log.type === "apply_start" && addr) this.started.add(addr);
      else if (log.type === "apply_complete" && addr) this.done.add(addr);
      else if (log.type === "apply_errored" && addr) this.failed.add(addr);
      else if (log.type === "change_summary" && msg.changes) this.summary = msg.changes;
      if (log.message) this.lines.push(`${log.stage ? `[${log.stage}] ` : ""}${log.message}`);
    } else {
      const text = ev.type === "planned" && ev.changes
        ? `planned: ${ev.changes.add} to add, ${ev.changes.change} to change, ${ev.changes.destroy} to destroy`
        : `${ev.type}${ev.message ? `: ${ev.message}` : ""}`;
      this.lines.push(text);
    }
    if (this.lines.length > LOG_KEEP) this.lines.splice(0, this.lines.length - LOG_KEEP);
  }

  get inFlight() {
    return [...this.started].filter((a) => !this.done.has(a) && !this.failed.has(a));
  }
}

function actionText(actions) {
  const a = (actions || []).join(", ");
  if (a === "delete, create" || a === "create, delete") return "replace";
  return a || "no-op";
}

function outputValue(o) {
  if (o.sensitive) return h("span", { class: "muted" }, "(sensitive: hidden)");
  let text = o.value_json;
  try {
    const v = JSON.parse(o.value_json);
    text = typeof v === "string" ? v : JSON.stringify(v, null, 1);
  } catch {
    /* shown as stored */
  }
  return h("pre", { class: "value" }, text);
}

function table(caption, head, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "table", {},
    h("caption", { class: "sr-only" }, caption),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c) : h("td", {}, c)))))),
  );
}

export function costView(cost) {
  if (!cost || !cost.status) return h("p", { class: "muted" }, "No estimate yet.");
  if (cost.status === "estimated") {
    const amount = Number(cost.total_monthly_cost || 0).toFixed(2);
    return h("p", {}, h("strong", { class: "cost" }, `${amount} ${cost.currency || ""}`), " per month (Infracost estimate)");
  }
  return h("p", {}, `No estimate (${cost.status}): `, cost.reason || "no reason given");
}

// Render the job page into main and keep it live until the job ends or `signal` aborts.
export async function jobPage(main, id, { navigate, signal }) {
  let job = await get(`/api/jobs/${encodeURIComponent(id)}`);
  // A deploy applies a plan: its cost estimate is the plan's, and until the deploy reports
  // its own changes, the plan's are what it is applying.
  const planJob = job.plan_job_id ? await get(`/api/jobs/${encodeURIComponent(job.plan_job_id)}`).catch(() => null) : null;
  const planCost = planJob && !(job.cost && job.cost.status) ? planJob.cost : null;
  const hasChanges = (c) => c && (c.resources || []).length > 0;
  const changesOf = () => (hasChanges(job.changes) || !planJob ? job.changes : planJob.changes);
  const progress = new Progress();
  const live = h("section", { class: "live", "aria-labelledby": "live-h" });
  const liveStatus = h("p", { class: "live-status", role: "status", "aria-live": "polite" });
  const bar = h("progress", { max: 1, value: 0, "aria-label": "Resources done" });
  const inflight = h("ul", { class: "inflight" });
  const log = h("pre", { class: "log", tabindex: "0", "aria-label": "Terraform log (latest lines)" });
  const details = h("div", {});
  const actions = h("div", { class: "actions" });
  const notice = h("div", { class: "notice", tabindex: "-1", hidden: true });
  add(live, h("h2", { id: "live-h" }, "Progress"), liveStatus, bar, inflight, h("details", { open: true }, h("summary", {}, "Terraform log"), log));

  function expected() {
    const c = changesOf() || {};
    const fromJob = Number(c.add || 0) + Number(c.change || 0) + Number(c.destroy || 0);
    if (progress.planned.size) return progress.planned.size;
    return fromJob || progress.started.size;
  }

  function renderLive() {
    const total = job.type === "PLAN" ? progress.planned.size : expected();
    const done = progress.done.size;
    const status = progress.status || job.status;
    let text;
    if (status === "QUEUED") text = `Queued${job.queue_position ? `, position ${job.queue_position} in its workspace` : ""}.`;
    else if (job.type === "PLAN") text = `${status}: terraform ${progress.stage || "starting"}; ${total} resource change${total === 1 ? "" : "s"} planned${TERMINAL.has(status) ? "" : " so far"}.`;
    else text = `${status}: terraform ${progress.stage || "starting"}; ${done} of ${total} resources done, ${progress.inFlight.length} in progress${progress.failed.size ? `, ${progress.failed.size} failed` : ""}.`;
    // A live region is read out on every change: touch it only when its words change.
    if (liveStatus.textContent !== text) liveStatus.textContent = text;
    bar.max = Math.max(1, total);
    bar.value = job.type === "PLAN" ? (TERMINAL.has(status) ? bar.max : 0) : done;
    if (job.type === "PLAN" && TERMINAL.has(status)) bar.value = bar.max;
    fill(inflight, ...progress.inFlight.slice(0, 8).map((a) => h("li", {}, h("code", {}, a), " …")));
    log.textContent = progress.lines.slice(-40).join("\n");
    log.scrollTop = log.scrollHeight;
  }

  function renderDetails() {
    const c = changesOf() || {};
    const isPlan = job.type === "PLAN";
    const fromPlan = !isPlan && c !== job.changes;
    fill(details,
      h("section", { "aria-labelledby": "changes-h" },
        h("h2", { id: "changes-h" }, isPlan ? "Planned changes" : "Changes"),
        fromPlan ? h("p", { class: "muted" }, "From the plan this deploy applies:") : null,
        h("p", { class: "counts" }, h("span", { class: "add" }, `+${c.add || 0} to add`), " ", h("span", { class: "change" }, `~${c.change || 0} to change`), " ", h("span", { class: "destroy" }, `−${c.destroy || 0} to destroy`)),
        table("Resource changes", ["Address", "Action"], (c.resources || []).map((r) => [h("code", {}, r.address), h("span", { class: `action action-${actionText(r.actions).replace(/[^a-z]/g, "")}` }, actionText(r.actions))]), TERMINAL.has(job.status) ? "No resource changes." : "Not planned yet.")),
      h("section", { "aria-labelledby": "cost-h" }, h("h2", { id: "cost-h" }, "Cost"),
        planCost ? h("p", { class: "muted" }, "The estimate of the plan this deploy applies:") : null,
        costView(planCost ? planCost : job.cost)),
      isPlan ? null : h("section", { "aria-labelledby": "outputs-h" },
        h("h2", { id: "outputs-h" }, "Outputs"),
        table("Outputs", ["Name", "Value"], (job.outputs || []).map((o) => [o.name, outputValue(o)]), TERMINAL.has(job.status) ? "No outputs." : "Outputs appear when the apply ends.")),
      isPlan ? null : h("section", { "aria-labelledby": "steps-h" },
        h("h2", { id: "steps-h" }, "Post-apply steps"),
        table("Post-apply steps", ["Step", "Result", "Detail"], (job.post_apply_steps || []).map((s) => [s.name, statusBadge(s.status), s.detail]), "None yet.")),
      h("section", { "aria-labelledby": "artifacts-h" },
        h("h2", { id: "artifacts-h" }, "Artifacts"),
        table("Artifacts", ["Name", "Size", "SHA-256", "Key"], (job.artifacts || []).map((a) => [a.name, bytes(a.size), h("code", { class: "digest" }, a.sha256), h("code", {}, a.key)]), "None yet.")),
      job.error ? h("section", { "aria-labelledby": "error-h" }, h("h2", { id: "error-h" }, "Error"), h("pre", { class: "error-text" }, job.error)) : null,
    );
  }

  function renderActions() {
    clear(actions);
    if (!TERMINAL.has(job.status)) {
      add(actions, h("button", { type: "button", class: "danger", disabled: job.cancel_requested, onclick: cancel }, job.cancel_requested ? "Cancel requested…" : `Cancel ${job.type.toLowerCase()}`));
    }
    if (job.type === "PLAN" && job.status === "SUCCEEDED") {
      if (job.applied_by_job_id) add(actions, h("p", {}, "Applied by ", h("a", { href: `#/jobs/${job.applied_by_job_id}` }, "deploy job"), "."));
      else add(actions, h("button", { type: "button", class: "primary", onclick: deploy }, "Deploy this plan"));
    }
    add(actions, h("a", { class: "button secondary", href: `#/specs/${job.spec_id}` }, "The Spec"));
  }

  async function cancel() {
    try {
      job = await post(`/api/jobs/${encodeURIComponent(job.id)}/cancel`, {});
      renderActions();
    } catch (err) {
      showNotice("Cancel refused", err.message);
    }
  }

  async function replan() {
    try {
      const plan = await post("/api/jobs", { spec_id: job.spec_id, type: "PLAN" });
      navigate(`#/jobs/${plan.id}`);
    } catch (err) {
      showNotice("Plan refused", err.message);
    }
  }

  async function deploy() {
    try {
      const d = await post("/api/jobs", { spec_id: job.spec_id, type: "DEPLOY", plan_job_id: job.id, idempotency_key: `deploy-${job.id}` });
      navigate(`#/jobs/${d.id}`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const changed = err.preconditionViolations.map((v) => v.subject).filter(Boolean);
      fill(notice,
        h("h2", {}, "Deploy refused"),
        h("p", {}, err.message),
        changed.length ? h("div", {}, h("p", {}, "The Spec changed since this plan in:"), h("ul", { class: "changed-fields" }, changed.map((f) => h("li", {}, h("code", {}, f))))) : null,
        err.httpStatus === 412 || changed.length ? h("p", {}, "Plan again to see what the current Spec will change, then deploy that plan.") : null,
        h("div", { class: "actions" }, h("button", { type: "button", class: "primary", onclick: replan }, "Re-plan"), h("a", { class: "button secondary", href: `#/specs/${job.spec_id}/edit` }, "Review the Spec")),
      );
      notice.hidden = false;
      notice.focus();
    }
  }

  function showNotice(title, text) {
    fill(notice, h("h2", {}, title), h("p", {}, text));
    notice.hidden = false;
    notice.focus();
  }

  const head = h("div", { class: "job-head" });
  function renderHead() {
    fill(head,
      h("h1", {}, `${job.type} `, statusBadge(job.status), " ", h("span", { class: "muted" }, job.workspace)),
      h("dl", { class: "meta" },
        h("dt", {}, "Job"), h("dd", {}, h("code", {}, job.id)),
        h("dt", {}, "Requested by"), h("dd", {}, job.requested_by || "—"),
        h("dt", {}, "Spec revision"), h("dd", {}, String(job.spec_revision)),
        h("dt", {}, "Queued"), h("dd", {}, timeEl(job.create_time)),
        h("dt", {}, "Ended"), h("dd", {}, timeEl(job.end_time)),
        job.plan_job_id ? [h("dt", {}, "From plan"), h("dd", {}, h("a", { href: `#/jobs/${job.plan_job_id}` }, job.plan_job_id.slice(0, 8)))] : null,
        h("dt", {}, "Attempt"), h("dd", {}, `${job.attempt} of ${job.max_attempts}`),
        h("dt", {}, "Config hash"), h("dd", {}, h("code", { class: "digest" }, job.config_hash))),
    );
  }

  async function refresh() {
    job = await get(`/api/jobs/${encodeURIComponent(id)}`);
    renderHead();
    renderLive();
    renderDetails();
    renderActions();
  }

  renderHead();
  renderLive();
  renderDetails();
  renderActions();
  fill(main, head, notice, actions, live, details);
  document.title = `${job.type} ${job.workspace} · Alethia Console`; // the page stays live: name the tab now

  // The stream replays the job from its start and ends after its terminal event; the job row
  // is read again at each milestone (it is the source of truth for changes, outputs, steps).
  let lastId = "";
  for (let attempt = 0; attempt < 20 && !signal.aborted; attempt++) {
    try {
      lastId = await followEvents(id, (ev) => {
        if (signal.aborted) return; // the user left this page: it no longer owns <main>
        progress.apply(ev);
        // What the page has seen, for people debugging a stream and for the browser tests.
        main.dataset.statuses = progress.statuses.join(",");
        main.dataset.logEvents = String(progress.logEvents);
        if (["started", "planned", "applied", "cancel_requested"].includes(ev.type) || TERMINAL.has(ev.status)) {
          refresh();
        } else renderLive();
      }, { signal, lastEventId: lastId });
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.httpStatus >= 400 && err.httpStatus < 500) throw err;
    }
    if (signal.aborted) return;
    await refresh();
    if (signal.aborted) return;
    if (TERMINAL.has(job.status)) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  main.dataset.jobDone = "true";
}
