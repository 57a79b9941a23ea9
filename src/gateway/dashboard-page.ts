/**
 * The live dashboard at `/`, the page an operator keeps open: the
 * coordinator members with their roles and lag, the meeting servers with
 * their load and recent states, a timeline of failures and moves with how
 * long each took, and the meetings with links. The page is a skeleton with
 * its data inlined as JSON; its script (dashboard-script.ts) renders the
 * tables from it and then from `/dashboard.json` every second. No build
 * step, no external resources; the answer's Content-Security-Policy allows
 * only this page's own script (by nonce) and its own origin.
 *
 * Element ids are the contract with the browser test: #health, #gateway,
 * #members, #nodes, #timeline, #meetings (table bodies; an empty one holds
 * a single "none yet" row), window.conveneDashboard.
 */
import type { DashboardData } from "./dashboard-data.js";
import { DASHBOARD_SCRIPT } from "./dashboard-script.js";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const STYLE = `
:root{color-scheme:light dark;--muted:#6b7280;--line:#d1d5db;--bad:#b00020;--warn:#b45309;--good:#047857}
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:72em;padding:0 1em}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.05em;margin:1.6em 0 .4em}
#health{font-weight:600;margin:.2em 0}#health.ok{color:var(--good)}#health.bad{color:var(--bad)}
#gateway,.note{color:var(--muted);margin:.2em 0}.error{color:var(--bad)}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:.3em .6em;text-align:left;vertical-align:top;font-variant-numeric:tabular-nums}
th{font-weight:600;color:var(--muted)}
tr.empty td{color:var(--muted);font-style:italic}
tr.leader .role{font-weight:700;color:var(--good)}tr.unreachable,tr.dead .state{color:var(--bad)}
tr.suspect .state{color:var(--warn)}tr.draining .state{color:var(--muted);font-style:italic}
tr.failed .what{color:var(--bad)}tr.back .what,tr.joined .what{color:var(--good)}tr.false-alarm .what,tr.suspected .what{color:var(--warn)}
td.history{color:var(--muted);font-size:.92em}
.bar{display:inline-block;width:8em;height:.7em;margin-right:.5em;background:rgba(127,127,127,.2);vertical-align:middle}
.bar div{height:100%;background:#4a8}
`;

/** The page; `nonce` must match the script-src nonce of the answer's Content-Security-Policy. */
export function renderDashboard(d: DashboardData, nonce: string): string {
  const n = escapeHtml(nonce);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>convene</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head>
<body>
<h1>convene</h1>
<p id="health"></p>
<p id="gateway"></p>
<h2>Coordinator members</h2>
<table><thead><tr><th>Member</th><th>Address</th><th>Role</th><th>Lag behind the leader</th></tr></thead><tbody id="members"></tbody></table>
<h2>Meeting servers</h2>
<p id="nodes-error" class="error"></p>
<table><thead><tr><th>Server</th><th>Address</th><th>State</th><th>Load</th><th>Recent states</th></tr></thead><tbody id="nodes"></tbody></table>
<h2>Failures and moves</h2>
<p id="timeline-error" class="error"></p>
<table><thead><tr><th>Time</th><th>What</th><th>Took</th><th>Details</th></tr></thead><tbody id="timeline"></tbody></table>
<h2>Meetings</h2>
<p id="meetings-total" class="note"></p>
<table><thead><tr><th>Meeting</th><th>Server</th><th>Moved</th></tr></thead><tbody id="meetings"></tbody></table>
<script id="boot" type="application/json">${scriptJson(d)}</script>
<script nonce="${n}">${DASHBOARD_SCRIPT}</script>
</body></html>`;
}
