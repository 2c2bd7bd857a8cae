// The Spec form: every section of the Spec, per cloud, with the server's field errors next to
// the input their field path names (`network.cidr_block`, `databases[1].engine`), and the
// revision conflict explained when someone else saved first.

import { ApiError, get, listAll, post, put } from "./api.js";
import { add, clear, fill, h, timeEl } from "./dom.js";

// Hints only (the server decides). Engines and Kubernetes versions are alethia/cloud_limits.py's
// (tests/console/test_console_assets.py fails when they differ).
export const CLOUDS = {
  aws: { label: "AWS", region: "us-east-1", instance: "m6i.large", versions: ["1.32", "1.33", "1.34", "1.35"], engines: ["aurora-mysql", "aurora-postgresql", "mariadb", "mysql", "postgres"], dbClass: "db.t4g.medium", cacheNode: "cache.t4g.small" },
  gcp: { label: "Google Cloud", region: "europe-west1", instance: "e2-standard-4", versions: ["1.33", "1.34", "1.35"], engines: ["mysql", "postgres", "sqlserver"], dbClass: "db-custom-2-7680", cacheNode: "STANDARD_HA" },
  azure: { label: "Azure", region: "westeurope", instance: "Standard_D4s_v5", versions: ["1.33", "1.34", "1.35"], engines: ["mysql", "postgres"], dbClass: "GP_Standard_D2s_v3", cacheNode: "Standard_C1" },
};

// The Spec's fields, their kinds (text, int, num, bool, json: an object, lines: a list of
// strings), bounds and defaults: generated from the Spec declaration by `make gen`
// (alethia/spec_schema.py; tests/console/test_console_assets.py fails when it is stale).
// A field added to the proto appears here without an edit; what follows is presentation.
export const SCHEMA = await (await fetch(new URL("./spec_schema.json", import.meta.url))).json();

// Labels and hints of the declared fields, by path without indexes (`databases.scaling.min_capacity`)
// or by a field's name wherever it is (`provider_config`). A field missing here is labelled from
// its name (the test above fails on a label for a field that no longer exists).
const LABELS = {
  provider_config: ["Provider settings (JSON)"],
  zone_id: ["Zone", "the tenant zone that owns the Spec"],
  project_name: ["Project"],
  cloud_identity_id: ["Cloud identity"],
  terraform_version: ["Terraform version constraint", "e.g. >= 1.5; empty: any"],
  "network.provision_network": ["Provision a new network"],
  "network.cidr_block": ["CIDR block", "e.g. 10.20.0.0/16 (when provisioning)"],
  "network.network_id": ["Existing network id", "when not provisioning"],
  "cluster.cluster_version": ["Kubernetes version"],
  "cluster.instance_types": ["Instance types (one per line)"],
  "cluster.node_min_size": ["Nodes: minimum"],
  "cluster.node_max_size": ["Nodes: maximum"],
  "cluster.node_desired_size": ["Nodes: desired"],
  "cluster.cluster_admins": ["Cluster admins (one per line)"],
  "dns.enabled": ["Manage DNS and WAF"],
  "dns.zone_id": ["Hosted zone id"],
  "dns.provider_config": ["Provider settings, WAF (JSON)"],
  "repositories.url": ["Git URL", "https or ssh, never with credentials"],
  "databases.storage_gb": ["Storage (GB)"],
  "databases.scaling.min_capacity": ["Scaling: min capacity"],
  "databases.scaling.max_capacity": ["Scaling: max capacity"],
  "databases.backup_retention_days": ["Backup retention (days)"],
  "topics.subscriptions.protocol": ["Protocol", "sqs, https, pull, push…"],
  "queues.config": ["Settings (JSON)"],
  "secrets.metadata": ["Metadata (JSON)"],
};
// Each section's title and the noun of one of its items.
const SECTIONS = {
  network: { title: "Network" },
  cluster: { title: "Kubernetes cluster" },
  dns: { title: "DNS and WAF" },
  repositories: { title: "Apps repositories", item: "repository" },
  databases: { title: "Databases", item: "database" },
  caches: { title: "Caches", item: "cache" },
  queues: { title: "Queues", item: "queue" },
  topics: { title: "Topics", item: "topic" },
  "topics.subscriptions": { title: "Subscriptions", item: "subscription" },
  nosql_tables: { title: "NoSQL tables", item: "table" },
  storage_buckets: { title: "Storage buckets", item: "bucket" },
  secrets: { title: "Secrets (names and metadata only: never a value)", item: "secret" },
};

function humanize(name) {
  const words = name.split(".").pop().replace(/_/g, " ");
  return words[0].toUpperCase() + words.slice(1);
}

// A declared field as the form shows it: [name, label, kind, hint]. Without a hint of its own,
// a field with a default or bounds says them (`empty: 7; 0 to 35`).
function presented(section, f) {
  const [label, hint] = LABELS[section ? `${section}.${f.name}` : f.name] || LABELS[f.name] || [];
  let auto;
  if (f.default !== undefined || f.min !== undefined || f.max !== undefined) {
    const parts = [];
    if (f.default !== undefined) parts.push(`empty: ${f.default}`);
    if (f.min !== undefined && f.max !== undefined) parts.push(`${f.min} to ${f.max}`);
    auto = parts.join("; ") || undefined;
  }
  return [f.name, label || humanize(f.name), f.kind, hint || auto];
}

const sectionOf = (key) => SCHEMA.sections.find((s) => s.key === key);
const objectFields = (key) => sectionOf(key).fields.map((f) => presented(key, f));
function listOf(key, path, fields) {
  return { key, title: humanize(key), item: humanize(key).toLowerCase(), ...SECTIONS[path], fields: fields.map((f) => presented(path, f)) };
}
const LISTS = SCHEMA.sections.filter((s) => s.repeated).map((s) => ({
  ...listOf(s.key, s.key, s.fields),
  sub: s.sub && listOf(s.sub.key, `${s.key}.${s.sub.key}`, s.sub.fields),
}));

function getPath(obj, dotted) {
  return dotted.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function fieldId(path) {
  return "f-" + path.replace(/[^A-Za-z0-9_-]/g, "_");
}

// One labelled input for `path`; the wrapper carries data-path so errors can find it.
function field(path, label, kind, value, hint) {
  const id = fieldId(path);
  const hintId = hint ? id + "-hint" : undefined;
  let input;
  if (kind === "bool") {
    input = h("input", { type: "checkbox", id, name: path, dataset: { kind }, checked: Boolean(value) });
    return h("div", { class: "field check", dataset: { path } }, input, h("label", { for: id }, label));
  }
  if (kind === "json" || kind === "lines") {
    let text = "";
    if (kind === "json" && value && Object.keys(value).length) text = JSON.stringify(value, null, 1);
    if (kind === "lines" && Array.isArray(value)) text = value.join("\n");
    input = h("textarea", { id, name: path, rows: kind === "json" ? 3 : 2, dataset: { kind }, "aria-describedby": hintId, spellcheck: "false" });
    input.value = text;
  } else {
    const attrs = { id, name: path, dataset: { kind }, "aria-describedby": hintId, autocomplete: "off", spellcheck: "false" };
    if (kind === "int") Object.assign(attrs, { type: "number", step: "1", inputmode: "numeric" });
    else if (kind === "num") Object.assign(attrs, { type: "number", step: "any", inputmode: "decimal" });
    else attrs.type = "text";
    input = h("input", attrs);
    // A number the server sent is shown as it is, 0 included (for some fields 0 means "off").
    input.value = value === undefined || value === null ? "" : String(value);
  }
  return h("div", { class: `field kind-${kind}`, dataset: { path } }, h("label", { for: id }, label), input, hint ? h("small", { id: hintId, class: "hint" }, hint) : null);
}

function objectSection(key, title, fields, data, cloud) {
  const hints = { cidr_block: "e.g. 10.20.0.0/16", instance_types: `e.g. ${CLOUDS[cloud]?.instance || ""}`, cluster_version: `one of ${(CLOUDS[cloud]?.versions || []).join(", ")}` };
  return h(
    "fieldset", { class: "section", dataset: { path: key }, id: `sec-${key}` },
    h("legend", {}, title),
    h("div", { class: "grid" }, fields.map(([f, label, kind, hint]) => field(`${key}.${f}`, label, kind, getPath(data || {}, f), hint || hints[f]))),
  );
}

function listSection(spec, list, onChange, prefix = "", items = null, cloud = "") {
  const path = prefix + list.key;
  const values = items || spec[list.key] || [];
  const headingId = `h-${fieldId(path)}`;
  const children = values.map((item, i) => {
    const itemPath = `${path}[${i}]`;
    const title = `${list.item[0].toUpperCase()}${list.item.slice(1)} ${i + 1}${item && item.name ? `: ${item.name}` : ""}`;
    return h(
      "fieldset", { class: "item", dataset: { path: itemPath } },
      h("legend", {}, title),
      h("div", { class: "grid" }, list.fields.map(([f, label, kind, hint]) => {
        let hintText = hint;
        if (f === "engine") hintText = `${CLOUDS[cloud]?.engines.join(", ") || ""}`;
        if (f === "instance_class") hintText = `e.g. ${CLOUDS[cloud]?.dbClass || ""}`;
        if (f === "node_type") hintText = `e.g. ${CLOUDS[cloud]?.cacheNode || ""}`;
        return field(`${itemPath}.${f}`, label, kind, getPath(item || {}, f), hintText);
      })),
      list.sub ? listSection(spec, list.sub, onChange, `${itemPath}.`, (item && item[list.sub.key]) || [], cloud) : null,
      h("button", { type: "button", class: "secondary small", onclick: () => onChange((s) => spliceAt(s, path, i), path), "aria-label": `Remove ${title}` }, `Remove ${list.item}`),
    );
  });
  const Tag = prefix ? "div" : "fieldset";
  return h(
    Tag, { class: prefix ? "sublist" : "section", dataset: { path }, id: prefix ? undefined : `sec-${list.key}`, role: prefix ? "group" : undefined, "aria-labelledby": prefix ? headingId : undefined },
    prefix ? h("h4", { id: headingId }, list.title) : h("legend", {}, `${list.title} (${values.length})`),
    children,
    h("button", { type: "button", class: "secondary small", onclick: () => onChange((s) => pushAt(s, path), `${path}[${values.length}]`) }, `Add ${list.item}`),
  );
}

// Paths like "topics[0].subscriptions" -> the array inside the spec object.
function arrayAt(spec, path, create = true) {
  let target = spec;
  const parts = path.match(/[^.[\]]+/g);
  parts.forEach((p, idx) => {
    const last = idx === parts.length - 1;
    if (target[p] === undefined && create) target[p] = last ? [] : {};
    target = target[p];
  });
  return target;
}

function spliceAt(spec, path, i) {
  arrayAt(spec, path).splice(i, 1);
}

function pushAt(spec, path) {
  arrayAt(spec, path).push({});
}

function setPath(obj, path, value) {
  const parts = path.match(/[^.[\]]+/g);
  let target = obj;
  parts.forEach((p, idx) => {
    const last = idx === parts.length - 1;
    const nextIsIndex = !last && /^\d+$/.test(parts[idx + 1]);
    if (last) target[p] = value;
    else {
      if (target[p] === undefined) target[p] = nextIsIndex ? [] : {};
      target = target[p];
    }
  });
}

// The form -> a Spec (proto3 JSON, snake_case); problems the browser can tell (bad JSON, not a
// number) come back as field violations in the same shape as the server's.
export function readForm(form) {
  const spec = {};
  const problems = [];
  for (const el of form.querySelectorAll("[name]")) {
    const path = el.name;
    if (path.startsWith("__")) continue; // the form's own controls (the cloud picker)
    const kind = el.dataset.kind || "text";
    let value;
    if (kind === "bool") value = el.checked;
    else if (kind === "int" || kind === "num") {
      if (el.value.trim() === "") {
        if (el.validity && el.validity.badInput) problems.push({ field: path, description: "must be a number" });
        continue;
      }
      value = Number(el.value);
      if (!Number.isFinite(value) || (kind === "int" && !Number.isInteger(value))) {
        problems.push({ field: path, description: kind === "int" ? "must be a whole number" : "must be a number" });
        continue;
      }
    } else if (kind === "json") {
      if (el.value.trim() === "") continue;
      try {
        value = JSON.parse(el.value);
      } catch (err) {
        problems.push({ field: path, description: `not valid JSON: ${err.message}` });
        continue;
      }
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        problems.push({ field: path, description: "must be a JSON object ({...})" });
        continue;
      }
    } else if (kind === "lines") {
      value = el.value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
    } else {
      value = el.value.trim();
    }
    setPath(spec, path, value);
  }
  // Lists the user emptied are sent as empty, so an update removes their items.
  for (const list of LISTS) if (!spec[list.key]) spec[list.key] = [];
  return { spec, problems };
}

// Error paths may name the request (`spec.zone_id`): the form's names start at the Spec.
function normalize(path) {
  return (path || "").replace(/^spec\./, "");
}

// The element for `path`, else its nearest enclosing one (an item, a section).
function findHolder(form, path) {
  let p = path;
  while (p) {
    const el = form.querySelector(`[data-path="${CSS.escape(p)}"]`);
    if (el) return el;
    const shorter = p.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
    if (shorter === p) return null;
    p = shorter;
  }
  return null;
}

// Show violations next to their inputs (or the nearest enclosing section) and in a summary.
export function showErrors(form, summary, violations, message = "") {
  clearErrors(form, summary);
  if (!violations.length && !message) return;
  const items = [];
  violations.forEach((v, n) => {
    const path = normalize(v.field);
    const holder = findHolder(form, path);
    const errId = `err-${n}`;
    const text = `${v.description || v.message || "invalid"}`;
    if (holder) {
      // A path below an input (a key inside a JSON settings box) is told relative to it.
      const rest = path.slice(holder.dataset.path.length).replace(/^\./, "");
      const msg = h("p", { class: "field-error", id: errId }, h("span", { class: "sr-only" }, `${path}: `), rest ? h("code", {}, `${rest}: `) : null, text);
      const input = holder.querySelector(":scope > [name]");
      if (input) {
        input.setAttribute("aria-invalid", "true");
        const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        if (input.dataset.describedBefore === undefined) input.dataset.describedBefore = described.join(" ");
        input.setAttribute("aria-describedby", [...described, errId].join(" "));
        const after = [...holder.querySelectorAll(":scope > .field-error")].pop() || input;
        after.insertAdjacentElement("afterend", msg);
      } else if (holder.tagName === "FIELDSET") {
        holder.querySelector(":scope > legend").insertAdjacentElement("afterend", msg);
      } else {
        add(holder, msg);
      }
      holder.classList.add("has-error");
    }
    items.push({ path, text, target: holder });
  });
  summary.hidden = false;
  append_summary(summary, items, message);
  summary.focus();
}

function append_summary(summary, items, message) {
  clear(summary);
  const count = items.length;
  add(summary, h("h2", {}, count ? `${count} problem${count > 1 ? "s" : ""} to fix before saving` : "Not saved"));
  if (message && !count) add(summary, h("p", {}, message));
  if (count) {
    add(summary,
      h("ul", {}, items.map(({ path, text, target }) => {
        const li = h("li", {});
        const focusTarget = target && (target.matches("[name]") ? target : target.querySelector("[name]"));
        if (focusTarget) {
          add(li, h("a", { href: `#${focusTarget.id}`, onclick: (e) => { e.preventDefault(); focusTarget.focus(); } }, path || "(the Spec)"), `: ${text}`);
        } else add(li, h("code", {}, path || "(the Spec)"), `: ${text}`);
        return li;
      })),
    );
  }
}

export function clearErrors(form, summary) {
  form.querySelectorAll(".field-error").forEach((e) => e.remove());
  form.querySelectorAll(".has-error").forEach((e) => e.classList.remove("has-error"));
  form.querySelectorAll("[aria-invalid]").forEach((e) => {
    e.removeAttribute("aria-invalid");
    const before = e.dataset.describedBefore || "";
    delete e.dataset.describedBefore;
    if (before) e.setAttribute("aria-describedby", before);
    else e.removeAttribute("aria-describedby");
  });
  clear(summary);
  summary.hidden = true;
}

// Leaf paths and values of a Spec, for explaining what differs between two revisions.
export function flatten(value, prefix = "", out = {}) {
  // Empty lists and objects count as absent: the server prints them, the form leaves them out.
  if (Array.isArray(value)) {
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else if (value && typeof value === "object") {
    Object.keys(value).forEach((k) => flatten(value[k], prefix ? `${prefix}.${k}` : k, out));
  } else if (value !== "" && value !== 0 && value !== false && value !== null && value !== undefined) {
    out[prefix] = JSON.stringify(value);
  }
  return out;
}

const OUTPUT_ONLY = new Set(SCHEMA.output_only);

export function changedFields(a, b) {
  const fa = flatten(a);
  const fb = flatten(b);
  const keys = new Set([...Object.keys(fa), ...Object.keys(fb)]);
  return [...keys].filter((k) => !OUTPUT_ONLY.has(k.split(/[.[]/)[0]) && fa[k] !== fb[k]).sort();
}

// Render the form into `main`. `existing`: the Spec being edited (null for a new one).
export async function specForm(main, { existing = null, cloud = "aws", navigate }) {
  const identities = await listAll("/api/identities", "identities");
  let model = existing ? structuredClone(existing) : { network: { provision_network: true }, cluster: {}, dns: {}, repositories: [], databases: [] };
  let currentCloud = existing ? existing.provider || cloud : cloud;
  let expectedRevision = existing ? Number(existing.revision) : 0;
  const base = existing ? structuredClone(existing) : null;

  const summary = h("div", { class: "error-summary", role: "alert", tabindex: "-1", hidden: true, "aria-live": "assertive" });
  const conflict = h("div", { class: "conflict", hidden: true, tabindex: "-1" });
  const form = h("form", { class: "spec-form", novalidate: true, "aria-label": existing ? "Edit Spec" : "New Spec" });
  const status = h("p", { class: "sr-only", role: "status", "aria-live": "polite" });

  function rerender(mutate, focusPath) {
    const { spec } = readForm(form);
    model = spec;
    if (mutate) mutate(model);
    render();
    // Keyboard users stay where they were: on the new item's first input, or after a removal
    // on the list's "Add" button.
    if (focusPath) {
      const holder = form.querySelector(`[data-path="${CSS.escape(focusPath)}"]`);
      const target = holder && (holder.querySelector("[name]") && focusPath.endsWith("]") ? holder.querySelector("[name]") : holder.querySelector(":scope > button:last-of-type"));
      target?.focus();
    }
  }

  function render() {
    clear(form);
    const matching = identities.filter((i) => i.provider === currentCloud);
    const cloudPicker = existing
      ? h("p", {}, "Cloud: ", h("strong", {}, CLOUDS[currentCloud]?.label || currentCloud), " (from the cloud identity; a Spec keeps its cloud)")
      : h(
          "fieldset", { class: "cloud-picker" },
          h("legend", {}, "Cloud"),
          Object.entries(CLOUDS).map(([key, c]) =>
            h("label", { class: "radio" }, h("input", { type: "radio", name: "__cloud", value: key, checked: key === currentCloud, onchange: () => { currentCloud = key; rerender(); } }), c.label),
          ),
        );
    const workspaceHints = { environment: "e.g. prod, staging", region: `e.g. ${CLOUDS[currentCloud]?.region}` };
    const identitySelect = h(
      "select", { id: fieldId("cloud_identity_id"), name: "cloud_identity_id", dataset: { kind: "text" } },
      h("option", { value: "" }, matching.length ? "— choose —" : `no ${CLOUDS[currentCloud]?.label || ""} identity yet`),
      matching.map((i) => h("option", { value: i.id, selected: i.id === model.cloud_identity_id }, `${i.name} (${i.account_id})`)),
    );
    add(form,
      cloudPicker,
      h(
        "fieldset", { class: "section", dataset: { path: "" }, id: "sec-workspace" },
        h("legend", {}, "Workspace"),
        h(
          "div", { class: "grid" },
          SCHEMA.fields.map((f) => {
            const [name, label, kind, hint] = presented("", f);
            // The identity is a reference: chosen among the cloud's identities, not typed.
            if (name === "cloud_identity_id") return h("div", { class: "field", dataset: { path: name } }, h("label", { for: identitySelect.id }, label), identitySelect);
            return field(name, label, kind, model[name], workspaceHints[name] || hint);
          }),
        ),
      ),
      SCHEMA.sections.filter((s) => !s.repeated).map((s) => objectSection(s.key, SECTIONS[s.key]?.title || humanize(s.key), objectFields(s.key), model[s.key], currentCloud)),
      LISTS.map((list) => listSection(model, list, rerender, "", null, currentCloud)),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, existing ? `Save revision ${expectedRevision + 1}` : "Create Spec"),
        existing ? h("a", { class: "button secondary", href: `#/specs/${existing.id}` }, "Cancel") : null),
    );
  }

  async function save(event) {
    event?.preventDefault();
    const { spec, problems } = readForm(form);
    if (problems.length) {
      showErrors(form, summary, problems);
      return;
    }
    clearErrors(form, summary);
    conflict.hidden = true;
    status.textContent = "Saving…";
    try {
      let saved;
      if (existing) {
        spec.id = existing.id;
        saved = await put(`/api/specs/${encodeURIComponent(existing.id)}?expected_revision=${expectedRevision}`, spec);
      } else {
        saved = await post("/api/specs", spec);
      }
      status.textContent = `Saved revision ${saved.revision}`;
      navigate(`#/specs/${saved.id}`);
    } catch (err) {
      status.textContent = "";
      if (!(err instanceof ApiError)) throw err;
      if (existing && err.code === 10) return explainConflict(spec);
      showErrors(form, summary, err.fieldViolations, err.message);
    }
  }

  // ABORTED on update: someone saved first. Say who changed what, and offer both ways out.
  async function explainConflict(mine) {
    const theirs = await get(`/api/specs/${encodeURIComponent(existing.id)}`);
    const theyChanged = changedFields(base, theirs);
    const youChanged = changedFields(base, mine);
    const both = theyChanged.filter((f) => youChanged.includes(f));
    clear(conflict);
    add(conflict,
      h("h2", {}, "Someone else saved this Spec first"),
      h("p", {}, `You were editing revision ${base.revision}; the Spec is now at revision ${theirs.revision} (saved `, timeEl(theirs.update_time), "). Nothing of yours was saved."),
      h("div", { class: "two" },
        h("div", {}, h("h3", {}, "Their changes"), theyChanged.length ? h("ul", {}, theyChanged.map((f) => h("li", {}, h("code", {}, f), both.includes(f) ? " (you changed it too)" : ""))) : h("p", {}, "none in the fields")),
        h("div", {}, h("h3", {}, "Your changes"), youChanged.length ? h("ul", {}, youChanged.map((f) => h("li", {}, h("code", {}, f)))) : h("p", {}, "none"))),
      h("p", {}, `Saving your version replaces the whole Spec with what this form holds: their changes above are undone unless you keep them in the form. Or load revision ${theirs.revision} and make your edit again.`),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", onclick: () => { expectedRevision = Number(theirs.revision); conflict.hidden = true; save(); } }, `Save my version over revision ${theirs.revision}`),
        h("button", { type: "button", class: "secondary", onclick: () => { existing = theirs; Object.assign(base, structuredClone(theirs)); model = structuredClone(theirs); expectedRevision = Number(theirs.revision); conflict.hidden = true; render(); } }, `Discard mine, load revision ${theirs.revision}`)),
    );
    conflict.hidden = false;
    conflict.focus();
  }

  form.addEventListener("submit", save);
  render();
  fill(main,
    h("h1", {}, existing ? `Edit ${existing.zone_id}/${existing.project_name}-${existing.environment}-${existing.region}` : "New Spec"),
    existing ? h("p", { class: "muted" }, `Revision ${existing.revision}, saved `, timeEl(existing.update_time)) : null,
    conflict, summary, status, form,
  );
  return { form, summary };
}
