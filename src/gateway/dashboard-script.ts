/**
 * The dashboard's browser script, inlined by dashboard-page.ts: it renders
 * every table from DashboardData (first from the page's boot data, then
 * from `/dashboard.json` every second), with DOM text nodes only (never
 * innerHTML with data). One renderer, so one time format: the browser's
 * local 24-hour clock (HH:MM:SS), and durations as "320 ms", "4.2 s".
 * Plain ES2017 in a string, free of backticks and "${".
 */
export const DASHBOARD_SCRIPT = String.raw`
(function () {
  "use strict";
  var REFRESH_MS = 1000;
  function $(id) { return document.getElementById(id); }
  function time(ms) { return new Date(ms).toLocaleTimeString("en-GB", { hour12: false }); }
  function duration(ms) {
    if (ms === null || ms === undefined) return "";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    var s = Math.round(ms / 1000);
    return Math.floor(s / 60) + " min " + (s % 60) + " s";
  }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  var STATE_WORDS = { alive: "alive", suspect: "not answering", dead: "dead", draining: "draining", left: "left", unknown: "unknown" };
  function stateWord(s) { return STATE_WORDS[s] || s; }

  function td(tr, text, cls) {
    var cell = document.createElement("td");
    cell.textContent = String(text);
    if (cls) cell.className = cls;
    tr.appendChild(cell);
    return cell;
  }
  /** Fills tbody #id with one row per item, or a single "none yet" row. */
  function fill(id, items, columns, build) {
    var body = $(id);
    var rows = [];
    if (!items || items.length === 0) {
      var tr = document.createElement("tr");
      tr.className = "empty";
      var cell = td(tr, "none yet");
      cell.colSpan = columns;
      rows.push(tr);
    } else {
      for (var i = 0; i < items.length; i++) rows.push(build(items[i]));
    }
    body.replaceChildren.apply(body, rows);
  }

  function renderSummary(d) {
    var g = d.gateway;
    var health = $("health");
    health.textContent = (g.healthy ? "The coordinators answer with a quorum." : "No quorum: the coordinators cannot answer. New meetings and moves wait.") + " Updated " + time(d.generatedAtMs) + ".";
    health.className = g.healthy ? "ok" : "bad";
    var parts = [
      "This gateway (" + g.address + ") knows where " + plural(g.cachedRoutes, "meeting") + (g.cachedRoutes === 1 ? " lives" : " live"),
      g.feedMember ? "gets live route updates from " + g.feedMember : "is reconnecting to the route updates",
      "holds " + plural(g.openWebSockets, "open WebSocket"),
      g.createEnabled ? "opens a meeting on its first visit" : "does not open new meetings"
    ];
    $("gateway").textContent = parts.join(", ") + ".";
  }

  function renderMembers(d) {
    fill("members", d.members, 4, function (m) {
      var tr = document.createElement("tr");
      tr.className = m.reachable ? m.role : "unreachable";
      td(tr, m.id);
      td(tr, m.address);
      td(tr, m.reachable ? m.role : "unreachable", "role");
      td(tr, m.lag === null ? (m.reachable ? "unknown" : "") : m.lag === 0 ? "up to date" : m.lag + (m.lag === 1 ? " entry" : " entries") + " behind");
      if (!m.reachable && m.error) tr.title = m.error;
      return tr;
    });
  }

  function renderNodes(d) {
    $("nodes-error").textContent = d.nodesError ? "Meeting servers cannot be listed now: " + d.nodesError : "";
    fill("nodes", d.nodes || [], 5, function (n) {
      var tr = document.createElement("tr");
      tr.className = n.state;
      td(tr, n.nodeId);
      td(tr, n.address);
      td(tr, stateWord(n.state), "state");
      var load = td(tr, "");
      var pct = n.capacity > 0 ? Math.min(100, Math.round(n.meetings / n.capacity * 100)) : 0;
      var bar = document.createElement("div"), inner = document.createElement("div"), label = document.createElement("span");
      bar.className = "bar";
      inner.style.width = pct + "%";
      bar.appendChild(inner);
      label.textContent = n.meetings + " of " + n.capacity + " (" + pct + "%)";
      load.appendChild(bar);
      load.appendChild(label);
      var history = [];
      for (var i = 0; i < n.history.length; i++) history.push(stateWord(n.history[i].state) + " " + time(n.history[i].atMs));
      td(tr, history.length ? history.join(" → ") : "no changes yet", "history");
      return tr;
    });
  }

  function renderTimeline(d) {
    $("timeline-error").textContent = d.timelineError ? "The history cannot be read now: " + d.timelineError : "";
    fill("timeline", d.timeline || [], 4, function (e) {
      var tr = document.createElement("tr");
      tr.className = e.kind;
      td(tr, time(e.atMs));
      td(tr, e.title, "what");
      td(tr, duration(e.durationMs));
      td(tr, e.detail);
      return tr;
    });
  }

  function renderMeetings(d) {
    var m = d.meetings;
    $("meetings-total").textContent = m.total > m.shown.length ? "The first " + m.shown.length + " of " + m.total + " meetings, by name." : "";
    fill("meetings", m.shown, 3, function (r) {
      var tr = document.createElement("tr");
      var cell = td(tr, "");
      var a = document.createElement("a");
      a.href = r.link;
      a.textContent = r.meetingId;
      cell.appendChild(a);
      td(tr, r.nodeId);
      var moves = Math.max(0, r.epoch - 1);
      td(tr, moves === 0 ? "never" : plural(moves, "time"));
      return tr;
    });
  }

  function render(d) {
    renderSummary(d);
    renderMembers(d);
    renderNodes(d);
    renderTimeline(d);
    renderMeetings(d);
    window.conveneDashboard = { renders: (window.conveneDashboard ? window.conveneDashboard.renders : 0) + 1, data: d };
  }

  function refresh() {
    fetch("/dashboard.json", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("it answered " + r.status); return r.json(); })
      .then(render)
      .catch(function (e) {
        var health = $("health");
        health.textContent = "This gateway does not answer (" + (e && e.message ? e.message : e) + "); showing what it said last.";
        health.className = "bad";
      })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }

  render(JSON.parse($("boot").textContent));
  setTimeout(refresh, REFRESH_MS);
})();
`;
