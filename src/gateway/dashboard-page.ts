/**
 * The live dashboard at `/`: rendered on the server from DashboardData
 * (every value HTML-escaped), then kept current by a small inline script
 * that polls `/dashboard.json` every second and rebuilds the tables with
 * DOM text nodes (never innerHTML with data). No build step, no external
 * resources; the answer's Content-Security-Policy allows only this page's
 * own script (by nonce) and its own origin.
 */
import type { DashboardData, MemberView, NodeView } from "./dashboard-data.js";
import type { RouteMove } from "./route-cache.js";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function row(cells: readonly unknown[], cls = ""): string {
  return `<tr${cls ? ` class="${escapeHtml(cls)}"` : ""}>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`;
}

function loadPct(n: NodeView): number {
  return n.capacity > 0 ? Math.min(100, Math.round((n.meetings / n.capacity) * 100)) : 0;
}

function memberRows(members: readonly MemberView[]): string {
  return members.map((m) => row([m.id, m.address, m.role, m.term, m.leaderId, m.commitIndex, m.appliedIndex], m.reachable ? m.role : "down")).join("");
}

function nodeRows(nodes: readonly NodeView[]): string {
  return nodes
    .map((n) => {
      const pct = loadPct(n);
      const bar = `<div class="bar"><div style="width:${pct}%"></div></div>`;
      return `<tr class="${escapeHtml(n.state)}"><td>${escapeHtml(n.nodeId)}</td><td>${escapeHtml(n.address)}</td><td>${escapeHtml(n.state)}</td><td>${bar}</td><td>${escapeHtml(`${n.meetings} / ${n.capacity}`)}</td></tr>`;
    })
    .join("");
}

function moveRows(moves: readonly RouteMove[]): string {
  return moves.map((m) => row([new Date(m.atMs).toISOString(), m.meetingId, m.fromNode, m.toNode, m.epoch])).join("");
}

function summary(d: DashboardData): string {
  const g = d.gateway;
  return `gateway ${g.address} · ${g.healthy ? "quorum reachable" : "NO QUORUM"} · ${g.cachedRoutes} cached routes · feed revision ${g.feedRevision} from ${g.feedMember ?? "(reconnecting)"} · ${g.openWebSockets} websockets · creation ${g.createEnabled ? "on" : "off"}`;
}

const STYLE = `
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em}h2{font-size:1.05em;margin:1.4em 0 .4em}
#summary{color:#555}#summary.bad{color:#b00020;font-weight:600}
table{border-collapse:collapse;min-width:40em;background:#fff}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;font-variant-numeric:tabular-nums}
th{background:#f0f0f0}tr.leader td:nth-child(3){font-weight:700;color:#0a6}
tr.down,tr.dead{color:#b00020}tr.suspect{color:#b60}tr.draining{color:#666;font-style:italic}
.bar{width:10em;height:.8em;background:#eee;border:1px solid #ccc}.bar div{height:100%;background:#4a8}
`;

const SCRIPT = `
const $ = (id) => document.getElementById(id);
function cell(tr, text) { const td = document.createElement("td"); td.textContent = String(text); tr.appendChild(td); return td; }
function fill(id, items, build) { const body = $(id); body.replaceChildren(...items.map(build)); }
function bar(tr, n) {
  const td = document.createElement("td"), outer = document.createElement("div"), inner = document.createElement("div");
  outer.className = "bar"; inner.style.width = (n.capacity > 0 ? Math.min(100, Math.round(n.meetings / n.capacity * 100)) : 0) + "%";
  outer.appendChild(inner); td.appendChild(outer); tr.appendChild(td);
}
async function refresh() {
  try {
    const r = await fetch("/dashboard.json", { cache: "no-store" });
    const d = await r.json();
    const g = d.gateway;
    $("summary").textContent = "gateway " + g.address + " · " + (g.healthy ? "quorum reachable" : "NO QUORUM") + " · " + g.cachedRoutes + " cached routes · feed revision " + g.feedRevision + " from " + (g.feedMember ?? "(reconnecting)") + " · " + g.openWebSockets + " websockets · creation " + (g.createEnabled ? "on" : "off");
    $("summary").className = g.healthy ? "" : "bad";
    fill("members", d.members, (m) => { const tr = document.createElement("tr"); tr.className = m.reachable ? m.role : "down";
      for (const v of [m.id, m.address, m.role, m.term, m.leaderId, m.commitIndex, m.appliedIndex]) cell(tr, v); return tr; });
    $("nodes-error").textContent = d.nodesError ? "nodes unavailable: " + d.nodesError : "";
    fill("nodes", d.nodes ?? [], (n) => { const tr = document.createElement("tr"); tr.className = n.state;
      cell(tr, n.nodeId); cell(tr, n.address); cell(tr, n.state); bar(tr, n); cell(tr, n.meetings + " / " + n.capacity); return tr; });
    fill("moves", d.moves, (m) => { const tr = document.createElement("tr");
      for (const v of [new Date(m.atMs).toISOString(), m.meetingId, m.fromNode, m.toNode, m.epoch]) cell(tr, v); return tr; });
    $("updated").textContent = "updated " + new Date(d.generatedAtMs).toLocaleTimeString();
  } catch (e) {
    $("updated").textContent = "gateway unreachable: " + e;
  }
}
setInterval(refresh, 1000);
`;

/** The page; `nonce` must match the script-src nonce of the answer's Content-Security-Policy. */
export function renderDashboard(d: DashboardData, nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>convene</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head>
<body>
<h1>convene</h1>
<div id="summary" class="${d.gateway.healthy ? "" : "bad"}">${escapeHtml(summary(d))}</div>
<h2>Coordinator members</h2>
<table><thead><tr><th>id</th><th>address</th><th>role</th><th>term</th><th>leader</th><th>commit</th><th>applied</th></tr></thead>
<tbody id="members">${memberRows(d.members)}</tbody></table>
<h2>Meeting servers</h2>
<div id="nodes-error">${d.nodesError ? escapeHtml(`nodes unavailable: ${d.nodesError}`) : ""}</div>
<table><thead><tr><th>node</th><th>address</th><th>state</th><th>load</th><th>meetings</th></tr></thead>
<tbody id="nodes">${nodeRows(d.nodes ?? [])}</tbody></table>
<h2>Recent moves</h2>
<table><thead><tr><th>at</th><th>meeting</th><th>from</th><th>to</th><th>epoch</th></tr></thead>
<tbody id="moves">${moveRows(d.moves)}</tbody></table>
<p id="updated">updated ${escapeHtml(new Date(d.generatedAtMs).toLocaleTimeString())}</p>
<script nonce="${escapeHtml(nonce)}">${SCRIPT}</script>
</body></html>`;
}
