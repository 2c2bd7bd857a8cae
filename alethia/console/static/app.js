// The Console's pages, behind a hash router: sign-in, Specs, a Spec (with its diagram and
// jobs), the Spec form, jobs, and a job. Every call goes to the gateway's REST routes.

import { ApiError, claims, get, listAll, post, setToken, signOut, token } from "./api.js";
import { diagram, diagramText } from "./diagram.js";
import { add, clear, fill, h, statusBadge, timeEl } from "./dom.js";
import { CLOUDS, specForm } from "./form.js";
import { jobPage } from "./job.js";

const main = document.getElementById("main");
let controller = new AbortController();

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

export function workspace(s) {
  return `${s.zone_id}/${s.project_name}-${s.environment}-${s.region}`;
}

function renderWho() {
  const who = document.getElementById("who");
  clear(who);
  const c = claims();
  if (!token() || !c) return;
  const zones = (c.alethia_zones || []).join(", ") || "none";
  add(who,
    h("span", {}, "Signed in as ", h("strong", {}, c.sub || "?"), ` (zones: ${zones === "*" ? "all" : zones})`),
    " ",
    h("button", { type: "button", class: "link", onclick: () => { signOut(); navigate("#/signin"); } }, "Sign out"),
  );
}

// ---- sign-in ----------------------------------------------------------------------------

function signinPage(reason = "") {
  const input = h("textarea", { id: "token", name: "token", rows: 4, required: true, autocomplete: "off", spellcheck: "false", "aria-describedby": "token-hint token-error" });
  const error = h("p", { id: "token-error", class: "field-error", role: "alert" }, reason);
  const form = h(
    "form", { class: "signin", "aria-labelledby": "signin-h" },
    h("h1", { id: "signin-h" }, "Sign in"),
    h("div", { class: "field" },
      h("label", { for: "token" }, "Your access token (JWT)"),
      input,
      h("small", { id: "token-hint", class: "hint" },
        "The same token as for the API. For a local stack: ", h("code", {}, "cat .alethia/gateway-token"),
        " (the file named by gateway_token_file in .alethia/stack.json). It stays in this browser tab only (sessionStorage) and is sent only to this gateway.")),
    error,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    error.textContent = "";
    if (!claims(value)) {
      error.textContent = "That is not a JWT (three dot-separated parts).";
      input.focus();
      return;
    }
    setToken(value);
    try {
      await get("/api/specs?page_size=1"); // the gateway checks the token
      renderWho();
      navigate("#/specs");
    } catch (err) {
      signOut();
      error.textContent = `Refused by the gateway: ${err.message}`;
      input.focus();
    }
  });
  fill(main, form);
  input.focus();
}

// ---- Specs ------------------------------------------------------------------------------

function latest(jobs, type) {
  return jobs.filter((j) => j.type === type).sort((a, b) => (a.create_time < b.create_time ? 1 : -1))[0];
}

function jobCell(job) {
  if (!job) return h("span", { class: "muted" }, "never");
  return h("a", { href: `#/jobs/${job.id}`, class: "job-cell" }, statusBadge(job.status), " ", timeEl(job.end_time && Date.parse(job.end_time) > 0 ? job.end_time : job.create_time));
}

async function specsPage(params) {
  fill(main, h("h1", {}, "Specs"), h("p", { role: "status" }, "Loading…"));
  const [specs, jobs] = await Promise.all([listAll("/api/specs", "specs"), listAll("/api/jobs", "jobs", 500)]);
  const byspec = new Map();
  for (const j of jobs) {
    if (!byspec.has(j.spec_id)) byspec.set(j.spec_id, []);
    byspec.get(j.spec_id).push(j);
  }
  const zones = [...new Set(specs.map((s) => s.zone_id))].sort();
  const search = h("input", { type: "search", id: "q", name: "q", value: params.get("q") || "", placeholder: "workspace, project, region, id…" });
  const zone = h("select", { id: "zone", name: "zone" }, h("option", { value: "" }, "All zones"), zones.map((z) => h("option", { value: z, selected: z === params.get("zone") }, z)));
  const cloud = h("select", { id: "cloud", name: "cloud" }, h("option", { value: "" }, "All clouds"), Object.entries(CLOUDS).map(([k, c]) => h("option", { value: k, selected: k === params.get("cloud") }, c.label)));
  const tbody = h("tbody", {});
  const count = h("p", { role: "status", "aria-live": "polite", class: "muted" });

  function render() {
    const q = search.value.trim().toLowerCase();
    const rows = specs.filter((s) =>
      (!zone.value || s.zone_id === zone.value) &&
      (!cloud.value || s.provider === cloud.value) &&
      (!q || [workspace(s), s.id, s.project_name, s.region, s.environment].some((v) => (v || "").toLowerCase().includes(q))));
    rows.sort((a, b) => workspace(a).localeCompare(workspace(b)));
    fill(tbody, ...rows.map((s) => {
      const js = byspec.get(s.id) || [];
      return h("tr", {},
        h("th", { scope: "row" }, h("a", { href: `#/specs/${s.id}` }, workspace(s))),
        h("td", {}, s.zone_id),
        h("td", {}, CLOUDS[s.provider]?.label || s.provider),
        h("td", {}, s.region),
        h("td", { class: "num" }, String(s.revision)),
        h("td", {}, jobCell(latest(js, "PLAN"))),
        h("td", {}, jobCell(latest(js, "DEPLOY"))));
    }));
    count.textContent = `${rows.length} of ${specs.length} Specs`;
    const p = new URLSearchParams();
    if (search.value) p.set("q", search.value);
    if (zone.value) p.set("zone", zone.value);
    if (cloud.value) p.set("cloud", cloud.value);
    history.replaceState(null, "", `#/specs${p.toString() ? `?${p}` : ""}`);
  }
  for (const el of [search, zone, cloud]) el.addEventListener("input", render);

  fill(main,
    h("div", { class: "title-row" }, h("h1", {}, "Specs"), h("a", { class: "button primary", href: "#/specs/new" }, "New Spec")),
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      h("div", { class: "field" }, h("label", { for: "q" }, "Search"), search),
      h("div", { class: "field" }, h("label", { for: "zone" }, "Zone"), zone),
      h("div", { class: "field" }, h("label", { for: "cloud" }, "Cloud"), cloud)),
    count,
    h("table", { class: "specs" },
      h("caption", { class: "sr-only" }, "Specs in your zones"),
      h("thead", {}, h("tr", {}, ["Workspace", "Zone", "Cloud", "Region", "Revision", "Last plan", "Last deploy"].map((c) => h("th", { scope: "col" }, c)))),
      tbody),
  );
  render();
}

// ---- a Spec -----------------------------------------------------------------------------

async function specPage(id) {
  const [spec, jobs, snap] = await Promise.all([
    get(`/api/specs/${encodeURIComponent(id)}`),
    listAll(`/api/jobs?spec_id=${encodeURIComponent(id)}`, "jobs"),
    get(`/api/specs/${encodeURIComponent(id)}/snapshot`).catch((err) => ({ error: err })),
  ]);
  const notice = h("div", { class: "notice", hidden: true, tabindex: "-1" });
  async function queue(type) {
    try {
      const job = await post("/api/jobs", { spec_id: id, type });
      navigate(`#/jobs/${job.id}`);
    } catch (err) {
      fill(notice, h("h2", {}, `${type} refused`), h("p", {}, err.message));
      notice.hidden = false;
      notice.focus();
    }
  }
  jobs.sort((a, b) => (a.create_time < b.create_time ? 1 : -1));
  let picture;
  if (snap.error) picture = h("p", { class: "field-error" }, `No snapshot: ${snap.error.message}`);
  else {
    const snapshot = JSON.parse(snap.snapshot_json);
    picture = h("figure", { class: "diagram-box" }, diagram(snapshot),
      h("figcaption", {}, `Drawn from the snapshot of revision ${snap.spec_revision}, config hash `, h("code", { class: "digest" }, snap.config_hash.slice(0, 16)), "…"),
      h("details", {}, h("summary", {}, "The diagram as a list"), diagramText(snapshot)));
  }
  fill(main,
    h("div", { class: "title-row" },
      h("h1", {}, workspace(spec)),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", onclick: () => queue("PLAN") }, "Plan"),
        h("a", { class: "button secondary", href: `#/specs/${id}/edit` }, "Edit"))),
    notice,
    h("dl", { class: "meta" },
      h("dt", {}, "Cloud"), h("dd", {}, `${CLOUDS[spec.provider]?.label || spec.provider} account ${spec.cloud_account_id}`),
      h("dt", {}, "Revision"), h("dd", {}, String(spec.revision)),
      h("dt", {}, "Saved"), h("dd", {}, timeEl(spec.update_time)),
      h("dt", {}, "Spec id"), h("dd", {}, h("code", {}, spec.id))),
    h("section", { "aria-labelledby": "pic-h" }, h("h2", { id: "pic-h" }, "What it creates"), picture),
    h("section", { "aria-labelledby": "jobs-h" }, h("h2", { id: "jobs-h" }, "Jobs"), jobsTable(jobs, false)),
  );
}

function jobsTable(jobs, withWorkspace = true) {
  if (!jobs.length) return h("p", { class: "muted" }, "No jobs yet.");
  return h("table", {},
    h("caption", { class: "sr-only" }, "Jobs"),
    h("thead", {}, h("tr", {}, ["Job", "Type", "Status", withWorkspace ? "Workspace" : "Revision", "Changes", "Requested by", "Queued"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, jobs.map((j) => h("tr", {},
      h("th", { scope: "row" }, h("a", { href: `#/jobs/${j.id}` }, h("code", {}, j.id.slice(0, 8)))),
      h("td", {}, j.type),
      h("td", {}, statusBadge(j.status)),
      h("td", {}, withWorkspace ? j.workspace : String(j.spec_revision)),
      h("td", {}, j.changes ? `+${j.changes.add} ~${j.changes.change} −${j.changes.destroy}` : ""),
      h("td", {}, j.requested_by),
      h("td", {}, timeEl(j.create_time))))));
}

// What is queued and running now comes first; the filters are kept in the address.
async function jobsPage(params) {
  const jobs = await listAll("/api/jobs", "jobs", 500);
  jobs.sort((a, b) => (a.create_time < b.create_time ? 1 : -1));
  const choose = (id, label, values, current) =>
    h("div", { class: "field" }, h("label", { for: id }, label),
      h("select", { id, name: id }, h("option", { value: "" }, "All"), values.map((v) => h("option", { value: v, selected: v === current }, v))));
  const status = choose("status", "Status", ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "ERRORED"], params.get("status"));
  const type = choose("type", "Type", ["PLAN", "DEPLOY", "DESTROY"], params.get("type"));
  const holder = h("div", {});
  const count = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  function render() {
    const st = status.querySelector("select").value;
    const ty = type.querySelector("select").value;
    const shown = jobs.filter((j) => (!st || j.status === st) && (!ty || j.type === ty));
    fill(holder, jobsTable(shown));
    count.textContent = `${shown.length} of ${jobs.length} jobs`;
    const p = new URLSearchParams();
    if (st) p.set("status", st);
    if (ty) p.set("type", ty);
    history.replaceState(null, "", `#/jobs${p.toString() ? `?${p}` : ""}`);
  }
  for (const sel of [status, type]) sel.addEventListener("input", render);
  fill(main, h("h1", {}, "Jobs"), h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() }, status, type), count, holder);
  render();
}

// ---- routing ----------------------------------------------------------------------------

async function route() {
  controller.abort();
  controller = new AbortController();
  const signal = controller.signal;
  delete main.dataset.jobDone;
  const [path, query] = (location.hash.slice(1) || "/specs").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  renderWho();
  if (!token() && parts[0] !== "signin") return signinPage();
  main.setAttribute("aria-busy", "true");
  try {
    if (parts[0] === "signin") signinPage();
    else if (parts[0] === "specs" && parts[1] === "new") await specForm(main, { cloud: params.get("cloud") || "aws", navigate });
    else if (parts[0] === "specs" && parts[1] && parts[2] === "edit") await specForm(main, { existing: await get(`/api/specs/${encodeURIComponent(parts[1])}`), navigate });
    else if (parts[0] === "specs" && parts[1]) await specPage(parts[1]);
    else if (parts[0] === "jobs" && parts[1]) {
      const done = jobPage(main, parts[1], { navigate, signal }); // live until the job ends
      main.removeAttribute("aria-busy");
      await done;
    } else if (parts[0] === "jobs") await jobsPage(params);
    else await specsPage(params);
    document.title = `${main.querySelector("h1")?.textContent || "Alethia"} · Alethia Console`;
  } catch (err) {
    if (signal.aborted) return;
    if (err instanceof ApiError && err.httpStatus === 401) return signinPage(`Signed out: ${err.message}`);
    if (err instanceof ApiError && err.httpStatus === 404) {
      // The API does not tell "not in your zones" from "does not exist", and neither does this.
      fill(main, h("h1", {}, "Not found"), h("p", { role: "alert" }, "It does not exist, or it is not in your zones. "), h("a", { href: "#/specs" }, "Back to the Specs"));
      return;
    }
    fill(main, h("h1", {}, "Something went wrong"), h("p", { class: "field-error", role: "alert" }, err.message));
  } finally {
    if (!signal.aborted) main.removeAttribute("aria-busy");
  }
}

window.addEventListener("alethia:unauthenticated", () => {
  signOut();
});
window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true });
});
route();
