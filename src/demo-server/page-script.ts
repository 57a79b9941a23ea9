/**
 * The chat page's browser script, inlined by meeting-page.ts (no build
 * step). Plain ES2017 in a string: the project's TypeScript has no DOM
 * types, and the page must run as served. Kept free of backticks and
 * "${" so it can live in a String.raw template.
 *
 * Connection life (window.conveneDemo.state mirrors it for tests):
 *   connecting ─ welcome ─> connected ─ close / error / 5 s silence ─> disconnected
 *   disconnected: #retry-dialog shows; after a lost connection the retry
 *   runs after a 2 s countdown, after a failed attempt (e.g. 503 from the
 *   gateway while the meeting moves) every 1 s; "Try again" retries now.
 *   The dialog stays until a welcome arrives. The WebSocket URL is relative
 *   to the page, so a page loaded through the gateway reconnects through it
 *   and lands wherever the meeting lives now.
 * The welcome re-renders the whole history and the header's node, so after
 * a move the page shows what the new server restored. Each message sent
 * is kept until the server echoes it back; whatever is not echoed when the
 * connection ends (refused because the meeting is moving, or sent while the
 * socket closed) is sent again after the next welcome, so a planned move
 * loses nothing the user typed.
 */
export const PAGE_SCRIPT = String.raw`
(function () {
  "use strict";
  var PING_MS = 2000, SILENCE_MS = 5000, CONNECT_TIMEOUT_MS = 5000, FIRST_RETRY_S = 2, NEXT_RETRY_S = 1;
  var MAX_NAME = 40, MAX_TEXT = 2000;
  var boot = JSON.parse(document.getElementById("boot").textContent);
  function el(id) { return document.getElementById(id); }
  var messagesEl = el("messages"), input = el("message-input"), sendBtn = el("send"), nodeEl = el("node");
  var dialog = el("retry-dialog"), retryBtn = el("retry-button"), countdownEl = el("retry-countdown");
  var statusEl = el("status"), peopleEl = el("participants"), noticeEl = el("notice");

  var demo = {
    state: "connecting", nodeId: boot.nodeId, pid: boot.pid, epoch: boot.epoch, meetingId: boot.meetingId,
    name: "", connects: 0, messages: 0, lastError: "", resent: 0
  };
  window.conveneDemo = demo;

  var name = pickName();
  demo.name = name;
  el("my-name").textContent = name;

  var ws = null, lastHeard = 0, pingTimer = null, watchdog = null, countdown = null;
  var unacked = [];

  function pickName() {
    var q = null;
    try { q = new URLSearchParams(location.search).get("name"); } catch (e) { q = null; }
    if (q) {
      q = q.replace(/[\u0000-\u001f\u007f-\u009f]/g, "").trim().slice(0, MAX_NAME).trim();
      if (q) return q;
    }
    return "guest-" + String(1000 + Math.floor(Math.random() * 9000));
  }

  function setState(s) {
    demo.state = s;
    statusEl.textContent = s;
    document.body.setAttribute("data-state", s);
    sendBtn.disabled = s !== "connected";
  }

  function notice(text) {
    noticeEl.textContent = text || "";
    noticeEl.hidden = !text;
  }

  function send(m) {
    if (!ws || ws.readyState !== 1) return false;
    try { ws.send(JSON.stringify(m)); return true; } catch (e) { return false; }
  }

  function teardown() {
    clearInterval(pingTimer);
    clearInterval(watchdog);
    pingTimer = null;
    watchdog = null;
    var old = ws;
    ws = null;
    if (old) {
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try { old.close(); } catch (e) { /* already closed */ }
    }
  }

  function stopCountdown() {
    clearInterval(countdown);
    countdown = null;
  }

  function connect() {
    stopCountdown();
    teardown();
    setState("connecting");
    countdownEl.textContent = "Connecting\u2026";
    var url = new URL("ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    url.hash = "";
    var sock;
    try { sock = new WebSocket(url.href); } catch (e) { lost("cannot open a WebSocket"); return; }
    ws = sock;
    lastHeard = Date.now();
    sock.onopen = function () {
      if (ws !== sock) return;
      lastHeard = Date.now();
      send({ type: "join", name: name });
    };
    sock.onmessage = function (ev) {
      if (ws !== sock) return;
      lastHeard = Date.now();
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      handle(m);
    };
    sock.onclose = function (ev) { if (ws === sock) lost("closed (" + ev.code + (ev.reason ? " " + ev.reason : "") + ")"); };
    sock.onerror = function () { if (ws === sock) lost("connection error"); };
    pingTimer = setInterval(function () { if (ws === sock) send({ type: "ping" }); }, PING_MS);
    watchdog = setInterval(function () {
      if (ws !== sock) return;
      var limit = sock.readyState === 1 ? SILENCE_MS : CONNECT_TIMEOUT_MS;
      if (Date.now() - lastHeard > limit) lost("no answer for " + Math.round(limit / 1000) + " s");
    }, 500);
  }

  function lost(why) {
    var wasConnected = demo.state === "connected";
    teardown();
    demo.lastError = why;
    setState("disconnected");
    dialog.hidden = false;
    scheduleRetry(wasConnected ? FIRST_RETRY_S : NEXT_RETRY_S);
  }

  function scheduleRetry(seconds) {
    stopCountdown();
    var left = seconds;
    countdownEl.textContent = "Trying again in " + left + " s\u2026";
    countdown = setInterval(function () {
      left -= 1;
      if (left <= 0) { connect(); return; }
      countdownEl.textContent = "Trying again in " + left + " s\u2026";
    }, 1000);
  }

  function handle(m) {
    if (!m || typeof m !== "object") return;
    switch (m.type) {
      case "welcome": welcome(m); break;
      case "message":
        if (m.from === name) {
          var k = unacked.indexOf(String(m.text));
          if (k >= 0) unacked.splice(k, 1);
        }
        addMessage(m);
        scrollDown();
        break;
      case "participants": renderPeople(m.participants); break;
      case "error":
        // Refused for good (not because the meeting moves): do not send it again.
        if (m.error !== "moving" && m.error !== "read_only" && unacked.length > 0) unacked.pop();
        notice(String(m.message || m.error));
        break;
      default: break;
    }
  }

  function welcome(m) {
    demo.nodeId = String(m.nodeId);
    demo.pid = m.pid;
    demo.epoch = m.epoch;
    demo.connects += 1;
    nodeEl.textContent = "served by " + m.nodeId + " (pid " + m.pid + ")";
    messagesEl.textContent = "";
    demo.messages = 0;
    var history = Array.isArray(m.history) ? m.history : [];
    for (var i = 0; i < history.length; i++) addMessage(history[i]);
    scrollDown();
    renderPeople(m.participants);
    stopCountdown();
    dialog.hidden = true;
    notice("");
    setState("connected");
    for (var j = 0; j < unacked.length; j++) {
      if (send({ type: "say", text: unacked[j] })) demo.resent += 1;
    }
  }

  function addMessage(m) {
    var row = document.createElement("div");
    row.className = "message";
    var from = document.createElement("span");
    from.className = "from";
    from.textContent = String(m.from);
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = String(m.text);
    var at = document.createElement("time");
    var d = new Date(Number(m.at));
    at.textContent = isNaN(d.getTime()) ? "" : d.toLocaleTimeString();
    if (!isNaN(d.getTime())) at.setAttribute("datetime", d.toISOString());
    row.appendChild(at);
    row.appendChild(from);
    row.appendChild(text);
    messagesEl.appendChild(row);
    demo.messages += 1;
  }

  function scrollDown() { messagesEl.scrollTop = messagesEl.scrollHeight; }

  function renderPeople(list) {
    peopleEl.textContent = "";
    var names = Array.isArray(list) ? list : [];
    for (var i = 0; i < names.length; i++) {
      var li = document.createElement("li");
      li.textContent = String(names[i]);
      peopleEl.appendChild(li);
    }
  }

  function sendText() {
    var t = input.value;
    if (!t.trim() || demo.state !== "connected") return;
    if (t.length > MAX_TEXT) { notice("A message may have at most " + MAX_TEXT + " characters."); return; }
    if (send({ type: "say", text: t })) { unacked.push(t); input.value = ""; notice(""); }
  }

  sendBtn.addEventListener("click", sendText);
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendText(); }
  });
  retryBtn.addEventListener("click", function () { connect(); });

  connect();
})();
`;
