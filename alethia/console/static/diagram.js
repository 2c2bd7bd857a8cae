// A picture of what a Spec will create, drawn as inline SVG from its frozen snapshot:
// the DNS/WAF entry and the apps repository above, the network holding the cluster and
// its data stores, and the managed services (queues, topics, buckets, secrets) below.

import { h, svg } from "./dom.js";

const BOX_W = 190;
const CLOUD_NAMES = { aws: "EKS", gcp: "GKE", azure: "AKS" };
const BOX_H = 58;
const GAP = 16;
const PAD = 20;
const WIDTH = 880;

function box(x, y, kind, title, lines = [], w = BOX_W, hgt = BOX_H) {
  const chars = Math.floor((w - 20) / 6.3);
  return svg(
    "g", { class: `node node-${kind}`, transform: `translate(${x},${y})` },
    svg("title", {}, [title, ...lines].join(" — ")),
    svg("rect", { width: w, height: hgt, rx: kind === "db" || kind === "cache" || kind === "table" ? 14 : 6 }),
    svg("text", { x: 10, y: 20, class: "kind" }, kindLabel(kind)),
    svg("text", { x: 10, y: 38, class: "name" }, clip(title, chars - 4)),
    lines[0] ? svg("text", { x: 10, y: 52, class: "sub" }, clip(lines[0], chars)) : null,
  );
}

function kindLabel(kind) {
  return { dns: "DNS", waf: "WAF", repo: "GitOps repo", cluster: "Kubernetes", db: "Database", cache: "Cache", table: "NoSQL table", queue: "Queue", topic: "Topic", bucket: "Bucket", secret: "Secret" }[kind] || kind;
}

function clip(text, n) {
  const s = String(text ?? "");
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

function arrow(x1, y1, x2, y2, dashed = false) {
  return svg("line", { x1, y1, x2, y2, class: dashed ? "edge dashed" : "edge", "marker-end": "url(#arrowhead)" });
}

// Rows of boxes within `width`, starting at (x, y); returns {nodes, height, centers}.
function grid(items, x, y, width) {
  const perRow = Math.max(1, Math.floor((width + GAP) / (BOX_W + GAP)));
  const nodes = [];
  const centers = [];
  items.forEach((it, i) => {
    const bx = x + (i % perRow) * (BOX_W + GAP);
    const by = y + Math.floor(i / perRow) * (BOX_H + GAP);
    nodes.push(box(bx, by, it.kind, it.title, it.lines));
    centers.push([bx + BOX_W / 2, by]);
  });
  const rows = Math.ceil(items.length / perRow);
  return { nodes, centers, height: rows ? rows * (BOX_H + GAP) - GAP : 0 };
}

export function describe(s) {
  const net = s.network || {};
  const cl = s.cluster || {};
  const dns = s.dns || {};
  const waf = dns.provider_config && (dns.provider_config.waf_enabled || dns.provider_config.waf);
  return {
    dns: dns.enabled ? { kind: "dns", title: dns.domain_name || "(no domain)", lines: [`zone ${dns.zone_id || "?"}${waf ? ", WAF on" : ""}`] } : null,
    repos: (s.repositories || []).map((r) => ({ kind: "repo", title: r.url.replace(/^https?:\/\//, ""), lines: [`${r.branch || "main"}:${r.path || "/"}`] })),
    network: net.provision_network ? `Network ${net.cidr_block || ""} (new)` : `Existing network ${net.network_id || ""}`,
    cluster: { kind: "cluster", title: `${CLOUD_NAMES[s.provider] || s.provider || ""} Kubernetes ${cl.cluster_version || ""}`.trim(), lines: [`${cl.node_min_size}–${cl.node_max_size} nodes (${cl.node_desired_size} desired), ${(cl.instance_types || []).join(", ")}`] },
    stores: [
      ...(s.databases || []).map((d) => ({ kind: "db", title: d.name, lines: [`${d.engine} ${d.engine_version}, ${d.instance_class}`] })),
      ...(s.caches || []).map((c) => ({ kind: "cache", title: c.name, lines: [`${c.node_type} × ${c.cluster_size}`] })),
      ...(s.nosql_tables || []).map((t) => ({ kind: "table", title: t.name, lines: [`key ${t.partition_key}${t.sort_key ? ` / ${t.sort_key}` : ""}`] })),
    ],
    managed: [
      ...(s.queues || []).map((q) => ({ kind: "queue", title: q.name, lines: [] })),
      ...(s.topics || []).map((t) => ({ kind: "topic", title: t.name, lines: [`${(t.subscriptions || []).length} subscription(s)`] })),
      ...(s.storage_buckets || []).map((b) => ({ kind: "bucket", title: b.name, lines: [b.versioning ? "versioned" : "not versioned"] })),
      ...(s.secrets || []).map((x) => ({ kind: "secret", title: x.name, lines: ["name only, no value"] })),
    ],
  };
}

export function diagram(snapshot) {
  const d = describe(snapshot);
  const nodes = [];
  const edges = [];
  let y = PAD;

  // Entry points above the network.
  const top = [...(d.dns ? [d.dns] : []), ...d.repos];
  const topGrid = grid(top, PAD, y, WIDTH - 2 * PAD);
  nodes.push(...topGrid.nodes);
  y += topGrid.height + (top.length ? 40 : 0);

  // The network: the cluster on the left, data stores on the right.
  const netY = y;
  const innerY = netY + 36;
  const clusterX = PAD + 20;
  const cluster = box(clusterX, innerY, "cluster", d.cluster.title, d.cluster.lines, BOX_W + 40, BOX_H + 20);
  const storesX = clusterX + BOX_W + 40 + 60;
  const storesGrid = grid(d.stores, storesX, innerY, WIDTH - PAD - 20 - storesX);
  const innerH = Math.max(BOX_H + 20, storesGrid.height);
  const netH = innerH + 56;
  const network = svg("g", { class: "network" },
    svg("rect", { x: PAD, y: netY, width: WIDTH - 2 * PAD, height: netH, rx: 10 }),
    svg("text", { x: PAD + 12, y: netY + 22, class: "net-label" }, d.network));
  nodes.push(cluster, ...storesGrid.nodes);
  const clusterCenter = [clusterX + (BOX_W + 40) / 2, innerY];
  topGrid.centers.forEach(([cx, cy], i) => {
    edges.push(arrow(cx, cy + BOX_H, clusterCenter[0], clusterCenter[1] - 4, top[i].kind === "repo"));
  });
  storesGrid.centers.forEach(([sx, sy]) => {
    edges.push(arrow(clusterX + BOX_W + 40, innerY + (BOX_H + 20) / 2, sx - BOX_W / 2 - 2, sy + BOX_H / 2));
  });
  y = netY + netH + (d.managed.length ? 36 : 0);

  // Managed services outside the network.
  if (d.managed.length) {
    nodes.push(svg("text", { x: PAD, y: y - 8, class: "net-label" }, "Managed services"));
    const m = grid(d.managed, PAD, y, WIDTH - 2 * PAD);
    nodes.push(...m.nodes);
    y += m.height;
  }
  const height = y + PAD;
  const summary = `${d.dns ? `DNS ${d.dns.title}; ` : ""}${d.network}; ${d.cluster.title}; ${d.stores.length} data store(s); ${d.managed.length} managed service(s)`;
  return svg(
    "svg", { class: "diagram", viewBox: `0 0 ${WIDTH} ${height}`, width: "100%", role: "img", "aria-labelledby": "diagram-title diagram-desc" },
    svg("title", { id: "diagram-title" }, "What this Spec creates"),
    svg("desc", { id: "diagram-desc" }, summary),
    svg("defs", {}, svg("marker", { id: "arrowhead", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }))),
    network, edges, nodes,
  );
}

// The same content as a list, for screen readers and for copying.
export function diagramText(snapshot) {
  const d = describe(snapshot);
  const item = (n) => h("li", {}, `${kindLabel(n.kind)}: ${n.title}${n.lines[0] ? ` (${n.lines[0]})` : ""}`);
  return h("ul", {}, d.dns ? item(d.dns) : null, d.repos.map(item), h("li", {}, d.network, h("ul", {}, item(d.cluster), d.stores.map(item))), d.managed.map(item));
}
